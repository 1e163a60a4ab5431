#pragma once
/// @file
/// `basic_neyman_scott<S>`: the Neyman–Scott / random-effects normal model as an `EMModel`
/// (see models/neyman_scott.hpp for the maths).

#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/neyman_scott/kernels.hpp>
#include <latent/models/neyman_scott/params.hpp>
#include <latent/models/neyman_scott/stats.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string_view>

namespace latent {

/// The Neyman–Scott / random-effects normal model as an `EMModel`, computing in `S` (float or
/// double).
///
/// Data: `basic_observations<S>` holding a K x N matrix, **one group of K replicates per
/// column**, optionally with a weight per group (a weight of 2 counts the group twice).
///
/// ```cpp
/// latent::neyman_scott model(5);                 // K = 5, start theta = 1, mu = 0, tau2 = 1
/// auto fit = latent::em(model, y, {.tolerance = 1e-12});
/// fit.params.theta;                              // marginal MLE: consistent for theta
/// latent::neyman_scott_joint_mle(y).theta;       // joint MLE: tends to theta (K-1)/K
/// ```
///
/// Precision: the per-group summaries (ybar_n, S_n) and their sums over chunks of at most
/// 1024 groups are computed in S; the chunks are added, the statistics kept and the
/// log-likelihood returned in double; the M-step runs in double and rounds the new parameters
/// to S.
///
/// Cost per EM iteration: O(N K) (a mean and a sum of squares per column, then O(N) scalar work).
template <Scalar S>
class basic_neyman_scott {
 public:
  using scalar_type = S;
  using data_type = basic_observations<S>;
  /// The E-step reads observation weights (`x.weight(n)`), so the solvers accept weighted data.
  static constexpr bool supports_weights = true;
  using stats_type = basic_neyman_scott_stats<S>;
  using params_type = basic_neyman_scott_params<S>;
  using posterior_type = basic_neyman_scott_posterior<S>;
  using sample_type = basic_neyman_scott_sample<S>;

  /// A model with K = `replicates` per group, starting (or fixed-prior) parameters `start`.
  /// With `options.prior == fixed`, `start.mu` and `start.tau2` are the fixed prior.
  /// @throws invalid_argument if `replicates` < 2 or `start` is invalid (see `set_params`)
  explicit basic_neyman_scott(Eigen::Index replicates, const params_type& start = {},
                              const neyman_scott_options& options = {})
      : k_(replicates), options_(options) {
    detail::require(replicates >= 2, "neyman_scott",
                    "argument 'replicates' must be >= 2 (K replicates per group), got ", replicates);
    detail::require(options.prior == neyman_scott_prior::estimated ||
                        options.prior == neyman_scott_prior::fixed,
                    "neyman_scott", "option 'prior' must be estimated or fixed, got ",
                    static_cast<int>(options.prior));
    check_params(start, "neyman_scott");
    params_ = start;
  }

  /// K, the replicates per group (rows of the data).
  Eigen::Index replicates() const { return k_; }
  /// The options given at construction.
  const neyman_scott_options& options() const { return options_; }
  /// The current parameters.
  const params_type& params() const { return params_; }

  /// Set the parameters. With a fixed prior, `p.mu` and `p.tau2` become the fixed prior.
  /// @throws invalid_argument unless theta and tau2 are finite and > 0 and mu is finite
  void set_params(const params_type& p) {
    check_params(p, "neyman_scott::set_params");
    params_ = p;
  }

  /// The number of free parameters BIC and AIC count: 3 (theta, mu, tau2) with an estimated
  /// prior, 1 (theta) with a fixed one.
  Eigen::Index num_free_parameters() const { return options_.prior == neyman_scott_prior::estimated ? 3 : 1; }

  /// The largest relative change of a parameter between `a` and `b` (EM's optional
  /// parameter-change stopping test): |a - b| / max(|a|, |b|, tiny) for theta and tau2, and for
  /// mu |a - b| / max(|a|, |b|, sqrt(tau2 + theta/K)), i.e. relative to the spread of a group
  /// mean when mu is near 0 (a mean of 1e-12 must not block convergence). O(1).
  double params_distance(const params_type& a, const params_type& b) const {
    constexpr double tiny = std::numeric_limits<double>::min();
    const auto rel = [](double u, double v, double floor) {
      return std::abs(u - v) / std::max({std::abs(u), std::abs(v), floor});
    };
    const double K = static_cast<double>(k_);
    const double spread = std::sqrt(std::max(static_cast<double>(a.tau2) + a.theta / K,
                                             static_cast<double>(b.tau2) + b.theta / K));
    return std::max({rel(a.theta, b.theta, tiny), rel(a.mu, b.mu, std::max(spread, tiny)),
                     rel(a.tau2, b.tau2, tiny)});
  }

