// Compile-time contract tests for the discrete Bayesian network, in double and in float.
#include <latent/core/concepts.hpp>
#include <latent/core/statistics.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

#include <random>
#include <type_traits>

namespace {
struct unknown_family {};

template <class S>
constexpr bool check_network() {
  using M = latent::basic_discrete_bayes_net<S>;
  // Exact EM, mean-field variational EM and random restarts (with two engines).
  static_assert(latent::SufficientStatistics<typename M::stats_type>);
  static_assert(latent::FlatStatistics<typename M::stats_type>);
  static_assert(latent::EMModel<M>);
  static_assert(latent::VariationalEMModel<M, latent::mean_field>);
  static_assert(latent::RandomlyInitializable<M>);
  static_assert(latent::RandomlyInitializable<M, std::minstd_rand>);
  // Only the mean-field family is supported; the data is the grouped record type, not a matrix.
  static_assert(!latent::VariationalEMModel<M, unknown_family>);
  static_assert(!latent::VariationalEMModel<M, int>);
  static_assert(std::is_same_v<typename M::data_type, latent::basic_discrete_bayes_net_data<S>>);
  static_assert(!std::is_convertible_v<Eigen::MatrixXd, typename M::data_type>);
  static_assert(!std::is_convertible_v<Eigen::MatrixXi, typename M::data_type>);
  static_assert(!latent::SufficientStatistics<typename M::params_type>);
  static_assert(!latent::RandomlyInitializable<M, int>);
  // Precision policy: tables in S; E-steps, log-likelihoods and counts in double.
  static_assert(std::is_same_v<typename M::scalar_type, S>);
  static_assert(std::is_same_v<typename decltype(M::params_type::tables)::value_type, latent::matrix_t<S>>);
  static_assert(std::is_same_v<typename decltype(std::declval<typename M::stats_type>().counts)::value_type, Eigen::MatrixXd>);
  static_assert(std::is_same_v<decltype(std::declval<typename M::stats_type>().weight), double>);
  static_assert(std::is_same_v<decltype(std::declval<const M&>().e_step(std::declval<const typename M::data_type&>(), 0,
                                                                        0, std::declval<typename M::stats_type&>())),
                               double>);
  static_assert(std::is_same_v<decltype(std::declval<const M&>().log_likelihood_per_observation(Eigen::MatrixXi())),
                               Eigen::RowVectorXd>);
  static_assert(std::is_same_v<decltype(std::declval<const M&>().bic(std::declval<const typename M::data_type&>())),
                               double>);
  static_assert(std::is_same_v<decltype(std::declval<typename M::data_type>().counts()), const Eigen::VectorXd&>);
  return true;
}
}  // namespace

static_assert(check_network<double>());
static_assert(check_network<float>());

// The first edition's names are the double instantiation.
static_assert(std::is_same_v<latent::discrete_bayes_net, latent::basic_discrete_bayes_net<double>>);
static_assert(std::is_same_v<latent::discrete_bayes_net_data, latent::basic_discrete_bayes_net_data<double>>);
static_assert(std::is_same_v<latent::discrete_bayes_net_stats, latent::basic_discrete_bayes_net_stats<double>>);
static_assert(std::is_same_v<latent::discrete_bayes_net_params, latent::basic_discrete_bayes_net_params<double>>);
static_assert(std::is_same_v<latent::bn_posterior, latent::basic_bn_posterior<double>>);
// float and double networks do not mix their data.
static_assert(!std::is_convertible_v<latent::discrete_bayes_net_data, latent::basic_discrete_bayes_net_data<float>>);

// A solver can own the mean-field state: one per data set, one slice per block.
static_assert(std::is_same_v<decltype(std::declval<const latent::basic_discrete_bayes_net<float>&>().make_variational_state(
                                 std::declval<const latent::basic_discrete_bayes_net_data<float>&>())),
                             latent::bn_mean_field_state<float>>);
static_assert(std::is_copy_constructible_v<latent::bn_mean_field_state<double>> &&
              std::is_nothrow_move_constructible_v<latent::bn_mean_field_state<double>>);
