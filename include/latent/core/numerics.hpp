#pragma once
/// @file
/// Log-space arithmetic and Cholesky factorization with a documented regularization policy.

#include <latent/core/error.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>

namespace latent {

/// log(2 pi), used by every Gaussian log-density.
inline constexpr double log_two_pi = 1.8378770664093454835606594728112;

/// log(sum_i exp(v_i)), computed stably. Returns -inf for an empty vector or one whose entries
/// are all -inf (an impossible event), +inf if any entry is +inf, NaN if any is NaN.
template <class Derived>
double log_sum_exp(const Eigen::DenseBase<Derived>& v) {
  if (v.size() == 0) return -std::numeric_limits<double>::infinity();
  const double m = v.maxCoeff();
  // All entries -inf: exp(v - m) would be exp(nan); the sum of zero probabilities is 0.
  if (!std::isfinite(m)) return m;
  return m + std::log((v.derived().array() - m).exp().sum());
}

namespace detail {

/// exp(y) for log-probabilities y relative to the largest of their set (y <= 0), with every
/// term at or below e^-599 returned as exactly 0. Such terms cannot change a double-precision
/// sum, and left in place (Eigen's vectorized exp clamps near e^-709 instead of underflowing
/// to 0) their products with data are subnormal and slow arithmetic ~100x. The flush is a
/// 0/1 ramp written as arithmetic, so the whole expression is one vectorized pass (Eigen 3.4's
/// select() is scalar): no double lies in (-599, -599 + 2^-60], so the ramp is exactly 0 for
/// y <= -599 and exactly 1 above; the clamp at -600 keeps exp itself away from subnormals.
template <class Derived>
auto flushed_exp(const Eigen::ArrayBase<Derived>& y) {
  return y.max(-600.0).exp() * ((y + 599.0).max(0.0) * 0x1p60).min(1.0);
}

}  // namespace detail

/// Replace each column of `log_p` (K x B, log-weights of K alternatives for B items) by its
/// normalized probabilities, and return the per-column log normalizers (log-sum-exp) in `lse`.
/// A column that is all -inf gets lse = -inf and is left as all zeros (no NaN). Probabilities
/// below e^-599 times the largest in their column are returned as exactly 0.
inline void normalize_columns_log(Eigen::Ref<Eigen::MatrixXd> log_p, Eigen::Ref<Eigen::RowVectorXd> lse) {
  // Whole-matrix array operations, so that exp and log vectorize (K is usually small).
  const Eigen::RowVectorXd m = log_p.colwise().maxCoeff();
  const bool all_finite = m.allFinite();
  // A column whose maximum is -inf (or inf, NaN) is shifted by 0 here and fixed up below, so
  // that the vectorized pass never computes inf - inf.
  const Eigen::RowVectorXd shift = all_finite ? m : Eigen::RowVectorXd(m.array().isFinite().select(m, 0.0));
  auto p = log_p.array();
  p.rowwise() -= shift.array();
  p = detail::flushed_exp(p);
  const Eigen::RowVectorXd total = log_p.colwise().sum();
  lse = (shift.array() + total.array().log()).matrix();
  p.rowwise() /= total.array();
  if (!all_finite)
    for (Eigen::Index j = 0; j < m.size(); ++j)
      if (!std::isfinite(m(j))) {
        lse(j) = m(j);
        log_p.col(j).setZero();
      }
}

/// The same as `normalize_columns_log` for the transposed layout: `log_p` is B x K (one row
/// per item), every row is normalized and its log-sum-exp returned in `lse` (B). With items as
/// rows every step is a vertical vector operation over B, which is faster when K is small.
/// A template so that a block with a compile-time number of rows (a hot kernel's group of
/// observations) is normalized without heap allocation and with fully unrolled vector code;
/// both arguments may be matrices, arrays or writable blocks of them (also temporaries).
template <class LogP, class Lse>
void normalize_rows_log(LogP&& log_p, Lse&& lse) {
  using traits = std::remove_reference_t<LogP>;
  using column =
      Eigen::Array<double, traits::RowsAtCompileTime, 1, Eigen::ColMajor, traits::MaxRowsAtCompileTime, 1>;
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

/// The Cholesky factor of `a + ridge * I`, or `ok == false` if it is not positive definite.
struct cholesky_result {
  Eigen::LLT<Eigen::MatrixXd> llt;
  bool ok = false;
};

/// Factor `a + policy.ridge * I`. Succeeds only if the result is numerically positive definite
/// (LLT succeeded and every diagonal entry of the factor is positive and finite).
inline cholesky_result regularized_cholesky(const Eigen::Ref<const Eigen::MatrixXd>& a,
                                            const cholesky_policy& policy = {}) {
  cholesky_result r;
  Eigen::MatrixXd m = a;
  m.diagonal().array() += policy.ridge;
  r.llt.compute(m);
  if (r.llt.info() != Eigen::Success) return r;
  const auto d = r.llt.matrixLLT().diagonal().array();
  r.ok = (d > 0.0).all() && d.isFinite().all();
  return r;
}

/// log det of a matrix from its Cholesky factor: 2 * sum(log diag(L)).
inline double log_det_from_cholesky(const Eigen::LLT<Eigen::MatrixXd>& llt) {
  return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
}

}  // namespace latent
