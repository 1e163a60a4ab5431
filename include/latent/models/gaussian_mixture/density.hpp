#pragma once
/// @file
/// The Gaussian mixture's log-joint log pi_k + log N(x | mu_k, Sigma_k), as coefficients
/// derived from the parameters (internal; see model.hpp).
///
/// The coefficients are computed in double from the parameters and rounded to the model's
/// scalar once per M-step, so a float model's kernels see correctly rounded whitening
/// matrices; the per-observation arithmetic is then all in the scalar (kernels.hpp).

#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/kernels.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/models/gaussian_mixture/params.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace latent::detail::mixture {

/// What the log-joint needs, about a reference point c (see group_log_joint).
template <Scalar S>
struct density {
  vector_t<S> log_const;  ///< K: log pi_k - d/2 log 2 pi - 1/2 log det Sigma_k (+ the mean
                          ///< term about c for diagonal/spherical)
  matrix_t<S> coef;       ///< diagonal/spherical: K x 2d, [(mu_k - c) / v_k, -1 / (2 v_k)]
  matrix_t<S> tri;        ///< full/tied: lower triangles of L_k^{-1} packed by rows (K or 1 columns)
  matrix_t<S> offsets;    ///< full/tied: d x K, L_k^{-1} (mu_k - c)
};

/// Quantities derived from the parameters, rebuilt whenever they change.
///
/// The E-step (`dn`) and the queries (`plain_log_const`) differ in one constant per component:
/// the E-step's log-joint carries the covariance regularization's penalty
/// -reg_covar / 2 tr(Sigma_k^{-1}) (see `build_cache`), the queries' is the model's own.
template <Scalar S>
struct cache {
  vector_t<S> center;             ///< sum_k pi_k mu_k, rounded to S
  Eigen::MatrixXd whiten;         ///< full: K d x d stacked L_k^{-1}; tied: L^{-1} (double)
  std::vector<matrix_t<S>> chol;  ///< Cholesky factors L_k (tied: one; diagonal: diagonal)
  density<S> dn;                  ///< the E-step's (penalized) log-joint's coefficients about `center`
  vector_t<S> plain_log_const;    ///< K: dn.log_const without the penalty (the queries' log-joint)
  Eigen::VectorXd penalty;        ///< K: -reg_covar / 2 tr(Sigma_k^{-1}), in double
};

/// Whether a covariance is numerically singular: some conditional variance (the square of a
/// Cholesky pivot, or a diagonal variance) is at or below `tolerance` times its coordinate's
/// scale. The scale is the second moment about the statistics' reference point the M-step
/// computed the covariance from (the size of its rounding errors), or the covariance's own
/// diagonal for parameters a user set. The tolerance is 16 d eps of the scalar the moments
/// were summed in.
template <Scalar S>
double singular_tolerance(Eigen::Index d) {
  return 16.0 * static_cast<double>(d) * static_cast<double>(std::numeric_limits<S>::epsilon());
}

/// For diagonal covariances v_k, the log-joint about a reference point c is
///   log pi_k + log N(x | mu_k, diag v_k) = lc_k + sum_j x'_j (a_kj + b_kj x'_j),   x' = x - c,
/// with a_kj = (mu_kj - c_j) / v_kj, b_kj = -1 / (2 v_kj) and lc_k = log pi_k - d/2 log 2 pi
/// - 1/2 sum_j log v_kj - 1/2 sum_j (mu_kj - c_j)^2 / v_kj. Sets coef = [a b] (K x 2d) and lc,
/// computed in double and rounded to S. A non-empty `penalty` (K) is added to lc before rounding.
template <Scalar S>
void diagonal_coefficients(const basic_gaussian_mixture_params<S>& p, const Eigen::VectorXd& center,
                           matrix_t<S>& coef, vector_t<S>& lc, const Eigen::VectorXd& penalty = Eigen::VectorXd()) {
  const Eigen::Index d = p.means.rows(), k_count = p.weights.size();
  coef.resize(k_count, 2 * d);
  lc.resize(k_count);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const Eigen::VectorXd v = p.covariances[static_cast<std::size_t>(k)].diagonal().template cast<double>();
    const Eigen::VectorXd inv = v.cwiseInverse();
    const Eigen::VectorXd mc = p.means.col(k).template cast<double>() - center;
    coef.row(k).head(d) = mc.cwiseProduct(inv).transpose().template cast<S>();
    coef.row(k).tail(d) = (-0.5 * inv.transpose()).template cast<S>();
    lc(k) = static_cast<S>(std::log(static_cast<double>(p.weights(k))) - 0.5 * static_cast<double>(d) * log_two_pi -
                           0.5 * v.array().log().sum() - 0.5 * mc.dot(mc.cwiseProduct(inv)) +
                           (penalty.size() > 0 ? penalty(k) : 0.0));
  }
}

