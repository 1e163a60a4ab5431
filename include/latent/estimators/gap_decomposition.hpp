#pragma once
/// @file
/// The decomposition of the inference gap of an amortized objective (Cremer, Li and Duvenaud
/// 2018, "Inference suboptimality in variational autoencoders"), for any `AmortizedObjective`.
///
/// For each observation x_n of a set, with q the encoder's q(z | x_n) and q* the best diagonal
/// Gaussian for x_n alone,
///
///   log p(x_n) - L[q] = (log p(x_n) - L[q*])  +  (L[q*] - L[q])
///                        approximation gap       amortization gap
///
/// the first what the family costs (no diagonal Gaussian is the posterior), the second what
/// sharing one encoder across observations costs. Estimated as
///
///  1. q* = `fit_local_gaussians` from the encoder's q (cubature sample-average objective,
///     L-BFGS to convergence; see estimators/local_gaussians.hpp);
///  2. L[q] and L[q*] by `estimate_elbo` with `elbo_samples` FRESH draws per observation (not
///     the points q* was fitted to, so both are unbiased), the SAME draws eps for both
///     (z = m + s (.) eps with each one's m and s: common random numbers);
///  3. log p^(x_n) by `estimate_log_likelihood` with `importance_samples` draws from the
///     proposal q* (close to the posterior, so the weights are well behaved).
///
/// Then approximation gap = log p^ - L^[q*] and amortization gap = L^[q*] - L^[q], with
/// standard errors:
///  - approximation: sqrt(SE[log p^]^2 + SE[L^[q*]]^2) (independent draws);
///  - amortization: the standard error of the mean of the S per-draw differences
///    log p(x_n, z*_s) - log p(x_n, z_s) (plus the exact entropy difference), which common
///    random numbers make much smaller than either ELBO's own SE.
/// Sums and means over the set add independent observations (per_observation_estimate).
/// log p^ is biased low by about SE^2 / 2 (see estimators/importance_sampling.hpp), and so is
/// the approximation gap; L^[q*] estimates the ELBO of the q* found, which is at most the
/// family's optimum, so the amortization gap is, if anything, underestimated.

#include <latent/core/amortized.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/estimators/elbo.hpp>
#include <latent/estimators/importance_sampling.hpp>
#include <latent/estimators/local_gaussians.hpp>
#include <latent/estimators/per_observation.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// Options of `gap_decomposition`.
struct gap_options {
  /// S, the fresh draws per observation for L[q] and L[q*] (>= 1; a standard error needs 2).
  std::size_t elbo_samples = 1000;
  /// K, the importance samples per observation for log p^(x) with proposal q* (>= 1).
  std::size_t importance_samples = 5000;
  /// The cubature points per observation q* is fitted to (even); 0 means 2 max(k, 16).
  std::size_t optimization_samples = 0;
  /// The optimizer's budget and stopping rules for q* (`local_gaussian_options`).
  std::size_t max_evaluations = 1000;
  double gradient_tolerance = 1e-6;
  double value_tolerance = 1e-12;
  /// At most this many latent points per `log_joint` call (memory bound; never changes the
  /// draws, so other values change results at most by rounding).
  Eigen::Index columns_per_call = 8192;
  /// Threads over groups of observations; 0 means the OpenMP default. Identical results for
  /// every thread count.
  int threads = 0;
};

/// The three estimates, the two gaps (see the file comment) and the optimization of q*.
struct gap_decomposition_result {
  per_observation_estimate amortized_elbo;     ///< L[q], q the encoder's
  per_observation_estimate optimal_elbo;       ///< L[q*], fresh draws
  log_likelihood_estimate log_likelihood;      ///< log p^(x), proposal q*
  per_observation_estimate approximation_gap;  ///< log p^(x) - L[q*]
  per_observation_estimate amortization_gap;   ///< L[q*] - L[q] (common random numbers)
  local_gaussians_result optimization;         ///< q* and how each fit ended
};

/// The gap decomposition of the observations `indices` of `f` (distinct column indices in
/// [0, N)). Draws one seed from `rng`; every stage has its own per-observation streams, so the
/// result is the same for any thread count.
/// @throws invalid_argument for an empty set, an index out of range or repeated, S = 0,
///         K = 0, an odd optimization_samples, max_evaluations = 0, a negative tolerance,
///         columns_per_call <= 0 or threads < 0
/// @throws numerical_error if the objective is not finite where it is evaluated
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
gap_decomposition_result gap_decomposition(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                           Rng& rng, const gap_options& opts = {}) {
  constexpr std::string_view fn = "gap_decomposition";
  const local_gaussian_options local{.num_samples = opts.optimization_samples,
                                     .max_evaluations = opts.max_evaluations,
                                     .gradient_tolerance = opts.gradient_tolerance,
                                     .value_tolerance = opts.value_tolerance,
                                     .columns_per_call = opts.columns_per_call,
                                     .threads = opts.threads};
  const elbo_options elbo{.num_samples = opts.elbo_samples, .columns_per_call = opts.columns_per_call,
                          .threads = opts.threads};
  const importance_options importance{.num_samples = opts.importance_samples,
                                      .columns_per_call = opts.columns_per_call, .threads = opts.threads};
  detail::require(opts.elbo_samples > 0, fn, "option 'elbo_samples' must be positive, got 0");
  detail::require(opts.importance_samples > 0, fn, "option 'importance_samples' must be positive, got 0");
  detail::require_local_options(local, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  const std::uint64_t seed = detail::draw_stream_seed(rng);

  gap_decomposition_result r;
  const diagonal_gaussians q = encoder_gaussians(f, params, indices);
  r.optimization = detail::fit_local(f, params, indices, q, seed, local);
  std::vector<per_observation_estimate> elbos =
      detail::elbo_estimates(f, params, indices, {&q, &r.optimization.q}, seed, elbo);
  r.amortized_elbo = std::move(elbos[0]);
  r.optimal_elbo = std::move(elbos[1]);
  r.amortization_gap = std::move(elbos[2]);
  r.log_likelihood = detail::importance_estimate(f, params, indices, r.optimization.q, seed, importance);
  r.approximation_gap.indices = r.log_likelihood.indices;
  r.approximation_gap.value = r.log_likelihood.value - r.optimal_elbo.value;
  r.approximation_gap.standard_error =
      (r.log_likelihood.standard_error.array().square() + r.optimal_elbo.standard_error.array().square())
          .sqrt()
          .matrix();
  detail::summarize(r.approximation_gap);
  return r;
}

/// The gap decomposition of every column of the objective's data.
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
gap_decomposition_result gap_decomposition(const F& f, const objective_vector_t<F>& params, Rng& rng,
                                           const gap_options& opts = {}) {
  const std::vector<Eigen::Index> all = detail::all_columns(f.num_observations());
  return gap_decomposition(f, params, minibatch(all), rng, opts);
}

}  // namespace latent
