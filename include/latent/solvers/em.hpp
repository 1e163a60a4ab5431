#pragma once
/// @file
/// Exact EM: the coordinate ascent on F(q, theta) whose q-step is the exact posterior.
///
/// Each iteration sets q = p(z | x; theta) (E-step, which makes F equal log p(x; theta)) and
/// then theta = argmax_theta E_q[log p(x, z; theta)] (M-step). Hence log p(x; theta) never
/// decreases; the solver checks this and counts any fall larger than rounding in
/// `fit_result::decreases` (a non-zero count means a bug in the model).
///
/// The E-step runs over fixed blocks of columns, in parallel with OpenMP when available, and
/// the block statistics are merged in block order: the result does not depend on the number
/// of threads, bit for bit.

#include <latent/core/callbacks.hpp>
#include <latent/core/concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/executor.hpp>
#include <latent/solvers/detail/em_driver.hpp>

#include <cstddef>
#include <random>
#include <utility>

namespace latent {

/// Options of `em`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `max_iterations` | M-steps at most (an iteration = one M-step and the E-step after it), in [1, 10^9] | 1000 |
/// | `tolerance` | converged when the objective rose by at most this relative amount, \|Δ\| <= tolerance · max(\|objective\|, total weight), and did not fall | 1e-10 |
/// | `parameter_tolerance` | and, for models with `params_distance`, when no parameter moved by more than this (relative); 0 = objective only | 1e-8 |
/// | `restarts` | with an engine: initialize and fit this many times, keep the best; in [1, 10^6] | 1 |
/// | `threads` | E-step threads; 0 = all (OpenMP), ignored without OpenMP | 0 |
/// | `block_size` | columns per E-step block (fixes the summation order), > 0; any larger than N is one block | 1024 |
/// | `decrease_tolerance` | falls below this per unit weight (beyond rounding) are not counted | 0 |
///
/// The objective is log p(x; theta), plus `log_prior()` for models that have one (MAP EM).
/// Near a maximum the objective is flat in the parameters (its change is quadratic in theirs),
/// so a rule on the objective alone stops with parameters accurate to about the square root of
/// the tolerance; the parameter rule is what makes the defaults deliver parameters to ~1e-6.
///
/// The caps (`max_iteration_count`, `max_restart_count` in core/error.hpp) reject counts that
/// are mistakes, such as a negative int converted to std::size_t, with `invalid_argument`.
struct em_options {
  std::size_t max_iterations = 1000;
  double tolerance = 1e-10;
  double parameter_tolerance = 1e-8;
  std::size_t restarts = 1;
  int threads = 0;
  Eigen::Index block_size = 1024;
  double decrease_tolerance = 0.0;
};

namespace detail {
inline em_loop_options loop_options(const em_options& o) {
  return {o.max_iterations, o.tolerance, o.parameter_tolerance, o.decrease_tolerance, {o.threads, o.block_size}};
}
}  // namespace detail

/// The log-likelihood of `x` under the model's current parameters, with its expected
/// sufficient statistics added into `stats`. The executor runs the model's E-step over blocks
/// (by default: OpenMP threads, 1024 columns per block) and merges them in block order.
template <EMModel M, Executor E = thread_executor>
double e_step(const M& model, const typename M::data_type& x, typename M::stats_type& stats,
              const E& executor = {}) {
  return executor.reduce(
      static_cast<Eigen::Index>(model.num_observations(x)), [&] { return model.zero_stats(); },
      [&](Eigen::Index b, Eigen::Index e, typename M::stats_type& s) { return model.e_step(x, b, e, s); },
      stats);
}

namespace detail {
/// The total observation weight of `x` (the scale of the convergence tolerance), combined
/// over the executor's parts: the model's `observation_weight(x)` if it has that hook, else
/// the data's `total_weight()` for a model that reads weights, else the number of observations.
template <class M, class E>
double observation_scale(const M& model, const typename M::data_type& x, const E& executor) {
  if constexpr (requires { model.observation_weight(x); })
    return executor.all_sum(static_cast<double>(model.observation_weight(x)));
  else if constexpr (model_supports_weights<M> && requires { x.total_weight(); })
    return executor.all_sum(static_cast<double>(x.total_weight()));
  else
    return executor.all_sum(static_cast<double>(model.num_observations(x)));
}

/// `model.initialize(x, rng)`, or the executor's `initialize(model, x, rng)` if it has one: a
/// distributed executor, whose ranks each hold a shard of `x`, coordinates the draw so that
/// every rank starts from the same parameters (see `mpi_executor::initialize`).
template <class E, class M, class Rng>
void initialize_with(const E& executor, M& model, const typename M::data_type& x, Rng& rng) {
  if constexpr (requires { executor.initialize(model, x, rng); })
    executor.initialize(model, x, rng);
  else
    model.initialize(x, rng);
}

/// One EM fit from the model's current parameters; `restart` is what callbacks are told.
template <class M, class E, class... Cs>
fit_result<typename M::params_type> em_single(M& model, const typename M::data_type& x, const E& executor,
                                              const em_options& options, std::size_t restart, Cs&... callbacks);

/// The executor `options.threads` and `options.block_size` describe.
template <class Options>
thread_executor default_executor(const Options& options) {
  return {options.threads, options.block_size};
}
}  // namespace detail

/// Fit `model` to `x` by exact EM, starting from the model's current parameters (warm start),
/// with the E-step run by `executor` (`options.threads` and `options.block_size` are then
/// ignored: the executor carries its own).
///
/// @param model      an `EMModel` holding valid starting parameters; on return it holds the
///                   fitted parameters (or, after a numerical issue, the last good ones)
/// @param x          the data (observations are columns)
/// @param executor   an `Executor` (serial, threads, distributed)
/// @param options    see `em_options` (`restarts` needs the overload with an engine)
/// @param callbacks  any number of `Callback`s
/// @return the fitted parameters, log-likelihood trace, status and timing
/// @throws invalid_argument for invalid options or data (the model validates its data; the
///         solver itself refuses data without observations or whose weights are all zero,
///         on a warm start as on a cold one)
template <EMModel M, Executor E, Callback... Cs>
fit_result<typename M::params_type> em(M& model, const typename M::data_type& x, const E& executor,
                                       const em_options& options = {}, Cs&&... callbacks) {
  detail::require(options.restarts == 1, "em",
                  "option 'restarts' needs a random engine: call em(model, x, rng, options); got ",
                  options.restarts);
  return detail::em_single(model, x, executor, options, 0, callbacks...);
}

/// Fit `model` to `x` by exact EM from the model's current parameters, with the E-step on
/// `options.threads` OpenMP threads in blocks of `options.block_size` columns.
template <EMModel M, Callback... Cs>
fit_result<typename M::params_type> em(M& model, const typename M::data_type& x,
                                       const em_options& options = {}, Cs&&... callbacks) {
  return em(model, x, detail::default_executor(options), options, callbacks...);
}

/// Fit by exact EM from `options.restarts` random starts drawn by `model.initialize(x, rng)`,
/// keeping the fit with the highest final objective (ties: the earliest); a restart that ended
/// in `numerical_issue` never beats one that did not. The result lists every restart's final
/// objective, status, iterations and time (`restarts`, `total_seconds`, `total_iterations`);
/// callbacks see each restart begin and end, with `iteration_info::restart` set. The model is
/// left at the best fit.
template <EMModel M, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires RandomlyInitializable<M, Rng>
fit_result<typename M::params_type> em(M& model, const typename M::data_type& x, Rng& rng,
                                       const em_options& options = {}, Cs&&... callbacks) {
  return em(model, x, rng, detail::default_executor(options), options, callbacks...);
}

/// `em` with restarts, the E-step run by `executor`.
template <EMModel M, std::uniform_random_bit_generator Rng, Executor E, Callback... Cs>
  requires RandomlyInitializable<M, Rng>
fit_result<typename M::params_type> em(M& model, const typename M::data_type& x, Rng& rng,
                                       const E& executor, const em_options& options = {},
                                       Cs&&... callbacks) {
  detail::require_count(options.restarts, 1, max_restart_count, "em", "restarts");
  return detail::run_restarts(
      model, options.restarts, [&](std::size_t) { detail::initialize_with(executor, model, x, rng); },
      [&](std::size_t r) { return detail::em_single(model, x, executor, options, r, callbacks...); });
}

namespace detail {
template <class M, class E, class... Cs>
fit_result<typename M::params_type> em_single(M& model, const typename M::data_type& x, const E& executor,
                                              const em_options& options, std::size_t restart, Cs&... callbacks) {
  const auto loop = loop_options(options);
  validate_em_loop_options(loop, "em");
  require_weights_supported<M>(x, "em");
  if constexpr (requires { model.validate(x); }) model.validate(x);
  const double scale = observation_scale(model, x, executor);
  require_positive_weight(scale, "em");
  return run_em_loop(
      model, [&](typename M::stats_type& s) { return latent::e_step(model, x, s, executor); }, scale, loop,
      restart, callbacks...);
}
}  // namespace detail

}  // namespace latent