/// Builds the cache of parameters `p` of covariance type `type`. `scale` (d x K, column k for
/// covariance k, or empty for the covariances' diagonals) and `tolerance` define numerical singularity (see
/// singular_tolerance). Returns false if a covariance is not positive definite or is
/// numerically singular.
///
/// `reg` is the covariance regularization reg_covar = eps. The E-step's log-joint gets the
/// constant -eps/2 tr(Sigma_k^{-1}) per component: it is EM for the penalized log-likelihood
/// sum_n w_n log sum_k pi_k N(x_n | mu_k, Sigma_k) exp(-eps/2 tr Sigma_k^{-1}), whose exact
/// M-step is the regularized one (Sigma_k = C_k + eps I; see mstep.hpp), so that the objective
/// EM traces is the one it increases (for eps = 0 it is the log-likelihood).
template <Scalar S>
bool build_cache(const basic_gaussian_mixture_params<S>& p, covariance_type type, const Eigen::MatrixXd& scale,
                 double tolerance, double reg, cache<S>& c) {
  const Eigen::Index d = p.means.rows(), k_count = p.weights.size();
  const auto scale_of = [&](Eigen::Index k, Eigen::Index i) {
    return scale.size() > 0 ? scale(i, k)
                            : static_cast<double>(p.covariances[static_cast<std::size_t>(k)](i, i));
  };
  const Eigen::VectorXd center_d = p.means.template cast<double>() * p.weights.template cast<double>();
  c.center = center_d.template cast<S>();
  const Eigen::VectorXd center = c.center.template cast<double>();  // the rounded point, exactly
  c.penalty.setZero(k_count);
  if (type == covariance_type::full || type == covariance_type::tied) {
    const Eigen::Index nf = type == covariance_type::full ? k_count : 1;
    const Eigen::ArrayXd log_w = p.weights.template cast<double>().array().log();  // log 0 = -inf: a dead component
    const double half_d_log_2pi = 0.5 * static_cast<double>(d) * log_two_pi;
    c.chol.assign(static_cast<std::size_t>(nf), matrix_t<S>());
    c.whiten.resize(nf * d, d);
    Eigen::MatrixXd offsets(d, k_count);
    c.dn.log_const.resize(k_count);
    Eigen::VectorXd log_det(nf);
    for (Eigen::Index f = 0; f < nf; ++f) {
      const cholesky_result ch =
          regularized_cholesky(p.covariances[static_cast<std::size_t>(f)].template cast<double>());
      if (!ch.ok) return false;
      const Eigen::VectorXd pivots = ch.llt.matrixLLT().diagonal();
      for (Eigen::Index i = 0; i < d; ++i)
        if (!(pivots(i) * pivots(i) > tolerance * scale_of(f, i))) return false;
      c.chol[static_cast<std::size_t>(f)] = Eigen::MatrixXd(ch.llt.matrixL()).template cast<S>();
      c.whiten.middleRows(f * d, d) = ch.llt.matrixL().solve(Eigen::MatrixXd::Identity(d, d));
      log_det(f) = log_det_from_cholesky(ch.llt);
    }
    if (!c.whiten.allFinite()) return false;
    c.plain_log_const.resize(k_count);
    for (Eigen::Index k = 0; k < k_count; ++k) {
      const Eigen::Index f = type == covariance_type::full ? k : 0;
      offsets.col(k) = c.whiten.middleRows(f * d, d) * (p.means.col(k).template cast<double>() - center);
      const double lc = log_w(k) - half_d_log_2pi - 0.5 * log_det(f);
      // tr(Sigma^{-1}) = ||L^{-1}||_F^2.
      if (reg > 0.0) c.penalty(k) = -0.5 * reg * c.whiten.middleRows(f * d, d).squaredNorm();
      c.plain_log_const(k) = static_cast<S>(lc);
      c.dn.log_const(k) = static_cast<S>(lc + c.penalty(k));
    }
    c.dn.offsets = offsets.template cast<S>();
    c.dn.tri = pack_lower_rows<S>(c.whiten, nf);
  } else {
    c.chol.assign(static_cast<std::size_t>(k_count), matrix_t<S>());
    for (Eigen::Index k = 0; k < k_count; ++k) {
      const vector_t<S> v = p.covariances[static_cast<std::size_t>(k)].diagonal();
      if (!v.allFinite()) return false;
      for (Eigen::Index i = 0; i < d; ++i)
        if (!(static_cast<double>(v(i)) > tolerance * scale_of(k, i))) return false;
      c.chol[static_cast<std::size_t>(k)] = v.cwiseSqrt().asDiagonal();
      if (reg > 0.0) c.penalty(k) = -0.5 * reg * v.template cast<double>().cwiseInverse().sum();
    }
    diagonal_coefficients(p, center, c.dn.coef, c.plain_log_const);
    diagonal_coefficients(p, center, c.dn.coef, c.dn.log_const, c.penalty);
  }
  return c.penalty.allFinite();
}

