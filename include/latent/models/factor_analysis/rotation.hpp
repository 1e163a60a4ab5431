#pragma once
/// @file
/// Rotation of factor loadings: varimax (orthogonal, Kaiser 1958) and promax (oblique,
/// Hendrickson & White 1964), with the conventions of R's `stats::varimax` and `stats::promax`:
/// the rotated loadings are L T for a k x k matrix T, and the factor correlation matrix is
/// Phi = T^{-1} T^{-T} (the identity for an orthogonal T), so that L L^T = (L T) Phi (L T)^T.
///
/// **Varimax** maximizes, over orthogonal T, the criterion
///
///     V(T) = sum_a [ sum_j z_ja^4 - (1/p) (sum_j z_ja^2)^2 ],   z = N^{-1} L T,
///
/// with N = diag(||row_j of L||) under Kaiser normalization (rows scaled to unit length before
/// rotating and back after), N = I without. Each iteration takes the SVD B = U D V^T of
/// B = (N^{-1}L)^T (z^3 - z diag(1^T z^2) / p) and sets T = U V^T, stopping when sum(D) grows
/// by less than a factor 1 + eps (R's rule; eps = 1e-5 as R). A row of zeros is left unscaled
/// (R would divide by zero): it contributes nothing to V.
///
/// **Promax** (power m, 4 as R) starts from the varimax solution X = L T_v, takes the target
/// Q = X |X|^{m-1} (elementwise), regresses it on X by least squares (U = (X^T X)^{-1} X^T Q),
/// rescales U's columns so that diag((U^T U)^{-1}) = 1 and returns X U, with T = T_v U.
///
/// Everything is computed in double; O(p k^2) per varimax iteration.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>
#include <Eigen/LU>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <cmath>
#include <cstddef>
#include <string_view>

