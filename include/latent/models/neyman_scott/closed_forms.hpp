#pragma once
/// @file
/// Closed forms of the Neyman–Scott model: the joint maximizer over (theta, z), the marginal
/// MLE with an estimated prior, and the marginal MLE of theta under a fixed prior (a 1-D root).
///
/// Each takes `basic_observations<S>` (weights allowed) or any Eigen matrix expression of
/// scalar S, works in double throughout (the O(N K) data pass sums chunks in S, then adds them
/// in double), and returns its estimates in S and log-likelihoods in double.

#include <latent/core/error.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/neyman_scott/kernels.hpp>
#include <latent/models/neyman_scott/params.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string_view>
#include <vector>

namespace latent {

/// Result of the joint maximization over (theta, z_1..z_N).
template <Scalar S>
struct basic_neyman_scott_joint_estimate {
  row_vector_t<S> z;  ///< 1 x N: z_n = ybar_n, the group means
  S theta = S(0);     ///< sum w_n S_n / (K W): tends to theta (K-1)/K, not theta
};
using neyman_scott_joint_estimate = basic_neyman_scott_joint_estimate<double>;

/// A maximizer of the marginal likelihood (closed form or 1-D root).
template <Scalar S>
struct basic_neyman_scott_mle {
  basic_neyman_scott_params<S> params;  ///< the maximizer (tau2 may be exactly 0 on the boundary)
  double log_likelihood = 0.0;          ///< the marginal log-likelihood there (sum over groups)
  bool on_boundary = false;             ///< estimated prior only: the maximum is at tau2 = 0
  /// Fixed prior only: every local maximum of the log-likelihood in theta (sorted). The
  /// likelihood in theta can have two local maxima when the fixed prior contradicts the data;
  /// `params.theta` is the global one.
  std::vector<S> local_maxima;
};
using neyman_scott_mle = basic_neyman_scott_mle<double>;

/// The joint maximizer of p(y, z; theta) over (theta, z_1..z_N): z_n = ybar_n and
/// theta = sum_n w_n S_n / (K W).
///
/// Since E[S_n] = (K-1) theta, this theta tends to theta (K-1)/K as N -> infinity with K fixed:
/// the Neyman–Scott inconsistency. (Its standard error is theta sqrt(2 (K-1) / N) / K.)
/// @param y  K x N data, one group per column, optionally weighted
/// @throws invalid_argument if K < 2, N = 0, an entry is not finite, or the total weight is 0
template <Scalar S>
basic_neyman_scott_joint_estimate<S> neyman_scott_joint_mle(const basic_observations<S>& y) {
  constexpr std::string_view fn = "neyman_scott_joint_mle";
  const auto t = detail::neyman_scott_data_totals(y, fn, true);
  return {t.group_mean, t.variance(t.within / (t.K * t.weight), fn, "theta")};
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
template <Scalar S>
basic_neyman_scott_mle<S> neyman_scott_marginal_mle(const basic_observations<S>& y) {
  constexpr std::string_view fn = "neyman_scott_marginal_mle";
  const auto t = detail::neyman_scott_data_totals(y, fn);
  const double theta_w = t.within / ((t.K - 1.0) * t.weight);
  double theta = theta_w, tau2 = t.between - theta_w / t.K;
  if (!(t.between >= theta_w / t.K)) {
    theta = (t.within + t.K * t.weight * t.between) / (t.K * t.weight);
    tau2 = 0.0;
  }
  basic_neyman_scott_mle<S> r;
  r.params = {t.variance(theta, fn, "theta"), t.location(t.mean), t.variance(tau2, fn, "tau2")};
  r.on_boundary = r.params.tau2 == S(0);
  // The log-likelihood at the rounded estimates, evaluated on the scaled totals.
  const int e = t.exponent;
  r.log_likelihood = t.log_likelihood(detail::neyman_scott_log_likelihood(
      t, std::ldexp(static_cast<double>(r.params.theta), -2 * e), std::ldexp(static_cast<double>(r.params.mu), -e),
      std::ldexp(static_cast<double>(r.params.tau2), -2 * e)));
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
template <Scalar S>
basic_neyman_scott_mle<S> neyman_scott_fixed_prior_mle(const basic_observations<S>& y, double mu, double tau2) {
  constexpr std::string_view fn = "neyman_scott_fixed_prior_mle";
  detail::require(std::isfinite(mu), fn, "argument 'mu' must be finite, got ", mu);
  detail::require(std::isfinite(tau2) && tau2 > 0.0, fn,
                  "argument 'tau2' must be finite and > 0, got ", tau2);
  const auto t = detail::neyman_scott_data_totals(y, fn);
  // In the units of the scaled totals (see neyman_scott_data_totals); mu and tau2 are the
  // caller's, so they are scaled too.
  const int e = t.exponent;
  const double mu_s = std::ldexp(mu, -e), tau2_s = std::ldexp(tau2, -2 * e);
  // tau2_s may underflow to 0 for huge data (a prior negligible at the data's scale: the
  // formulas below hold for a = 0); it must not overflow.
  detail::require(std::isfinite(tau2_s), fn, "argument 'tau2' (", tau2, ") is too large for data of magnitude 2^", e);
  const double K = t.K, a = K * tau2_s, sw = t.within / t.weight;
  const double d = K * (t.between + (t.mean - mu_s) * (t.mean - mu_s));
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

  std::vector<double> roots;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    const double lo = cuts[i], up = cuts[i + 1];
    if (!(up > lo)) continue;
    const double glo = lo == 0.0 ? 1.0 : g(lo), gup = g(up);
    if (gup == 0.0) {
      if (roots.empty() || roots.back() != up) roots.push_back(up);
    } else if (glo > 0.0 && gup < 0.0) {
      roots.push_back(polish(lo, up));
    }
  }
  if (roots.empty()) {
    // Only reachable through rounding at a double root; fall back to bisection on (0, hi].
    double lo = 0.0, up = hi;
    while (g(up) > 0.0) up *= 2.0;
    roots.push_back(polish(lo, up));
  }
  basic_neyman_scott_mle<S> r;
  r.params.mu = static_cast<S>(mu);
  r.params.tau2 = static_cast<S>(tau2);
  r.log_likelihood = -std::numeric_limits<double>::infinity();
  bool assigned = false;
  for (const double root : roots) {
    const S th = t.variance(root, fn, "theta");
    r.local_maxima.push_back(th);
    const double ll = t.log_likelihood(detail::neyman_scott_log_likelihood(
        t, std::ldexp(static_cast<double>(th), -2 * e), mu_s, tau2_s));
    if (!assigned || ll > r.log_likelihood) {
      r.log_likelihood = ll;
      r.params.theta = th;
      assigned = true;
    }
  }
  if (!std::isfinite(r.log_likelihood) || !(r.params.theta > S(0)))
    throw numerical_error(detail::concat(fn, ": no finite maximum found (theta ", r.params.theta,
                                         ", log-likelihood ", r.log_likelihood, ")"));
  return r;
}

/// `neyman_scott_joint_mle` of an Eigen matrix or expression (unweighted groups).
template <class Derived>
auto neyman_scott_joint_mle(const Eigen::MatrixBase<Derived>& y) {
  return neyman_scott_joint_mle(basic_observations<typename Derived::Scalar>(y));
}
/// `neyman_scott_marginal_mle` of an Eigen matrix or expression (unweighted groups).
template <class Derived>
auto neyman_scott_marginal_mle(const Eigen::MatrixBase<Derived>& y) {
  return neyman_scott_marginal_mle(basic_observations<typename Derived::Scalar>(y));
}
/// `neyman_scott_fixed_prior_mle` of an Eigen matrix or expression (unweighted groups).
template <class Derived>
auto neyman_scott_fixed_prior_mle(const Eigen::MatrixBase<Derived>& y, double mu, double tau2) {
  return neyman_scott_fixed_prior_mle(basic_observations<typename Derived::Scalar>(y), mu, tau2);
}

}  // namespace latent
