// Compile-time contract tests for the core concepts and the Gaussian mixture.
#include <latent/core/callbacks.hpp>
#include <latent/core/concepts.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>

#include <string>

namespace {

struct not_a_model {};

struct stats_without_scaling {
  stats_without_scaling& operator+=(const stats_without_scaling&) { return *this; }
};

struct callback_with_typo {
  void on_iteraton(const latent::iteration_info&) {}  // misspelt: not a callback
};

struct stopping_callback {
  bool on_iteration(const latent::iteration_info&) { return true; }
};

struct mean_field_like {};

}  // namespace

// Sufficient statistics must be additive *and* scalable.
static_assert(latent::SufficientStatistics<latent::gaussian_mixture_stats>);
static_assert(!latent::SufficientStatistics<stats_without_scaling>);
static_assert(!latent::SufficientStatistics<int*>);

// Models.
static_assert(latent::EMModel<latent::gaussian_mixture>);
static_assert(latent::RandomlyInitializable<latent::gaussian_mixture>);
static_assert(!latent::EMModel<not_a_model>);
static_assert(!latent::EMModel<int>);
// The mixture has no variational E-step: variational EM must reject it.
static_assert(!latent::VariationalEMModel<latent::gaussian_mixture, mean_field_like>);

// Callbacks: a misspelt hook is not silently accepted.
static_assert(latent::Callback<latent::record_trace>);
static_assert(latent::Callback<latent::early_stopping>);
static_assert(latent::Callback<latent::print_progress>);
static_assert(latent::Callback<stopping_callback>);
static_assert(!latent::Callback<callback_with_typo>);
static_assert(!latent::Callback<std::string>);

// The solver accepts the mixture; it is constrained, so a non-model fails with the concept's name.
template <class M>
concept em_callable = requires(M& m, const latent::observations& x) { latent::em(m, x); };
static_assert(em_callable<latent::gaussian_mixture>);
static_assert(!em_callable<not_a_model>);

// Weighted data are an opt-in the solvers check: the shipped models that read weights say so.
#include <latent/models/factor_analysis.hpp>
#include <latent/models/neyman_scott.hpp>
#include <latent/solvers/detail/em_driver.hpp>
static_assert(latent::detail::model_supports_weights<latent::gaussian_mixture>);
static_assert(latent::detail::model_supports_weights<latent::basic_gaussian_mixture<float>>);
static_assert(latent::detail::model_supports_weights<latent::factor_analysis>);
static_assert(latent::detail::model_supports_weights<latent::neyman_scott>);
