#pragma once
/// @file
/// Online (stepwise) EM: EM on minibatches, for data met one block at a time (Cappé and
/// Moulines 2009, "On-line expectation-maximization algorithm for latent data models").
///
/// Batch EM needs a full pass over the data for every M-step. Online EM keeps a running
/// estimate s of the full-data expected sufficient statistics and takes an M-step after every
/// minibatch B:
///
///   s  <-  (1 - rho_t) s  +  rho_t (N / |B|) s_B,        rho_t = (t + t0)^(-kappa),
///
/// where s_B are the statistics of the minibatch under the current parameters (the model's own
/// E-step, run by an executor) and t = 1, 2, ... counts minibatches over the whole fit. With
/// kappa in (0.5, 1] the steps satisfy sum rho_t = inf and sum rho_t^2 < inf, the
/// stochastic-approximation conditions under which s converges to a stationary point of the
/// log-likelihood. Because the E-step adds into additive statistics, any `EMModel` works
/// unchanged; the M-step sees statistics on the full-data scale (N / |B| s_B estimates the
/// full-data statistics without bias), so models with priors (pseudo-counts) weigh them
/// correctly.
///
/// Nothing here increases the log-likelihood monotonically: early passes make fast progress on
/// large data sets (one pass of online EM often reaches what several batch iterations reach),
/// and the fit then settles as rho_t shrinks.

#include <latent/core/callbacks.hpp>
#include <latent/core/concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/executor.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/solvers/detail/em_driver.hpp>
#include <latent/solvers/em.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

