#pragma once
/// @file
/// SGD on the ELBO: stochastic gradient ascent on a reparameterized Monte Carlo estimate of
/// F(theta, phi), moving the generative parameters theta and the variational parameters phi
/// together (the third solver of the design; nothing here is guaranteed to increase: it is a
/// noisy ascent).
///
/// Each epoch shuffles the column indices with the caller's engine, cuts them into minibatches
/// of `batch_size` (the last one may be smaller), and for each minibatch asks the objective for
/// an unbiased estimate of the full-data ELBO and its gradient (see `ElboObjective` for the
/// N/|B| scaling) and takes one step of the caller's optimizer (any `Optimizer`: `adam` by
/// default, `sgd`, or a user's type; objectives with local variational parameters and a
/// `SparseOptimizer` take O(|B|) steps, see below). The
/// epoch's ELBO estimate is the batch-size-weighted mean of its minibatch estimates, i.e. a sum
/// over every observation of its own one-draw estimate, each taken at the parameters current
/// when its minibatch was visited (so it lags the end-of-epoch parameters by half an epoch).

#include <latent/core/callbacks.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/scalar.hpp>
#include <latent/optim/adam.hpp>
#include <latent/optim/optimizer.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace latent {

/// Options of `sgd_elbo`. An epoch is one pass over the N observations; a step is one
/// optimizer update (one minibatch), so an epoch has ceil(N / batch_size) steps.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `max_epochs` | epochs at most, in [1, 10^9] | 100 |
/// | `batch_size` | observations per minibatch, in [1, N] | 128 |
/// | `num_samples` | reparameterized draws of eps per observation, in [1, 10^6] | 1 |
/// | `shuffle` | reshuffle the columns every epoch with the caller's engine | true |
/// | `adam` | hyper-parameters of the default optimizer, Adam (when no optimizer is passed) | {1e-3, 0.9, 0.999, 1e-8, 0, 0.5} |
/// | `patience` | stop (status `converged`) after this many epochs without an improvement of the monitored ELBO (the held-out ELBO if given, else the epoch estimate) by more than `min_improvement`; 0 = never; at most 10^9 | 0 |
/// | `min_improvement` | the improvement `patience` requires (>= 0) | 0 |
/// | `held_out_samples` | draws per held-out observation when the held-out objective has no exact `elbo`, in [1, 10^6] | 16 |
/// | `restore_best` | with a held-out objective, return the parameters of the epoch with the best held-out ELBO | true |
/// | `sparse_updates` | when the objective has sparse gradients (`ElboSparseObjective`) and the optimizer sparse steps (`SparseOptimizer`), take O(\|B\|) steps; for SGD the result is the same, for Adam it is lazy Adam | true |
///
/// Counts above their caps (`max_iteration_count`, `max_sample_count` in core/error.hpp), such
/// as a negative int converted to std::size_t, are rejected with `invalid_argument`.
///
/// The first edition's `optimizer` enum and `sgd` member are gone: pass the optimizer itself,
/// `sgd_elbo(objective, params0, rng, latent::sgd({.step_size = ...}), options)`, so that only
/// the optimizer used is compiled.
struct sgd_elbo_options {
  std::size_t max_epochs = 100;
  std::size_t batch_size = 128;
  std::size_t num_samples = 1;
  bool shuffle = true;
  adam_options adam{};
  std::size_t patience = 0;
  double min_improvement = 0.0;
  std::size_t held_out_samples = 16;
  bool restore_best = true;
  bool sparse_updates = true;
};

/// What `sgd_elbo` returns: a `fit_result` over the flat parameter vector, plus the held-out
/// trace and counts.
///
/// `trace[0]` estimates the ELBO at the starting point (one pass over the data without steps),
/// `trace[e]` is epoch e's estimate; `iterations` counts epochs. `objective` is the trace entry
/// of the returned `params` (the best held-out epoch when `restore_best` applied, else the
/// last). `decreases` is not meaningful for a noisy ascent and stays 0.
template <Scalar S>
struct basic_sgd_elbo_result : fit_result<vector_t<S>> {
  std::vector<double> held_out_trace;  ///< held-out ELBO per epoch (empty without a held-out objective)
  std::size_t steps = 0;               ///< optimizer steps taken
  std::size_t best_epoch = 0;          ///< epoch of the returned parameters
};
using sgd_elbo_result = basic_sgd_elbo_result<double>;