/// The log-joint's coefficients about `center`: the cached ones if it is the cache's center
/// (the usual case), else shifted copies built in `scratch`.
template <Scalar S>
const density<S>& density_about(const cache<S>& c, const basic_gaussian_mixture_params<S>& p, covariance_type type,
                                const vector_t<S>& center, density<S>& scratch) {
  if (center == c.center) return c.dn;
  scratch = c.dn;
  const Eigen::VectorXd to = center.template cast<double>();
  if (type == covariance_type::diagonal || type == covariance_type::spherical) {
    diagonal_coefficients(p, to, scratch.coef, scratch.log_const, c.penalty);
  } else {
    // L_k^{-1} (mu_k - c') = L_k^{-1} (mu_k - c) + L_k^{-1} (c - c').
    const Eigen::Index d = center.size();
    const Eigen::VectorXd delta = c.center.template cast<double>() - to;
    for (Eigen::Index k = 0; k < p.weights.size(); ++k) {
      const Eigen::Index f = type == covariance_type::full ? k : 0;
      scratch.offsets.col(k) =
          (c.dn.offsets.col(k).template cast<double>() + c.whiten.middleRows(f * d, d) * delta).template cast<S>();
    }
  }
  return scratch;
}

/// The posterior of one observation `x` (double) at which the kernels' log-joint overflowed
/// (a point so far from the components, or data so large, that a squared distance or an
/// intermediate product is not representable in S; the kernels then give -inf or NaN).
/// Sets r (K) to p(c = k | x) and returns log p(x), both in double, without overflow:
///
///  - the squared Mahalanobis distances q_k = ||L_k^{-1} (x - mu_k)||^2 are computed as
///    log q_k = 2 log s_k + 2 log ||L_k^{-1} u_k||, with u_k = x / s_k - mu_k / s_k and
///    s_k = max(|x|_inf, |mu_k|_inf) (every entry of u_k in [-2, 2]) and a stable norm;
///  - if some a_k = log pi_k - d/2 log 2 pi - log det L_k - q_k / 2 is finite, log p(x) and r
///    follow by log-sum-exp;
///  - otherwise every density underflows double: log p(x) = -inf (its true value is below
///    -1e308), and r_k is proportional to exp(lc_k - (q_k - q_min) / 2), the differences
///    computed as q_min expm1(log q_k - log q_min): all the mass goes to the components nearest
///    in Mahalanobis distance, to the precision double has for distances of that size.
/// Cost O(K d^2); only columns whose fast evaluation was not finite come here.
template <Scalar S>
double far_posterior(const Eigen::VectorXd& x, const basic_gaussian_mixture_params<S>& p, covariance_type type,
                     const cache<S>& c, Eigen::VectorXd& r) {
  const Eigen::Index k_count = p.weights.size(), d = x.size();
  constexpr double inf = std::numeric_limits<double>::infinity();
  Eigen::VectorXd lc(k_count), lq(k_count), a(k_count);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const Eigen::Index f = type == covariance_type::tied ? 0 : k;
    const Eigen::MatrixXd l = c.chol[static_cast<std::size_t>(f)].template cast<double>();
    const Eigen::VectorXd mu = p.means.col(k).template cast<double>();
    lc(k) = std::log(static_cast<double>(p.weights(k))) - 0.5 * static_cast<double>(d) * log_two_pi -
            l.diagonal().array().log().sum();
    const double s = std::max(x.cwiseAbs().maxCoeff(), mu.cwiseAbs().maxCoeff());
    if (s > 0.0) {
      const Eigen::VectorXd u = x / s - mu / s;
      const Eigen::VectorXd y = l.template triangularView<Eigen::Lower>().solve(u);
      const double norm = y.stableNorm();
      lq(k) = 2.0 * (std::log(s) + std::log(norm));  // -inf if x = mu_k
    } else {
      lq(k) = -inf;
    }
    a(k) = lc(k) - 0.5 * std::exp(lq(k));  // -inf if q_k overflows or pi_k = 0
  }
  r.resize(k_count);
  const double top = a.maxCoeff();
  if (std::isfinite(top)) {
    r = (a.array() - top).exp();
    const double total = r.sum();
    r /= total;
    return top + std::log(total);
  }
  // Every density underflows: compare the distances with each other.
  double lq_min = inf;
  for (Eigen::Index k = 0; k < k_count; ++k)
    if (p.weights(k) > S(0)) lq_min = std::min(lq_min, lq(k));
  Eigen::VectorXd b = Eigen::VectorXd::Constant(k_count, -inf);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    if (!(p.weights(k) > S(0))) continue;
    const double gap = lq(k) == lq_min ? 0.0 : 0.5 * std::exp(lq_min + std::log(std::expm1(lq(k) - lq_min)));
    b(k) = lc(k) - gap;
  }
  const double bmax = b.maxCoeff();
  r = (b.array() - bmax).exp();
  r /= r.sum();
  return -inf;
}