namespace latent {

/// The order in which `column_minibatches` serves columns in each pass.
enum class minibatch_order {
  shuffled,       ///< a fresh random permutation of the columns every pass (copied into a buffer)
  shuffled_runs,  ///< contiguous runs of `batch_size` columns, the runs in a fresh random order
                  ///< every pass: no copy, and sequential reads of memory-mapped data, but the
                  ///< minibatches are random only if the stored order is
  stored          ///< contiguous runs in stored order (a deterministic stream)
};

/// Options of `online_em`. A step is one minibatch and one M-step; an epoch is one pass over
/// the N observations (ceil(N / batch_size) steps for the in-memory source).
///
/// | name | meaning | default |
/// |---|---|---|
/// | `batch_size` | observations per minibatch, in [1, N] (in-memory source) | 1024 |
/// | `order` | how the in-memory source orders columns (`minibatch_order`) | shuffled |
/// | `kappa` | step-size exponent, in (0.5, 1] | 0.6 |
/// | `t0` | step-size offset, >= 0: rho_t = (t + t0)^(-kappa) | 0 |
/// | `max_epochs` | passes over the data at most, in [1, 10^9] | 10 |
/// | `warmup_epochs` | batch EM iterations (a full pass each, then an M-step) before the online phase; their statistics start the running estimate | 0 |
/// | `evaluate` | after each epoch, compute the exact log-likelihood of the current parameters with one more pass (the trace then holds exact values); otherwise the trace holds each epoch's prequential sum (each observation's log-likelihood under the parameters current when its minibatch was visited) | true |
/// | `tolerance` | with `evaluate`: converged when an epoch changed the log-likelihood by at most this relative amount (\|Δ\| <= tolerance · max(\|objective\|, N)); 0 = run `max_epochs` | 0 |
/// | `threads`, `block_size` | the E-step's executor, as for `em` | 0, 1024 |
///
/// With t0 = 0 the first step has rho_1 = 1: the running estimate starts as the first
/// minibatch's statistics (or, after a warm-up, is replaced by them). A larger t0 makes the
/// first steps smaller, which with a warm-up keeps more of the warm-up's statistics.
struct online_em_options {
  std::size_t batch_size = 1024;
  minibatch_order order = minibatch_order::shuffled;
  double kappa = 0.6;
  double t0 = 0.0;
  std::size_t max_epochs = 10;
  std::size_t warmup_epochs = 0;
  bool evaluate = true;
  double tolerance = 0.0;
  int threads = 0;
  Eigen::Index block_size = 1024;
};

/// A source of minibatches for online EM over data of type `Data` (a model's `data_type`):
///
/// | expression | meaning |
/// |---|---|
/// | `cs.num_observations()` | N, the observations in one pass (the scale of the statistics) |
/// | `s.rewind()` | start a new pass (a source may reshuffle here) |
/// | `s.next()` | the next minibatch of the pass as `std::optional<Data>`; empty at the end of the pass |
///
/// A pass must visit every observation exactly once (that is what makes the warm-up passes
/// batch EM and the evaluations exact). A source that can hand over all its data at once
/// (optional `cs.data()`, as `column_minibatches` does) has its full passes run as one E-step
/// over them, in stored order and without copies. Minibatches are not checked by the model's `validate`
/// (whose rules, e.g. K <= N for a mixture, concern the whole data set): the in-memory
/// overload of `online_em` validates its matrix once; a stream's data that the E-step cannot
/// use (non-finite values) end the fit with `numerical_issue`. A minibatch may refer to memory the source owns; it
/// stays valid until the next call of `next` or `rewind`. `column_minibatches` serves data in
/// memory; a stream (a file read block by block, a socket) is any type with these members.
template <class Src, class Data>
concept MinibatchSource = requires(Src& s, const Src& cs) {
  { cs.num_observations() } -> std::convertible_to<Eigen::Index>;
  s.rewind();
  { s.next() } -> std::same_as<std::optional<Data>>;
};

/// The in-memory `MinibatchSource` for models whose data are `basic_observations<S>` (a
/// matrix in memory or a memory-mapped file, see `io/mapped_npy.hpp`). With
/// `minibatch_order::shuffled` (the default) each pass visits the columns in a fresh random
/// order drawn from the caller's engine, copying each minibatch's columns (and weights) into a
/// buffer of `batch_size` columns that the returned view refers to; the other orders serve
/// views of contiguous runs of columns.
///
/// The source keeps references to `x`'s data and to `rng`: both must outlive it.
template <Scalar S, std::uniform_random_bit_generator Rng>
class column_minibatches {
 public:
  /// @throws invalid_argument for an empty x or a batch size outside [1, N]
  column_minibatches(const basic_observations<S>& x, std::size_t batch_size, Rng& rng,
                     minibatch_order order = minibatch_order::shuffled)
      : x_(x), rng_(&rng), order_kind_(order) {
    const auto n = static_cast<std::size_t>(x.size());
    detail::require(n > 0, "column_minibatches", "argument 'x' must have at least one column");
    detail::require(batch_size >= 1 && batch_size <= n, "column_minibatches", "option 'batch_size' must be in [1, N] with N = ",
                    n, ", got ", batch_size);
    batch_ = static_cast<Eigen::Index>(batch_size);
    // Shuffled columns permute column indices; runs permute run starts.
    const std::size_t units = order == minibatch_order::shuffled ? n : (n + batch_size - 1) / batch_size;
    order_.resize(units);
    std::iota(order_.begin(), order_.end(), Eigen::Index{0});
    if (order == minibatch_order::shuffled) {
      buffer_.resize(x.dim(), batch_);
      if (x.weighted()) weights_.resize(batch_);
    }
    position_ = order_.size();  // nothing served before the first rewind
  }

  Eigen::Index num_observations() const { return x_.size(); }
  /// All the data, for passes that need no minibatches (exact evaluations, warm-up).
  const basic_observations<S>& data() const { return x_; }

  /// Starts a pass: a new random order (unless the order is `stored`).
  void rewind() {
    if (order_kind_ != minibatch_order::stored) std::shuffle(order_.begin(), order_.end(), *rng_);
    position_ = 0;
  }

  /// The next minibatch (the last of a pass, or the last run, may be smaller), or nothing at
  /// the end of a pass.
  std::optional<basic_observations<S>> next() {
    if (position_ >= order_.size()) return std::nullopt;
    const Eigen::Index n = x_.size();
    if (order_kind_ != minibatch_order::shuffled) {
      const Eigen::Index begin = order_[position_++] * batch_, b = std::min(batch_, n - begin);
      if (x_.weighted()) return basic_observations<S>(x_.x().middleCols(begin, b), x_.weights().segment(begin, b));
      return basic_observations<S>(x_.x().middleCols(begin, b));
    }
    const Eigen::Index b = std::min<Eigen::Index>(batch_, static_cast<Eigen::Index>(order_.size() - position_));
    for (Eigen::Index j = 0; j < b; ++j) {
      const Eigen::Index c = order_[position_ + static_cast<std::size_t>(j)];
      buffer_.col(j) = x_.x().col(c);
      if (x_.weighted()) weights_(j) = x_.weights()(c);
    }
    position_ += static_cast<std::size_t>(b);
    if (x_.weighted()) return basic_observations<S>(buffer_.leftCols(b), weights_.head(b));
    return basic_observations<S>(buffer_.leftCols(b));
  }

