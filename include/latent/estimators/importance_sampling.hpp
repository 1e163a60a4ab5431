#pragma once
/// @file
/// Importance-weighted estimates of log p(x_n), one per observation, for any
/// `AmortizedObjective`.
///
/// For an observation x_n, a proposal q_n(z) (the encoder's q(z | x_n) by default, or a given
/// diagonal Gaussian) and K independent draws z_k ~ q_n,
///
///   log p^(x_n) = log (1/K) sum_k w_k,    w_k = p(x_n, z_k) / q_n(z_k),
///
/// the log of an unbiased estimate of p(x_n). Its expectation is the importance-weighted
/// bound L_K(x_n) <= log p(x_n) (Burda, Grosse and Salakhutdinov 2016), which is
/// non-decreasing in K and tends to log p(x_n) as K grows (for K = 1 it is the ELBO of q_n).
///
/// **Standard error (delta method).** With the log-weights l_k = log w_k and their maximum M,
/// the shifted weights v_k = exp(l_k - M) lie in (0, 1], so every step below is stable in
/// double whatever the scale of log p. With v_bar = (1/K) sum_k v_k and
/// s_v^2 = 1/(K-1) sum_k (v_k - v_bar)^2,
///
///   SE[log p^(x_n)] ~= s_v / (sqrt(K) v_bar),
///
/// the first-order (delta-method) standard error of log w_bar = M + log v_bar: the relative
/// standard error of the mean weight. It is +infinity for K = 1. It is itself an estimate: it
/// is reliable only when the weights' variance is finite and K is large enough to see their
/// tail; the effective sample size ESS = (sum_k v_k)^2 / sum_k v_k^2, also returned, is a
/// warning light when it is a small fraction of K. log p^ is biased low by about SE^2 / 2
/// (Jensen), negligible once SE is small.
///
/// Cost: K log_joint evaluations per observation (value only, no gradient), in calls of at
/// most `columns_per_call` latent points; groups of observations run on `threads` threads,
/// with identical results for any thread count (see estimators/per_observation.hpp).

#include <latent/core/amortized.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/estimators/per_observation.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string_view>
#include <vector>

namespace latent {

/// Options of `estimate_log_likelihood`.
struct importance_options {
  /// K, the importance samples per observation (>= 1; a standard error needs K >= 2).
  std::size_t num_samples = 1000;
  /// At most this many latent points (k x columns) per `log_joint` call: bounds the memory of
  /// the objective's workspace (e.g. a decoder's d x columns activations) per thread. It fixes
  /// the grouping, never the draws: other values change the estimates at most by rounding.
  Eigen::Index columns_per_call = 8192;
  /// Threads over groups of observations; 0 means the OpenMP default (all cores). The
  /// estimates are identical for every thread count.
  int threads = 0;
};

/// Importance-weighted log p(x_n) estimates of a set of observations (see the file comment).
struct log_likelihood_estimate : per_observation_estimate {
  /// ESS_n = (sum_k w_k)^2 / sum_k w_k^2 in [1, K]: how many of the K draws carry the weight.
  vector_t<double> effective_sample_size;
  std::size_t num_samples = 0;  ///< K
};

namespace detail {

/// log p^, its delta-method standard error and the ESS of one observation's log-weights.
struct log_weight_summary {
  double log_mean = 0.0, standard_error = 0.0, effective_sample_size = 0.0;
};

/// See the file comment for the formulas. A NaN or +inf log-weight is a numerical error;
/// all log-weights -inf (every draw impossible) give log p^ = -inf, SE = +inf, ESS = 0.
template <class Derived>
log_weight_summary summarize_log_weights(const Eigen::MatrixBase<Derived>& l, Eigen::Index column) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i < l.size(); ++i)
    if (std::isnan(l(i)) || l(i) == inf)
      throw numerical_error(concat("estimate_log_likelihood: log-weight ", i, " of observation ", column, " is ", l(i),
                                   " (the objective's log_joint is not finite there)"));
  const double m = l.maxCoeff();
  if (m == -inf) return {-inf, inf, 0.0};
  const double k = static_cast<double>(l.size());
  const Eigen::ArrayXd v = (l.array() - m).exp().transpose().template cast<double>();
  const double mean = v.mean();
  const double se = l.size() >= 2 ? std::sqrt((v - mean).square().sum() / (k - 1.0) / k) / mean : inf;
  return {m + std::log(mean), se, v.sum() * v.sum() / v.square().sum()};
}

