#pragma once
/// @file
/// Factor analysis kernels (implementation details): the quantities derived from the
/// parameters, and the per-block E-step work (Woodbury solve, mean-field coordinate ascent,
/// accumulation of a block into the statistics).
///
/// Precision: the block kernels (the two GEMMs and the elementwise passes, O(B d k)) run in the
/// model's scalar S; everything O(d k^2) or smaller (M, its inverse and log-determinant, the
/// normalizing constant, sum E[z] E[z]^T of the exact E-step) is computed in A =
/// accumulator_t<S> from the parameters cast to A, and each block's sums are added to the
/// statistics in A.

#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/factor_analysis/params.hpp>
#include <latent/models/factor_analysis/stats.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string_view>
#include <vector>

namespace latent::detail {

/// Quantities derived from the parameters, rebuilt whenever they change: in A for the small
/// dense algebra and the constants, and rounded to S for the block kernels.
template <Scalar S>
struct fa_cache {
  using A = accumulator_t<S>;
  basic_factor_analysis_params<A> p;  ///< the parameters, exactly, in A
  vector_t<A> psi_inv;                ///< d: 1 / Psi_jj
  matrix_t<A> psi_inv_loadings;       ///< d x k: G = Psi^{-1} Lambda
  matrix_t<A> m;                      ///< k x k: M = I + Lambda^T Psi^{-1} Lambda
  matrix_t<A> m_inv;                  ///< k x k: M^{-1}, the posterior covariance
  matrix_t<A> post_map;               ///< k x d: M^{-1} Lambda^T Psi^{-1}, E[z | x] = post_map (x - mu)
  A log_const = 0;                    ///< -1/2 (d log 2 pi + log det Psi + log det M)
  // Rounded to S for the block kernels.
  vector_t<A> psi_inv_sqrt;           ///< d: Psi^{-1/2}
  matrix_t<A> scaled_loadings;        ///< d x k: L~ = Psi^{-1/2} Lambda
  vector_t<S> psi_inv_s;
  vector_t<S> psi_inv_sqrt_s;  ///< d: Psi^{-1/2}, for the residual form (fa_woodbury_block)
  matrix_t<S> scaled_loadings_s;  ///< d x k: L~ = Psi^{-1/2} Lambda
  matrix_t<S> g_s, m_s, m_inv_s;
  bool residual_form = false;  ///< max_j ||L~_j||^2 > fa_residual_form_limit: every column in residual form
};

/// The fast form of a quadratic form y^T Sigma^{-1} y is a difference of two sums of squares
/// (see `fa_woodbury_block`); where the first exceeds the difference by more than this ratio
/// the column is recomputed in the residual form, so the fast form's relative error stays
/// below ~3 x 64 eps of S, under the solvers' rounding allowance for the objective in double
/// (1e3 eps) and near the float terms' own rounding in float.
inline constexpr double fa_cancellation_limit = 64.0;

/// The fast form's rounding also grows with the largest signal-to-noise ratio of a variable,
/// ||L~_j||^2 = sum_c Lambda_jc^2 / Psi_jj: rounding in u_n = Lambda^T Psi^{-1} y_n is
/// amplified by 1 / Psi_jj while the residual form sees only 1 / Psi_jj^{1/2}. Above this
/// ratio (a Heywood case has ~1e6; well-conditioned problems have tens) every column is
/// computed in the residual form.
inline constexpr double fa_residual_form_limit = 256.0;

/// Above this ||L~||_F^2 = tr(M) - k (a bound on the condition number of M, less 1) M is
/// factored by the QR of [L~; I] rather than by a Cholesky factor of M (see `build_fa_cache`):
/// below it the Cholesky factor's rounding moves log det M by at most ~k eps tr(M) ~ 1e-11
/// per observation for k = 10, under the rounding the solvers allow (1e3 eps of |log p|).
inline constexpr double fa_qr_limit = 4096.0;

/// Builds the cache of `ps`; false if something is not finite or M does not factor.
///
/// M = I + L~^T L~ (L~ = Psi^{-1/2} Lambda) = R^T R. When M is ill-conditioned
/// (`fa_qr_limit`), R comes from a Householder QR of the stacked (d + k) x k matrix [L~; I],
/// not from a Cholesky factor of M: forming M squares the condition number of [L~; I], and
/// near a Heywood case (a uniqueness at its floor, L~ with a row ~1e3 times the others)
/// rounding M would move log det M by ~1e-10 and the total log-likelihood by N times that,
/// more than the rounding EM's monotonicity check allows. Either costs O(d k^2), once per
/// parameter change; the QR is ~10 us dearer at d = 50, k = 10, so well-conditioned models
/// keep the Cholesky factor.
template <Scalar S>
bool build_fa_cache(const basic_factor_analysis_params<S>& ps, fa_cache<S>& c) {
  using A = accumulator_t<S>;
  c.p = ps.template cast<A>();
  const basic_factor_analysis_params<A>& p = c.p;
  const Eigen::Index d = p.loadings.rows(), k = p.loadings.cols();
  c.psi_inv = p.uniquenesses.cwiseInverse();
  c.psi_inv_loadings = c.psi_inv.asDiagonal() * p.loadings;
  c.psi_inv_sqrt = p.uniquenesses.cwiseSqrt().cwiseInverse();
  const vector_t<A>& psi_inv_sqrt = c.psi_inv_sqrt;
  matrix_t<A> stacked(d + k, k);
  stacked.topRows(d) = psi_inv_sqrt.asDiagonal() * p.loadings;
  stacked.bottomRows(k).setIdentity();
  if (!stacked.allFinite()) return false;
  // M = I + L~^T L~: exactly symmetric (the mean-field sweeps read its entries).
  c.m = matrix_t<A>::Identity(k, k);
  c.m.template selfadjointView<Eigen::Lower>().rankUpdate(stacked.topRows(d).transpose());
  c.m.template triangularView<Eigen::StrictlyUpper>() = c.m.transpose();
  if (!c.m.allFinite()) return false;
  matrix_t<A> r;
  if (c.m.trace() - static_cast<A>(k) > A(fa_qr_limit)) {
    const Eigen::HouseholderQR<matrix_t<A>> qr(stacked);
    r = qr.matrixQR().topRows(k).template triangularView<Eigen::Upper>();
  } else {
    const Eigen::LLT<matrix_t<A>> llt(c.m);
    if (llt.info() != Eigen::Success) return false;
    r = llt.matrixU();
  }
  const vector_t<A> r_diag = r.diagonal().cwiseAbs();
  if (!r_diag.allFinite() || !(r_diag.array() > A(0)).all()) return false;
  // M^{-1} = R^{-1} R^{-T}.
  const matrix_t<A> r_inv = r.template triangularView<Eigen::Upper>().solve(matrix_t<A>::Identity(k, k));
  c.m_inv = matrix_t<A>::Zero(k, k);
  c.m_inv.template selfadjointView<Eigen::Lower>().rankUpdate(r_inv);
  c.m_inv.template triangularView<Eigen::StrictlyUpper>() = c.m_inv.transpose();
  c.post_map = c.m_inv * c.psi_inv_loadings.transpose();
  c.log_const = A(-0.5) * (static_cast<A>(d) * A(log_two_pi) + p.uniquenesses.array().log().sum() +
                           A(2) * r_diag.array().log().sum());
  c.residual_form = stacked.topRows(d).rowwise().squaredNorm().maxCoeff() > A(fa_residual_form_limit);
  c.psi_inv_s = c.psi_inv.template cast<S>();
  c.psi_inv_sqrt_s = psi_inv_sqrt.template cast<S>();
  c.scaled_loadings = stacked.topRows(d);
  c.scaled_loadings_s = c.scaled_loadings.template cast<S>();
  c.g_s = c.psi_inv_loadings.template cast<S>();
  c.m_s = c.m.template cast<S>();
  c.m_inv_s = c.m_inv.template cast<S>();
  return c.psi_inv.allFinite() && c.psi_inv_loadings.allFinite() && c.m_inv.allFinite() && std::isfinite(c.log_const) &&
         c.psi_inv_s.allFinite() && c.psi_inv_sqrt_s.allFinite() && c.scaled_loadings_s.allFinite() &&
         c.g_s.allFinite() && c.m_inv_s.allFinite();
}

/// Woodbury quantities of a centred block y = x - mu (d x B), in S and in the transposed
/// layout (B x k: the GEMMs then have B rows, which suits the kernels): ut = y^T G (u_n =
/// Lambda^T Psi^{-1} y_n), ezt = ut M^{-1} (E[z_n]) and quad_n = y_n^T Sigma^{-1} y_n.
///
/// Fast form: quad_n = y_n^T Psi^{-1} y_n - u_n^T M^{-1} u_n, a difference of two sums of
/// squares whose rounding is ~eps times the first. Where the first exceeds quad_n by more than
/// `fa_cancellation_limit` (near a Heywood case, where Psi_jj^{-1} is huge; or where a far
/// point overflowed), the column is recomputed in the residual form
///   quad_n = ||Psi^{-1/2} (y_n - Lambda zhat_n)||^2 + ||zhat_n||^2,  zhat_n = E[z_n | x_n],
/// a sum of squares with no cancellation (quad is the minimum over z of the right-hand side,
/// so rounding in zhat moves it only to second order), on the column scaled by a power of two
/// (exact) so that nothing overflows where the result does not: a far point gets a finite
/// quad_n or +inf, never NaN. O(d k) per recomputed column.
template <Scalar S>
void fa_woodbury_block(const fa_cache<S>& c, const matrix_t<S>& y, matrix_t<S>& ut, matrix_t<S>& ezt,
                       vector_t<S>& quad) {
  const Eigen::Index b = y.cols(), d = y.rows(), k = c.m.rows();
  ut.resize(b, k);
  ut.noalias() = y.transpose() * c.g_s;
  ezt.resize(b, k);
  ezt.noalias() = ut * c.m_inv_s;
  vector_t<S> first(b);
  first.noalias() = y.cwiseAbs2().transpose() * c.psi_inv_s;
  quad = first - (ut.array() * ezt.array()).rowwise().sum().matrix();
  std::vector<Eigen::Index> redo;
  const S limit = static_cast<S>(fa_cancellation_limit);
  for (Eigen::Index n = 0; n < b; ++n)
    if (c.residual_form || !(std::isfinite(first(n)) && quad(n) * limit >= first(n))) redo.push_back(n);
  if (redo.empty()) return;
  const auto f = static_cast<Eigen::Index>(redo.size());
  matrix_t<S> yt(d, f);
  std::vector<int> exponent(redo.size(), 0);
  for (Eigen::Index i = 0; i < f; ++i) {
    yt.col(i) = y.col(redo[i]).cwiseProduct(c.psi_inv_sqrt_s);
    const S top = yt.col(i).cwiseAbs().maxCoeff();
    if (top > S(0) && std::isfinite(top)) {
      exponent[i] = std::ilogb(top);
      yt.col(i) *= std::ldexp(S(1), -exponent[i]);
    }
  }
  matrix_t<S> u(k, f);
  u.noalias() = c.scaled_loadings_s.transpose() * yt;
  matrix_t<S> z(k, f);
  z.noalias() = c.m_inv_s * u;
  yt.noalias() -= c.scaled_loadings_s * z;  // the scaled residuals
  for (Eigen::Index i = 0; i < f; ++i) {
    const Eigen::Index n = redo[i];
    quad(n) = std::ldexp(yt.col(i).squaredNorm() + z.col(i).squaredNorm(), 2 * exponent[i]);
    ezt.row(n) = std::ldexp(S(1), exponent[i]) * z.col(i).transpose();
  }
}

/// sum_n y_n^T Sigma^{-1} y_n over the columns of `y` (d x n, in A) in the residual form (see
/// `fa_woodbury_block`), in A: the exact E-step from moments uses it near a Heywood case.
template <Scalar S>
accumulator_t<S> fa_residual_quad_sum(const fa_cache<S>& c, const matrix_t<accumulator_t<S>>& y) {
  using A = accumulator_t<S>;
  matrix_t<A> yt = c.psi_inv_sqrt.asDiagonal() * y;
  const matrix_t<A> z = c.m_inv * (c.scaled_loadings.transpose() * yt);
  yt.noalias() -= c.scaled_loadings * z;
  return yt.squaredNorm() + z.squaredNorm();
}

/// sum_n w_n v_n over a block's columns [begin, begin + v.size()) of `x`, summed in A: O(B),
/// and a float sum of a block of log-densities would carry ~1e-6 of its total (it decides EM's
/// convergence), where the terms themselves are accurate to ~1e-7.
template <Scalar S>
accumulator_t<S> fa_weighted_sum(const basic_observations<S>& x, Eigen::Index begin, const vector_t<S>& v) {
  using A = accumulator_t<S>;
  return x.weighted() ? v.template cast<A>().dot(x.weights().segment(begin, v.size()).template cast<A>())
                      : v.template cast<A>().sum();
}

/// Throws if a block's objective is not finite: invalid_argument naming the data entry if the
/// data are not finite, or naming 'x' if finite data are so far from the model that a squared
/// distance overflows (the objective is -inf, see `fa_woodbury_block`); numerical_error
/// otherwise.
template <Scalar S>
void fa_check_block(const basic_observations<S>& x, Eigen::Index begin, Eigen::Index b, double total,
                    std::string_view fn) {
  if (std::isfinite(total)) return;
  require_finite(x.x().middleCols(begin, b), fn, "x");
  if (total == -std::numeric_limits<double>::infinity())
    throw_invalid(fn, "argument 'x' is too large for the model's scale: a squared distance from the mean ",
                  "overflows (log-density -inf); rescale the data, e.g. divide by a power of 10");
  throw numerical_error(concat(fn, ": non-finite objective ", total, " on finite data"));
}

/// Adds the statistics of a block to `s`: y = x - mu (d x B), the means of q transposed
/// (B x k) and the shared covariance of q (k x k, in A). With `exact`, E[z] = B y for the
/// fixed matrix B = M^{-1} Lambda^T Psi^{-1}, so sum E[z] E[z]^T = B (sum y E[z]^T) costs
/// O(d k^2) in A instead of a GEMM over the block.
template <Scalar S>
void fa_accumulate(const fa_cache<S>& c, const basic_observations<S>& x, Eigen::Index begin, const matrix_t<S>& y,
                   const matrix_t<S>& ezt, const matrix_t<accumulator_t<S>>& cov, bool exact,
                   basic_factor_analysis_stats<S>& s, std::string_view fn) {
  using A = accumulator_t<S>;
  const Eigen::Index b = y.cols(), d = y.rows(), k = ezt.cols();
  // One GEMM gives sum y E[z]^T and sum y together: y [E[z]^T, 1] (weighted: y W [E[z]^T, 1]).
  matrix_t<S> ez1(b, k + 1);
  ez1.leftCols(k) = ezt;
  ez1.col(k).setOnes();
  vector_t<S> syy_s;
  A wsum;
  if (x.weighted()) {
    const auto w = x.weights().segment(begin, b);
    ez1 = w.asDiagonal() * ez1;
    wsum = w.template cast<A>().sum();
    syy_s.noalias() = y.cwiseAbs2() * w;
  } else {
    wsum = static_cast<A>(b);
    syy_s = y.cwiseAbs2().rowwise().sum();
  }
  matrix_t<S> syz1(d, k + 1);
  syz1.noalias() = y * ez1;
  matrix_t<A> syz = syz1.leftCols(k).template cast<A>();
  vector_t<A> sy = syz1.col(k).template cast<A>();
  vector_t<A> syy = syy_s.template cast<A>();
  const vector_t<A> sz = ez1.leftCols(k).colwise().sum().transpose().template cast<A>();
  matrix_t<A> szz(k, k);
  if (exact) {
    szz.noalias() = c.post_map * syz;
  } else {
    matrix_t<S> szz_s(k, k);
    szz_s.noalias() = ez1.leftCols(k).transpose() * ezt;
    szz = szz_s.template cast<A>();
  }
  if (!syy.allFinite() || !syz.allFinite() || !sz.allFinite())
    throw_invalid(fn, "argument 'x' is too large for the model's scalar type: the block's sums of squared ",
                  "deviations from the mean overflow (max |x - mu| = ", y.cwiseAbs().maxCoeff(),
                  "); rescale the data, e.g. divide by a power of 10");
  // The block's moments are about mu; the statistics' reference r is mu when the solver
  // created them (zero_stats), otherwise shift exactly: y_r = y + e, e = mu - r.
  if (s.reference != c.p.mean) {
    const vector_t<A> e = c.p.mean - s.reference;
    syy += (A(2) * e.array() * sy.array() + wsum * e.array().square()).matrix();
    sy += wsum * e;
    syz += e * sz.transpose();
  }
  s.weight += wsum;
  s.sum_y += sy;
  s.sum_yy += syy;
  s.sum_yz += syz;
  s.sum_z += sz;
  s.sum_zz += szz;
  s.sum_zz += wsum * cov;
}

/// Coordinate ascent for the mean-field q over a block y = x - mu (d x B), from the means in
/// `mt` if it holds B x k of them (a warm start), else from m = 0. Writes the means transposed
/// (B x k) and each column's ELBO (in A); returns the sweeps taken. The
/// stopping tolerance is at least 16 eps of S (z is in prior standard deviations), which float
/// sweeps can resolve.
template <Scalar S>
std::size_t fa_mean_field_block(const fa_cache<S>& c, const matrix_t<S>& y, const mean_field& family, matrix_t<S>& mt,
                                row_vector_t<accumulator_t<S>>& elbo) {
  using A = accumulator_t<S>;
  const Eigen::Index b = y.cols(), k = c.m.rows();
  // Work on transposes (B x k) so that one factor's means are a contiguous column.
  matrix_t<S> ut(b, k);
  ut.noalias() = y.transpose() * c.g_s;  // u_n^T = (Lambda^T Psi^{-1} y_n)^T
  if (mt.rows() != b || mt.cols() != k) mt = matrix_t<S>::Zero(b, k);
  const vector_t<S> md = c.m_s.diagonal();
  const S tolerance = std::max(static_cast<S>(family.tolerance), S(16) * std::numeric_limits<S>::epsilon());
  vector_t<S> col(b);
  std::size_t sweeps = 0;
  while (sweeps < family.max_sweeps) {
    ++sweeps;
    S moved = 0;
    for (Eigen::Index j = 0; j < k; ++j) {
      // m_j = (u_j - sum_{l != j} M_jl m_l) / M_jj, the exact maximizer of F in m_j.
      col.noalias() = mt * c.m_s.col(j);
      col = (ut.col(j) - col + md(j) * mt.col(j)) / md(j);
      moved = std::max(moved, (col - mt.col(j)).cwiseAbs().maxCoeff());
      mt.col(j) = col;
    }
    if (moved <= tolerance) break;
  }
  // F_n = -1/2 [d log 2pi + log det Psi + y^T Psi^{-1} y - 2 m^T u + m^T M m
  //             + sum_j M_jj s_j^2 - k - sum_j log s_j^2],   s_j^2 = 1 / M_jj.
  const matrix_t<S> mm = mt * c.m_s;  // B x k
  const array_t<S> quad = (y.array().square().colwise() * c.psi_inv_s.array()).colwise().sum().transpose() -
                          S(2) * (mt.array() * ut.array()).rowwise().sum() + (mt.array() * mm.array()).rowwise().sum();
  const A log_det_psi = c.p.uniquenesses.array().log().sum();
  const A constant = static_cast<A>(y.rows()) * A(log_two_pi) + log_det_psi + c.m.diagonal().array().log().sum();
  elbo = (A(-0.5) * (constant + quad.template cast<A>())).matrix().transpose();
  return sweeps;
}

}  // namespace latent::detail
