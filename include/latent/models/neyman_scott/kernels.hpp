#pragma once
/// @file
/// Implementation details of the Neyman–Scott model: per-group summaries, the blocked sums the
/// E-step and the closed forms are built from, and the marginal log-likelihood from totals.
/// Not API.

#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/neyman_scott/params.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

namespace latent::detail {

/// Columns summed in the compute scalar before a chunk's sums are added in double (the
/// precision policy of core/scalar.hpp).
inline constexpr Eigen::Index neyman_scott_chunk = 1024;

/// Column arrays of a scalar type (a chunk's per-group numbers) and its work buffer.
template <class S>
using neyman_scott_column = Eigen::Array<S, Eigen::Dynamic, 1>;
template <class S>
using neyman_scott_work = Eigen::Array<S, Eigen::Dynamic, Eigen::Dynamic>;

/// Group means and within-group sums of squares of the c <= `neyman_scott_chunk` columns of
/// `y` (K x c), as c x 1 arrays, in the scalar type of `y`. The chunk is first transposed into
/// `work` (c x K, ~40 KB for K = 5 in double) so that every later step is a vertical operation
/// over the c groups: full SIMD width for any K, twice the lanes in float. (Eigen's column
/// reductions over K ~ 5 contiguous numbers are scalar code; this is 2-4x faster.)
template <class Derived, class S = typename Derived::Scalar>
void neyman_scott_chunk_summaries(const Eigen::MatrixBase<Derived>& y, neyman_scott_work<S>& work,
                                  neyman_scott_column<S>& mean, neyman_scott_column<S>& ss) {
  const Eigen::Index K = y.rows();
  work = y.transpose().array();
  mean = work.col(0);
  for (Eigen::Index k = 1; k < K; ++k) mean += work.col(k);
  mean /= static_cast<S>(K);
  ss = (work.col(0) - mean).square();
  for (Eigen::Index k = 1; k < K; ++k) ss += (work.col(k) - mean).square();
}

/// Group means (1 x N) and within-group sums of squares (1 x N) of the columns of `y`, in the
/// scalar type of `y`.
template <class Derived, class S = typename Derived::Scalar>
void neyman_scott_group_summaries(const Eigen::MatrixBase<Derived>& y, row_vector_t<S>& mean,
                                  row_vector_t<S>& ss) {
  const Eigen::Index n = y.cols();
  mean.resize(n);
  ss.resize(n);
  neyman_scott_work<S> work;
  neyman_scott_column<S> m, q;
  for (Eigen::Index c0 = 0; c0 < n; c0 += neyman_scott_chunk) {
    const Eigen::Index c = std::min(neyman_scott_chunk, n - c0);
    neyman_scott_chunk_summaries(y.middleCols(c0, c), work, m, q);
    mean.segment(c0, c) = m.transpose().matrix();
    ss.segment(c0, c) = q.transpose().matrix();
  }
}

/// Weighted sums over groups of the numbers every Neyman–Scott formula needs, in double.
struct neyman_scott_sums {
  double weight = 0.0;  ///< sum w_n
  double ss = 0.0;      ///< sum w_n S_n
  double dev = 0.0;     ///< sum w_n (ybar_n - mu)
  double dev2 = 0.0;    ///< sum w_n (ybar_n - mu)^2
};

/// The sums over columns [begin, end) of `x` about `mu`. Each chunk of `neyman_scott_chunk`
/// columns is summarized in S (ybar_n, S_n: the O(K) work per group) and its sum of S_n is
/// taken in S; the deviations ybar_n - mu and their sums are formed in double, so that the
/// sums are a smooth function of mu (in float, ybar_n - mu rounded to float would jitter with
/// every ulp of mu and break EM's monotonicity at the 1e-7 level). Unweighted data is the fast
/// path (no weight multiplies).
template <Scalar S>
neyman_scott_sums neyman_scott_block_sums(const basic_observations<S>& x, Eigen::Index begin, Eigen::Index end,
                                          double mu) {
  neyman_scott_sums t;
  neyman_scott_work<S> work;
  neyman_scott_column<S> mean, ss;
  Eigen::ArrayXd dev;
  for (Eigen::Index c0 = begin; c0 < end; c0 += neyman_scott_chunk) {
    const Eigen::Index c = std::min(neyman_scott_chunk, end - c0);
    neyman_scott_chunk_summaries(x.x().middleCols(c0, c), work, mean, ss);
    dev = mean.template cast<double>() - mu;
    if (x.weighted()) {
      const auto w = x.weights().segment(c0, c).array();
      t.weight += static_cast<double>(w.sum());
      t.ss += static_cast<double>((w * ss).sum());
      const auto wd = w.template cast<double>();
      t.dev += (wd * dev).sum();
      t.dev2 += (wd * dev.square()).sum();
    } else {
      t.weight += static_cast<double>(c);
      t.ss += static_cast<double>(ss.sum());
      t.dev += dev.sum();
      t.dev2 += dev.square().sum();
    }
  }
  return t;
}

/// Weighted totals that every closed form is a function of (all in double), of the data scaled
/// by 2^-exponent (see `neyman_scott_data_totals`): a variance v of the data is
/// ldexp(v', 2 exponent), a location ldexp(m', exponent).
template <Scalar S>
struct neyman_scott_totals {
  double K = 0.0;        ///< replicates per group
  double weight = 0.0;   ///< W = sum w_n
  double within = 0.0;   ///< SS_w = sum w_n S_n
  double mean = 0.0;     ///< ybar = sum w_n ybar_n / W
  double between = 0.0;  ///< V = sum w_n (ybar_n - ybar)^2 / W (variance of the group means)
  int exponent = 0;      ///< the totals are of y 2^-exponent (0 unless the data are extreme)
  row_vector_t<S> group_mean;  ///< ybar_n, in the data's units (only if asked for)

