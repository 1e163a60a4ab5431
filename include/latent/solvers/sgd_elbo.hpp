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
/// N/|B| scaling) and takes one optimizer step (Adam by default, or Robbins–Monro SGD). The
/// epoch's ELBO estimate is the batch-size-weighted mean of its minibatch estimates, i.e. a sum
/// over every observation of its own one-draw estimate, each taken at the parameters current
/// when its minibatch was visited (so it lags the end-of-epoch parameters by half an epoch).

#include <latent/core/callbacks.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/optim/adam.hpp>
#include <latent/optim/sgd.hpp>

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

/// Which optimizer `sgd_elbo` uses.
enum class elbo_optimizer {
  adam,  ///< Adam with `sgd_elbo_options::adam` (default: scale invariant, robust)
  sgd    ///< Robbins–Monro SGD with `sgd_elbo_options::sgd`
};

/// Options of `sgd_elbo`. An epoch is one pass over the N observations; a step is one
/// optimizer update (one minibatch), so an epoch has ceil(N / batch_size) steps.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `max_epochs` | epochs at most (> 0) | 100 |
/// | `batch_size` | observations per minibatch, in [1, N] | 128 |
/// | `num_samples` | reparameterized draws of eps per observation (> 0) | 1 |
/// | `shuffle` | reshuffle the columns every epoch with the caller's engine | true |
/// | `optimizer` | `elbo_optimizer::adam` or `elbo_optimizer::sgd` | adam |
/// | `adam` | Adam's hyper-parameters (`decay_t0 > 0` for a decaying rate) | {1e-3, 0.9, 0.999, 1e-8, 0, 0.5} |
/// | `sgd` | the Robbins–Monro schedule | {1e-3, 100, 1} |
/// | `patience` | stop (status `converged`) after this many epochs without an improvement of the monitored ELBO (the held-out ELBO if given, else the epoch estimate) by more than `min_improvement`; 0 = never | 0 |
/// | `min_improvement` | the improvement `patience` requires (>= 0) | 0 |
/// | `held_out_samples` | draws per held-out observation when the held-out objective has no exact `elbo` (> 0) | 16 |
/// | `restore_best` | with a held-out objective, return the parameters of the epoch with the best held-out ELBO | true |
struct sgd_elbo_options {
  std::size_t max_epochs = 100;
  std::size_t batch_size = 128;
  std::size_t num_samples = 1;
  bool shuffle = true;
  elbo_optimizer optimizer = elbo_optimizer::adam;
  adam_options adam{};
  sgd_options sgd{};
  std::size_t patience = 0;
  double min_improvement = 0.0;
  std::size_t held_out_samples = 16;
  bool restore_best = true;
};

/// What `sgd_elbo` returns: a `fit_result` over the flat parameter vector, plus the held-out
/// trace and counts.
///
/// `trace[0]` estimates the ELBO at the starting point (one pass over the data without steps),
/// `trace[e]` is epoch e's estimate; `iterations` counts epochs. `objective` is the trace entry
/// of the returned `params` (the best held-out epoch when `restore_best` applied, else the
/// last). `decreases` is not meaningful for a noisy ascent and stays 0.
struct sgd_elbo_result : fit_result<Eigen::VectorXd> {
  std::vector<double> held_out_trace;  ///< held-out ELBO per epoch (empty without a held-out objective)
  std::size_t steps = 0;               ///< optimizer steps taken
  std::size_t best_epoch = 0;          ///< epoch of the returned parameters
};