namespace detail {

inline void validate_sgd_elbo_options(const sgd_elbo_options& o, Eigen::Index n) {
  constexpr std::string_view f = "sgd_elbo";
  require_count(o.max_epochs, 1, max_iteration_count, f, "max_epochs");
  // Compared as unsigned counts: a batch size of -1 converted to std::size_t is not "<= N".
  require(n > 0, f, "the objective must have observations, got N = ", n);
  require_count(o.batch_size, 1, static_cast<std::size_t>(n), f, "batch_size");
  require_count(o.num_samples, 1, max_sample_count, f, "num_samples");
  require_count(o.held_out_samples, 1, max_sample_count, f, "held_out_samples");
  require_count(o.patience, 0, max_iteration_count, f, "patience");
  require(std::isfinite(o.min_improvement) && o.min_improvement >= 0.0, f,
          "option 'min_improvement' must be finite and >= 0, got ", o.min_improvement);
}

/// The held-out ELBO: exact if the objective offers `elbo(params)`, else a Monte Carlo estimate
/// over all its columns (minibatches of at most `batch`, `samples` draws each), through the
/// value-only path when the objective has one.
template <class H, class Rng>
double held_out_elbo(H& h, const objective_vector_t<H>& params, std::size_t batch, std::size_t samples,
                     Rng& rng) {
  if constexpr (ExactElboObjective<H, Rng>) {
    return static_cast<double>(h.elbo(params));
  } else {
    const Eigen::Index n = static_cast<Eigen::Index>(h.num_observations());
    std::vector<Eigen::Index> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), Eigen::Index{0});
    const std::size_t b = std::min<std::size_t>(batch, idx.size());
    double total = 0.0;
    for (std::size_t start = 0; start < idx.size(); start += b) {
      const std::size_t len = std::min(b, idx.size() - start);
      const double v = estimate_value(h, params, minibatch(idx.data() + start, len), samples, rng);
      total += v * static_cast<double>(len) / static_cast<double>(n);
    }
    return total;
  }
}

/// The objective's sparse gradient type, or an empty placeholder for objectives without one.
template <class F>
struct sparse_gradient_type {
  struct type {};
};
template <class F>
  requires requires { typename F::sparse_gradient; }
struct sparse_gradient_type<F> {
  using type = typename F::sparse_gradient;
};
template <class F>
using sparse_gradient_of = typename sparse_gradient_type<F>::type;

/// Not part of the API: no held-out objective.
struct no_held_out {};