 private:
  basic_observations<S> x_;
  Rng* rng_;
  minibatch_order order_kind_;
  Eigen::Index batch_ = 0;
  std::vector<Eigen::Index> order_;
  std::size_t position_ = 0;
  matrix_t<S> buffer_;
  vector_t<S> weights_;
};

namespace detail {

inline void validate_online_em_options(const online_em_options& o, std::string_view fn) {
  require(o.kappa > 0.5 && o.kappa <= 1.0, fn, "option 'kappa' must be in (0.5, 1], got ", o.kappa,
          " (with kappa <= 0.5 the steps do not shrink fast enough for the estimate to settle)");
  require(std::isfinite(o.t0) && o.t0 >= 0.0, fn, "option 't0' must be finite and >= 0, got ", o.t0);
  require(o.max_epochs >= 1 && o.max_epochs <= 1'000'000'000, fn, "option 'max_epochs' must be in [1, 1e9], got ",
          o.max_epochs);
  require(o.warmup_epochs <= 1'000'000'000, fn, "option 'warmup_epochs' must be at most 1e9, got ", o.warmup_epochs);
  require(std::isfinite(o.tolerance) && o.tolerance >= 0.0, fn, "option 'tolerance' must be finite and >= 0, got ",
          o.tolerance);
  require(o.threads >= 0, fn, "option 'threads' must be >= 0, got ", o.threads);
  require(o.block_size > 0, fn, "option 'block_size' must be positive, got ", o.block_size);
}

/// One pass of `source` under the model's current parameters: the sum of the minibatches'
/// log-likelihoods, their statistics added into `stats` (in minibatch order).
template <class M, class Source, class E>
double full_pass(const M& model, Source& source, const E& executor, typename M::stats_type& stats) {
  if constexpr (requires { { source.data() } -> std::convertible_to<const typename M::data_type&>; })
    return latent::e_step(model, source.data(), stats, executor);
  source.rewind();
  double total = 0.0;
  while (auto batch = source.next()) {
    require_weights_supported<M>(*batch, "online_em");
    total += latent::e_step(model, *batch, stats, executor);
  }
  return total;
}

}  // namespace detail

/// Fit `model` by online EM over the minibatches of `source`, starting from the model's
/// current parameters, the E-step of each minibatch run by `executor`.
///
/// The result's `trace[0]` is the log-likelihood at the start; `trace[e]` follows epoch e
/// (after the warm-up iterations, which come first and are exact): exact with
/// `options.evaluate`, else the epoch's prequential sum. `iterations` counts epochs (warm-up
/// included); `objective` is the last trace entry. A numerical error in an E- or M-step, or
/// a non-finite value, ends the fit with `numerical_issue` and the parameters of the last
/// finite evaluation or step restored. The model's `log_prior()`, if it has one, is added to
/// exact evaluations as in `em`.
///
/// @throws invalid_argument for invalid options (see `online_em_options`), weighted data for
///         a model that does not read weights, or invalid data (the model validates it)
template <EMModel M, class Source, Executor E, Callback... Cs>
  requires MinibatchSource<Source, typename M::data_type>
fit_result<typename M::params_type> online_em(M& model, Source& source, const E& executor,
                                              const online_em_options& options = {}, Cs&&... callbacks) {
  constexpr std::string_view fn = "online_em";
  detail::validate_online_em_options(options, fn);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
  const auto n = static_cast<double>(source.num_observations());
  detail::require(n > 0, fn, "the source holds no observations");

  fit_result<typename M::params_type> result;
  result.params = model.params();
  (detail::notify_begin(callbacks), ...);
  iteration_info info;
  using stats_type = typename M::stats_type;

  // Records an objective; false (and the status set) if it is not finite.
  std::size_t epoch = 0;
  double previous = 0.0;
  const auto record = [&](double value) {
    if (!std::isfinite(value)) {
      result.status = fit_status::numerical_issue;
      result.message = concat("objective after epoch ", epoch, " is ", value);
      return false;
    }
    result.trace.push_back(value);
    result.iterations = epoch;
    result.objective = value;
    result.params = model.params();
    info = {epoch, value, epoch == 0 ? 0.0 : value - previous, elapsed(), 0};
    previous = value;
    return true;
  };
  const auto exact = [&](stats_type& stats) {
    return detail::full_pass(model, source, executor, stats) + detail::model_log_prior(model);
  };

  std::optional<stats_type> running;  // the running estimate s (empty until a pass or step fills it)
  bool stop = false;
  try {
    stats_type stats = model.zero_stats();
    if (!record(exact(stats))) throw numerical_error("the starting point's log-likelihood is not finite");
    stop = detail::notify_all_iteration(info, callbacks...);
    // Warm-up: batch EM iterations, each an M-step on the last pass's statistics, then a pass.
    for (std::size_t w = 0; w < options.warmup_epochs && !stop; ++w) {
      model.m_step(stats);
      stats = model.zero_stats();
      ++epoch;
      if (!record(exact(stats))) break;
      stop = detail::notify_all_iteration(info, callbacks...);
    }
    if (options.warmup_epochs > 0 && result.status != fit_status::numerical_issue) running = std::move(stats);

    std::size_t t = 0;
    while (!stop && result.status != fit_status::numerical_issue &&
           epoch < options.warmup_epochs + options.max_epochs) {
      ++epoch;
      double prequential = 0.0;
      source.rewind();
      while (auto batch = source.next()) {
        detail::require_weights_supported<M>(*batch, fn);
        stats_type sb = model.zero_stats();
        prequential += latent::e_step(model, *batch, sb, executor);
        const auto nb = static_cast<double>(model.num_observations(*batch));
        const double rho = std::pow(static_cast<double>(++t) + options.t0, -options.kappa);
        sb *= rho * n / nb;
        if (running && rho < 1.0) {
          *running *= 1.0 - rho;
          *running += sb;
        } else {
          running = std::move(sb);
        }
        model.m_step(*running);
      }
      double value = prequential;
      if (options.evaluate) {
        stats_type scratch = model.zero_stats();
        value = exact(scratch);
      }
      if (!record(value)) break;
      stop = detail::notify_all_iteration(info, callbacks...);
      if (options.evaluate && options.tolerance > 0.0 &&
          std::abs(info.change) <= options.tolerance * std::max(std::abs(value), n)) {
        result.status = fit_status::converged;
        break;
      }
    }
    if (result.status != fit_status::numerical_issue && result.status != fit_status::converged)
      result.status = stop ? fit_status::stopped_by_callback : fit_status::max_iterations;
  } catch (const numerical_error& e) {
    result.status = fit_status::numerical_issue;
    result.message = concat("epoch ", epoch, ": ", e.what());
  }
  if (result.status == fit_status::numerical_issue && !result.trace.empty())
    model.set_params(result.params);  // the last parameters with a finite objective
  result.seconds = result.total_seconds = elapsed();
  result.total_iterations = result.iterations;
  info.seconds = result.seconds;
  (detail::notify_end(callbacks, info), ...);
  return result;
}

/// `online_em` over a source, the E-step on `options.threads` OpenMP threads in blocks of
/// `options.block_size` columns.
template <EMModel M, class Source, Callback... Cs>
  requires MinibatchSource<Source, typename M::data_type>
fit_result<typename M::params_type> online_em(M& model, Source& source, const online_em_options& options = {},
                                              Cs&&... callbacks) {
  return online_em(model, source, detail::default_executor(options), options, callbacks...);
}

/// `online_em` over the columns of `x` (in memory or memory-mapped), in minibatches of
/// `options.batch_size` in `options.order`, drawn afresh every epoch from `rng` (see
/// `column_minibatches`).
template <EMModel M, std::uniform_random_bit_generator Rng, Callback... Cs>
  requires std::same_as<typename M::data_type, basic_observations<scalar_of_t<M>>>
fit_result<typename M::params_type> online_em(M& model, const typename M::data_type& x, Rng& rng,
                                              const online_em_options& options = {}, Cs&&... callbacks) {
  detail::validate_online_em_options(options, "online_em");
  detail::require_weights_supported<M>(x, "online_em");
  if constexpr (requires { model.validate(x); }) model.validate(x);
  column_minibatches<scalar_of_t<M>, Rng> source(x, options.batch_size, rng, options.order);
  return online_em(model, source, detail::default_executor(options), options, callbacks...);
}

}  // namespace latent
