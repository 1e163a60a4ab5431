#pragma once
/// @file
/// Monte Carlo ELBOs of diagonal-Gaussian q's, one per observation, for any
/// `AmortizedObjective`: the amortized L[q] of the encoder, or the L of given per-observation
/// Gaussians (e.g. the optimized q* of the gap decomposition).
///
/// For an observation x_n and q_n = N(m_n, diag s_n^2) over R^k,
///
///   L[q_n] = E_{q_n}[log p(x_n, z)] + H(q_n),   H(q_n) = sum_j log s_nj + k/2 (1 + log 2 pi),
///
/// estimated with S independent draws z_s = m_n + s_n (.) eps_s, eps_s ~ N(0, I), and the
/// entropy in closed form:
///
///   L^_n = (1/S) sum_s log p(x_n, z_s) + H(q_n),   SE_n = sd_s(log p(x_n, z_s)) / sqrt(S),
///
/// with the sample standard deviation (divisor S - 1; SE = +infinity for S = 1). L^_n is
/// unbiased and the SE is the usual standard error of a mean of S independent draws.

#include <latent/core/amortized.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
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

/// Options of `estimate_elbo`.
struct elbo_options {
  /// S, the draws per observation (>= 1; a standard error needs S >= 2).
  std::size_t num_samples = 1000;
  /// At most this many latent points per `log_joint` call (memory bound; never changes the
  /// draws, so other values change results at most by rounding).
  Eigen::Index columns_per_call = 8192;
  /// Threads over groups of observations; 0 means the OpenMP default. Identical results for
  /// every thread count.
  int threads = 0;
};

namespace detail {

/// H(q) of each column of `q`: sum_j log s_j + k/2 (1 + log 2 pi).
template <class Q = diagonal_gaussians>
vector_t<double> gaussian_entropies(const Q& q) {
  const double k = static_cast<double>(q.log_scale.rows());
  return (q.log_scale.colwise().sum().transpose().array() + 0.5 * k * (1.0 + log_two_pi)).matrix();
}

/// Mean and standard error of each row of `samples` (observations x draws), plus `offset`.
template <class Samples, class Offset, class Estimate>
void row_means(const Eigen::MatrixBase<Samples>& samples, const Eigen::MatrixBase<Offset>& offset, Eigen::Index first,
               Estimate& e) {
  const double s = static_cast<double>(samples.cols());
  for (Eigen::Index j = 0; j < samples.rows(); ++j) {
    const double mean = samples.row(j).mean();
    if (std::isnan(mean))
      throw numerical_error(concat("estimate_elbo: the objective's log_joint is NaN at a draw of observation ",
                                   e.indices[static_cast<std::size_t>(first + j)]));
    e.value(first + j) = mean + offset(j);
    e.standard_error(first + j) = samples.cols() >= 2
        ? std::sqrt((samples.row(j).array() - mean).square().sum() / (s - 1.0) / s)
        : std::numeric_limits<double>::infinity();
  }
}

/// The ELBO estimates of each q in `qs` (every one k x |indices|), all with the SAME noise
/// per observation (the streams of `seed`), and, for two of them, of the paired difference
/// L[qs[1]] - L[qs[0]] (common random numbers: its SE comes from the per-draw differences).
/// Returns qs.size() estimates, plus the difference last when qs.size() == 2.
template <AmortizedObjective F>
std::vector<per_observation_estimate> elbo_estimates(const F& f, const objective_vector_t<F>& params,
                                                     minibatch indices,
                                                     const std::vector<const diagonal_gaussians*>& qs,
                                                     std::uint64_t seed, const elbo_options& opts) {
  const Eigen::Index n = static_cast<Eigen::Index>(indices.size());
  const std::size_t outputs = qs.size() + (qs.size() == 2 ? 1 : 0);
  std::vector<per_observation_estimate> e(outputs);
  std::vector<vector_t<double>> entropy;
  for (const diagonal_gaussians* q : qs) entropy.push_back(gaussian_entropies(*q));
  for (per_observation_estimate& x : e) {
    x.indices.assign(indices.begin(), indices.end());
    x.value.resize(n);
    x.standard_error.resize(n);
  }
  for_each_group(n, group_size(opts.num_samples, opts.columns_per_call), opts.threads,
                 [&](Eigen::Index begin, Eigen::Index end) {
                   const Eigen::Index b = end - begin;
                   const minibatch batch = indices.subspan(static_cast<std::size_t>(begin),
                                                           static_cast<std::size_t>(b));
                   std::vector<observation_stream> streams = group_streams(batch, seed, stream_purpose::elbo);
                   std::vector<matrix_t<double>> log_joint;
                   sample_log_joint(f, params, batch, begin, qs, streams, opts.num_samples, opts.columns_per_call,
                                    false, log_joint);
                   for (std::size_t i = 0; i < qs.size(); ++i)
                     row_means(log_joint[i], entropy[i].segment(begin, b), begin, e[i]);
                   if (qs.size() == 2)
                     row_means(log_joint[1] - log_joint[0], entropy[1].segment(begin, b) - entropy[0].segment(begin, b),
                               begin, e[2]);
                 });
  for (per_observation_estimate& x : e) summarize(x);
  return e;
}

inline void require_elbo_options(const elbo_options& opts, std::string_view fn) {
  require_positive(opts.num_samples, fn, "num_samples");
  require_execution(opts.columns_per_call, opts.threads, fn);
}

}  // namespace detail

/// Unbiased Monte Carlo estimates of L[q_n] (see the file comment) for the observations
/// `indices` of `f` (distinct column indices in [0, N)) and the given Gaussians `q`
/// (k x |indices|, column j for indices[j]), with `opts.num_samples` draws per observation.
/// Draws one seed from `rng`: two calls from engines in the same state use the same standard
/// normal noise for each observation (common random numbers).
/// @throws invalid_argument for an empty set, an index out of range or repeated, q of the wrong shape or
///         not finite, S = 0, columns_per_call <= 0 or threads < 0
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
per_observation_estimate estimate_elbo(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                       const diagonal_gaussians& q, Rng& rng, const elbo_options& opts = {}) {
  constexpr std::string_view fn = "estimate_elbo";
  detail::require_elbo_options(opts, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  detail::require_gaussians(q, f.latent_dim(), static_cast<Eigen::Index>(indices.size()), fn, "q");
  return detail::elbo_estimates(f, params, indices, {&q}, detail::draw_stream_seed(rng), opts)[0];
}

/// The amortized ELBO L[q] of the encoder's q(z | x_n) for the observations `indices`.
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
per_observation_estimate estimate_elbo(const F& f, const objective_vector_t<F>& params, minibatch indices, Rng& rng,
                                       const elbo_options& opts = {}) {
  constexpr std::string_view fn = "estimate_elbo";
  detail::require_elbo_options(opts, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  const diagonal_gaussians q = encoder_gaussians(f, params, indices);
  return detail::elbo_estimates(f, params, indices, {&q}, detail::draw_stream_seed(rng), opts)[0];
}

/// The amortized ELBO of every column of the objective's data.
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
per_observation_estimate estimate_elbo(const F& f, const objective_vector_t<F>& params, Rng& rng,
                                       const elbo_options& opts = {}) {
  const std::vector<Eigen::Index> all = detail::all_columns(f.num_observations());
  return estimate_elbo(f, params, minibatch(all), rng, opts);
}

}  // namespace latent
