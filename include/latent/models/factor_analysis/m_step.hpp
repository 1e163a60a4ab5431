#pragma once
/// @file
/// Factor analysis: the double-precision algebra of `basic_factor_analysis` -- the M-step
/// from the statistics and the exact E-step from sample moments, both O(d^2 k) or less and
/// independent of N.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/model.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

namespace latent {

template <Scalar S>
void basic_factor_analysis<S>::m_step(const stats_type& s) {
  using A = accumulator_type;
  constexpr std::string_view fn = "factor_analysis::m_step";
  require_params(fn);
  const Eigen::Index d = dim();
  check_stats(s, fn);
  const A w = s.weight;
  if (!(w > A(0)) || !std::isfinite(w)) throw numerical_error(detail::concat(fn, ": statistics carry no weight"));
  // A = sum E[z~ z~^T], (k+1) x (k+1); C = sum y E[z~]^T, d x (k+1), z~ = (z, 1).
  matrix_t<A> a(k_ + 1, k_ + 1);
  a.topLeftCorner(k_, k_) = A(0.5) * (s.sum_zz + s.sum_zz.transpose());
  a.topRightCorner(k_, 1) = s.sum_z;
  a.bottomLeftCorner(1, k_) = s.sum_z.transpose();
  a(k_, k_) = w;
  matrix_t<A> c(d, k_ + 1);
  c.leftCols(k_) = s.sum_yz;
  c.col(k_) = s.sum_y;
  const Eigen::LLT<matrix_t<A>> llt(a);
  if (llt.info() != Eigen::Success)
    throw numerical_error(detail::concat(fn, ": the factors' second moment is not positive definite"));
  const matrix_t<A> lt = llt.solve(c.transpose());  // (k+1) x d = Lambda~^T
  basic_factor_analysis_params<A> p;
  p.loadings = lt.topRows(k_).transpose();
  p.mean = s.reference + lt.row(k_).transpose();
  vector_t<A> psi = (s.sum_yy - (lt.transpose().array() * c.array()).rowwise().sum().matrix()) / w;
  const vector_t<A> mean_y = s.sum_y / w;
  const vector_t<A> var = (s.sum_yy / w - mean_y.cwiseAbs2()).cwiseMax(A(0));
  const A vbar = var.mean();
  if (!(vbar > A(0)) || !std::isfinite(vbar))
    throw numerical_error(detail::concat(fn, ": the data have no variance (mean sample variance ", vbar, ")"));
  if (opts_.noise == noise_model::diagonal) {
    psi = psi.cwiseMax(uniqueness_floors(var));
  } else {
    psi.setConstant(std::max(psi.mean(), static_cast<A>(opts_.uniqueness_floor) * vbar));
  }
  p.uniquenesses = psi;
  params_type ps = p.template cast<S>();
  detail::fa_cache<S> cc;
  if (!ps.loadings.allFinite() || !ps.mean.allFinite() || !ps.uniquenesses.allFinite() ||
      !(ps.uniquenesses.array() > S(0)).all() || !detail::build_fa_cache(ps, cc))
    throw numerical_error(detail::concat(fn, ": the new parameters are not finite"));
  p_ = std::move(ps);
  c_ = std::move(cc);
}

template <Scalar S>
double basic_factor_analysis<S>::e_step(const moments_type& m, stats_type& s) const {
  using A = accumulator_type;
  constexpr std::string_view fn = "factor_analysis::e_step";
  require_params(fn);
  check_moment_shape(m, dim(), fn);
  check_stats(s, fn);
  const A w = m.count;
  const vector_t<A>& mu = c_.p.mean;
  // Moments about the model mean first (that is where E[z] = B (x - mu) is linear):
  // sum (x - mu)(x - mu)^T = W (S + a a^T), a = mean - mu.
  const vector_t<A> a = m.mean - mu;
  matrix_t<A> smu = w * m.covariance;
  smu.noalias() += w * a * a.transpose();
  const matrix_t<A> bt = c_.psi_inv_loadings * c_.m_inv;  // d x k: B^T, E[z] = B (x - mu)
  matrix_t<A> smu_bt(dim(), k_);
  smu_bt.noalias() = smu * bt;
  const vector_t<A> sz = bt.transpose() * (w * a);
  matrix_t<A> zz(k_, k_);
  zz.noalias() = bt.transpose() * smu_bt;
  // Then about the statistics' reference r: y = (x - mu) + e, e = mu - r.
  const vector_t<A> e = mu - s.reference;
  const vector_t<A> delta = m.mean - s.reference;
  s.weight += w;
  s.sum_y += w * delta;
  s.sum_yy += (w * (m.covariance.diagonal().array() + delta.array().square())).matrix();
  s.sum_yz += smu_bt + e * sz.transpose();
  s.sum_z += sz;
  s.sum_zz += A(0.5) * (zz + zz.transpose()) + w * c_.m_inv;
  // sum_n (x - mu)^T Sigma^{-1} (x - mu) = tr(Psi^{-1} Smu) - tr(G^T Smu G M^{-1}), G = Psi^{-1} Lambda:
  // the fast form, a difference; near a Heywood case (or where it cancels) the residual form
  // (kernels.hpp) on a factor C C^T = S of the covariance, Smu = W (C C^T + a a^T). O(d^3).
  const A first = smu.diagonal().dot(c_.psi_inv);
  A quad = first - (c_.psi_inv_loadings.transpose() * smu_bt).trace();
  if (c_.residual_form || !(quad * A(detail::fa_cancellation_limit) >= first)) {
    const Eigen::LDLT<matrix_t<A>> ldlt(m.covariance);
    matrix_t<A> f(dim(), dim() + 1);
    f.leftCols(dim()) = ldlt.matrixL();
    f.leftCols(dim()) = ldlt.transpositionsP().transpose() * f.leftCols(dim());
    f.leftCols(dim()) = f.leftCols(dim()) * ldlt.vectorD().cwiseMax(A(0)).cwiseSqrt().asDiagonal();
    f.col(dim()) = a;
    quad = w * detail::fa_residual_quad_sum(c_, f);
  }
  return static_cast<double>(w * c_.log_const - A(0.5) * quad);
}

}  // namespace latent
