#pragma once
/// @file
/// Callbacks observe a fit and may stop it.
///
/// A callback is any object with at least one of the hooks
///   `on_begin()`, `on_iteration(const iteration_info&)`, `on_end(const iteration_info&)`,
///   `on_step(basic_step_info<S>&)` (stochastic solvers: once per optimizer step).
/// `on_iteration` and `on_step` may return something convertible to `bool`; `true` asks the
/// solver to stop (status `stopped_by_callback`). An object with none of the hooks is rejected
/// at compile time by the `Callback` concept, so a misspelt hook is an error, not a silent
/// no-op.
///
/// Iterations are EM iterations (one M-step) for `em` and `variational_em`, and epochs (full
/// passes over the data) for `sgd_elbo`; steps are optimizer updates (one per minibatch).
/// With restarts, `on_begin` and `on_end` are called once per restart, so stateful callbacks
/// (`record_trace`, `early_stopping`) start afresh on each; `iteration_info::restart` says
/// which restart an event belongs to.

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <iomanip>
#include <limits>
#include <span>
#include <ostream>
#include <vector>

namespace latent {

/// What a solver tells callbacks after evaluating the objective.
struct iteration_info {
  std::size_t iteration = 0;  ///< 0 for the starting point, then one per M-step / update
  double objective = 0.0;     ///< log-likelihood, ELBO, or a noisy ELBO estimate
  double change = 0.0;        ///< objective minus the previous one (0 at iteration 0)
  double seconds = 0.0;       ///< wall time since the fit started
  std::size_t restart = 0;    ///< which restart (0-based) the event belongs to
};

/// What a stochastic solver tells `on_step` hooks after computing a minibatch's gradient and
/// before the optimizer's step. The hook may change `params` (e.g. project or checkpoint
/// them) and `gradient` (e.g. clip it, or anneal a KL weight held by the objective); the
/// optimizer then steps with what it finds.
template <Scalar S>
struct basic_step_info {
  std::size_t epoch = 0;            ///< the current epoch (1-based: epoch 0 takes no steps)
  std::size_t step = 0;             ///< steps taken before this one, over the whole fit
  double value = 0.0;               ///< the minibatch's estimate of the full-data bound
  Eigen::Index batch_size = 0;      ///< observations in the minibatch
  Eigen::Ref<vector_t<S>> params;   ///< the parameters the step starts from (mutable)
  /// The estimate's gradient (mutable): all P entries on a dense step; on a sparse step only
  /// the entries at `indices` (every other entry is zero).
  Eigen::Ref<vector_t<S>> gradient;
  std::span<const Eigen::Index> indices{};  ///< empty on a dense step
};
using step_info = basic_step_info<double>;

/// An object with at least one recognised hook.
template <class C>
concept Callback = requires(C& c, const iteration_info& i) { c.on_iteration(i); } ||
                   requires(C& c) { c.on_begin(); } ||
                   requires(C& c, const iteration_info& i) { c.on_end(i); } ||
                   requires(C& c, basic_step_info<double>& i) { c.on_step(i); } ||
                   requires(C& c, basic_step_info<float>& i) { c.on_step(i); };

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

template <class C, class S>
bool notify_step(C& c, basic_step_info<S>& info) {
  if constexpr (requires { { c.on_step(info) } -> std::convertible_to<bool>; })
    return static_cast<bool>(c.on_step(info));
  else if constexpr (requires { c.on_step(info); })
    return (c.on_step(info), false);
  else
    return false;
}

/// Tell every callback of a step; '|' so that each one sees it.
template <class S, class... Cs>
bool notify_all_step(basic_step_info<S>& info, Cs&... cs) {
  return (notify_step(cs, info) | ... | false);
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

/// Records the objective of every iteration (tests use it to check monotonicity). With
/// restarts it holds the last restart's trace (each restart begins afresh).
struct record_trace {
  std::vector<double> values;
  void on_begin() { values.clear(); }
  void on_iteration(const iteration_info& i) { values.push_back(i.objective); }
};

/// Stops when the objective has not improved on its best by more than `min_improvement` for
/// `patience` consecutive iterations.
struct early_stopping {
  std::size_t patience = 5;
  double min_improvement = 0.0;
  double best = -std::numeric_limits<double>::infinity();
  std::size_t stale = 0;
  /// A new fit (or restart) starts with no best value.
  void on_begin() {
    best = -std::numeric_limits<double>::infinity();
    stale = 0;
  }
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
