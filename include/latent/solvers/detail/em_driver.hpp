#pragma once
/// @file
/// The loop shared by exact EM and variational EM: evaluate, record, check, update.
/// Not part of the API.

#include <latent/core/callbacks.hpp>
#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/scalar.hpp>
#include <latent/core/executor.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace latent::detail {

/// Options common to both EM solvers (validated once, here).
struct em_loop_options {
  std::size_t max_iterations;
  double tolerance;
  double parameter_tolerance;
  double decrease_tolerance;
  parallel_options parallel;
};

inline void validate_em_loop_options(const em_loop_options& o, std::string_view function) {
  require_count(o.max_iterations, 1, max_iteration_count, function, "max_iterations");
  require(std::isfinite(o.tolerance) && o.tolerance >= 0.0, function,
          "option 'tolerance' must be finite and >= 0, got ", o.tolerance);
  require(std::isfinite(o.parameter_tolerance) && o.parameter_tolerance >= 0.0, function,
          "option 'parameter_tolerance' must be finite and >= 0, got ", o.parameter_tolerance);
  require(std::isfinite(o.decrease_tolerance) && o.decrease_tolerance >= 0.0, function,
          "option 'decrease_tolerance' must be finite and >= 0, got ", o.decrease_tolerance);
  require(o.parallel.threads >= 0, function, "option 'threads' must be >= 0, got ",
          o.parallel.threads);
  require(o.parallel.block_size > 0, function, "option 'block_size' must be positive, got ",
          o.parallel.block_size);
}

/// Data to fit must carry weight: `scale` is their total observation weight (N if unweighted),
/// combined over the executor's parts. No observations, or weights that are all zero, leave
/// nothing to fit (the M-step would divide by zero): the same `invalid_argument` on a warm
/// start as a model's `initialize` gives on a cold one.
inline void require_positive_weight(double scale, std::string_view function) {
  require(scale > 0.0 && std::isfinite(scale), function,
          "argument 'x' must carry a positive, finite total weight, got ", scale,
          " (no observations, or observation weights that are all zero)");
}

/// The model's log prior density of its current parameters, if it has the optional hook
/// `log_prior()` (MAP EM: e.g. Dirichlet pseudo-counts), else 0. The EM objective the solvers
/// trace, test for decreases and return is log p(x; theta) + log p(theta).
template <class M>
double model_log_prior(const M& model) {
  if constexpr (requires { { model.log_prior() } -> std::convertible_to<double>; })
    return static_cast<double>(model.log_prior());
  else
    return 0.0;
}

/// Whether a model declares that its E-step reads observation weights
/// (`static constexpr bool supports_weights = true;`).
template <class M>
inline constexpr bool model_supports_weights = [] {
  if constexpr (requires { { M::supports_weights } -> std::convertible_to<bool>; }) return bool(M::supports_weights);
  else return false;
}();

/// Weighted data are an opt-in: a model that does not declare `supports_weights` would
/// silently fit them unweighted, so the solver refuses them.
template <class M, class Data>
void require_weights_supported(const Data& x, std::string_view function) {
  if constexpr (!model_supports_weights<M> && requires { { x.weighted() } -> std::convertible_to<bool>; })
    require(!x.weighted(), function,
            "argument 'x' carries observation weights, but the model does not declare that its E-step "
            "reads them (static constexpr bool supports_weights = true); it would fit them unweighted");
}

/// Whether the model measures how far its parameters moved (optional hook
/// `params_distance(a, b)`: the largest relative change of any parameter).
template <class M>
concept has_params_distance = requires(const M& m, const typename M::params_type& p) {
  { m.params_distance(p, p) } -> std::convertible_to<double>;
};

/// Relative rounding of an objective computed in scalar S and accumulated in double: the
/// double sums' own (1e3 eps of double), plus, for a scalar coarser than double, the bias of
/// per-observation terms computed in S (a few eps of S each, moving with the parameters),
/// with a margin: 64 eps of S.
template <class S>
constexpr double relative_rounding() {
  constexpr double sums = 1e3 * std::numeric_limits<double>::epsilon();
  if constexpr (sizeof(S) < sizeof(double)) return sums + 64.0 * static_cast<double>(std::numeric_limits<S>::epsilon());
  else return sums;
}

