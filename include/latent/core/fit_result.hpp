#pragma once
/// @file
/// What every fit returns: the parameters, the objective trace, how and why it stopped.

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// How a fit ended.
enum class fit_status {
  converged,            ///< the objective changed by less than the tolerance
  max_iterations,       ///< the iteration budget ran out first
  stopped_by_callback,  ///< a callback asked to stop
  numerical_issue       ///< a non-finite objective or a failed factorization; see `message`
};

/// A human-readable name for a status.
constexpr std::string_view to_string(fit_status s) {
  switch (s) {
    case fit_status::converged: return "converged";
    case fit_status::max_iterations: return "max_iterations";
    case fit_status::stopped_by_callback: return "stopped_by_callback";
    case fit_status::numerical_issue: return "numerical_issue";
  }
  return "unknown";
}

/// How one restart of a fit ended.
struct restart_summary {
  double objective = -std::numeric_limits<double>::infinity();  ///< its final objective
  fit_status status = fit_status::max_iterations;
  std::size_t iterations = 0;  ///< its M-steps
  double seconds = 0.0;        ///< its wall time
};

/// The result of a fit.
///
/// `trace[i]` is the objective (log-likelihood for EM, ELBO for variational EM) after `i`
/// iterations; `trace[0]` is the starting point, so `trace.size() == iterations + 1` unless the
/// starting point itself failed. `objective == trace.back()` is the objective of the returned
/// `params` (the solver does not take an M-step after its last evaluation).
template <class Params>
struct fit_result {
  Params params{};                  ///< the fitted (or last good) parameters
  std::vector<double> trace;        ///< objective per iteration, starting point first
  std::size_t iterations = 0;       ///< M-steps taken
  fit_status status = fit_status::max_iterations;
  double objective = -std::numeric_limits<double>::infinity();  ///< objective of `params`
  double seconds = 0.0;             ///< wall time of the fit
  /// Iterations whose objective fell by more than rounding. For exact EM this must be 0: a
  /// fall means a bug in the model's E- or M-step (variational EM with an inexact E-step too).
  std::size_t decreases = 0;
  double largest_decrease = 0.0;    ///< the largest such fall (0 if none)
  std::string message;              ///< details when status is numerical_issue
  std::size_t restart = 0;          ///< which restart produced this result (0-based)
  std::vector<double> restart_objectives;  ///< final objective of every restart, in order
  std::vector<restart_summary> restarts;   ///< every restart's objective, status, iterations, time
  double total_seconds = 0.0;       ///< wall time of all restarts (= `seconds` without restarts)
  std::size_t total_iterations = 0; ///< M-steps of all restarts (= `iterations` without restarts)

  /// True if the fit converged.
  bool converged() const { return status == fit_status::converged; }
};

}  // namespace latent
