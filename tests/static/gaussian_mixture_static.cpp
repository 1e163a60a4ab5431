// Compile-time contract checks for the Gaussian mixture, in double and float.
#include <latent/core/concepts.hpp>
#include <latent/core/statistics.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/gaussian_mixture.hpp>

#include <random>
#include <type_traits>

namespace {

using latent::basic_gaussian_mixture;

// The double model keeps its first-edition names.
static_assert(std::is_same_v<latent::gaussian_mixture, basic_gaussian_mixture<double>>);
static_assert(std::is_same_v<latent::gaussian_mixture_params, latent::basic_gaussian_mixture_params<double>>);
static_assert(std::is_same_v<latent::gaussian_mixture_stats, latent::basic_gaussian_mixture_stats<double>>);
static_assert(std::is_same_v<latent::gaussian_mixture::data_type, latent::observations>);

// Both precisions: exact EM, restarts with any engine, flat statistics.
template <class S>
constexpr bool contract_holds() {
  using M = basic_gaussian_mixture<S>;
  static_assert(latent::EMModel<M>);
  static_assert(latent::RandomlyInitializable<M>);
  static_assert(latent::RandomlyInitializable<M, std::minstd_rand>);
  static_assert(latent::SufficientStatistics<typename M::stats_type>);
  static_assert(latent::FlatStatistics<typename M::stats_type>);
  static_assert(std::is_same_v<typename M::scalar_type, S>);
  static_assert(std::is_same_v<typename M::data_type, latent::basic_observations<S>>);
  // Statistics and log-likelihoods accumulate in double for float too.
  static_assert(std::is_same_v<typename M::stats_type::value_type, double>);
  static_assert(std::is_same_v<decltype(std::declval<const M&>().e_step(
                                   std::declval<const typename M::data_type&>(), 0, 0,
                                   std::declval<typename M::stats_type&>())),
                               double>);
  static_assert(std::is_same_v<decltype(std::declval<const M&>().sample(Eigen::Index{1}, std::declval<std::mt19937_64&>())),
                               latent::matrix_t<S>>);
  // Negative: no variational E-step, and the engine must be a random bit generator.
  static_assert(!latent::VariationalEMModel<M, latent::mean_field>);
  static_assert(!latent::RandomlyInitializable<M, int>);
  return true;
}
static_assert(contract_holds<double>());
static_assert(contract_holds<float>());

// A float model does not take double data (no silent conversion of a whole data set).
static_assert(!std::is_convertible_v<const Eigen::MatrixXd&, basic_gaussian_mixture<float>::data_type>);
static_assert(std::is_convertible_v<const Eigen::MatrixXf&, basic_gaussian_mixture<float>::data_type>);

}  // namespace