  /// N, the number of groups (columns). @throws invalid_argument if `x` is not K x N, N >= 1.
  Eigen::Index num_observations(const data_type& x) const {
    check_shape(x, "neyman_scott::num_observations");
    return x.size();
  }
  /// The total weight of the groups (N if unweighted): EM's tolerance is per unit of it.
  /// @throws invalid_argument if `x` is not K x N with N >= 1, or its total weight is 0
  double observation_weight(const data_type& x) const {
    check_shape(x, "neyman_scott::observation_weight");
    detail::require(x.total_weight() > 0.0, "neyman_scott::observation_weight",
                    "argument 'x' must have a positive total weight, got ", x.total_weight());
    return static_cast<double>(x.total_weight());
  }

  /// Statistics of no data, centred at the current prior mean.
  stats_type zero_stats() const {
    stats_type s;
    s.center = params_.mu;
    return s;
  }

  /// E-step over the groups (columns) [begin, end): adds the expected sufficient statistics
  /// into `stats` and returns the sum of the groups' weighted marginal log-likelihoods.
  /// Column operations only: one pass for the means, one for the sums of squares.
  /// @throws invalid_argument for a wrong shape, a bad range, or a non-finite entry in the block
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats) const {
    constexpr std::string_view fn = "neyman_scott::e_step";
    check_shape(x, fn);
    detail::require(0 <= begin && begin <= end && end <= x.size(), fn, "block [", begin, ", ", end,
                    ") must lie in [0, ", x.size(), "]");
    if (end == begin) return 0.0;
    const detail::neyman_scott_sums t = detail::neyman_scott_block_sums(x, begin, end, params_.mu);
    const double K = static_cast<double>(k_), theta = params_.theta, tau2 = params_.tau2;
    const double ll = detail::neyman_scott_log_likelihood(t, K, theta, tau2);
    if (!std::isfinite(ll)) {
      detail::require_finite(x.x().middleCols(begin, end - begin), fn, "x");  // names the bad entry
      throw numerical_error(detail::concat(fn, ": log-likelihood of columns [", begin, ", ", end,
                                           ") is ", ll));
    }

    // E[z - c] = (mu - c) + B dev,  E[(z - c)^2] = (mu - c + B dev)^2 + v.
    const double s = theta / K, shrink = tau2 / (tau2 + s), v = shrink * s, w = t.weight;
    const double off = static_cast<double>(params_.mu) - static_cast<double>(stats.center);
    stats.weight += w;
    stats.replicate_weight += K * w;
    stats.residual += t.ss + K * ((1.0 - shrink) * (1.0 - shrink) * t.dev2 + v * w);
    stats.first += w * off + shrink * t.dev;
    stats.second += w * off * off + 2.0 * off * shrink * t.dev + shrink * shrink * t.dev2 + v * w;
    return ll;
  }

  /// M-step (in double, rounded to S): theta = R / (K W); with an estimated prior also
  /// mu = c + M1/W and tau2 = M2/W - (M1/W)^2.
  /// @throws numerical_error (parameters unchanged) if the statistics carry no weight or give a
  ///         theta or tau2 that is not finite and positive in S (e.g. tau2 collapsing to 0)
  void m_step(const stats_type& s) {
    if (!(s.weight > 0.0) || !(s.replicate_weight > 0.0))
      throw numerical_error(detail::concat("neyman_scott::m_step: statistics carry no weight (W = ",
                                           s.weight, ")"));
    params_type p = params_;
    p.theta = static_cast<S>(s.residual / s.replicate_weight);
    if (options_.prior == neyman_scott_prior::estimated) {
      const double m1 = s.first / s.weight;
      p.mu = static_cast<S>(s.center + m1);
      p.tau2 = static_cast<S>(s.second / s.weight - m1 * m1);
    }
    if (!(std::isfinite(p.theta) && p.theta > S(0)))
      throw numerical_error(detail::concat("neyman_scott::m_step: theta would be ", p.theta));
    if (!(std::isfinite(p.mu) && std::isfinite(p.tau2) && p.tau2 > S(0)))
      throw numerical_error(detail::concat("neyman_scott::m_step: prior would be mu = ", p.mu,
                                           ", tau2 = ", p.tau2,
                                           " (tau2 -> 0: see neyman_scott_marginal_mle)"));
    params_ = p;
  }

