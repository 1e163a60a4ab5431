#pragma once
/// @file
/// The loop shared by exact EM and variational EM: evaluate, record, check, update.
/// Not part of the API.

#include <latent/core/callbacks.hpp>
#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/executor.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

namespace latent::detail {

/// Options common to both EM solvers (validated once, here).
struct em_loop_options {
  std::size_t max_iterations;
  double tolerance;
  double decrease_tolerance;
  parallel_options parallel;
};

inline void validate_em_loop_options(const em_loop_options& o, std::string_view function) {
  require(o.max_iterations > 0, function, "option 'max_iterations' must be positive, got 0");
  require(std::isfinite(o.tolerance) && o.tolerance >= 0.0, function,
          "option 'tolerance' must be finite and >= 0, got ", o.tolerance);
  require(std::isfinite(o.decrease_tolerance) && o.decrease_tolerance >= 0.0, function,
          "option 'decrease_tolerance' must be finite and >= 0, got ", o.decrease_tolerance);
  require(o.parallel.threads >= 0, function, "option 'threads' must be >= 0, got ",
          o.parallel.threads);
  require(o.parallel.block_size > 0, function, "option 'block_size' must be positive, got ",
          o.parallel.block_size);
}

/// Runs the EM-style loop.
///
/// `evaluate(stats) -> double` resets nothing: it is given fresh statistics and returns the
/// objective of the model's current parameters while filling the statistics. The model's
/// `m_step` then moves the parameters. Iteration i evaluates the parameters after i M-steps;
/// the loop stops *after an evaluation*, so the returned parameters are the evaluated ones.
///
/// Convergence: |objective_i - objective_{i-1}| <= tolerance * scale, with `scale` the total
/// observation weight (the tolerance is on the change of the average objective).
template <class M, class Evaluate, class... Cs>
fit_result<typename M::params_type> run_em_loop(M& model, Evaluate&& evaluate, double scale,
                                                const em_loop_options& opts, Cs&... callbacks) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };

  fit_result<typename M::params_type> result;
  result.params = model.params();
  (notify_begin(callbacks), ...);
  iteration_info info;
  double previous = -std::numeric_limits<double>::infinity();

  for (std::size_t it = 0;; ++it) {
    auto stats = model.zero_stats();
    double value;
    try {
      value = evaluate(stats);
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
    result.params = model.params();  // the last parameters with a finite objective

    const double change = it == 0 ? 0.0 : value - previous;
    // A fall larger than rounding in |objective| (and than the option) is a bug for exact EM.
    const double rounding = 1e3 * std::numeric_limits<double>::epsilon() * (std::abs(value) + scale);
    if (it > 0 && change < -(rounding + opts.decrease_tolerance * scale)) {
      ++result.decreases;
      result.largest_decrease = std::max(result.largest_decrease, -change);
    }
    info = {it, value, change, elapsed()};
    const bool stop = notify_all_iteration(info, callbacks...);
    if (it > 0 && std::abs(change) <= opts.tolerance * scale) {
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
  result.seconds = elapsed();
  info.seconds = result.seconds;
  (notify_end(callbacks, info), ...);
  return result;
}

}  // namespace latent::detail