/// lj (group x K) = log pi_k + log N(x_n | mu_k, Sigma_k) for a group of observations: the
/// x_n - c are the rows of the column-major block at z with leading dimension ld, where c is
/// the point `dn` was built about. `y` is group x d scratch (tied).
template <Scalar S, class Out>
inline void group_log_joint(covariance_type type, const S* z, Eigen::Index ld, Eigen::Index d, const density<S>& dn,
                     Out& lj, group_block<S>& y) {
  const Eigen::Index k_count = dn.log_const.size();
  switch (type) {
    case covariance_type::diagonal:
    case covariance_type::spherical:
      diagonal_log_joint(z, ld, d, dn.coef, dn.log_const, lj);
      break;
    case covariance_type::full:
      for (Eigen::Index k = 0; k < k_count; ++k)
        lj.col(k).array() =
            dn.log_const(k) - S(0.5) * whitened_norms(z, ld, d, dn.tri.col(k).data(), dn.offsets.col(k).data());
      break;
    case covariance_type::tied:
      // One whitening shared by all components, then K distances to the whitened means.
      for (Eigen::Index i = 0; i < d; ++i) {
        const S* row = dn.tri.data() + i * (i + 1) / 2;  // row i of the packed triangle
        y.col(i) = whiten_row(z, ld, i, row, S(0));
      }
      for (Eigen::Index k = 0; k < k_count; ++k) {
        group_array<S> nrm = (y.col(0) - dn.offsets(0, k)).square();
        for (Eigen::Index i = 1; i < d; ++i) nrm += (y.col(i) - dn.offsets(i, k)).square();
        lj.col(k).array() = dn.log_const(k) - S(0.5) * nrm;
      }
      break;
  }
}

}  // namespace latent::detail::mixture