  /// Marginal log-likelihood of each group (observation = column), 1 x N, unweighted, in
  /// double (the group summaries are computed in S).
  /// @throws invalid_argument if `x` is not K x N with N >= 1 or has a non-finite entry
  Eigen::RowVectorXd log_likelihood_per_observation(const data_type& x) const {
    constexpr std::string_view fn = "neyman_scott::log_likelihood_per_observation";
    check_data(x, fn);
    row_vector_t<S> mean, ss;
    detail::neyman_scott_group_summaries(x.x(), mean, ss);
    const double K = static_cast<double>(k_), theta = params_.theta, tau2 = params_.tau2;
    const double c = -0.5 * K * log_two_pi - 0.5 * (K - 1.0) * std::log(theta) - 0.5 * std::log(theta + K * tau2);
    return (c - 0.5 * ss.template cast<double>().array() / theta -
            0.5 * (mean.template cast<double>().array() - static_cast<double>(params_.mu)).square() / (theta / K + tau2))
        .matrix();
  }
  [[deprecated("use log_likelihood_per_observation")]] Eigen::RowVectorXd group_log_likelihood(const data_type& x) const {
    return log_likelihood_per_observation(x);
  }

  /// Total (weighted) marginal log-likelihood of the data, in double.
  /// @throws invalid_argument if `x` is not K x N with N >= 1 or has a non-finite entry
  double log_likelihood(const data_type& x) const {
    check_data(x, "neyman_scott::log_likelihood");
    const auto t = detail::neyman_scott_block_sums(x, 0, x.size(), params_.mu);
    return detail::neyman_scott_log_likelihood(t, static_cast<double>(k_), params_.theta, params_.tau2);
  }

  /// Bayesian information criterion -2 log L + p log n, with p = `num_free_parameters()` and n
  /// the number of groups (the total group weight for weighted data). Lower is better.
  double bic(const data_type& x) const {
    return -2.0 * log_likelihood(x) + static_cast<double>(num_free_parameters()) * std::log(observation_weight(x));
  }
  /// Akaike information criterion -2 log L + 2 p (p as in `bic`). Lower is better.
  double aic(const data_type& x) const {
    return -2.0 * log_likelihood(x) + 2.0 * static_cast<double>(num_free_parameters());
  }

  /// The posterior of every group mean z_n given its column.
  posterior_type posterior(const data_type& x) const {
    check_data(x, "neyman_scott::posterior");
    const S s = params_.theta / static_cast<S>(k_);
    const S shrink = params_.tau2 / (params_.tau2 + s);
    posterior_type p;
    p.mean = (params_.mu + shrink * (x.x().colwise().mean().array() - params_.mu)).matrix();
    p.variance = shrink * s;
    return p;
  }

  /// Draw `n` groups with their latent means from the model: z = mu + sqrt(tau2) e (1 x n)
  /// first, then the replicates y_nk = z_n + sqrt(theta) e_nk (K x n), all from the caller's
  /// engine (float and double consume it identically).
  /// @throws invalid_argument if n < 0
  template <std::uniform_random_bit_generator Rng>
  sample_type sample_joint(Eigen::Index n, Rng& rng) const {
    detail::require(n >= 0, "neyman_scott::sample", "argument 'n' must be >= 0, got ", n);
    sample_type d;
    d.z = (params_.mu + std::sqrt(params_.tau2) * standard_normal<S>(1, n, rng).array()).matrix();
    d.y = std::sqrt(params_.theta) * standard_normal<S>(k_, n, rng);
    d.y.rowwise() += d.z;
    return d;
  }
  /// The K x n data of `sample_joint(n, rng)` (the same draws).
  template <std::uniform_random_bit_generator Rng>
  matrix_t<S> sample(Eigen::Index n, Rng& rng) const {
    return sample_joint(n, rng).y;
  }

 private:
  void check_params(const params_type& p, std::string_view fn) const {
    detail::require(std::isfinite(p.theta) && p.theta > S(0), fn,
                    "argument 'theta' must be finite and > 0, got ", p.theta);
    detail::require(std::isfinite(p.mu), fn, "argument 'mu' must be finite, got ", p.mu);
    detail::require(std::isfinite(p.tau2) && p.tau2 > S(0), fn,
                    "argument 'tau2' must be finite and > 0 (for an estimated prior, tau2 = 0 ",
                    "is a fixed point EM cannot leave), got ", p.tau2);
  }
  void check_shape(const data_type& x, std::string_view fn) const {
    detail::require(x.dim() == k_, fn, "argument 'x' must have K = ", k_,
                    " rows (replicates per group), got ", x.dim());
    detail::require(x.size() >= 1, fn, "argument 'x' must have at least one column (group), got 0");
  }
  void check_data(const data_type& x, std::string_view fn) const {
    check_shape(x, fn);
    detail::require_finite(x.x(), fn, "x");
  }

  Eigen::Index k_;
  neyman_scott_options options_;
  params_type params_;
};

/// The double-precision Neyman–Scott model.
using neyman_scott = basic_neyman_scott<double>;

}  // namespace latent
