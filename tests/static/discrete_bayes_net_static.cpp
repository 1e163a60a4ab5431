// Compile-time contract tests for the discrete Bayesian network.
#include <latent/core/concepts.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

namespace {
struct unknown_family {};
}  // namespace

// Exact EM, mean-field variational EM and random restarts.
static_assert(latent::SufficientStatistics<latent::discrete_bayes_net_stats>);
static_assert(latent::EMModel<latent::discrete_bayes_net>);
static_assert(latent::VariationalEMModel<latent::discrete_bayes_net, latent::mean_field>);
static_assert(latent::RandomlyInitializable<latent::discrete_bayes_net>);

// Only the mean-field family is supported; the data is the grouped record type, not a matrix.
static_assert(!latent::VariationalEMModel<latent::discrete_bayes_net, unknown_family>);
static_assert(!latent::VariationalEMModel<latent::discrete_bayes_net, int>);
static_assert(std::is_same_v<latent::discrete_bayes_net::data_type, latent::discrete_bayes_net_data>);
static_assert(!std::is_convertible_v<Eigen::MatrixXd, latent::discrete_bayes_net_data>);
static_assert(!latent::SufficientStatistics<latent::discrete_bayes_net_params>);
