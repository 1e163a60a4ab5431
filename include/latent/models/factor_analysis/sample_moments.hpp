#pragma once
/// @file
/// Count, mean and covariance of a (weighted) sample: everything factor analysis needs from
/// the data, kept in the accumulation precision (double for float and double data).

#include <latent/core/error.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

namespace latent {

namespace detail {

/// Columns per chunk of the O(N d) passes over the data: bounds their temporaries.
inline constexpr Eigen::Index moment_chunk = 2048;

/// sum_n w_n g(x_n) over the columns of `x`, in `accumulator_t<S>`: `g` maps a chunk of
/// columns (already cast to the accumulator type) to a d x len matrix, so no N-sized
/// temporary is formed.
template <Scalar S, class Map>
vector_t<accumulator_t<S>> weighted_row_sum(const basic_observations<S>& x, Map&& g) {
  using A = accumulator_t<S>;
  vector_t<A> out = vector_t<A>::Zero(x.dim());
  for (Eigen::Index b = 0; b < x.size(); b += moment_chunk) {
    const Eigen::Index len = std::min(moment_chunk, x.size() - b);
    const matrix_t<A> v = g(x.x().middleCols(b, len).template cast<A>());
    if (x.weighted()) out.noalias() += v * x.weights().segment(b, len).template cast<A>();
    else out += v.rowwise().sum();
  }
  return out;
}

/// Checks that data of scalar S can be summarized and fitted without overflow: for every
/// variable j, with r_j = (max_n x_jn - min_n x_jn) / 2 (a bound on |x_jn - c| for any centre c
/// in the data's range, the model mean included), requires 64 r_j^2 max(N, W) <= the largest
/// S, so that squares of centred values and their (weighted) sums stay finite with room for
/// the shifts in the statistics. O(N d), no allocation per column.
/// @throws invalid_argument naming 'x' (and the variable) if not: rescaling is the caller's.
template <Scalar S>
void require_representable_spread(const basic_observations<S>& x, std::string_view fn) {
  if (x.size() == 0) return;
  vector_t<S> lo, hi;
  if (!finite_row_ranges<S>(x.x(), lo, hi)) require_finite(x.x(), fn, "x");  // names the entry
  const double count = std::max(static_cast<double>(x.size()), static_cast<double>(x.total_weight()));
  const double bound = std::sqrt(static_cast<double>(std::numeric_limits<S>::max()) / (64.0 * count));
  for (Eigen::Index j = 0; j < x.dim(); ++j) {
    const double half_range = 0.5 * static_cast<double>(hi(j)) - 0.5 * static_cast<double>(lo(j));
    require(half_range <= bound, fn, "argument 'x' is too large for ", sizeof(S) == 4 ? "float" : "double",
            ": variable ", j, " spans [", lo(j), ", ", hi(j), "], and the squares of its deviations summed over ",
            count, " observations would overflow (half-range must be <= ", bound,
            "); rescale the data, e.g. divide by a power of 10");
  }
}

/// Checks a square matrix: finite and symmetric to 1e-10 relative (the argument is named
/// `name`). One pass over the lower triangle: O(d^2), cheap enough for every E-step.
template <Scalar A>
void require_finite_symmetric(const matrix_t<A>& c, std::string_view fn, std::string_view name) {
  A scale = 0, asym = 0;
  bool finite = true;
  for (Eigen::Index j = 0; j < c.cols(); ++j)
    for (Eigen::Index i = j; i < c.rows(); ++i) {
      const A lower = c(i, j), upper = c(j, i);
      finite = finite && std::isfinite(lower) && std::isfinite(upper);
      scale = std::max(scale, std::max(std::abs(lower), std::abs(upper)));
      asym = std::max(asym, std::abs(lower - upper));
    }
  if (!finite) require_finite(c, fn, name);  // names the entry
  require(asym <= A(1e-10) * scale, fn, "argument '", name, "' must be symmetric, but max |C - C^T| = ", asym,
          " (max |C| = ", scale, ")");
}

/// The weighted mean of the columns of `x` in `accumulator_t<S>`, `w` = `x.total_weight()` (>
/// 0). If the plain sum overflows (values near the largest double), the mean is taken about
/// the mid-range c_j = max_j / 2 + min_j / 2, where the deviations cannot overflow.
template <Scalar S>
vector_t<accumulator_t<S>> weighted_mean(const basic_observations<S>& x, accumulator_t<S> w) {
  using A = accumulator_t<S>;
  vector_t<A> mean = weighted_row_sum(x, [](const matrix_t<A>& c) -> const matrix_t<A>& { return c; }) / w;
  if (mean.allFinite()) return mean;
  const vector_t<A> centre = A(0.5) * x.x().rowwise().maxCoeff().template cast<A>() +
                             A(0.5) * x.x().rowwise().minCoeff().template cast<A>();
  return centre +
         weighted_row_sum(x, [&](const matrix_t<A>& c) { return matrix_t<A>(c.colwise() - centre); }) / w;
}

/// The weighted mean and the per-variable (ML) variances of the columns of `x`, in
/// `accumulator_t<S>`, in two passes. `w` must be `x.total_weight()` (> 0).
template <Scalar S>
void weighted_mean_and_variance(const basic_observations<S>& x, accumulator_t<S> w, vector_t<accumulator_t<S>>& mean,
                                vector_t<accumulator_t<S>>& var) {
  using A = accumulator_t<S>;
  mean = weighted_mean(x, w);
  var = weighted_row_sum(x, [&](const matrix_t<A>& c) { return matrix_t<A>((c.colwise() - mean).cwiseAbs2()); }) / w;
}

}  // namespace detail

/// Count, mean and covariance of a (weighted) sample: everything factor analysis needs from
/// the data. `covariance` is the maximum-likelihood one, sum_n w_n (x_n - mean)(x_n - mean)^T
/// / count. The numbers are kept in `accumulator_t<S>` (double for float data); `S` is the
/// scalar type of the data and of the model the moments feed.
template <Scalar S>
struct basic_sample_moments {
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using A = accumulator_type;