namespace detail {

/// An ascent optimizer with a resettable per-run state (`adam`, `sgd`).
template <class O>
concept ascent_optimizer = requires(O& o, Eigen::VectorXd& p, const Eigen::VectorXd& g) {
  o.reset(Eigen::Index{0});
  o.step(p, g);
};

inline void validate_sgd_elbo_options(const sgd_elbo_options& o, Eigen::Index n) {
  constexpr std::string_view f = "sgd_elbo";
  require(o.max_epochs > 0, f, "option 'max_epochs' must be positive, got 0");
  require(o.batch_size > 0 && static_cast<Eigen::Index>(o.batch_size) <= n, f,
          "option 'batch_size' must be in [1, N] with N = ", n, " observations, got ",
          o.batch_size);
  require(o.num_samples > 0, f, "option 'num_samples' must be positive, got 0");
  require(o.held_out_samples > 0, f, "option 'held_out_samples' must be positive, got 0");
  require(std::isfinite(o.min_improvement) && o.min_improvement >= 0.0, f,
          "option 'min_improvement' must be finite and >= 0, got ", o.min_improvement);
  if (o.optimizer == elbo_optimizer::adam) validate(o.adam, f);
  else validate(o.sgd, f);
}

/// The held-out ELBO: exact if the objective offers `elbo(params)`, else a Monte Carlo estimate
/// over all its columns (minibatches of at most `batch`, `samples` draws each).
template <class H, class Rng>
double held_out_elbo(H& h, const Eigen::VectorXd& params, std::size_t batch, std::size_t samples,
                     Rng& rng) {
  if constexpr (ExactElboObjective<H, Rng>) {
    return static_cast<double>(h.elbo(params));
  } else {
    const Eigen::Index n = static_cast<Eigen::Index>(h.num_observations());
    std::vector<Eigen::Index> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), Eigen::Index{0});
    const std::size_t b = std::min<std::size_t>(batch, idx.size());
    Eigen::VectorXd grad;
    double total = 0.0;
    for (std::size_t start = 0; start < idx.size(); start += b) {
      const std::size_t len = std::min(b, idx.size() - start);
      const double v = static_cast<double>(
          h.value_and_gradient(params, minibatch(idx.data() + start, len), samples, grad, rng));
      total += v * static_cast<double>(len) / static_cast<double>(n);
    }
    return total;
  }
}

/// Not part of the API: no held-out objective.
struct no_held_out {};

template <class F, class H, class Opt, class Rng, class... Cs>
sgd_elbo_result run_sgd_elbo(F& objective, H* held_out, const Eigen::VectorXd& params0, Rng& rng,
                             const sgd_elbo_options& opts, Opt& optimizer, Cs&... callbacks) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
  constexpr bool has_held_out = !std::same_as<H, no_held_out>;

  const Eigen::Index n = static_cast<Eigen::Index>(objective.num_observations());
  const Eigen::Index p = static_cast<Eigen::Index>(objective.num_parameters());
  const std::size_t batch = opts.batch_size;
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index{0});

  sgd_elbo_result result;
  Eigen::VectorXd params = params0;
  Eigen::VectorXd grad(p);
  optimizer.reset(p);

  // One pass over the data in the current order: the weighted mean of minibatch estimates.
  // With `update`, a step follows each minibatch. Returns false (and fills the message) on a
  // non-finite estimate or gradient or a numerical_error from the objective.
  double pass_value = 0.0;
  const auto pass = [&](bool update, std::size_t epoch) -> bool {
    pass_value = 0.0;
    for (std::size_t b0 = 0; b0 < order.size(); b0 += batch) {
      const std::size_t len = std::min(batch, order.size() - b0);
      double v;
      try {
        v = static_cast<double>(objective.value_and_gradient(
            params, minibatch(order.data() + b0, len), opts.num_samples, grad, rng));
      } catch (const numerical_error& e) {
        result.message = concat("epoch ", epoch, ", step ", result.steps, ": ", e.what());
        return false;
      }
      if (!std::isfinite(v) || !grad.allFinite()) {
        result.message = concat("epoch ", epoch, ", step ", result.steps, ": ELBO estimate ", v,
                                grad.allFinite() ? "" : " with a non-finite gradient");
        return false;
      }
      pass_value += v * static_cast<double>(len) / static_cast<double>(n);
      if (update) {
        optimizer.step(params, grad);
        ++result.steps;
      }
    }
    return true;
  };

  (notify_begin(callbacks), ...);
  iteration_info info;
  Eigen::VectorXd last_good = params, best_params = params;
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
    const bool stop = notify_all_iteration(info, callbacks...);
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