template <class F, class H, class Opt, class Rng, class... Cs>
basic_sgd_elbo_result<objective_scalar_t<F>> run_sgd_elbo(F& objective, H* held_out,
                                                          const objective_vector_t<F>& params0, Rng& rng,
                                                          const sgd_elbo_options& opts, Opt& optimizer,
                                                          Cs&... callbacks) {
  using S = objective_scalar_t<F>;
  using vector = vector_t<S>;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
  constexpr bool has_held_out = !std::same_as<H, no_held_out>;

  const Eigen::Index n = static_cast<Eigen::Index>(objective.num_observations());
  const Eigen::Index p = static_cast<Eigen::Index>(objective.num_parameters());
  const std::size_t batch = opts.batch_size;
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index{0});

  basic_sgd_elbo_result<S> result;
  vector params = params0;
  vector grad(p);
  optimizer.reset(p);
  bool stop_requested = false;

  // The sparse path: the objective's sparse gradient, the global and local entries gathered
  // into one index list, and the optimizer's O(|indices|) step.
  constexpr bool can_sparse = ElboSparseObjective<F, Rng> && SparseOptimizer<Opt, S>;
  const bool sparse = can_sparse && opts.sparse_updates;
  struct sparse_buffers {
    std::vector<Eigen::Index> indices;
    vector values;
  };
  [[maybe_unused]] sparse_buffers sb;
  [[maybe_unused]] sparse_gradient_of<F> sg{};  // reused across steps: no allocation after the first
  const auto sparse_step = [&](const minibatch& mb) -> double {
    if constexpr (can_sparse) {
      const double v = static_cast<double>(objective.value_and_sparse_gradient(params, mb, opts.num_samples, sg, rng));
      const Eigen::Index g = sg.global.size(), l = static_cast<Eigen::Index>(sg.indices.size());
      sb.indices.resize(static_cast<std::size_t>(g + l));
      sb.values.resize(g + l);
      for (Eigen::Index i = 0; i < g; ++i) sb.indices[static_cast<std::size_t>(i)] = i;
      std::copy(sg.indices.begin(), sg.indices.end(), sb.indices.begin() + g);
      sb.values.head(g) = sg.global;
      sb.values.tail(l) = sg.values;
      return v;
    } else {
      (void)mb;
      return 0.0;
    }
  };

  // One pass over the data in the current order: the weighted mean of minibatch estimates.
  // With `update`, each minibatch's gradient goes to the step hooks and then to the optimizer;
  // without, only the value is estimated (the objective's value-only path when it has one).
  // Returns false (and fills the message) on a non-finite estimate, gradient or parameters,
  // or a numerical_error from the objective.
  double pass_value = 0.0;
  const auto pass = [&](bool update, std::size_t epoch) -> bool {
    pass_value = 0.0;
    for (std::size_t b0 = 0; b0 < order.size() && !stop_requested; b0 += batch) {
      const std::size_t len = std::min(batch, order.size() - b0);
      const minibatch mb(order.data() + b0, len);
      double v;
      try {
        if (!update) v = estimate_value(objective, params, mb, opts.num_samples, rng);
        else if (sparse) v = sparse_step(mb);
        else v = static_cast<double>(objective.value_and_gradient(params, mb, opts.num_samples, grad, rng));
      } catch (const numerical_error& e) {
        result.message = concat("epoch ", epoch, ", step ", result.steps, ": ", e.what());
        return false;
      }
      const bool grad_ok = !update || (sparse ? sb.values.allFinite() : grad.allFinite());
      if (!std::isfinite(v) || !grad_ok) {
        result.message = concat("epoch ", epoch, ", step ", result.steps, ": ELBO estimate ", v,
                                grad_ok ? "" : " with a non-finite gradient");
        return false;
      }
      pass_value += v * static_cast<double>(len) / static_cast<double>(n);
      if (update) {
        if constexpr (sizeof...(Cs) > 0) {
          basic_step_info<S> si{epoch, result.steps, v, static_cast<Eigen::Index>(len), params,
                                sparse ? Eigen::Ref<vector>(sb.values) : Eigen::Ref<vector>(grad),
                                sparse ? std::span<const Eigen::Index>(sb.indices) : std::span<const Eigen::Index>()};
          stop_requested = notify_all_step(si, callbacks...);
        }
        if constexpr (can_sparse) {
          if (sparse) optimizer.step_sparse(params, sb.indices, sb.values);
          else optimizer.step(params, grad);
        } else {
          optimizer.step(params, grad);
        }
        ++result.steps;
        // A step that leaves non-finite parameters (a huge step size) ends the fit; the last
        // good parameters are those at the end of the previous epoch.
        if (!params.allFinite()) {
          result.message = concat("epoch ", epoch, ", step ", result.steps, ": the optimizer's step left non-finite parameters");
          return false;
        }
      }
    }
    return true;
  };

  (notify_begin(callbacks), ...);
  iteration_info info;
  vector last_good = params, best_params = params;
  double best_monitored = -std::numeric_limits<double>::infinity();
  double reference = best_monitored;
  std::size_t stale = 0;
  double previous = 0.0;

  for (std::size_t epoch = 0;; ++epoch) {
    if (epoch > 0 && opts.shuffle) std::shuffle(order.begin(), order.end(), rng);
    if (!pass(/*update=*/epoch > 0, epoch)) {
      result.status = fit_status::numerical_issue;
      params = last_good;
      break;
    }
    double monitored = pass_value;
    if constexpr (has_held_out) {
      double h;
      try {
        h = held_out_elbo(*held_out, params, batch, opts.held_out_samples, rng);
      } catch (const numerical_error& e) {
        h = std::numeric_limits<double>::quiet_NaN();
        result.message = concat("held-out ELBO at epoch ", epoch, ": ", e.what());
      }
      if (!std::isfinite(h)) {
        if (result.message.empty()) result.message = concat("held-out ELBO at epoch ", epoch, " is ", h);
        result.status = fit_status::numerical_issue;
        params = last_good;
        break;
      }
      result.held_out_trace.push_back(h);
      monitored = h;
    }
    result.trace.push_back(pass_value);
    result.iterations = epoch;
    last_good = params;

    // `reference` moves only on an improvement larger than min_improvement (patience counts
    // epochs since then); `best` is the plain maximum, whose parameters restore_best returns.
    if (epoch == 0 || monitored > reference + opts.min_improvement) {
      reference = monitored;
      stale = 0;
    } else {
      ++stale;
    }
    if (epoch == 0 || monitored > best_monitored) {
      best_monitored = monitored;
      best_params = params;
      result.best_epoch = epoch;
    }
    info = {epoch, pass_value, epoch == 0 ? 0.0 : pass_value - previous, elapsed()};
    previous = pass_value;
    const bool stop = notify_all_iteration(info, callbacks...) || stop_requested;
    if (opts.patience > 0 && stale >= opts.patience) {
      result.status = fit_status::converged;
      break;
    }
    if (stop) {
      result.status = fit_status::stopped_by_callback;
      break;
    }
    if (epoch == opts.max_epochs) {
      result.status = fit_status::max_iterations;
      break;
    }
  }

  if (has_held_out && opts.restore_best && !result.trace.empty()) {
    result.params = best_params;
  } else {
    result.params = params;  // the last parameters with a finite estimate
    result.best_epoch = result.trace.empty() ? 0 : result.trace.size() - 1;
  }
  result.objective = result.trace.empty() ? -std::numeric_limits<double>::infinity()
                                          : result.trace[result.best_epoch];
  result.seconds = elapsed();
  info.seconds = result.seconds;
  (notify_end(callbacks, info), ...);
  return result;
}

