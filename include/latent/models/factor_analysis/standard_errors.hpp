#pragma once
/// @file
/// Standard errors of a factor analysis ML fit from the observed information, computed
/// analytically from the sample moments.
///
/// **Information.** With mu at the sample mean (its MLE), n = the count, S the ML covariance
/// (about mu) and Sigma = Lambda Lambda^T + Psi, the log-likelihood of (Lambda, Psi) is
/// l = -n/2 (log det Sigma + tr(Sigma^{-1} S)) + const. With X = Sigma^{-1} and A = X - X S X,
/// its second derivative along parameters u, v is
///
///     d2l/du dv = -n/2 [ tr(A Sigma_uv) - tr(X Sigma_v X Sigma_u) + 2 tr(X Sigma_v X S X Sigma_u) ]
///
/// (Sigma_u = dSigma/du; Sigma_uv is 2 sym(e_i e_j^T) for the loadings Lambda_ia, Lambda_ja of one
/// factor and 0 otherwise), so every entry is a trace of known d x d matrices: the information
/// over the P = d k + d parameters (vec Lambda column-major, then Psi) is assembled from two
/// d^2 x P matrices by one GEMM, O(P^2 d^2).
///
/// **Rotation.** The likelihood is unchanged by Lambda -> Lambda Q (Q orthogonal), so the
/// information over (Lambda, Psi) is singular, with k(k-1)/2 null directions. The standard
/// errors here use the identification constraint of Anderson & Rubin (1956): Lambda is first
/// rotated so that its top k x k block is lower triangular with a positive diagonal
/// (Lambda_ia = 0 for i < a), those k(k-1)/2 entries are fixed, and the information over the
/// remaining parameters is inverted. The loadings' standard errors therefore refer to that
/// orientation (which depends on the order of the variables; reported in `loadings`). The
/// uniquenesses, the communalities h_j = (Lambda Lambda^T)_jj and every other function of
/// Lambda Lambda^T and Psi are rotation invariant, so their standard errors do not depend on
/// the constraint. The mean's are sqrt(Sigma_jj / n) (mu is uncorrelated with the rest).
///
/// Valid at an interior ML fit: not in a Heywood case (a uniqueness at its floor), where the
/// MLE is on the boundary.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/model.hpp>
#include <latent/models/factor_analysis/params.hpp>
#include <latent/models/factor_analysis/sample_moments.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>

#include <string_view>
#include <vector>