namespace latent {

/// Which rotation to apply to factor loadings.
enum class factor_rotation {
  none,     ///< the loadings as fitted (T = I)
  varimax,  ///< orthogonal: R's stats::varimax, Kaiser-normalized
  promax    ///< oblique: R's stats::promax with power m = 4
};

/// The rotation's name as R and the command line spell it.
constexpr std::string_view to_string(factor_rotation r) {
  switch (r) {
    case factor_rotation::none: return "none";
    case factor_rotation::varimax: return "varimax";
    case factor_rotation::promax: return "promax";
  }
  return "unknown";
}

/// Options of `varimax`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `normalize` | Kaiser normalization: rotate the loadings with rows scaled to unit length | true |
/// | `tolerance` | stop when sum of singular values grows by less than a factor 1 + tolerance (R's eps) | 1e-5 |
/// | `max_iterations` | at most this many SVD updates (R: 1000) | 1000 |
struct varimax_options {
  bool normalize = true;
  double tolerance = 1e-5;
  std::size_t max_iterations = 1000;
};

/// Rotated loadings: `loadings` = L `rotation` for the loadings L that were rotated.
struct rotated_loadings {
  Eigen::MatrixXd loadings;            ///< p x k, L T
  Eigen::MatrixXd rotation;            ///< k x k, T (orthogonal for varimax)
  Eigen::MatrixXd factor_correlation;  ///< k x k, Phi = T^{-1} T^{-T} (I for orthogonal rotations)
  std::size_t iterations = 0;          ///< varimax SVD updates made (0 for none, or k = 1)
};

namespace detail {

/// Loadings must be p x k with p >= 1, k >= 1 and finite.
template <class Derived>
void check_loadings(const Eigen::MatrixBase<Derived>& l, std::string_view fn) {
  require(l.rows() >= 1 && l.cols() >= 1, fn, "argument 'loadings' must be non-empty, got ", l.rows(), " x ",
          l.cols());
  require_finite(l, fn, "loadings");
}

inline rotated_loadings unrotated(Eigen::MatrixXd l) {
  const Eigen::Index k = l.cols();
  return {std::move(l), Eigen::MatrixXd::Identity(k, k), Eigen::MatrixXd::Identity(k, k), 0};
}

}  // namespace detail

/// Varimax rotation of p x k loadings (see the file comment); with k = 1 the loadings are
/// returned unchanged (T = 1), as R does.
/// @throws invalid_argument if `loadings` is empty or not finite, or an option is out of range
///         (tolerance must be finite and >= 0, max_iterations >= 1).
template <class Derived>
rotated_loadings varimax(const Eigen::MatrixBase<Derived>& loadings, const varimax_options& options = {}) {
  constexpr std::string_view fn = "varimax";
  detail::check_loadings(loadings, fn);
  detail::require(std::isfinite(options.tolerance) && options.tolerance >= 0.0, fn,
                  "option 'tolerance' must be finite and >= 0, got ", options.tolerance);
  detail::require(options.max_iterations >= 1, fn, "option 'max_iterations' must be >= 1, got ",
                  options.max_iterations);
  Eigen::MatrixXd x = loadings.template cast<double>();
  const Eigen::Index p = x.rows(), k = x.cols();
  if (k < 2) return detail::unrotated(std::move(x));
  Eigen::VectorXd scale = Eigen::VectorXd::Ones(p);
  if (options.normalize) {
    scale = x.rowwise().norm();
    for (Eigen::Index j = 0; j < p; ++j)
      if (!(scale(j) > 0.0)) scale(j) = 1.0;  // a zero row stays zero
    x = scale.cwiseInverse().asDiagonal() * x;
  }
  Eigen::MatrixXd t = Eigen::MatrixXd::Identity(k, k), z, b;
  double d = 0.0;
  std::size_t it = 0;
  while (it < options.max_iterations) {
    ++it;
    z = x * t;
    const Eigen::RowVectorXd col_ss = z.cwiseAbs2().colwise().sum() / static_cast<double>(p);
    b.noalias() = x.transpose() * (z.cwiseAbs2().cwiseProduct(z) - z * col_ss.asDiagonal());
    const Eigen::JacobiSVD<Eigen::MatrixXd> svd(b, Eigen::ComputeFullU | Eigen::ComputeFullV);
    t.noalias() = svd.matrixU() * svd.matrixV().transpose();
    const double previous = d;
    d = svd.singularValues().sum();
    if (d < previous * (1.0 + options.tolerance)) break;
  }
  rotated_loadings r;
  r.loadings = scale.asDiagonal() * (x * t);
  r.rotation = std::move(t);
  r.factor_correlation = Eigen::MatrixXd::Identity(k, k);
  r.iterations = it;
  return r;
}

/// Promax rotation of p x k loadings with power `power` (R's m, default 4; see the file
/// comment); with k = 1 the loadings are returned unchanged.
/// @throws invalid_argument if `loadings` is empty or not finite, `power` is not finite and
///         >= 1, or the varimax loadings do not have full column rank (the regression has no
///         unique solution).
template <class Derived>
rotated_loadings promax(const Eigen::MatrixBase<Derived>& loadings, double power = 4.0) {
  constexpr std::string_view fn = "promax";
  detail::check_loadings(loadings, fn);
  detail::require(std::isfinite(power) && power >= 1.0, fn, "argument 'power' must be finite and >= 1, got ", power);
  const Eigen::Index k = loadings.cols();
  if (k < 2) return detail::unrotated(loadings.template cast<double>());
  rotated_loadings v = varimax(loadings);
  const Eigen::MatrixXd& x = v.loadings;
  const Eigen::MatrixXd q = (x.array() * x.array().abs().pow(power - 1.0)).matrix();
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(x);
  detail::require(qr.rank() == k, fn, "argument 'loadings' must have full column rank k = ", k, ", got rank ",
                  qr.rank());
  Eigen::MatrixXd u = qr.solve(q);
  const Eigen::MatrixXd utu_inv = (u.transpose() * u).inverse();
  u = u * utu_inv.diagonal().cwiseSqrt().asDiagonal();
  rotated_loadings r;
  r.loadings = x * u;
  r.rotation = v.rotation * u;
  const Eigen::MatrixXd t_inv = r.rotation.inverse();
  r.factor_correlation = t_inv * t_inv.transpose();
  r.iterations = v.iterations;
  return r;
}

/// The rotation `which` of `loadings` (varimax with its defaults, promax with m = 4).
template <class Derived>
rotated_loadings rotate(const Eigen::MatrixBase<Derived>& loadings, factor_rotation which) {
  switch (which) {
    case factor_rotation::varimax: return varimax(loadings);
    case factor_rotation::promax: return promax(loadings);
    case factor_rotation::none: break;
  }
  detail::check_loadings(loadings, "rotate");
  detail::require(which == factor_rotation::none, "rotate", "argument 'which' is not a known rotation: ",
                  static_cast<int>(which));
  return detail::unrotated(loadings.template cast<double>());
}

}  // namespace latent