  /// A variance (theta, tau2) computed from the totals, back in the data's units, rounded to S.
  /// @throws invalid_argument naming 'y' if it overflows S, or a positive one underflows to 0
  ///         (the data are too large or too small for S).
  S variance(double v, std::string_view function, std::string_view what) const {
    const S rounded = static_cast<S>(std::ldexp(v, 2 * exponent));
    require(std::isfinite(rounded) && (v == 0.0 || rounded > S(0)), function, "argument 'y' is too ",
            exponent > 0 ? "large" : "small", " for the estimate of ", what, " to be representable (", v, " x 2^",
            2 * exponent, "): rescale the data");
    return rounded;
  }
  /// A location (mu) back in the data's units, rounded to S (finite: |mu| <= max |y|).
  S location(double m) const { return static_cast<S>(std::ldexp(m, exponent)); }
  /// The log-likelihood in the data's units from the log-likelihood of the scaled data.
  double log_likelihood(double scaled) const {
    return scaled - weight * K * static_cast<double>(exponent) * 0.6931471805599453;  // ln 2
  }
};

/// Checks the data of a free function (K >= 2, N >= 1, finite, positive total weight).
template <Scalar S>
void neyman_scott_require_data(const basic_observations<S>& y, std::string_view function) {
  require(y.dim() >= 2, function, "argument 'y' must have K >= 2 rows (replicates per group), got ",
          y.dim());
  require(y.size() >= 1, function, "argument 'y' must have at least one column (group), got 0");
  require_finite(y.x(), function, "y");
  require(y.total_weight() > 0.0, function,
          "argument 'y' must have a positive total weight, got ", y.total_weight());
}

/// Two-pass weighted totals of already checked data (see `neyman_scott_data_totals`).
template <Scalar S>
neyman_scott_totals<S> neyman_scott_unscaled_totals(const basic_observations<S>& y) {
  neyman_scott_totals<S> t;
  t.K = static_cast<double>(y.dim());
  const neyman_scott_sums first = neyman_scott_block_sums(y, 0, y.size(), 0.0);
  t.weight = first.weight;
  const double grand = first.dev / first.weight;
  const neyman_scott_sums about = neyman_scott_block_sums(y, 0, y.size(), grand);
  t.within = about.ss;
  // ybar = grand + mean deviation; V = mean squared deviation - (mean deviation)^2, a small
  // correction since the centre is the mean up to rounding.
  const double d = about.dev / t.weight;
  t.mean = grand + d;
  t.between = std::max(0.0, about.dev2 / t.weight - d * d);
  return t;
}

/// Two-pass weighted totals of the data: the grand mean first, then the sums about it (so V is
/// the variance of the means about their own mean, without cancellation).
///
/// Extreme but finite data (max |y| above 2^(e/4) or below 2^(-e/4), e the largest exponent of
/// S: ~1e77 and 1e-77 in double, ~4e9 and 2e-10 in float) are summarized after an exact
/// scaling by a power of two, 2^-exponent, so that no square or sum overflows or underflows;
/// the closed forms undo the scaling on output (`variance`, `location`, `log_likelihood`) and
/// reject, naming 'y', only an estimate that is itself not representable in S.
template <Scalar S>
neyman_scott_totals<S> neyman_scott_data_totals(const basic_observations<S>& y, std::string_view function,
                                                bool keep_group_means = false) {
  neyman_scott_require_data(y, function);
  const S top = y.x().cwiseAbs().maxCoeff();
  const int limit = std::numeric_limits<S>::max_exponent / 4;
  int exponent = 0;
  if (top > S(0) && (std::ilogb(top) > limit || std::ilogb(top) < -limit)) exponent = std::ilogb(top);
  neyman_scott_totals<S> t;
  if (exponent == 0) {
    t = neyman_scott_unscaled_totals(y);
    if (keep_group_means) t.group_mean = y.x().colwise().mean();
  } else {
    const matrix_t<S> scaled = y.x() * std::ldexp(S(1), -exponent);
    t = y.weighted() ? neyman_scott_unscaled_totals(basic_observations<S>(scaled, y.weights()))
                     : neyman_scott_unscaled_totals(basic_observations<S>(scaled));
    t.exponent = exponent;
    if (keep_group_means) t.group_mean = scaled.colwise().mean() * std::ldexp(S(1), exponent);
  }
  require(t.within > 0.0, function,
          "argument 'y' must vary within at least one group (the within-group sum of squares is ",
          t.within, "): otherwise the likelihood is unbounded as theta -> 0");
  return t;
}

/// The log-likelihood, in double, of groups with sums `t` (taken about `mu`) under
/// (theta, mu, tau2) with K replicates; tau2 = 0 is allowed (the boundary).
inline double neyman_scott_log_likelihood(const neyman_scott_sums& t, double K, double theta, double tau2) {
  return t.weight * (-0.5 * K * log_two_pi - 0.5 * (K - 1.0) * std::log(theta) - 0.5 * std::log(theta + K * tau2)) -
         0.5 * t.ss / theta - 0.5 * t.dev2 / (theta / K + tau2);
}

/// The marginal log-likelihood from the totals: sum_n w_n (ybar_n - mu)^2 = W (V + (ybar - mu)^2).
template <Scalar S>
double neyman_scott_log_likelihood(const neyman_scott_totals<S>& t, double theta, double mu, double tau2) {
  const double dev2 = t.weight * (t.between + (t.mean - mu) * (t.mean - mu));
  return neyman_scott_log_likelihood({t.weight, t.within, 0.0, dev2}, t.K, theta, tau2);
}

}  // namespace latent::detail