template <class F, class H, class Rng, class... Cs>
sgd_elbo_result dispatch_sgd_elbo(F& objective, H* held_out, const Eigen::VectorXd& params0,
                                  Rng& rng, const sgd_elbo_options& options, Cs&... callbacks) {
  const Eigen::Index n = static_cast<Eigen::Index>(objective.num_observations());
  validate_sgd_elbo_options(options, n);
  require(params0.size() == static_cast<Eigen::Index>(objective.num_parameters()), "sgd_elbo",
          "argument 'params0' must have num_parameters() = ", objective.num_parameters(),
          " entries, got ", params0.size());
  require_finite(params0, "sgd_elbo", "params0");
  if (options.optimizer == elbo_optimizer::adam) {
    adam opt(options.adam);
    return run_sgd_elbo(objective, held_out, params0, rng, options, opt, callbacks...);
  }
  sgd opt(options.sgd);
  return run_sgd_elbo(objective, held_out, params0, rng, options, opt, callbacks...);
}

}  // namespace detail

/// Maximize the ELBO of `objective` by stochastic gradient ascent from `params0`.
///
/// @param objective  an `ElboObjective` (observations are its columns)
/// @param params0    starting flat parameter vector (length `num_parameters()`, finite)
/// @param rng        the caller's engine: shuffling and every reparameterized draw
/// @param options    see `sgd_elbo_options`
/// @param callbacks  `Callback`s, told once per epoch (iteration = epoch, objective = the
///                   epoch's ELBO estimate); returning true from `on_iteration` stops the fit
/// @return the parameters, per-epoch ELBO estimates and status: `max_iterations` (epochs
///         exhausted), `converged` (patience ran out), `stopped_by_callback`, or
///         `numerical_issue` (a non-finite estimate or gradient, or a `numerical_error`; the
///         parameters are those at the end of the last good epoch and `message` says where)
/// @throws invalid_argument for invalid options (batch size 0 or > N, non-positive step
///         sizes, ...) or a `params0` of the wrong length or with non-finite entries
///
/// Cost per epoch: ceil(N / batch_size) objective evaluations and optimizer steps.
template <class F, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires ElboObjective<F, Rng>
sgd_elbo_result sgd_elbo(F& objective, const Eigen::VectorXd& params0, Rng& rng,
                         const sgd_elbo_options& options = {}, Cs&&... callbacks) {
  return detail::dispatch_sgd_elbo(objective, static_cast<detail::no_held_out*>(nullptr), params0,
                                   rng, options, callbacks...);
}

/// As above, with a held-out objective evaluated at the end of every epoch (and at the start):
/// exactly if it is an `ExactElboObjective`, else by Monte Carlo with
/// `options.held_out_samples` draws per held-out observation. It must share the parameter
/// layout of `objective` (e.g. the same amortized model on other columns). `patience` then
/// watches the held-out ELBO, and with `restore_best` the parameters of its best epoch are
/// returned.
template <class F, class H, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires ElboObjective<F, Rng> && ElboObjective<H, Rng>
sgd_elbo_result sgd_elbo(F& objective, H& held_out, const Eigen::VectorXd& params0, Rng& rng,
                         const sgd_elbo_options& options = {}, Cs&&... callbacks) {
  detail::require(static_cast<Eigen::Index>(held_out.num_parameters()) ==
                      static_cast<Eigen::Index>(objective.num_parameters()),
                  "sgd_elbo", "argument 'held_out' must have num_parameters() = ",
                  objective.num_parameters(), ", got ", held_out.num_parameters());
  return detail::dispatch_sgd_elbo(objective, &held_out, params0, rng, options, callbacks...);
}

}  // namespace latent
