#pragma once
/// @file
/// The Neyman–Scott / one-way random-effects normal model, fitted by exact EM, with the closed
/// forms that make it the library's reference for "what does EM converge to".
///
/// Data: a K x N matrix Y (K >= 2 replicates per group; **each column is one group**).
///
///     z_n   ~ N(mu, tau2)          n = 1..N   (the latent group mean)
///     y_nk  ~ N(z_n, theta)        k = 1..K   (replicates, independent given z_n)
///
/// Marginally each column is y_n ~ N(mu 1, theta I + tau2 1 1^T). Its covariance has the
/// eigenvalue lambda = theta + K tau2 along 1/sqrt(K) and theta on the (K-1)-dimensional
/// complement, so with the group mean ybar_n and the within-group sum of squares
/// S_n = sum_k (y_nk - ybar_n)^2,
///
///     log p(y_n) = -K/2 log(2 pi) - (K-1)/2 log theta - 1/2 log(theta + K tau2)
///                  - S_n / (2 theta) - (ybar_n - mu)^2 / (2 (theta/K + tau2)),
///
/// with no K x K matrix anywhere.
///
/// Posterior of a group mean (the E-step): z_n | y_n ~ N(m_n, v) with precision
/// K/theta + 1/tau2. Writing s = theta/K and the shrinkage factor B = tau2 / (tau2 + s):
///
///     m_n = mu + B (ybar_n - mu),      v = B s.
///
/// Expected complete-data sufficient statistics (weighted by the sample weights w_n):
///
///     R  = sum_n w_n E[sum_k (y_nk - z_n)^2] = sum_n w_n (S_n + K ((1-B)^2 (ybar_n-mu)^2 + B s))
///     M1 = sum_n w_n E[z_n - c],   M2 = sum_n w_n E[(z_n - c)^2]   (c: a fixed centre, see below)
///
/// M-step: theta = R / (K W); if the prior is estimated, mu = c + M1/W and
/// tau2 = M2/W - (M1/W)^2, with W = sum_n w_n. With a fixed prior only theta moves.
///
/// The joint maximizer over (theta, z_1..z_N) is z_n = ybar_n, theta = sum S_n / (N K), which
/// tends to theta (K-1)/K, not theta, as N grows with K fixed (Neyman & Scott, 1948,
/// Econometrica 16(1)): the number of nuisance parameters grows with the data. The marginal MLE
/// (what EM finds) integrates the z_n out and is consistent.
///
/// See docs/models/neyman_scott.md for the closed forms and the derivation of the fixed-prior
/// root.

#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string_view>
#include <vector>

namespace latent {

/// Parameters of the Neyman–Scott model.
struct neyman_scott_params {
  double theta = 1.0;  ///< replicate (within-group) variance, > 0
  double mu = 0.0;     ///< prior mean of the group means
  double tau2 = 1.0;   ///< prior variance of the group means, > 0 in the model (0 only as an MLE boundary)
};

/// Whether EM estimates the prior of the group means or keeps it fixed.
enum class neyman_scott_prior {
  estimated,  ///< EM moves theta, mu and tau2
  fixed       ///< mu and tau2 stay as given; EM moves theta only
};

/// Options of `neyman_scott`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `prior` | `estimated` (mu, tau2 fitted by EM) or `fixed` (mu, tau2 kept as given) | `estimated` |
struct neyman_scott_options {
  neyman_scott_prior prior = neyman_scott_prior::estimated;
};

/// Expected sufficient statistics of the Neyman–Scott model (additive and scalable).
///
/// The moments of the group means are kept about a centre `center` (the prior mean when the
/// statistics were created), so that tau2 = M2/W - (M1/W)^2 does not lose digits when |mu| is
/// large compared with tau. Adding statistics with another centre re-centres them exactly.
struct neyman_scott_stats {
  double weight = 0.0;            ///< W = sum of the group weights
  double replicate_weight = 0.0;  ///< K W, the number (weight) of replicates
  double residual = 0.0;          ///< R = sum w_n E[sum_k (y_nk - z_n)^2]
  double center = 0.0;            ///< c, the reference point of M1 and M2
  double first = 0.0;             ///< M1 = sum w_n E[z_n - c]
  double second = 0.0;            ///< M2 = sum w_n E[(z_n - c)^2]