/// Runs the EM-style loop.
///
/// `evaluate(stats) -> double` resets nothing: it is given fresh statistics and returns the
/// objective of the model's current parameters while filling the statistics (the model's
/// `log_prior()`, when it has one, is added here). The model's `m_step` then moves the
/// parameters. Iteration i evaluates the parameters after i M-steps; the loop stops *after an
/// evaluation*, so the returned parameters are the evaluated ones.
///
/// Convergence at iteration i >= 1 needs all of:
///  - no fall: objective_i - objective_{i-1} >= -rounding (a fall never counts as convergence);
///  - a small relative change: |objective_i - objective_{i-1}| <= tolerance * max(|objective_i|,
///    scale), with `scale` the total observation weight;
///  - if `parameter_tolerance > 0` and the model has `params_distance`: the parameters moved by
///    at most `parameter_tolerance` (largest relative change) in the last M-step.
/// For a model computing in float, "rounding" covers float's per-observation rounding
/// (`relative_rounding`), and positive tolerances are at least the epsilon of S: finer changes
/// are rounding noise.
template <class M, class Evaluate, class... Cs>
fit_result<typename M::params_type> run_em_loop(M& model, Evaluate&& evaluate, double scale,
                                                const em_loop_options& opts, std::size_t restart,
                                                Cs&... callbacks) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };

  fit_result<typename M::params_type> result;
  result.params = model.params();
  (notify_begin(callbacks), ...);
  iteration_info info;
  double previous = -std::numeric_limits<double>::infinity();
  using S = scalar_of_t<M>;
  constexpr double noise_floor = static_cast<double>(std::numeric_limits<S>::epsilon());
  const double tolerance = opts.tolerance > 0.0 ? std::max(opts.tolerance, noise_floor) : 0.0;
  const double parameter_tolerance = opts.parameter_tolerance > 0.0 ? std::max(opts.parameter_tolerance, noise_floor) : 0.0;

  for (std::size_t it = 0;; ++it) {
    auto stats = model.zero_stats();
    double value;
    try {
      value = evaluate(stats) + model_log_prior(model);
    } catch (const numerical_error& e) {
      result.status = fit_status::numerical_issue;
      result.message = concat("evaluation at iteration ", it, " failed: ", e.what());
      break;
    }
    if (!std::isfinite(value)) {
      result.status = fit_status::numerical_issue;
      result.message = concat("objective at iteration ", it, " is ", value);
      break;
    }
    result.trace.push_back(value);
    result.iterations = it;
    result.objective = value;
    // How far the last M-step moved the parameters (only when the criterion is in use).
    double moved = 0.0;
    if constexpr (has_params_distance<M>)
      if (it > 0 && parameter_tolerance > 0.0)
        moved = static_cast<double>(model.params_distance(result.params, model.params()));
    result.params = model.params();  // the last parameters with a finite objective

    const double change = it == 0 ? 0.0 : value - previous;
    // A fall larger than rounding in |objective| (and than the option) is a bug for exact EM.
    const double rounding = relative_rounding<S>() * (std::abs(value) + scale);
    if (it > 0 && change < -(rounding + opts.decrease_tolerance * scale)) {
      ++result.decreases;
      result.largest_decrease = std::max(result.largest_decrease, -change);
    }
    info = {it, value, change, elapsed(), restart};
    const bool stop = notify_all_iteration(info, callbacks...);
    const bool flat = change >= -rounding && std::abs(change) <= tolerance * std::max(std::abs(value), scale);
    if (it > 0 && flat && moved <= parameter_tolerance) {
      result.status = fit_status::converged;
      break;
    }
    if (stop) {
      result.status = fit_status::stopped_by_callback;
      break;
    }
    if (it == opts.max_iterations) {
      result.status = fit_status::max_iterations;
      break;
    }
    previous = value;
    try {
      model.m_step(stats);
    } catch (const numerical_error& e) {
      result.status = fit_status::numerical_issue;
      result.message = concat("M-step at iteration ", it + 1, " failed: ", e.what());
      break;
    }
  }
  if (result.status == fit_status::numerical_issue && !result.trace.empty())
    model.set_params(result.params);  // restore the last good parameters
  result.seconds = result.total_seconds = elapsed();
  result.total_iterations = result.iterations;
  info.seconds = result.seconds;
  (notify_end(callbacks, info), ...);
  return result;
}

/// Whether fit `a` beats fit `b` in a competition of restarts: a fit that ended in a numerical
/// issue never beats one that did not (its objective may be inflated by a collapsing
/// component); otherwise the higher final objective wins, and ties keep the earlier (b).
template <class Params>
bool better_restart(const fit_result<Params>& a, const fit_result<Params>& b) {
  const bool a_ok = a.status != fit_status::numerical_issue, b_ok = b.status != fit_status::numerical_issue;
  if (a_ok != b_ok) return a_ok;
  return a.objective > b.objective;
}

/// Runs `fit_one(restart) -> fit_result` after `initialize(restart)` for every restart, keeps
/// the best (`better_restart`), leaves the model at it, and fills the per-restart summaries.
/// A start that cannot be formed (initialize throws numerical_error) is a failed restart.
template <class M, class Initialize, class FitOne>
fit_result<typename M::params_type> run_restarts(M& model, std::size_t restarts, Initialize&& initialize,
                                                 FitOne&& fit_one) {
  fit_result<typename M::params_type> best;
  std::vector<restart_summary> summaries;
  double total_seconds = 0.0;
  std::size_t total_iterations = 0;
  for (std::size_t r = 0; r < restarts; ++r) {
    fit_result<typename M::params_type> fit;
    const auto start = std::chrono::steady_clock::now();
    try {
      initialize(r);
      fit = fit_one(r);
    } catch (const numerical_error& e) {
      fit = {};
      fit.params = model.params();
      fit.status = fit_status::numerical_issue;
      fit.message = concat("initialization of restart ", r, " failed: ", e.what());
      fit.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    summaries.push_back({fit.objective, fit.status, fit.iterations, fit.seconds});
    total_seconds += fit.seconds;
    total_iterations += fit.iterations;
    if (r == 0 || better_restart(fit, best)) {
      best = std::move(fit);
      best.restart = r;
    }
  }
  // Only parameters that were evaluated to a finite objective are set back into the model:
  // a restart that failed (at its start, or at its first evaluation) never passes its
  // parameters on. Since a failure never beats a success (better_restart), the best restart
  // has a finite trace whenever any restart had one. If none had, nothing is set and the
  // result reports the parameters the model holds (as the last restart left them: its start,
  // or for a start that could not be formed, what the model kept), so that the two agree.
  if (!best.trace.empty()) model.set_params(best.params);
  else best.params = model.params();
  best.restart_objectives.clear();
  for (const auto& s : summaries) best.restart_objectives.push_back(s.objective);
  best.restarts = std::move(summaries);
  best.total_seconds = total_seconds;
  best.total_iterations = total_iterations;
  return best;
}

}  // namespace latent::detail
