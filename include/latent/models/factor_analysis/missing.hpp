#pragma once
/// @file
/// Factor analysis's exact E-step for observations with missing coordinates (internal; see
/// model.hpp and docs/models/factor_analysis.md, "Missing values").
///
/// With observed coordinates o and missing ones m, x_o = Lambda_o z + mu_o + e_o, so
///
///     M_o = I + Lambda_o^T Psi_o^{-1} Lambda_o,   z | x_o ~ N(M_o^{-1} Lambda_o^T Psi_o^{-1} (x_o - mu_o), M_o^{-1}),
///     log p(x_o) = -1/2 (|o| log 2 pi + log det Psi_o + log det M_o + q),
///     q = ||Psi_o^{-1/2} (y_o - Lambda_o E[z])||^2 + ||E[z]||^2   (the residual form, no cancellation),
///
/// and given z the missing coordinates are x_m = Lambda_m z + mu_m + e_m, independent of x_o:
///
///     E[y_m] = Lambda_m E[z] + mu_m - r_m,     E[y_m z^T] = E[y_m] E[z]^T + Lambda_m M_o^{-1},
///     E[y_m^2] = E[y_m]^2 + diag(Lambda_m M_o^{-1} Lambda_m^T) + Psi_m   (y = x - r).
///
/// The M-step is unchanged: it reads only these expectations. Observations sharing a pattern
/// share M_o and its factor (O(|o| k^2 + k^3) once per pattern), the rest is GEMMs over the
/// pattern's columns. Everything is in the accumulator type (double).

#include <latent/core/missing.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/kernels.hpp>
#include <latent/models/factor_analysis/stats.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <string_view>

namespace latent::detail {

/// For the columns of pattern `pat` (observed coordinates `xo`, |o| x n, in A; weights `w`):
/// writes log p(x_n,o) into `logp` (n) and, if `s` is not null, adds the expected statistics
/// (see the file comment) to `*s`. Returns false if M_o does not factor.
template <Scalar S>
bool fa_missing_pattern(const fa_cache<S>& c, const missing_pattern& pat, const matrix_t<accumulator_t<S>>& xo,
                        const vector_t<accumulator_t<S>>& w, vector_t<accumulator_t<S>>& logp,
                        basic_factor_analysis_stats<S>* s) {
  using A = accumulator_t<S>;
  const auto& p = c.p;
  const Eigen::Index k = p.loadings.cols(), n = xo.cols(), d = p.mean.size();
  const matrix_t<A> lo = p.loadings(pat.observed, Eigen::all);
  const vector_t<A> isd = c.psi_inv_sqrt(pat.observed);  // Psi_o^{-1/2}
  const matrix_t<A> lt = isd.asDiagonal() * lo;           // Psi_o^{-1/2} Lambda_o
  matrix_t<A> m = matrix_t<A>::Identity(k, k);
  m.noalias() += lt.transpose() * lt;
  const Eigen::LLT<matrix_t<A>> llt(m);
  if (llt.info() != Eigen::Success) return false;
  matrix_t<A> m_inv = llt.solve(matrix_t<A>::Identity(k, k));
  m_inv = (A(0.5) * (m_inv + m_inv.transpose())).eval();
  const matrix_t<A> yo = xo.colwise() - p.mean(pat.observed);
  matrix_t<A> yt = isd.asDiagonal() * yo;  // whitened observed deviations
  matrix_t<A> ez(k, n);
  ez.noalias() = llt.solve(lt.transpose() * yt);  // E[z_n], k x n
  yt.noalias() -= lt * ez;                        // whitened residuals
  const A log_det_psi = p.uniquenesses(pat.observed).array().log().sum();
  const A log_det_m = A(2) * llt.matrixLLT().diagonal().array().log().sum();
  const A constant = static_cast<A>(pat.observed.size()) * A(log_two_pi) + log_det_psi + log_det_m;
  logp = (A(-0.5) * (constant + yt.colwise().squaredNorm().array() + ez.colwise().squaredNorm().array()))
             .matrix()
             .transpose();
  if (s == nullptr) return true;
  // Completed deviations from the statistics' reference: observed ones, and E[y_m].
  matrix_t<A> y(d, n);
  y(pat.observed, Eigen::all) = xo.colwise() - s->reference(pat.observed);
  const matrix_t<A> lm = p.loadings(pat.missing, Eigen::all);
  matrix_t<A> ym = lm * ez;
  ym.colwise() += p.mean(pat.missing) - s->reference(pat.missing);
  y(pat.missing, Eigen::all) = ym;
  const A wsum = w.sum();
  const matrix_t<A> ezw = ez * w.asDiagonal();  // k x n
  const matrix_t<A> lm_cov = lm * m_inv;        // |m| x k
  vector_t<A> syy = y.cwiseAbs2() * w;
  syy(pat.missing) += wsum * ((lm_cov.array() * lm.array()).rowwise().sum().matrix() + p.uniquenesses(pat.missing));
  matrix_t<A> syz(d, k);
  syz.noalias() = y * ezw.transpose();
  syz(pat.missing, Eigen::all) += wsum * lm_cov;
  s->weight += wsum;
  s->sum_y += y * w;
  s->sum_yy += syy;
  s->sum_yz += syz;
  s->sum_z += ezw.rowwise().sum();
  s->sum_zz.noalias() += ezw * ez.transpose();
  s->sum_zz += wsum * m_inv;
  return true;
}

}  // namespace latent::detail