  A count = 0;             ///< total observation weight N (> 0)
  vector_t<A> mean;        ///< d
  matrix_t<A> covariance;  ///< d x d, symmetric positive semi-definite

  /// Moments of the columns of `x` (observations are columns), in two passes (the mean, then
  /// the second moment about it), so no large numbers cancel. Each chunk of 2048 columns is
  /// centred and multiplied in S and added in A. O(N d^2).
  /// @throws invalid_argument if `x` is empty, not finite, its weights sum to 0, or its
  ///         spread is too large for S (`detail::require_representable_spread`: the variances
  ///         would overflow; rescale the data).
  static basic_sample_moments from_data(const basic_observations<S>& x) {
    constexpr std::string_view fn = "sample_moments::from_data";
    detail::require(x.size() > 0 && x.dim() > 0, fn, "argument 'x' must have at least one row and column, got ",
                    x.dim(), " x ", x.size());
    detail::require_finite(x.x(), fn, "x");
    basic_sample_moments m;
    m.count = x.total_weight();
    detail::require(m.count > A(0), fn, "argument 'x' must have positive total weight, got ", m.count);
    detail::require_representable_spread(x, fn);
    const Eigen::Index d = x.dim(), n = x.size();
    m.mean = detail::weighted_mean(x, m.count);
    // Centre about the mean rounded to S (exact in A), then move the moment to the mean:
    // sum w (x - c)(x - c)^T / W = C + (mean - c)(mean - c)^T.
    const vector_t<S> centre = m.mean.template cast<S>();
    m.covariance = matrix_t<A>::Zero(d, d);
    matrix_t<S> part(d, d);
    for (Eigen::Index b = 0; b < n; b += detail::moment_chunk) {
      const Eigen::Index len = std::min(detail::moment_chunk, n - b);
      matrix_t<S> yc = x.x().middleCols(b, len).colwise() - centre;
      if (x.weighted()) yc = yc * x.weights().segment(b, len).cwiseSqrt().asDiagonal();
      part.setZero();
      part.template selfadjointView<Eigen::Lower>().rankUpdate(yc);
      m.covariance += part.template cast<A>();
    }
    m.covariance /= m.count;
    const vector_t<A> shift = m.mean - centre.template cast<A>();
    m.covariance.template selfadjointView<Eigen::Lower>().rankUpdate(shift, A(-1));
    m.covariance.template triangularView<Eigen::StrictlyUpper>() = m.covariance.transpose();  // exactly symmetric
    return m;
  }

  /// Moments from a covariance matrix and a count alone (as R's `factanal(covmat = , n.obs = )`).
  /// `mean` may be empty (then zero). `covariance` must be the maximum-likelihood (divide by
  /// N) covariance for likelihoods to be exact; a divide-by-(N-1) one changes them by O(1/N).
  /// @throws invalid_argument if `covariance` is not square, finite, symmetric (to 1e-10
  ///         relative) and positive semi-definite (smallest eigenvalue >= -100 d eps times the
  ///         largest), if `count` is not positive and finite, or `mean` has the wrong size.
  static basic_sample_moments from_covariance(const Eigen::Ref<const matrix_t<A>>& covariance, A count,
                                              const Eigen::Ref<const vector_t<A>>& mean = vector_t<A>()) {
    constexpr std::string_view fn = "sample_moments::from_covariance";
    const Eigen::Index d = covariance.rows();
    detail::require(d > 0 && covariance.cols() == d, fn, "argument 'covariance' must be square and non-empty, got ",
                    covariance.rows(), " x ", covariance.cols());
    detail::require(std::isfinite(count) && count > A(0), fn, "argument 'count' must be positive and finite, got ",
                    count);
    detail::require(mean.size() == 0 || mean.size() == d, fn, "argument 'mean' must be empty or have ", d,
                    " entries, got ", mean.size());
    if (mean.size() > 0) detail::require_finite(mean, fn, "mean");
    detail::require_finite_symmetric(matrix_t<A>(covariance), fn, "covariance");
    basic_sample_moments m;
    m.count = count;
    m.mean = mean.size() > 0 ? vector_t<A>(mean) : vector_t<A>::Zero(d);
    m.covariance = A(0.5) * (covariance + covariance.transpose());
    const Eigen::SelfAdjointEigenSolver<matrix_t<A>> es(m.covariance, Eigen::EigenvaluesOnly);
    const A lo = es.eigenvalues()(0), hi = es.eigenvalues()(d - 1);
    detail::require(lo >= A(-100) * static_cast<A>(d) * std::numeric_limits<A>::epsilon() * std::max(hi, A(0)), fn,
                    "argument 'covariance' must be positive semi-definite, but its smallest eigenvalue is ", lo,
                    " (largest ", hi, ")");
    return m;
  }
};

/// Double-precision moments (the common case).
using sample_moments = basic_sample_moments<double>;

}  // namespace latent
