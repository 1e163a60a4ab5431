#pragma once
/// @file
/// Log-space arithmetic and Cholesky factorization with a documented regularization policy.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>

namespace latent {

/// log(2 pi), used by every Gaussian log-density.
inline constexpr double log_two_pi = 1.8378770664093454835606594728112;

/// log(sum_i exp(v_i)), computed stably, in the scalar type of `v`. Returns -inf for an empty
/// vector or one whose entries are all -inf (an impossible event), +inf if any entry is +inf,
/// NaN if any is NaN.
template <class Derived>
typename Derived::Scalar log_sum_exp(const Eigen::DenseBase<Derived>& v) {
  using S = typename Derived::Scalar;
  if (v.size() == 0) return -std::numeric_limits<S>::infinity();
  const S m = v.maxCoeff();
  // All entries -inf: exp(v - m) would be exp(nan); the sum of zero probabilities is 0.
  if (!std::isfinite(m)) return m;
  return m + std::log((v.derived().array() - m).exp().sum());
}

namespace detail {

/// Where `flushed_exp` flushes to zero, per scalar type: terms at or below e^-threshold are
/// returned as exactly 0. `ramp` is a power of two larger than the inverse spacing of the
/// scalar's numbers near the threshold, so that the 0/1 ramp below is exact; `clamp` keeps
/// exp itself away from subnormal results. double: e^-599 (subnormals start near e^-708);
/// float: e^-80 (subnormals start near e^-87).
template <class S>
struct exp_flush {
  static constexpr S threshold = S(599), clamp = S(600), ramp = S(0x1p60);
};
template <>
struct exp_flush<float> {
  static constexpr float threshold = 80.0f, clamp = 81.0f, ramp = 0x1p40f;
};

/// exp(y) for log-probabilities y relative to the largest of their set (y <= 0), with every
/// term at or below e^-threshold (`exp_flush`: e^-599 for double, e^-80 for float) returned
/// as exactly 0. Such terms cannot change a sum in that precision, and left in place (Eigen's
/// vectorized exp clamps instead of underflowing to 0) their products with data are subnormal
/// and slow arithmetic ~100x. The flush is a 0/1 ramp written as arithmetic, so the whole
/// expression is one vectorized pass (Eigen 3.4's select() is scalar): no number of the
/// scalar type lies in (-threshold, -threshold + 1/ramp], so the ramp is exactly 0 for
/// y <= -threshold and exactly 1 above.
template <class Derived>
auto flushed_exp(const Eigen::ArrayBase<Derived>& y) {
  using S = typename Derived::Scalar;
  using f = exp_flush<S>;
  return y.max(-f::clamp).exp() * ((y + f::threshold).max(S(0)) * f::ramp).min(S(1));
}

}  // namespace detail

/// Replace each column of `log_p` (K x B, log-weights of K alternatives for B items) by its
/// normalized probabilities, and return the per-column log normalizers (log-sum-exp) in `lse`
/// (a row vector of B). A column that is all -inf gets lse = -inf and is left as all zeros
/// (no NaN). Probabilities below e^-599 (float: e^-80) times the largest in their column are
/// returned as exactly 0. Both arguments may be matrices or writable blocks (also temporaries).
template <class LogP, class Lse>
void normalize_columns_log(LogP&& log_p, Lse&& lse) {
  using S = typename std::remove_reference_t<LogP>::Scalar;
  using row = Eigen::Array<S, 1, Eigen::Dynamic>;
  // Whole-matrix array operations, so that exp and log vectorize (K is usually small).
  auto&& p = log_p.array();
  const row m = p.colwise().maxCoeff();
  const bool all_finite = m.isFinite().all();
  // A column whose maximum is -inf (or inf, NaN) is shifted by 0 here and fixed up below, so
  // that the vectorized pass never computes inf - inf.
  const row shift = all_finite ? m : row(m.isFinite().select(m, row::Zero(m.size())));
  p.rowwise() -= shift;
  p = detail::flushed_exp(p);
  const row total = p.colwise().sum();
  auto&& out = lse.array();
  out = shift + total.log();
  p.rowwise() /= total;
  if (!all_finite)
    for (Eigen::Index j = 0; j < m.size(); ++j)
      if (!std::isfinite(m(j))) {
        out(j) = m(j);
        p.col(j).setZero();
      }
}

/// The same as `normalize_columns_log` for the transposed layout: `log_p` is B x K (one row
/// per item), every row is normalized and its log-sum-exp returned in `lse` (B). With items as
/// rows every step is a vertical vector operation over B, which is faster when K is small.
/// A block with a compile-time number of rows (a hot kernel's group of observations) is
/// normalized without heap allocation and with fully unrolled vector code; both arguments may
/// be matrices, arrays or writable blocks of them (also temporaries).
template <class LogP, class Lse>
void normalize_rows_log(LogP&& log_p, Lse&& lse) {
  using traits = std::remove_reference_t<LogP>;
  using S = typename traits::Scalar;
  using column =
      Eigen::Array<S, traits::RowsAtCompileTime, 1, Eigen::ColMajor, traits::MaxRowsAtCompileTime, 1>;
  auto&& p = log_p.array();  // a view for a Matrix, the object itself for an Array
  const Eigen::Index k = p.cols();
  column m = p.col(0);
  for (Eigen::Index j = 1; j < k; ++j) m = m.max(p.col(j));
  // A row whose maximum is -inf (or inf, NaN) is shifted by 0 and fixed up at the end, so
  // that the vector pass never computes inf - inf.
  const bool all_finite = m.isFinite().all();
  const column shift = all_finite ? m : column(m.isFinite().select(m, column::Zero(m.rows())));
  column total = column::Zero(m.rows());
  for (Eigen::Index j = 0; j < k; ++j) {
    auto c = p.col(j);
    c = detail::flushed_exp(c - shift);
    total += c;
  }
  auto&& out = lse.array();
  out = shift + total.log();
  const column inv = total.inverse();
  for (Eigen::Index j = 0; j < k; ++j) p.col(j) *= inv;
  if (!all_finite)
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      if (!std::isfinite(m(i))) {
        out(i) = m(i);
        p.row(i).setZero();
      }
}

/// How to factor a covariance that may be near singular.
///
/// `ridge` is added to the diagonal before factoring (absolute, in the data's squared units;
/// the Gaussian mixture's default is 1e-6, as in scikit-learn's `reg_covar`). If the
/// factorization still fails, the matrix is reported as not positive definite: there is no
/// hidden escalation of jitter, because a silently perturbed covariance changes the model.
struct cholesky_policy {
  double ridge = 0.0;
};

/// The Cholesky factor of `a + ridge * I` in scalar type `S`, or `ok == false` if it is not
/// positive definite.
template <Scalar S>
struct basic_cholesky_result {
  Eigen::LLT<matrix_t<S>> llt;
  bool ok = false;
};
using cholesky_result = basic_cholesky_result<double>;

/// Factor `a + policy.ridge * I` (in `a`'s scalar type). Succeeds only if the result is
/// numerically positive definite (LLT succeeded and every diagonal entry of the factor is
/// positive and finite).
template <class Derived>
basic_cholesky_result<typename Derived::Scalar> regularized_cholesky(const Eigen::MatrixBase<Derived>& a,
                                                                     const cholesky_policy& policy = {}) {
  using S = typename Derived::Scalar;
  basic_cholesky_result<S> r;
  matrix_t<S> m = a;
  m.diagonal().array() += static_cast<S>(policy.ridge);
  r.llt.compute(m);
  if (r.llt.info() != Eigen::Success) return r;
  const auto d = r.llt.matrixLLT().diagonal().array();
  r.ok = (d > S(0)).all() && d.isFinite().all();
  return r;
}

/// log det of a matrix from its Cholesky factor: 2 * sum(log diag(L)).
template <class MatrixType>
typename MatrixType::Scalar log_det_from_cholesky(const Eigen::LLT<MatrixType>& llt) {
  using S = typename MatrixType::Scalar;
  return S(2) * llt.matrixLLT().diagonal().array().log().sum();
}

}  // namespace latent