  /// Merge another block's statistics (re-centred onto this centre if needed).
  neyman_scott_stats& operator+=(const neyman_scott_stats& o) {
    weight += o.weight;
    replicate_weight += o.replicate_weight;
    residual += o.residual;
    if (o.center == center) {
      first += o.first;
      second += o.second;
    } else {
      // sum w (m - c) = sum w (m - c_o) + W_o (c_o - c); likewise for the squares.
      const double d = o.center - center;
      first += o.first + o.weight * d;
      second += o.second + 2.0 * d * o.first + o.weight * d * d;
    }
    return *this;
  }
  /// Scale every sum by `w` (online EM's decay).
  neyman_scott_stats& operator*=(double w) {
    weight *= w;
    replicate_weight *= w;
    residual *= w;
    first *= w;
    second *= w;
    return *this;
  }
};

/// The posterior of the group means: z_n | y_n ~ N(mean(n), variance) (same variance for all).
struct neyman_scott_posterior {
  Eigen::RowVectorXd mean;  ///< 1 x N posterior means m_n
  double variance = 0.0;    ///< v = 1 / (K/theta + 1/tau2)
};

/// Result of the joint maximization over (theta, z_1..z_N).
struct neyman_scott_joint_estimate {
  Eigen::RowVectorXd z;  ///< 1 x N: z_n = ybar_n, the group means
  double theta = 0.0;    ///< sum w_n S_n / (K W): tends to theta (K-1)/K, not theta
};

/// A maximizer of the marginal likelihood (closed form or 1-D root).
struct neyman_scott_mle {
  neyman_scott_params params;  ///< the maximizer (tau2 may be exactly 0 on the boundary)
  double log_likelihood = 0.0; ///< the marginal log-likelihood there (sum over groups)
  bool on_boundary = false;    ///< estimated prior only: the maximum is at tau2 = 0
  /// Fixed prior only: every local maximum of the log-likelihood in theta (sorted). The
  /// likelihood in theta can have two local maxima when the fixed prior contradicts the data;
  /// `params.theta` is the global one.
  std::vector<double> local_maxima;
};

namespace detail {

/// Group means (1 x B) and within-group sums of squares (1 x B) of the columns of `y`.
inline void neyman_scott_group_summaries(const Eigen::Ref<const Eigen::MatrixXd>& y,
                                         Eigen::RowVectorXd& mean, Eigen::RowVectorXd& ss) {
  mean = y.colwise().mean();
  ss = (y.rowwise() - mean).colwise().squaredNorm();
}

/// Weighted totals that every closed form is a function of.
struct neyman_scott_totals {
  double K = 0.0;          ///< replicates per group
  double weight = 0.0;     ///< W = sum w_n
  double within = 0.0;     ///< SS_w = sum w_n S_n
  double mean = 0.0;       ///< ybar = sum w_n ybar_n / W
  double between = 0.0;    ///< V = sum w_n (ybar_n - ybar)^2 / W (variance of the group means)
  Eigen::RowVectorXd group_mean;  ///< ybar_n
};

/// Checks the data of a free function (K >= 2, N >= 1, finite, positive total weight).
inline void neyman_scott_require_data(const observations& y, std::string_view function) {
  require(y.dim() >= 2, function, "argument 'y' must have K >= 2 rows (replicates per group), got ",
          y.dim());
  require(y.size() >= 1, function, "argument 'y' must have at least one column (group), got 0");
  require_finite(y.x(), function, "y");
  require(y.total_weight() > 0.0, function,
          "argument 'y' must have a positive total weight, got ", y.total_weight());
}

/// Two-pass weighted totals of the data (the variance of the means about their own mean).
inline neyman_scott_totals neyman_scott_data_totals(const observations& y, std::string_view function) {
  neyman_scott_require_data(y, function);
  neyman_scott_totals t;
  Eigen::RowVectorXd ss;
  neyman_scott_group_summaries(y.x(), t.group_mean, ss);
  t.K = static_cast<double>(y.dim());
  if (y.weighted()) {
    const Eigen::RowVectorXd w = y.weights().transpose();
    t.weight = w.sum();
    t.within = w.dot(ss);
    t.mean = w.dot(t.group_mean) / t.weight;
    t.between = (w.array() * (t.group_mean.array() - t.mean).square()).sum() / t.weight;
  } else {
    t.weight = static_cast<double>(y.size());
    t.within = ss.sum();
    t.mean = t.group_mean.mean();
    t.between = (t.group_mean.array() - t.mean).square().sum() / t.weight;
  }
  require(t.within > 0.0, function,
          "argument 'y' must vary within at least one group (the within-group sum of squares is ",
          t.within, "): otherwise the likelihood is unbounded as theta -> 0");
  return t;
}

/// The marginal log-likelihood from the totals; tau2 = 0 is allowed (the boundary).
/// sum_n w_n (ybar_n - mu)^2 = W (V + (ybar - mu)^2).
inline double neyman_scott_log_likelihood(const neyman_scott_totals& t, const neyman_scott_params& p) {
  const double s = p.theta / t.K;
  const double dev2 = t.weight * (t.between + (t.mean - p.mu) * (t.mean - p.mu));
  return t.weight * (-0.5 * t.K * log_two_pi - 0.5 * (t.K - 1.0) * std::log(p.theta) -
                     0.5 * std::log(t.K * (s + p.tau2))) -
         0.5 * t.within / p.theta - 0.5 * dev2 / (s + p.tau2);
}

}  // namespace detail

/// The joint maximizer of p(y, z; theta) over (theta, z_1..z_N): z_n = ybar_n and
/// theta = sum_n w_n S_n / (K W).
///
/// Since E[S_n] = (K-1) theta, this theta tends to theta (K-1)/K as N -> infinity with K fixed:
/// the Neyman–Scott inconsistency. (Its standard error is theta sqrt(2 (K-1) / N) / K.)
/// @param y  K x N data, one group per column, optionally weighted
/// @throws invalid_argument if K < 2, N = 0, an entry is not finite, or the total weight is 0
inline neyman_scott_joint_estimate neyman_scott_joint_mle(const observations& y) {
  const auto t = detail::neyman_scott_data_totals(y, "neyman_scott_joint_mle");
  return {t.group_mean, t.within / (t.K * t.weight)};
}

/// The closed-form marginal MLE of (theta, mu, tau2) (the estimated-prior model).
///
/// In terms of theta and lambda = theta + K tau2 the log-likelihood separates:
///
///     l = -(K-1)W/2 log theta - SS_w/(2 theta) - W/2 log lambda - K W (V + (ybar-mu)^2)/(2 lambda) + const
///
/// so mu = ybar, and without the constraint lambda >= theta (tau2 >= 0) the maximizer is
/// theta_w = SS_w / ((K-1) W) and lambda = K V. Hence, if V >= theta_w / K (interior):
///
///     theta = SS_w / ((K-1) W),   mu = ybar,   tau2 = V - theta / K.
///
/// Otherwise (V < theta_w / K) the unconstrained maximizer is infeasible. Each term is unimodal
/// in its own variable, so the constrained maximum has no interior stationary point and lies on
/// lambda = theta, i.e. tau2 = 0, where all N K values are i.i.d. N(mu, theta):
///
///     theta = (SS_w + K W V) / (K W),   mu = ybar,   tau2 = 0   (`on_boundary == true`).
///
/// (This theta is the total sum of squares about the grand mean over K W, and it is smaller
/// than SS_w / ((K-1) W) exactly when V < theta_w / K.) EM reaches the interior maximum at a
/// linear rate but approaches the boundary one only sublinearly: tau2_t ~ 1/(c t).
/// @param y  K x N data, one group per column, optionally weighted
/// @throws invalid_argument if K < 2, N = 0, an entry is not finite, the total weight is 0, or
///         there is no variation within any group (the likelihood is unbounded)
inline neyman_scott_mle neyman_scott_marginal_mle(const observations& y) {
  const auto t = detail::neyman_scott_data_totals(y, "neyman_scott_marginal_mle");
  neyman_scott_mle r;
  const double theta_w = t.within / ((t.K - 1.0) * t.weight);
  r.params.mu = t.mean;
  if (t.between >= theta_w / t.K) {
    r.params.theta = theta_w;
    r.params.tau2 = t.between - theta_w / t.K;
  } else {
    r.params.theta = (t.within + t.K * t.weight * t.between) / (t.K * t.weight);
    r.params.tau2 = 0.0;
  }
  r.on_boundary = r.params.tau2 == 0.0;
  r.log_likelihood = detail::neyman_scott_log_likelihood(t, r.params);
  return r;
}

/// The marginal MLE of theta when the prior N(mu, tau2) of the group means is fixed.
///
/// With a = K tau2, s_w = SS_w / W and d = K sum_n w_n (ybar_n - mu)^2 / W, the score is
///
///     2 dl/dtheta / W = g(theta) = s_w/theta^2 - (K-1)/theta + d/(theta+a)^2 - 1/(theta+a).
///
/// The first pair is positive below theta_w = s_w/(K-1) and negative above; the second is
/// positive below theta_b = d - a and negative above. So every root lies in
/// (0, max(theta_w, theta_b)], and g(0+) = +inf. Multiplying by theta^2 (theta+a)^2 > 0 gives
/// the cubic
///
///     p(theta) = (s_w - (K-1) theta)(theta + a)^2 + (d - theta - a) theta^2,
///
/// with the same sign as g. p can have up to three positive roots (two local maxima of the
/// likelihood when the fixed prior contradicts the data), so the search brackets: the roots of
/// p' (a quadratic) cut (0, max(theta_w, theta_b)] into intervals on which p is monotone, each
/// holding at most one root; each bracketed root is polished by Newton's method on g,
/// safeguarded by bisection, to full precision. The root with the highest log-likelihood is
/// returned; all local maxima are listed in `local_maxima`.
/// @param y     K x N data, one group per column, optionally weighted
/// @param mu    the fixed prior mean (finite)
/// @param tau2  the fixed prior variance (finite, > 0)
/// @throws invalid_argument for bad data (as `neyman_scott_marginal_mle`), a non-finite `mu`,
///         or `tau2` not finite and positive
inline neyman_scott_mle neyman_scott_fixed_prior_mle(const observations& y, double mu, double tau2) {
  constexpr std::string_view fn = "neyman_scott_fixed_prior_mle";
  detail::require(std::isfinite(mu), fn, "argument 'mu' must be finite, got ", mu);
  detail::require(std::isfinite(tau2) && tau2 > 0.0, fn,
                  "argument 'tau2' must be finite and > 0, got ", tau2);
  const auto t = detail::neyman_scott_data_totals(y, fn);
  const double K = t.K, a = K * tau2, sw = t.within / t.weight;
  const double d = K * (t.between + (t.mean - mu) * (t.mean - mu));
  const double theta_w = sw / (K - 1.0), theta_b = d - a;
  const double hi = std::max(theta_w, theta_b);

  const auto g = [&](double th) {
    const double u = th + a;
    return (sw / th - (K - 1.0)) / th + (d / u - 1.0) / u;
  };
  const auto dg = [&](double th) {
    const double u = th + a;
    return (-2.0 * sw / th + (K - 1.0)) / (th * th) + (-2.0 * d / u + 1.0) / (u * u);
  };

  // Critical points of p: p'(x) = 3 c3 x^2 + 2 c2 x + c1 with the cubic's coefficients.
  const double c3 = -K, c2 = sw - 2.0 * a * (K - 1.0) + d - a, c1 = 2.0 * a * sw - a * a * (K - 1.0);
  std::vector<double> cuts{0.0};
  {
    const double A = 3.0 * c3, B = 2.0 * c2, C = c1, disc = B * B - 4.0 * A * C;
    if (disc > 0.0) {
      const double q = -0.5 * (B + std::copysign(std::sqrt(disc), B));
      for (double x : {q / A, q != 0.0 ? C / q : 0.0})
        if (x > 0.0 && x < hi) cuts.push_back(x);
    }
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.push_back(hi);

  // Safeguarded Newton on g in [lo, up] with g(lo) > 0 > g(up): a Newton step is taken when it
  // stays inside the bracket and shrinks fast enough, otherwise a bisection step (rtsafe).
  const auto polish = [&](double lo, double up) {
    constexpr double eps = std::numeric_limits<double>::epsilon();
    double x = 0.5 * (lo + up), step = up - lo, step_old = step;
    for (int it = 0; it < 400; ++it) {
      const double gx = g(x), dgx = dg(x);
      if (gx == 0.0) return x;
      if (gx > 0.0) lo = x; else up = x;
      const double newton = dgx != 0.0 ? x - gx / dgx : lo;
      step_old = step;
      double next;
      if (newton > lo && newton < up && std::abs(2.0 * gx) <= std::abs(step_old * dgx)) {
        next = newton;
      } else {
        next = 0.5 * (lo + up);
      }
      step = next - x;
      if (std::abs(step) <= 2.0 * eps * x || up - lo <= 4.0 * eps * up) return next;
      x = next;
    }
    return x;
  };

  neyman_scott_mle r;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    const double lo = cuts[i], up = cuts[i + 1];
    if (!(up > lo)) continue;
    const double glo = lo == 0.0 ? 1.0 : g(lo), gup = g(up);
    if (gup == 0.0) {
      if (r.local_maxima.empty() || r.local_maxima.back() != up) r.local_maxima.push_back(up);
    } else if (glo > 0.0 && gup < 0.0) {
      r.local_maxima.push_back(polish(lo, up));
    }
  }
  if (r.local_maxima.empty()) {
    // Only reachable through rounding at a double root; fall back to bisection on (0, hi].
    double lo = 0.0, up = hi;
    while (g(up) > 0.0) up *= 2.0;
    r.local_maxima.push_back(polish(lo, up));
  }
  r.params.mu = mu;
  r.params.tau2 = tau2;
  r.log_likelihood = -std::numeric_limits<double>::infinity();
  for (const double th : r.local_maxima) {
    const double ll = detail::neyman_scott_log_likelihood(t, {th, mu, tau2});
    if (ll > r.log_likelihood) {
      r.log_likelihood = ll;
      r.params.theta = th;
    }
  }
  return r;
}

/// The Neyman–Scott / random-effects normal model as an `EMModel`.
///
/// Data: `latent::observations` holding a K x N matrix, one group of K replicates per column,
/// optionally with a weight per group (a weight of 2 counts the group twice).
///
/// ```cpp
/// latent::neyman_scott model(5);                 // K = 5, start theta = 1, mu = 0, tau2 = 1
/// auto fit = latent::em(model, y, {.tolerance = 1e-12});
/// fit.params.theta;                              // marginal MLE: consistent for theta
/// latent::neyman_scott_joint_mle(y).theta;       // joint MLE: tends to theta (K-1)/K
/// ```
///
/// Cost per EM iteration: O(N K) (a mean and a sum of squares per column, then O(N) scalar work).
class neyman_scott {
 public:
  using data_type = observations;
  using stats_type = neyman_scott_stats;
  using params_type = neyman_scott_params;