/// Checks the arguments and runs the loop with a fresh copy of `optimizer`.
template <class F, class H, class Opt, class Rng, class... Cs>
basic_sgd_elbo_result<objective_scalar_t<F>> checked_sgd_elbo(F& objective, H* held_out,
                                                              const objective_vector_t<F>& params0, Rng& rng,
                                                              const Opt& optimizer, const sgd_elbo_options& options,
                                                              Cs&... callbacks) {
  const Eigen::Index n = static_cast<Eigen::Index>(objective.num_observations());
  validate_sgd_elbo_options(options, n);
  require(params0.size() == static_cast<Eigen::Index>(objective.num_parameters()), "sgd_elbo",
          "argument 'params0' must have num_parameters() = ", objective.num_parameters(),
          " entries, got ", params0.size());
  require_finite(params0, "sgd_elbo", "params0");
  Opt opt = optimizer;  // the per-run state lives in this copy: the caller's object is reusable
  return run_sgd_elbo(objective, held_out, params0, rng, options, opt, callbacks...);
}

template <class F, class H>
void require_same_layout(const F& objective, const H& held_out) {
  require(static_cast<Eigen::Index>(held_out.num_parameters()) == static_cast<Eigen::Index>(objective.num_parameters()),
          "sgd_elbo", "argument 'held_out' must have num_parameters() = ", objective.num_parameters(), ", got ",
          held_out.num_parameters());
}

}  // namespace detail