/// The estimates for proposal `q` (k x |indices|) with the streams of `seed`.
template <AmortizedObjective F>
log_likelihood_estimate importance_estimate(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                            const diagonal_gaussians& q, std::uint64_t seed,
                                            const importance_options& opts) {
  const Eigen::Index n = static_cast<Eigen::Index>(indices.size());
  log_likelihood_estimate e;
  e.indices.assign(indices.begin(), indices.end());
  e.value.resize(n);
  e.standard_error.resize(n);
  e.effective_sample_size.resize(n);
  e.num_samples = opts.num_samples;
  const std::vector<const diagonal_gaussians*> qs{&q};
  for_each_group(n, group_size(opts.num_samples, opts.columns_per_call), opts.threads,
                 [&](Eigen::Index begin, Eigen::Index end) {
                   const minibatch batch = indices.subspan(static_cast<std::size_t>(begin),
                                                           static_cast<std::size_t>(end - begin));
                   std::vector<observation_stream> streams = group_streams(batch, seed, stream_purpose::importance);
                   std::vector<matrix_t<double>> log_weights;
                   sample_log_joint(f, params, batch, begin, qs, streams, opts.num_samples, opts.columns_per_call,
                                    true, log_weights);
                   for (Eigen::Index j = 0; j < end - begin; ++j) {
                     const log_weight_summary s = summarize_log_weights(log_weights[0].row(j), batch[j]);
                     e.value(begin + j) = s.log_mean;
                     e.standard_error(begin + j) = s.standard_error;
                     e.effective_sample_size(begin + j) = s.effective_sample_size;
                   }
                 });
  summarize(e);
  return e;
}

inline void require_importance_options(const importance_options& opts, std::string_view fn) {
  require_positive(opts.num_samples, fn, "num_samples");
  require_execution(opts.columns_per_call, opts.threads, fn);
}

}  // namespace detail

/// Importance-weighted estimates of log p(x_n) for the observations `indices` of `f` (distinct
/// column indices in [0, N)), with the proposal `proposal` (k x |indices| means and
/// log-scales, column j for indices[j]) and `opts.num_samples` draws per observation. Draws one
/// seed from `rng` (see estimators/per_observation.hpp). Value-only: no gradients.
/// @throws invalid_argument for an empty set, an index out of range or repeated, a proposal of the wrong
///         shape or not finite, K = 0, columns_per_call <= 0 or threads < 0 (and whatever the
///         objective throws for a wrong parameter vector)
/// @throws numerical_error if a log-weight is NaN or +inf
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
log_likelihood_estimate estimate_log_likelihood(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                                const diagonal_gaussians& proposal, Rng& rng,
                                                const importance_options& opts = {}) {
  constexpr std::string_view fn = "estimate_log_likelihood";
  detail::require_importance_options(opts, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  detail::require_gaussians(proposal, f.latent_dim(), static_cast<Eigen::Index>(indices.size()), fn, "proposal");
  return detail::importance_estimate(f, params, indices, proposal, detail::draw_stream_seed(rng), opts);
}

/// The same with the encoder's q(z | x_n) as the proposal.
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
log_likelihood_estimate estimate_log_likelihood(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                                Rng& rng, const importance_options& opts = {}) {
  constexpr std::string_view fn = "estimate_log_likelihood";
  detail::require_importance_options(opts, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  const diagonal_gaussians q = encoder_gaussians(f, params, indices);
  return detail::importance_estimate(f, params, indices, q, detail::draw_stream_seed(rng), opts);
}

/// The same for every column of the objective's data, with the encoder's proposal.
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
log_likelihood_estimate estimate_log_likelihood(const F& f, const objective_vector_t<F>& params, Rng& rng,
                                                const importance_options& opts = {}) {
  const std::vector<Eigen::Index> all = detail::all_columns(f.num_observations());
  return estimate_log_likelihood(f, params, minibatch(all), rng, opts);
}

}  // namespace latent
