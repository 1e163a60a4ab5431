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
template <Scalar S>
struct cache {
  vector_t<S> center;             ///< sum_k pi_k mu_k, rounded to S
  Eigen::MatrixXd whiten;         ///< full: K d x d stacked L_k^{-1}; tied: L^{-1} (double)
  std::vector<matrix_t<S>> chol;  ///< Cholesky factors L_k (tied: one; diagonal: diagonal)
  density<S> dn;                  ///< the log-joint's coefficients about `center`
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
/// computed in double and rounded to S.
template <Scalar S>
void diagonal_coefficients(const basic_gaussian_mixture_params<S>& p, const Eigen::VectorXd& center,
                           matrix_t<S>& coef, vector_t<S>& lc) {
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
                           0.5 * v.array().log().sum() - 0.5 * mc.dot(mc.cwiseProduct(inv)));
  }
}

/// Builds the cache of parameters `p` of covariance type `type`. `scale` (d x K, column k for
/// covariance k, or empty for the covariances' diagonals) and `tolerance` define numerical singularity (see
/// singular_tolerance). Returns false if a covariance is not positive definite or is
/// numerically singular.
template <Scalar S>
bool build_cache(const basic_gaussian_mixture_params<S>& p, covariance_type type, const Eigen::MatrixXd& scale,
                 double tolerance, cache<S>& c) {
  const Eigen::Index d = p.means.rows(), k_count = p.weights.size();
  const auto scale_of = [&](Eigen::Index k, Eigen::Index i) {
    return scale.size() > 0 ? scale(i, k)
                            : static_cast<double>(p.covariances[static_cast<std::size_t>(k)](i, i));
  };
  const Eigen::VectorXd center_d = p.means.template cast<double>() * p.weights.template cast<double>();
  c.center = center_d.template cast<S>();
  const Eigen::VectorXd center = c.center.template cast<double>();  // the rounded point, exactly
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
    for (Eigen::Index k = 0; k < k_count; ++k) {
      const Eigen::Index f = type == covariance_type::full ? k : 0;
      offsets.col(k) = c.whiten.middleRows(f * d, d) * (p.means.col(k).template cast<double>() - center);
      c.dn.log_const(k) = static_cast<S>(log_w(k) - half_d_log_2pi - 0.5 * log_det(f));
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
    }
    diagonal_coefficients(p, center, c.dn.coef, c.dn.log_const);
  }
  return true;
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
    diagonal_coefficients(p, to, scratch.coef, scratch.log_const);
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