namespace latent {

/// Standard errors of a factor analysis fit (see the file comment).
struct factor_analysis_standard_errors {
  Eigen::MatrixXd loadings;          ///< d x k: Lambda rotated to the identification (top k x k block lower triangular)
  Eigen::MatrixXd loadings_se;       ///< d x k: SEs of `loadings` (0 at the k(k-1)/2 entries fixed at 0)
  Eigen::VectorXd uniquenesses_se;   ///< d: SEs of Psi_jj
  Eigen::VectorXd communalities_se;  ///< d: SEs of h_j = (Lambda Lambda^T)_jj
  Eigen::VectorXd mean_se;           ///< d: SEs of mu_j, sqrt(Sigma_jj / n)
  /// (d k + d) x (d k + d): asymptotic covariance of (vec(`loadings`) column-major, Psi), with
  /// zero rows and columns at the fixed loadings.
  Eigen::MatrixXd covariance;
};

/// The observed information -d2 l / d theta^2 over theta = (vec Lambda column-major, diag Psi)
/// of the data summarized by `moments`, at `params` (the mean is taken at the sample mean;
/// see the file comment), (d k + d) x (d k + d), in double. Singular (rank d k + d -
/// k(k-1)/2 at a maximum) because of rotations. O(d^4 k^2).
/// @throws invalid_argument if shapes disagree or Psi is not positive; numerical_error if
///         Lambda Lambda^T + Psi is not positive definite.
template <Scalar S>
Eigen::MatrixXd factor_analysis_observed_information(const basic_factor_analysis_params<S>& params,
                                                     const basic_sample_moments<S>& moments) {
  constexpr std::string_view fn = "factor_analysis_observed_information";
  const Eigen::Index d = params.loadings.rows(), k = params.loadings.cols(), np = d * k + d;
  detail::require(d >= 1 && k >= 1 && params.uniquenesses.size() == d, fn,
                  "argument 'params' must have d x k loadings and d uniquenesses, got ", d, " x ", k, " and ",
                  params.uniquenesses.size());
  detail::require(moments.covariance.rows() == d && moments.covariance.cols() == d, fn, "argument 'moments' must have d = ",
                  d, " variables, got ", moments.covariance.rows());
  detail::require((params.uniquenesses.array() > S(0)).all(), fn, "'params.uniquenesses' must be positive");
  detail::require_finite(params.loadings, fn, "params.loadings");
  const Eigen::MatrixXd lambda = params.loadings.template cast<double>();
  const Eigen::MatrixXd s = moments.covariance.template cast<double>();
  const double n = static_cast<double>(moments.count);
  Eigen::MatrixXd sigma = lambda * lambda.transpose();
  sigma.diagonal() += params.uniquenesses.template cast<double>();
  const Eigen::LLT<Eigen::MatrixXd> llt(sigma);
  if (llt.info() != Eigen::Success) throw numerical_error(concat(fn, ": Lambda Lambda^T + Psi is not positive definite"));
  const Eigen::MatrixXd x = llt.solve(Eigen::MatrixXd::Identity(d, d));
  const Eigen::MatrixXd sx = s * x, a = x - x * sx;
  // Columns: vec(Sigma_u), and vec(2 sym(X Sigma_u X S X) - X Sigma_u X).
  Eigen::MatrixXd du(d * d, np), gu(d * d, np);
  Eigen::MatrixXd sig_u(d, d), g(d, d);
  for (Eigen::Index u = 0; u < np; ++u) {
    sig_u.setZero();
    if (u < d * k) {
      const Eigen::Index i = u % d, f = u / d;
      sig_u.col(i) += lambda.col(f);
      sig_u.row(i) += lambda.col(f).transpose();
    } else {
      sig_u(u - d * k, u - d * k) = 1.0;
    }
    g.noalias() = x * sig_u * x;
    const Eigen::MatrixXd h = g * sx;
    du.col(u) = Eigen::Map<const Eigen::VectorXd>(sig_u.data(), d * d);
    const Eigen::MatrixXd t = h + h.transpose() - g;
    gu.col(u) = Eigen::Map<const Eigen::VectorXd>(t.data(), d * d);
  }
  Eigen::MatrixXd info = gu.transpose() * du;
  for (Eigen::Index f = 0; f < k; ++f)  // tr(A Sigma_uv) = 2 A_ij for Lambda_if, Lambda_jf
    info.block(f * d, f * d, d, d) += 2.0 * a;
  return 0.25 * n * (info + info.transpose()).eval();  // eval: no aliasing with the transpose
}

/// Standard errors of `fitted`'s estimates on the data summarized by `moments` (the moments it
/// was fitted to; `fitted` should be at the ML fit): see the file comment for the
/// identification of the loadings. O(d^4 k^2 + d^3 k^3).
/// @throws invalid_argument if `fitted` has no parameters or its dimension differs from the
///         moments'; numerical_error if the top k x k block of the loadings is singular (reorder
///         the variables) or the information is not positive definite (not at a maximum).
template <Scalar S>
factor_analysis_standard_errors standard_errors(const basic_factor_analysis<S>& fitted,
                                                const basic_sample_moments<S>& moments) {
  constexpr std::string_view fn = "factor_analysis standard_errors";
  detail::require(fitted.has_params(), fn, "argument 'fitted' has no parameters: fit it first");
  const Eigen::Index d = fitted.dim(), k = fitted.factors(), np = d * k + d;
  detail::require(moments.covariance.rows() == d && moments.covariance.cols() == d, fn, "argument 'moments' must have d = ",
                  d, " variables, got ", moments.covariance.rows());
  // Rotate so that the top k x k block is lower triangular: with L1^T = Q R, L1 Q = R^T.
  basic_factor_analysis_params<double> p = fitted.params().template cast<double>();
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(p.loadings.topRows(k).transpose());
  Eigen::MatrixXd q = qr.householderQ();
  const Eigen::MatrixXd r = qr.matrixQR().template triangularView<Eigen::Upper>();
  const double scale = p.loadings.topRows(k).norm();
  for (Eigen::Index a = 0; a < k; ++a) {
    if (!(std::abs(r(a, a)) > 1e-8 * scale))
      throw numerical_error(concat(fn, ": the loadings of the first k = ", k,
                                   " variables are (nearly) singular, so the identification Lambda_ia = 0 (i < a) "
                                   "does not hold; reorder the variables"));
    if (r(a, a) < 0.0) q.col(a) = -q.col(a);
  }
  p.loadings = p.loadings * q;
  for (Eigen::Index a = 1; a < k; ++a) p.loadings.col(a).head(a).setZero();  // exactly, not to rounding
  const basic_sample_moments<double> m{static_cast<double>(moments.count), moments.mean.template cast<double>(),
                                       moments.covariance.template cast<double>()};
  const Eigen::MatrixXd info = factor_analysis_observed_information(p, m);
  std::vector<Eigen::Index> free;
  for (Eigen::Index u = 0; u < np; ++u)
    if (u >= d * k || u % d >= u / d) free.push_back(u);
  const Eigen::Index nf = static_cast<Eigen::Index>(free.size());
  const Eigen::LLT<Eigen::MatrixXd> llt(info(free, free));
  if (llt.info() != Eigen::Success)
    throw numerical_error(concat(fn, ": the observed information is not positive definite (not at a maximum, or a "
                                     "Heywood case)"));
  const Eigen::MatrixXd cov_free = llt.solve(Eigen::MatrixXd::Identity(nf, nf));
  factor_analysis_standard_errors out;
  out.covariance = Eigen::MatrixXd::Zero(np, np);
  out.covariance(free, free) = cov_free;
  const Eigen::VectorXd var = out.covariance.diagonal().cwiseMax(0.0);
  out.loadings = p.loadings;
  out.loadings_se = Eigen::Map<const Eigen::MatrixXd>(var.data(), d, k).cwiseSqrt();
  out.uniquenesses_se = var.tail(d).cwiseSqrt();
  // Communalities by the delta method: dh_j / dLambda_ja = 2 Lambda_ja.
  out.communalities_se.resize(d);
  Eigen::VectorXd grad(np);
  for (Eigen::Index j = 0; j < d; ++j) {
    grad.setZero();
    for (Eigen::Index a = 0; a < k; ++a) grad(a * d + j) = 2.0 * p.loadings(j, a);
    out.communalities_se(j) = std::sqrt(grad.dot(out.covariance * grad));
  }
  Eigen::VectorXd diag_sigma = p.loadings.rowwise().squaredNorm();
  diag_sigma += p.uniquenesses;
  out.mean_se = (diag_sigma / m.count).cwiseSqrt();
  return out;
}

}  // namespace latent
