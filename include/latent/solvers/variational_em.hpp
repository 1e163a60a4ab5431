#pragma once
/// @file
/// Variational EM: coordinate ascent on F(q, theta) with q restricted to a family.
///
/// The E-step maximizes F over q inside `Family` (for example mean field, by coordinate
/// ascent) and returns the ELBO; the M-step is the model's ordinary closed-form M-step from
/// E_q[T]. F never decreases when the E-step does not lower F for fixed theta (coordinate
/// ascent started from the previous q, or run to convergence); `fit_result::decreases`
/// reports any fall beyond rounding. At a fixed point F <= log p(x; theta): the difference is
/// KL(q || p(z | x)), the approximation gap.

#include <latent/core/callbacks.hpp>
#include <latent/core/concepts.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/executor.hpp>
#include <latent/solvers/detail/em_driver.hpp>
#include <latent/solvers/em.hpp>

#include <random>

namespace latent {

/// Options of `variational_em`: the same as `em_options` (`restarts` needs an engine).
using variational_em_options = em_options;

/// The ELBO of `x` under the model's parameters, q optimized inside `family`, with E_q[T]
/// added into `stats`. Blocks run in parallel and merge in block order.
template <class M, class Family, Executor E = thread_executor>
  requires VariationalEMModel<M, Family> &&
           requires(const M& m, const typename M::data_type& x, typename M::stats_type& s, const Family& f) {
             m.e_step(x, Eigen::Index{}, Eigen::Index{}, s, f);
           }
double variational_e_step(const M& model, const typename M::data_type& x, const Family& family,
                          typename M::stats_type& stats, const E& executor = {}) {
  return executor.reduce(
      static_cast<Eigen::Index>(model.num_observations(x)), [&] { return model.zero_stats(); },
      [&](Eigen::Index b, Eigen::Index e, typename M::stats_type& s) {
        return model.e_step(x, b, e, s, family);
      },
      stats);
}

/// The same for a model with local variational state: `state` (made by
/// `model.make_variational_state(x, family)`) holds q between calls; block [b, e) reads and
/// writes the state of its own observations only.
template <class M, class Family, class State, Executor E = thread_executor>
  requires StatefulVariationalEMModel<M, Family>
double variational_e_step(const M& model, const typename M::data_type& x, const Family& family,
                          State& state, typename M::stats_type& stats, const E& executor = {}) {
  return executor.reduce(
      static_cast<Eigen::Index>(model.num_observations(x)), [&] { return model.zero_stats(); },
      [&](Eigen::Index b, Eigen::Index e, typename M::stats_type& s) {
        return model.e_step(x, b, e, s, family, state);
      },
      stats);
}

namespace detail {
/// One variational EM fit from the model's current parameters; `restart` is what callbacks see.
template <class M, class Family, class E, class... Cs>
fit_result<typename M::params_type> variational_em_single(M& model, const typename M::data_type& x,
                                                          const Family& family, const E& executor,
                                                          const variational_em_options& options,
                                                          std::size_t restart, Cs&... callbacks) {
  const auto loop = loop_options(options);
  validate_em_loop_options(loop, "variational_em");
  require_weights_supported<M>(x, "variational_em");
  if constexpr (requires { model.validate(x); }) model.validate(x);
  const double scale = observation_scale(model, x, executor);
  require_positive_weight(scale, "variational_em");
  if constexpr (StatefulVariationalEMModel<M, Family>) {
    // The solver owns q: made once per fit (per restart), warm-starting every E-step after.
    auto state = model.make_variational_state(x, family);
    return run_em_loop(
        model,
        [&](typename M::stats_type& s) { return variational_e_step(model, x, family, state, s, executor); },
        scale, loop, restart, callbacks...);
  } else {
    return run_em_loop(
        model, [&](typename M::stats_type& s) { return variational_e_step(model, x, family, s, executor); },
        scale, loop, restart, callbacks...);
  }
}
}  // namespace detail

/// Fit `model` by variational EM with q in `family`, from the model's current parameters,
/// the E-step run by `executor`. The trace holds the ELBO per iteration.
template <class M, class Family, Executor E, Callback... Cs>
  requires VariationalEMModel<M, Family>
fit_result<typename M::params_type> variational_em(M& model, const typename M::data_type& x,
                                                   const Family& family, const E& executor,
                                                   const variational_em_options& options = {},
                                                   Cs&&... callbacks) {
  detail::require(options.restarts == 1, "variational_em",
                  "option 'restarts' needs a random engine: call variational_em(model, x, family, rng, "
                  "options); got ", options.restarts);
  return detail::variational_em_single(model, x, family, executor, options, 0, callbacks...);
}

/// Variational EM from `options.restarts` random starts drawn by `model.initialize(x, rng)`,
/// keeping the best final ELBO (a restart that ended in `numerical_issue` never beats one that
/// did not; ties keep the earliest), with the E-step run by `executor`.
template <class M, class Family, std::uniform_random_bit_generator Rng, Executor E, Callback... Cs>
  requires VariationalEMModel<M, Family> && RandomlyInitializable<M, Rng>
fit_result<typename M::params_type> variational_em(M& model, const typename M::data_type& x,
                                                   const Family& family, Rng& rng, const E& executor,
                                                   const variational_em_options& options = {},
                                                   Cs&&... callbacks) {
  detail::require_count(options.restarts, 1, max_restart_count, "variational_em", "restarts");
  return detail::run_restarts(
      model, options.restarts, [&](std::size_t) { detail::initialize_with(executor, model, x, rng); },
      [&](std::size_t r) {
        return detail::variational_em_single(model, x, family, executor, options, r, callbacks...);
      });
}

/// Variational EM with restarts, the E-step on `options.threads` threads.
template <class M, class Family, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires VariationalEMModel<M, Family> && RandomlyInitializable<M, Rng>
fit_result<typename M::params_type> variational_em(M& model, const typename M::data_type& x,
                                                   const Family& family, Rng& rng,
                                                   const variational_em_options& options = {},
                                                   Cs&&... callbacks) {
  return variational_em(model, x, family, rng, detail::default_executor(options), options, callbacks...);
}

/// Fit `model` by variational EM with q in `family`, from the model's current parameters,
/// the E-step on `options.threads` threads in blocks of `options.block_size` columns.
template <class M, class Family, Callback... Cs>
  requires VariationalEMModel<M, Family>
fit_result<typename M::params_type> variational_em(M& model, const typename M::data_type& x,
                                                   const Family& family,
                                                   const variational_em_options& options = {},
                                                   Cs&&... callbacks) {
  return variational_em(model, x, family, detail::default_executor(options), options, callbacks...);
}

}  // namespace latent
