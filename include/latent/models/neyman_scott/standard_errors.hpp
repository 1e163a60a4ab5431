#pragma once
/// @file
/// Standard errors of the Neyman–Scott (random-effects) maximum-likelihood estimates from the
/// observed information, in closed form.
///
/// With W = sum_n w_n, SS = sum_n w_n S_n (within-group sums of squares), E = sum_n w_n (ybar_n
/// - mu), D = sum_n w_n (ybar_n - mu)^2 and lambda = theta + K tau2, the marginal
/// log-likelihood is
///
///     l = -(K-1) W/2 log theta - SS/(2 theta) - W/2 log lambda - K D/(2 lambda) + const,
///
/// and its second derivatives in (theta, mu, tau2) are, with
/// l_ll = W/(2 lambda^2) - K D/lambda^3 (the second derivative in lambda),
///
///     d2l/dtheta2   = (K-1) W/(2 theta^2) - SS/theta^3 + l_ll
///     d2l/dtheta dtau2 = K l_ll,        d2l/dtau2^2 = K^2 l_ll
///     d2l/dmu2      = -K W/lambda,      d2l/dmu dtheta = -K E/lambda^2,   d2l/dmu dtau2 = -K^2 E/lambda^2.
///
/// The observed information is minus this matrix and the asymptotic covariance of the MLE its
/// inverse. (At the MLE, E = 0, so mu is uncorrelated with (theta, tau2).) With a fixed prior
/// only theta is estimated, and its variance is 1 / I_theta,theta. Weights count as repetitions.
/// Not valid on the boundary tau2 = 0 (`neyman_scott_marginal_mle`'s `on_boundary`), where the
/// MLE is not asymptotically normal.

#include <latent/core/error.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/neyman_scott/kernels.hpp>
#include <latent/models/neyman_scott/model.hpp>
#include <latent/models/neyman_scott/params.hpp>

#include <Eigen/Core>
#include <Eigen/Cholesky>

#include <cmath>
#include <string_view>

namespace latent {

/// Standard errors of (theta, mu, tau2) from the observed information (see the file comment).
struct neyman_scott_standard_errors {
  double theta = 0.0;  ///< SE of theta
  double mu = 0.0;     ///< SE of mu (0 with a fixed prior)
  double tau2 = 0.0;   ///< SE of tau2 (0 with a fixed prior)
  Eigen::Matrix3d information = Eigen::Matrix3d::Zero();  ///< observed information in (theta, mu, tau2)
  Eigen::Matrix3d covariance = Eigen::Matrix3d::Zero();   ///< asymptotic covariance (fixed entries 0)
};

/// The observed information -d2 l / d(theta, mu, tau2)^2 of the data `y` (K x N, one group per
/// column, weights as repetitions) at `params` (any point, not only the MLE). O(N K).
/// @throws invalid_argument if `y` is empty, has fewer than 2 rows or a non-finite entry, or
///         `params` has theta or tau2 not finite and > 0 or mu not finite.
template <Scalar S>
Eigen::Matrix3d neyman_scott_observed_information(const basic_observations<S>& y,
                                                  const basic_neyman_scott_params<S>& params) {
  constexpr std::string_view fn = "neyman_scott_observed_information";
  detail::require(y.dim() >= 2 && y.size() >= 1, fn,
                  "argument 'y' must be K x N with K >= 2 replicates and N >= 1 groups, got ", y.dim(), " x ", y.size());
  detail::require_finite(y.x(), fn, "y");
  const double theta = params.theta, mu = params.mu, tau2 = params.tau2;
  detail::require(std::isfinite(theta) && theta > 0.0, fn, "argument 'params.theta' must be finite and > 0, got ", theta);
  detail::require(std::isfinite(mu), fn, "argument 'params.mu' must be finite, got ", mu);
  detail::require(std::isfinite(tau2) && tau2 > 0.0, fn, "argument 'params.tau2' must be finite and > 0, got ", tau2);
  const detail::neyman_scott_sums t = detail::neyman_scott_block_sums(y, 0, y.size(), mu);
  const double K = static_cast<double>(y.dim()), lambda = theta + K * tau2;
  const double l_ll = t.weight / (2.0 * lambda * lambda) - K * t.dev2 / (lambda * lambda * lambda);
  Eigen::Matrix3d h;
  h(0, 0) = (K - 1.0) * t.weight / (2.0 * theta * theta) - t.ss / (theta * theta * theta) + l_ll;
  h(0, 2) = h(2, 0) = K * l_ll;
  h(2, 2) = K * K * l_ll;
  h(1, 1) = -K * t.weight / lambda;
  h(0, 1) = h(1, 0) = -K * t.dev / (lambda * lambda);
  h(1, 2) = h(2, 1) = K * h(0, 1);
  return -h;
}

/// Standard errors of the fitted model's estimates on the data `y` it was fitted to (K x N):
/// all three with an estimated prior, theta alone with a fixed one. The model's parameters
/// should be the MLE (e.g. after EM, or set from `neyman_scott_marginal_mle` when not on the
/// boundary). O(N K).
/// @throws invalid_argument if `y` does not have K rows or is not finite; numerical_error if
///         the information is not positive definite (the parameters are not a maximum).
template <Scalar S>
neyman_scott_standard_errors standard_errors(const basic_neyman_scott<S>& fitted, const basic_observations<S>& y) {
  constexpr std::string_view fn = "neyman_scott standard_errors";
  detail::require(y.dim() == fitted.replicates(), fn, "argument 'y' must have K = ", fitted.replicates(),
                  " rows (replicates per group), got ", y.dim());
  neyman_scott_standard_errors r;
  r.information = neyman_scott_observed_information(y, fitted.params());
  if (fitted.options().prior == neyman_scott_prior::fixed) {
    const double i = r.information(0, 0);
    if (!(i > 0.0))
      throw numerical_error(concat(fn, ": the observed information of theta is ", i, " (not a maximum)"));
    r.covariance(0, 0) = 1.0 / i;
  } else {
    const Eigen::LLT<Eigen::Matrix3d> llt(r.information);
    if (llt.info() != Eigen::Success)
      throw numerical_error(concat(fn, ": the observed information is not positive definite (not a maximum)"));
    r.covariance = llt.solve(Eigen::Matrix3d::Identity());
  }
  r.theta = std::sqrt(r.covariance(0, 0));
  r.mu = std::sqrt(r.covariance(1, 1));
  r.tau2 = std::sqrt(r.covariance(2, 2));
  return r;
}

}  // namespace latent
