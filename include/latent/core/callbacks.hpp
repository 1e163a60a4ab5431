#pragma once
/// @file
/// Callbacks observe a fit and may stop it.
///
/// A callback is any object with at least one of the hooks
///   `on_begin()`, `on_iteration(const iteration_info&)`, `on_end(const iteration_info&)`.
/// `on_iteration` may return something convertible to `bool`; `true` asks the solver to stop
/// (status `stopped_by_callback`). An object with none of the hooks is rejected at compile
/// time by the `Callback` concept, so a misspelt hook is an error, not a silent no-op.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <iomanip>
#include <limits>
#include <ostream>
#include <vector>

namespace latent {

/// What a solver tells callbacks after evaluating the objective.
struct iteration_info {
  std::size_t iteration = 0;  ///< 0 for the starting point, then one per M-step / update
  double objective = 0.0;     ///< log-likelihood, ELBO, or a noisy ELBO estimate
  double change = 0.0;        ///< objective minus the previous one (0 at iteration 0)
  double seconds = 0.0;       ///< wall time since the fit started
};

/// An object with at least one recognised hook.
template <class C>
concept Callback = requires(C& c, const iteration_info& i) { c.on_iteration(i); } ||
                   requires(C& c) { c.on_begin(); } ||
                   requires(C& c, const iteration_info& i) { c.on_end(i); };

namespace detail {

template <class C>
void notify_begin(C& c) {
  if constexpr (requires { c.on_begin(); }) c.on_begin();
}

template <class C>
bool notify_iteration(C& c, const iteration_info& info) {
  if constexpr (requires { { c.on_iteration(info) } -> std::convertible_to<bool>; })
    return static_cast<bool>(c.on_iteration(info));
  else if constexpr (requires { c.on_iteration(info); })
    return (c.on_iteration(info), false);
  else
    return false;
}

template <class C>
void notify_end(C& c, const iteration_info& info) {
  if constexpr (requires { c.on_end(info); }) c.on_end(info);
}

/// Tell every callback; '|' rather than '||' so that each one sees each event.
template <class... Cs>
bool notify_all_iteration(const iteration_info& info, Cs&... cs) {
  return (notify_iteration(cs, info) | ... | false);
}

}  // namespace detail

/// Prints "iteration  objective  change" every `every` iterations to a stream.
struct print_progress {
  std::ostream* out;
  std::size_t every = 1;
  explicit print_progress(std::ostream& os, std::size_t every_n = 1) : out(&os), every(every_n) {}
  void on_iteration(const iteration_info& i) const {
    if (every != 0 && i.iteration % every == 0)
      *out << std::setw(6) << i.iteration << "  " << std::setprecision(12) << std::setw(20)
           << i.objective << "  " << std::setprecision(3) << std::setw(10) << i.change << '\n';
  }
};

/// Records the objective of every iteration (tests use it to check monotonicity).
struct record_trace {
  std::vector<double> values;
  void on_iteration(const iteration_info& i) { values.push_back(i.objective); }
};

/// Stops when the objective has not improved on its best by more than `min_improvement` for
/// `patience` consecutive iterations.
struct early_stopping {
  std::size_t patience = 5;
  double min_improvement = 0.0;
  double best = -std::numeric_limits<double>::infinity();
  std::size_t stale = 0;
  bool on_iteration(const iteration_info& i) {
    if (i.objective > best + min_improvement) {
      best = i.objective;
      stale = 0;
      return false;
    }
    return ++stale >= patience;
  }
};

}  // namespace latent
