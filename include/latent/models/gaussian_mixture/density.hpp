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
///  - with one scale s = max(|x|_inf, |mu_k|_inf over k) (so that u_k = x / s - mu_k / s has
///    entries in [-2, 2]) and y_k = L_k^{-1} u_k, the squared Mahalanobis distances are
///    q_k = s^2 ||y_k||^2, kept as log q_k = 2 log s + 2 log ||y_k|| (a stable norm);
///  - log p(x) = -q_j / 2 + log sum_k exp(lc_k - (q_k - q_j) / 2) about the nearest live
///    component j (lc_k = log pi_k - d/2 log 2 pi - log det L_k), and r_k is proportional to
///    exp(lc_k - (q_k - q_j) / 2). The differences are computed without forming q_k: for
///    components with different covariances as q_j expm1(log q_k - log q_j) (the quadratic
///    terms dominate); for components sharing one (tied, or equal matrices), where q_k - q_j
///    is linear in x, exactly as s [L^{-1} (mu_j - mu_k)]^T (y_k + y_j), which also picks the
///    nearest of them. log p(x) is -inf when q_j / 2 overflows (its true value is then below
///    -1e308); the mass goes to the components nearest in Mahalanobis distance, resolved as
///    far as double resolves the distances.
/// Cost O(K d^2); only columns whose fast evaluation was not finite come here.
template <Scalar S>
double far_posterior(const Eigen::VectorXd& x, const basic_gaussian_mixture_params<S>& p, covariance_type type,
                     const cache<S>& c, Eigen::VectorXd& r) {
  const Eigen::Index k_count = p.weights.size(), d = x.size();
  constexpr double inf = std::numeric_limits<double>::infinity();
  const auto factor_of = [&](Eigen::Index k) -> Eigen::MatrixXd {
    return c.chol[static_cast<std::size_t>(type == covariance_type::tied ? 0 : k)].template cast<double>();
  };
  double s = x.cwiseAbs().maxCoeff();
  for (Eigen::Index k = 0; k < k_count; ++k)
    s = std::max(s, static_cast<double>(p.means.col(k).cwiseAbs().maxCoeff()));
  if (!(s > 0.0)) s = 1.0;
  Eigen::VectorXd lc(k_count), lq(k_count);
  Eigen::MatrixXd y(d, k_count);
  Eigen::Index j = -1;  // the nearest live component by log q
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const Eigen::MatrixXd l = factor_of(k);
    lc(k) = std::log(static_cast<double>(p.weights(k))) - 0.5 * static_cast<double>(d) * log_two_pi -
            l.diagonal().array().log().sum();
    const Eigen::VectorXd u = x / s - p.means.col(k).template cast<double>() / s;
    y.col(k) = l.template triangularView<Eigen::Lower>().solve(u);
    lq(k) = 2.0 * (std::log(s) + std::log(y.col(k).stableNorm()));  // -inf if x = mu_k
    if (p.weights(k) > S(0) && (j < 0 || lq(k) < lq(j))) j = k;
  }
  const auto shares_covariance = [&](Eigen::Index k, Eigen::Index i) {
    return type == covariance_type::tied ||
           p.covariances[static_cast<std::size_t>(k)] == p.covariances[static_cast<std::size_t>(i)];
  };
  // (q_k - q_i) / s for components sharing i's covariance: linear in x, no cancellation.
  const auto linear_gap = [&](Eigen::Index k, Eigen::Index i) {
    const Eigen::VectorXd dm = (p.means.col(i) - p.means.col(k)).template cast<double>();
    const Eigen::VectorXd v = factor_of(i).template triangularView<Eigen::Lower>().solve(dm);
    return v.dot(y.col(k) + y.col(i));
  };
  // Among the components sharing j's covariance, log q cannot tell the nearest (their
  // distances differ by a term linear in x, lost in q's rounding when x is far): compare them
  // by the linear differences.
  const Eigen::Index j0 = j;
  double best = 0.0;
  for (Eigen::Index k = 0; k < k_count; ++k) {
    if (k == j0 || !(p.weights(k) > S(0)) || !shares_covariance(k, j0)) continue;
    const double g = linear_gap(k, j0);
    if (g < best) {
      best = g;
      j = k;
    }
  }
  Eigen::VectorXd b = Eigen::VectorXd::Constant(k_count, -inf);  // lc_k - (q_k - q_j) / 2
  for (Eigen::Index k = 0; k < k_count; ++k) {
    if (!(p.weights(k) > S(0))) continue;
    double gap = 0.0;  // (q_k - q_j) / 2
    if (k != j && shares_covariance(k, j))
      gap = 0.5 * s * linear_gap(k, j);
    else if (k != j && lq(k) != lq(j))
      gap = 0.5 * std::exp(lq(j) + std::log(std::expm1(lq(k) - lq(j))));
    b(k) = lc(k) - gap;
  }
  const double bmax = b.maxCoeff();
  r.resize(k_count);
  if (bmax == inf) r = (b.array() == inf).template cast<double>();  // rounding made a gap -inf
  else r = (b.array() - bmax).exp();
  const double total = r.sum();
  r /= total;
  if (bmax == inf) return -inf;
  return -0.5 * std::exp(lq(j)) + (bmax + std::log(total));
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