  /// A model with K = `replicates` per group, starting (or fixed-prior) parameters `start`.
  /// With `options.prior == fixed`, `start.mu` and `start.tau2` are the fixed prior.
  /// @throws invalid_argument if `replicates` < 2 or `start` is invalid (see `set_params`)
  explicit neyman_scott(Eigen::Index replicates, const neyman_scott_params& start = {},
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
  const neyman_scott_params& params() const { return params_; }

  /// Set the parameters. With a fixed prior, `p.mu` and `p.tau2` become the fixed prior.
  /// @throws invalid_argument unless theta and tau2 are finite and > 0 and mu is finite
  void set_params(const neyman_scott_params& p) {
    check_params(p, "neyman_scott::set_params");
    params_ = p;
  }

  /// N, the number of groups (columns). @throws invalid_argument if `x` is not K x N, N >= 1.
  Eigen::Index num_observations(const observations& x) const {
    check_shape(x, "neyman_scott::num_observations");
    return x.size();
  }
  /// The total weight of the groups (N if unweighted): EM's tolerance is per unit of it.
  /// @throws invalid_argument if `x` is not K x N with N >= 1, or its total weight is 0
  double observation_weight(const observations& x) const {
    check_shape(x, "neyman_scott::observation_weight");
    detail::require(x.total_weight() > 0.0, "neyman_scott::observation_weight",
                    "argument 'x' must have a positive total weight, got ", x.total_weight());
    return x.total_weight();
  }

  /// Statistics of no data, centred at the current prior mean.
  neyman_scott_stats zero_stats() const {
    neyman_scott_stats s;
    s.center = params_.mu;
    return s;
  }

  /// E-step over the groups (columns) [begin, end): adds the expected sufficient statistics
  /// into `stats` and returns the sum of the groups' weighted marginal log-likelihoods.
  /// Column operations only: one pass for the means, one for the sums of squares.
  /// @throws invalid_argument for a wrong shape, a bad range, or a non-finite entry in the block
  double e_step(const observations& x, Eigen::Index begin, Eigen::Index end, neyman_scott_stats& stats) const {
    constexpr std::string_view fn = "neyman_scott::e_step";
    check_shape(x, fn);
    detail::require(0 <= begin && begin <= end && end <= x.size(), fn, "block [", begin, ", ", end,
                    ") must lie in [0, ", x.size(), "]");
    const Eigen::Index b = end - begin;
    if (b == 0) return 0.0;
    const auto y = x.x().middleCols(begin, b);
    Eigen::RowVectorXd mean, ss;
    detail::neyman_scott_group_summaries(y, mean, ss);
    const double mu = params_.mu;
    double w = 0.0, sum_ss = 0.0, sum_dev = 0.0, sum_dev2 = 0.0;
    if (x.weighted()) {
      const Eigen::RowVectorXd wt = x.weights().segment(begin, b).transpose();
      const Eigen::ArrayXXd dev = mean.array() - mu;
      w = wt.sum();
      sum_ss = wt.dot(ss);
      sum_dev = (wt.array() * dev).sum();
      sum_dev2 = (wt.array() * dev.square()).sum();
    } else {
      const Eigen::ArrayXXd dev = mean.array() - mu;
      w = static_cast<double>(b);
      sum_ss = ss.sum();
      sum_dev = dev.sum();
      sum_dev2 = dev.square().sum();
    }

    const double K = static_cast<double>(k_), theta = params_.theta, tau2 = params_.tau2;
    const double s = theta / K, shrink = tau2 / (tau2 + s), v = shrink * s;
    const double ll = w * (-0.5 * K * log_two_pi - 0.5 * (K - 1.0) * std::log(theta) -
                           0.5 * std::log(theta + K * tau2)) -
                      0.5 * sum_ss / theta - 0.5 * sum_dev2 / (s + tau2);
    if (!std::isfinite(ll)) {
      detail::require_finite(y, fn, "x");  // names the bad entry (column index within the block)
      throw numerical_error(detail::concat(fn, ": log-likelihood of columns [", begin, ", ", end,
                                           ") is ", ll));
    }

    // E[z - c] = (mu - c) + B dev,  E[(z - c)^2] = (mu - c + B dev)^2 + v.
    const double off = mu - stats.center;
    stats.weight += w;
    stats.replicate_weight += K * w;
    stats.residual += sum_ss + K * ((1.0 - shrink) * (1.0 - shrink) * sum_dev2 + v * w);
    stats.first += w * off + shrink * sum_dev;
    stats.second += w * off * off + 2.0 * off * shrink * sum_dev + shrink * shrink * sum_dev2 + v * w;
    return ll;
  }

  /// M-step: theta = R / (K W); with an estimated prior also mu = c + M1/W and
  /// tau2 = M2/W - (M1/W)^2.
  /// @throws numerical_error (parameters unchanged) if the statistics carry no weight or give a
  ///         theta or tau2 that is not finite and positive (e.g. tau2 collapsing to 0)
  void m_step(const neyman_scott_stats& s) {
    if (!(s.weight > 0.0) || !(s.replicate_weight > 0.0))
      throw numerical_error(detail::concat("neyman_scott::m_step: statistics carry no weight (W = ",
                                           s.weight, ")"));
    neyman_scott_params p = params_;
    p.theta = s.residual / s.replicate_weight;
    if (options_.prior == neyman_scott_prior::estimated) {
      const double m1 = s.first / s.weight;
      p.mu = s.center + m1;
      p.tau2 = s.second / s.weight - m1 * m1;
    }
    if (!(std::isfinite(p.theta) && p.theta > 0.0))
      throw numerical_error(detail::concat("neyman_scott::m_step: theta would be ", p.theta));
    if (!(std::isfinite(p.mu) && std::isfinite(p.tau2) && p.tau2 > 0.0))
      throw numerical_error(detail::concat("neyman_scott::m_step: prior would be mu = ", p.mu,
                                           ", tau2 = ", p.tau2,
                                           " (tau2 -> 0: see neyman_scott_marginal_mle)"));
    params_ = p;
  }

  /// Marginal log-likelihood of each group (1 x N, unweighted).
  /// @throws invalid_argument if `x` is not K x N with N >= 1 or has a non-finite entry
  Eigen::RowVectorXd group_log_likelihood(const observations& x) const {
    constexpr std::string_view fn = "neyman_scott::group_log_likelihood";
    check_shape(x, fn);
    detail::require_finite(x.x(), fn, "x");
    Eigen::RowVectorXd mean, ss;
    detail::neyman_scott_group_summaries(x.x(), mean, ss);
    const double K = static_cast<double>(k_), theta = params_.theta, tau2 = params_.tau2;
    const double c = -0.5 * K * log_two_pi - 0.5 * (K - 1.0) * std::log(theta) -
                     0.5 * std::log(theta + K * tau2);
    return (c - 0.5 * ss.array() / theta -
            0.5 * (mean.array() - params_.mu).square() / (theta / K + tau2))
        .matrix();
  }

  /// Total (weighted) marginal log-likelihood of the data.
  double log_likelihood(const observations& x) const {
    const Eigen::RowVectorXd l = group_log_likelihood(x);
    return x.weighted() ? l.dot(x.weights().transpose()) : l.sum();
  }

  /// The posterior of every group mean z_n given its column.
  neyman_scott_posterior posterior(const observations& x) const {
    constexpr std::string_view fn = "neyman_scott::posterior";
    check_shape(x, fn);
    detail::require_finite(x.x(), fn, "x");
    const double s = params_.theta / static_cast<double>(k_);
    const double shrink = params_.tau2 / (params_.tau2 + s);
    neyman_scott_posterior p;
    p.mean = (params_.mu + shrink * (x.x().colwise().mean().array() - params_.mu)).matrix();
    p.variance = shrink * s;
    return p;
  }

  /// Draw `n` groups (a K x n matrix) from the model: z_n = mu + sqrt(tau2) e_n first, then the
  /// replicates y_nk = z_n + sqrt(theta) e_nk, all from the caller's engine.
  /// @throws invalid_argument if n < 0
  template <std::uniform_random_bit_generator Rng>
  Eigen::MatrixXd sample(Eigen::Index n, Rng& rng) const {
    detail::require(n >= 0, "neyman_scott::sample", "argument 'n' must be >= 0, got ", n);
    const Eigen::RowVectorXd z =
        (params_.mu + std::sqrt(params_.tau2) * standard_normal(1, n, rng).array()).matrix();
    Eigen::MatrixXd y = std::sqrt(params_.theta) * standard_normal(k_, n, rng);
    y.rowwise() += z;
    return y;
  }

 private:
  void check_params(const neyman_scott_params& p, std::string_view fn) const {
    detail::require(std::isfinite(p.theta) && p.theta > 0.0, fn,
                    "argument 'theta' must be finite and > 0, got ", p.theta);
    detail::require(std::isfinite(p.mu), fn, "argument 'mu' must be finite, got ", p.mu);
    detail::require(std::isfinite(p.tau2) && p.tau2 > 0.0, fn,
                    "argument 'tau2' must be finite and > 0 (for an estimated prior, tau2 = 0 ",
                    "is a fixed point EM cannot leave), got ", p.tau2);
  }
  void check_shape(const observations& x, std::string_view fn) const {
    detail::require(x.dim() == k_, fn, "argument 'x' must have K = ", k_,
                    " rows (replicates per group), got ", x.dim());
    detail::require(x.size() >= 1, fn, "argument 'x' must have at least one column (group), got 0");
  }

  Eigen::Index k_;
  neyman_scott_options options_;
  neyman_scott_params params_;
};

}  // namespace latent
