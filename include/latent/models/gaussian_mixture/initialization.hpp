#pragma once
/// @file
/// Starting centers for a Gaussian mixture: k-means++ seeding with Lloyd iterations, or K
/// distinct random observations (internal; `basic_gaussian_mixture::initialize` turns them
/// into parameters by one M-step from hard labels).

#include <latent/core/error.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/options.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string_view>

namespace latent::detail::mixture {

/// Checks data for a fit of `k_count` components of type `type` (`validate` and `initialize`)
/// and returns the data's lower corner (the minimum of every coordinate, in double):
///  - at least one row and K columns, finite entries;
///  - enough observations for the covariance type: a full covariance is singular unless
///    N > d, a tied one unless N >= d + K (its within-component scatter has rank at most
///    N - K); with fewer the fit would be reg_covar alone. Diagonal and spherical covariances
///    need no more than two distinct values per coordinate and component, so d >= N is fine
///    for them. The message suggests the transpose (data given as N x d);
///  - a spread (max - min) per coordinate whose square the model can sum: spread^2 times
///    2048 max(N, W, d) (W the total weight) at most the largest S. The E-step works on
///    deviations from the mixture's mean (magnitudes do not matter, spreads do) and sums
///    weighted squares of them, in S over up to 128 terms per lane and in double over all;
///    beyond this bound they overflow and the covariances could not be represented anyway.
///    The bound for N = 1000 is 9.4e150 in double and 1.3e16 in float (N = 10^6: 3e149, 4e14).
/// @throws invalid_argument naming 'x' and saying what is wrong.
template <Scalar S>
Eigen::VectorXd check_fit_data(const basic_observations<S>& x, Eigen::Index k_count, covariance_type type,
                               std::string_view fn) {
  const Eigen::Index d = x.dim(), n = x.size();
  require(n > 0 && d > 0, fn, "argument 'x' must have at least one row and column, got ", d, " x ", n);
  require(k_count <= n, fn, "K = ", k_count, " components need at least K observations, got N = ", n);
  vector_t<S> lo_s, hi_s;  // one sequential pass: finite entries and each coordinate's range
  if (!finite_row_ranges<S>(x.x(), lo_s, hi_s)) require_finite(x.x(), fn, "x");  // names the entry
  const auto transpose_hint = [&] {
    return concat("; observations are the columns of 'x' (d x N): if your data are N x d, pass the transpose",
                  type == covariance_type::full || type == covariance_type::tied
                      ? ", or for d >= N use the diagonal or spherical covariance type"
                      : "");
  };
  if (type == covariance_type::full)
    require(n > d, fn, "argument 'x' has N = ", n, " observations in d = ", d,
            " dimensions: a full covariance is singular unless N > d (the fit would be reg_covar alone)",
            transpose_hint());
  if (type == covariance_type::tied)
    require(n >= d + k_count, fn, "argument 'x' has N = ", n, " observations in d = ", d,
            " dimensions: a tied covariance of K = ", k_count, " components is singular unless N >= d + K",
            transpose_hint());
  const Eigen::VectorXd lo = lo_s.template cast<double>();
  const Eigen::VectorXd hi = hi_s.template cast<double>();
  const double w = static_cast<double>(x.total_weight());
  const double terms = 2048.0 * std::max({static_cast<double>(n), w, static_cast<double>(d)});
  const double bound = std::sqrt(static_cast<double>(std::numeric_limits<S>::max()) / terms);
  for (Eigen::Index j = 0; j < d; ++j) {
    const double spread = hi(j) - lo(j);  // inf if it overflows double
    require(spread <= bound, fn, "argument 'x' spreads over ", spread, " (max - min) in coordinate ", j,
            ": its squared deviations overflow ", sizeof(S) == sizeof(float) ? "float" : "double",
            " (the bound is ", bound, " for N = ", n, " and total weight ", w,
            "); rescale the data (the fit is equivariant, with reg_covar scaled alike)");
  }
  return lo;
}

/// The index of the nearest center (column of `centers`) for every column of x.
template <class X, class Centers>
Eigen::VectorXi nearest(const X& x, const Centers& centers) {
  using S = typename X::Scalar;
  // ||x - m||^2 = ||x||^2 - 2 m^T x + ||m||^2; the first term does not change the argmin.
  const matrix_t<S> score =
      (S(-2) * centers.transpose() * x).colwise() + centers.colwise().squaredNorm().transpose();
  Eigen::VectorXi lab(x.cols());
  for (Eigen::Index n = 0; n < x.cols(); ++n) score.col(n).minCoeff(&lab(n));
  return lab;
}

/// K starting centers (d x K) drawn from the observations as `opts.init` says; weights are
/// the observations' weights (draws proportional to them, weighted Lloyd means).
template <Scalar S, std::uniform_random_bit_generator Rng>
matrix_t<S> initial_centers(const basic_observations<S>& x, Eigen::Index k_count, const gaussian_mixture_options& opts,
                            Rng& rng, std::string_view fn) {
  const Eigen::Index d = x.dim(), n = x.size();
  const auto& xm = x.x();
  matrix_t<S> centers(d, k_count);
  Eigen::VectorXd w(n);
  for (Eigen::Index i = 0; i < n; ++i) w(i) = static_cast<double>(x.weight(i));
  if (opts.init == mixture_init::random_points) {
    // K distinct columns with positive weight, drawn proportionally to the weights.
    require((w.array() > 0.0).count() >= k_count, fn, "need at least K observations with positive weight");
    for (Eigen::Index k = 0; k < k_count; ++k) {
      const Eigen::Index i = sample_categorical(w, rng);
      centers.col(k) = xm.col(i);
      w(i) = 0.0;
    }
    return centers;
  }
  // k-means++: each new center drawn with probability proportional to w_n D(x_n)^2.
  centers.col(0) = xm.col(sample_categorical(w, rng));
  Eigen::VectorXd d2 = (xm.colwise() - centers.col(0)).colwise().squaredNorm().transpose().template cast<double>();
  for (Eigen::Index k = 1; k < k_count; ++k) {
    const Eigen::VectorXd p = d2.cwiseProduct(w);
    // All remaining mass on existing centers (duplicated points): fall back to the weights.
    const Eigen::Index i = p.sum() > 0.0 ? sample_categorical(p, rng) : sample_categorical(w, rng);
    centers.col(k) = xm.col(i);
    d2 = d2.cwiseMin((xm.colwise() - centers.col(k)).colwise().squaredNorm().transpose().template cast<double>());
  }
  for (std::size_t it = 0; it < opts.kmeans_iterations; ++it) {
    // Weighted sums per cluster by one pass over the columns (O(N d); a dense K x N one-hot
    // product would cost K times more), in double.
    const Eigen::VectorXi lab = nearest(xm, centers);
    Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(d, k_count);
    Eigen::VectorXd cnt = Eigen::VectorXd::Zero(k_count);
    for (Eigen::Index i = 0; i < n; ++i) {
      sum.col(lab(i)) += w(i) * xm.col(i).template cast<double>();
      cnt(lab(i)) += w(i);
    }
    for (Eigen::Index k = 0; k < k_count; ++k)
      if (cnt(k) > 0.0) centers.col(k) = (sum.col(k) / cnt(k)).template cast<S>();  // an empty cluster keeps its center
  }
  return centers;
}

}  // namespace latent::detail::mixture
