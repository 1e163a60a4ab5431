// Compile-time contract checks for the Neyman–Scott model, in both precisions.
#include <latent/core/concepts.hpp>
#include <latent/core/statistics.hpp>
#include <latent/models/neyman_scott.hpp>

#include <random>
#include <type_traits>

namespace {
// A variational family the model does not know: it has no e_step taking one.
struct some_family {};

// The vocabulary of issue #9 part 6 (a likelihood model's names).
template <class M>
concept ns_vocabulary = requires(const M& m, const typename M::data_type& x, std::minstd_rand& rng,
                                 const typename M::params_type& p) {
  { m.log_likelihood(x) } -> std::same_as<double>;
  { m.log_likelihood_per_observation(x) } -> std::same_as<Eigen::RowVectorXd>;
  { m.sample(3, rng) } -> std::same_as<latent::matrix_t<typename M::scalar_type>>;
  { m.sample_joint(3, rng) } -> std::same_as<latent::basic_neyman_scott_sample<typename M::scalar_type>>;
  { m.num_free_parameters() } -> std::convertible_to<Eigen::Index>;
  { m.bic(x) } -> std::same_as<double>;
  { m.aic(x) } -> std::same_as<double>;
  { m.params_distance(p, p) } -> std::same_as<double>;
};
}  // namespace

// The double aliases are the templates' double instantiations.
static_assert(std::is_same_v<latent::neyman_scott, latent::basic_neyman_scott<double>>);
static_assert(std::is_same_v<latent::neyman_scott_params, latent::basic_neyman_scott_params<double>>);
static_assert(std::is_same_v<latent::neyman_scott_stats, latent::basic_neyman_scott_stats<double>>);
static_assert(std::is_same_v<latent::neyman_scott::data_type, latent::observations>);

// Positive: exact EM accepts it, its statistics are additive, scalable and flat.
static_assert(latent::EMModel<latent::neyman_scott>);
static_assert(latent::EMModel<latent::basic_neyman_scott<float>>);
static_assert(latent::ParametricModel<latent::neyman_scott>);
static_assert(latent::SufficientStatistics<latent::neyman_scott_stats>);
static_assert(latent::FlatStatistics<latent::neyman_scott_stats>);
static_assert(latent::FlatStatistics<latent::basic_neyman_scott_stats<float>>);
static_assert(std::is_aggregate_v<latent::neyman_scott_params>);
static_assert(std::is_aggregate_v<latent::basic_neyman_scott_params<float>>);
static_assert(ns_vocabulary<latent::neyman_scott>);
static_assert(ns_vocabulary<latent::basic_neyman_scott<float>>);
// Float models compute in float, accumulate in double.
static_assert(std::is_same_v<latent::basic_neyman_scott<float>::data_type, latent::basic_observations<float>>);
static_assert(std::is_same_v<latent::basic_neyman_scott_stats<float>::value_type, double>);
static_assert(std::is_same_v<decltype(latent::basic_neyman_scott_params<float>{}.theta), float>);

// Negative: its E-step is exact only, so it is not a variational EM model for any family; it
// offers no random initialization (the estimated-prior likelihood is unimodal: no restarts),
// with any engine; and a scalar is not a model at all.
static_assert(!latent::VariationalEMModel<latent::neyman_scott, some_family>);
static_assert(!latent::VariationalEMModel<latent::basic_neyman_scott<float>, some_family>);
static_assert(!latent::RandomlyInitializable<latent::neyman_scott>);
static_assert(!latent::RandomlyInitializable<latent::neyman_scott, std::minstd_rand>);
static_assert(!latent::RandomlyInitializable<latent::basic_neyman_scott<float>, std::minstd_rand>);
static_assert(!latent::EMModel<int>);
static_assert(!latent::SufficientStatistics<latent::neyman_scott_params>);
static_assert(!latent::FlatStatistics<latent::neyman_scott_params>);
