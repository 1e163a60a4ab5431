// Compile-time contract tests for the Bayesian MLP: an ElboObjective with a value-only path in
// float and double (not an exact one, not an EM model), and not usable through a const object
// (training reuses buffers held by the objective).
#include <latent/core/concepts.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/models/bayesian_mlp.hpp>

#include <Eigen/Core>

#include <random>
#include <type_traits>

static_assert(latent::ElboObjective<latent::bayesian_mlp>);
static_assert(latent::ElboValueObjective<latent::bayesian_mlp>);
static_assert(latent::ElboValueObjective<latent::basic_bayesian_mlp<float>, std::mt19937>);
static_assert(!latent::ExactElboObjective<latent::bayesian_mlp>);
static_assert(!latent::ElboObjective<const latent::bayesian_mlp>);
static_assert(!latent::EMModel<latent::bayesian_mlp>);
static_assert(std::is_same_v<latent::bayesian_mlp, latent::basic_bayesian_mlp<double>>);
static_assert(std::is_same_v<latent::objective_vector_t<latent::basic_bayesian_mlp<float>>, Eigen::VectorXf>);