/// Maximize the ELBO of `objective` by stochastic gradient ascent from `params0` with the
/// caller's optimizer.
///
/// @param objective  an `ElboObjective` (observations are its columns)
/// @param params0    starting flat parameter vector (length `num_parameters()`, finite), of the
///                   objective's scalar type
/// @param rng        the caller's engine: shuffling and every reparameterized draw
/// @param optimizer  any `Optimizer` (`adam`, `sgd`, a user's type); it is copied and `reset`
///                   at the start, so the caller's object is not modified
/// @param options    see `sgd_elbo_options` (its `adam` member is not used here)
/// @param callbacks  `Callback`s: `on_iteration` once per epoch (iteration = epoch, objective =
///                   the epoch's ELBO estimate), `on_step` once per optimizer step (it sees and
///                   may change the parameters and the gradient); returning true stops the fit
/// @return the parameters, per-epoch ELBO estimates and status: `max_iterations` (epochs
///         exhausted), `converged` (patience ran out), `stopped_by_callback`, or
///         `numerical_issue` (a non-finite estimate, gradient or step, or a `numerical_error`;
///         the parameters are those at the end of the last good epoch and `message` says where)
/// @throws invalid_argument for invalid options (batch size 0 or > N, ...) or a `params0` of
///         the wrong length or with non-finite entries
///
/// Cost per epoch: ceil(N / batch_size) objective evaluations and optimizer steps. Epoch 0
/// (the starting point's estimate) computes values only.
template <class F, std::uniform_random_bit_generator Rng, class Opt, Callback... Cs>
  requires ElboObjective<F, Rng> && Optimizer<Opt, objective_scalar_t<F>>
basic_sgd_elbo_result<objective_scalar_t<F>> sgd_elbo(F& objective, const objective_vector_t<F>& params0,
                                                      Rng& rng, const Opt& optimizer,
                                                      const sgd_elbo_options& options = {}, Cs&&... callbacks) {
  return detail::checked_sgd_elbo(objective, static_cast<detail::no_held_out*>(nullptr), params0, rng,
                                  optimizer, options, callbacks...);
}

/// As above with Adam (hyper-parameters `options.adam`) in the objective's scalar type.
template <class F, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires ElboObjective<F, Rng>
basic_sgd_elbo_result<objective_scalar_t<F>> sgd_elbo(F& objective, const objective_vector_t<F>& params0,
                                                      Rng& rng, const sgd_elbo_options& options = {},
                                                      Cs&&... callbacks) {
  validate(options.adam, "sgd_elbo");
  return detail::checked_sgd_elbo(objective, static_cast<detail::no_held_out*>(nullptr), params0, rng,
                                  basic_adam<objective_scalar_t<F>>(options.adam), options, callbacks...);
}

/// With a held-out objective evaluated at the end of every epoch (and at the start): exactly
/// if it is an `ExactElboObjective`, else by Monte Carlo with `options.held_out_samples` draws
/// per held-out observation (value-only when it has a value path). It must share the
/// parameter layout of `objective` (e.g. the same amortized model on other columns).
/// `patience` then watches the held-out ELBO, and with `restore_best` the parameters of its
/// best epoch are returned.
template <class F, class H, std::uniform_random_bit_generator Rng, class Opt, Callback... Cs>
  requires ElboObjective<F, Rng> && ElboObjective<H, Rng> && Optimizer<Opt, objective_scalar_t<F>> &&
           std::same_as<objective_scalar_t<F>, objective_scalar_t<H>>
basic_sgd_elbo_result<objective_scalar_t<F>> sgd_elbo(F& objective, H& held_out,
                                                      const objective_vector_t<F>& params0, Rng& rng,
                                                      const Opt& optimizer, const sgd_elbo_options& options = {},
                                                      Cs&&... callbacks) {
  detail::require_same_layout(objective, held_out);
  return detail::checked_sgd_elbo(objective, &held_out, params0, rng, optimizer, options, callbacks...);
}

/// With a held-out objective and Adam (hyper-parameters `options.adam`).
template <class F, class H, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires ElboObjective<F, Rng> && ElboObjective<H, Rng> &&
           std::same_as<objective_scalar_t<F>, objective_scalar_t<H>>
basic_sgd_elbo_result<objective_scalar_t<F>> sgd_elbo(F& objective, H& held_out,
                                                      const objective_vector_t<F>& params0, Rng& rng,
                                                      const sgd_elbo_options& options = {}, Cs&&... callbacks) {
  detail::require_same_layout(objective, held_out);
  validate(options.adam, "sgd_elbo");
  return detail::checked_sgd_elbo(objective, &held_out, params0, rng,
                                  basic_adam<objective_scalar_t<F>>(options.adam), options, callbacks...);
}

}  // namespace latent
