#pragma once
/// @file
/// The Gaussian mixture's E-step for observations with missing coordinates (internal; see
/// model.hpp and docs/models/gaussian_mixture.md, "Missing values").
///
/// For an observation with observed coordinates o and missing ones m, and component k,
///
///     log p(x_o, c = k) = log pi_k + log N(x_o | mu_k,o, Sigma_k,oo),
///     x_m | x_o, c = k  ~  N(mu_k,m + Sigma_k,mo Sigma_k,oo^{-1} (x_o - mu_k,o), C_k),
///     C_k = Sigma_k,mm - Sigma_k,mo Sigma_k,oo^{-1} Sigma_k,om.
///
/// With Sigma_k,oo = L L^T and B = L^{-1} Sigma_k,om, y = L^{-1} (x_o - mu_k,o): the log-density
/// is -|o|/2 log 2 pi - log det L - ||y||^2 / 2, the conditional mean mu_k,m + B^T y and
/// C_k = Sigma_k,mm - B^T B. Observations sharing a pattern share L, B and C_k: one Cholesky
/// factor per component and pattern (one per pattern for tied covariances), then triangular
/// solves and GEMMs over all the pattern's columns. Diagonal and spherical covariances need no
/// factor: the log-density sums over the observed coordinates, the conditional mean of x_m is
/// mu_k,m and C_k = diag(Sigma_k,mm).
///
/// The expected statistics complete each observation by its conditional mean x^_k (which
/// depends on the component) and add the conditional covariance: E[(x - c)(x - c)^T | x_o, k]
/// = (x^_k - c)(x^_k - c)^T + C_k on the missing block. Everything is in double (the
/// statistics' accumulator).

#include <latent/core/missing.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/models/gaussian_mixture/params.hpp>
#include <latent/models/gaussian_mixture/stats.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <vector>

namespace latent::detail::mixture {

/// The conditional quantities of one missingness pattern (see the file comment).
struct pattern_conditional {
  Eigen::MatrixXd log_joint;             ///< K x n: log pi_k + log N(x_o | mu_k,o, Sigma_k,oo) (+ extra_k)
  std::vector<Eigen::MatrixXd> filled;   ///< K (if asked): d x n, x_o with x_m = E[x_m | x_o, c = k]
  std::vector<Eigen::MatrixXd> cond_cov;  ///< K (if asked): |m| x |m|, C_k
};

/// Fills `out` for the columns `xo` (|o| x n, the observed coordinates of the pattern's
/// columns, in double) of pattern `pat`, under parameters `p` of type `type`; `extra` (K, or
/// empty) is added to every component's log-joint (the E-step's penalty). With `fill`, also the
/// completed columns and the conditional covariances. Returns false if a covariance block does
/// not factor (it cannot, for parameters the model accepted, but rounding is checked).
template <Scalar S>
bool condition_on_pattern(const basic_gaussian_mixture_params<S>& p, covariance_type type,
                          const Eigen::VectorXd& extra, const missing_pattern& pat, const Eigen::MatrixXd& xo,
                          bool fill, pattern_conditional& out) {
  const Eigen::Index k_count = p.weights.size(), d = p.means.rows(), n = xo.cols();
  const auto no = static_cast<Eigen::Index>(pat.observed.size());
  const double half_log_2pi_o = 0.5 * static_cast<double>(no) * log_two_pi;
  out.log_joint.resize(k_count, n);
  if (fill) {
    out.filled.assign(static_cast<std::size_t>(k_count), Eigen::MatrixXd());
    out.cond_cov.assign(static_cast<std::size_t>(k_count), Eigen::MatrixXd());
  }
  const bool diagonal = type == covariance_type::diagonal || type == covariance_type::spherical;
  Eigen::LLT<Eigen::MatrixXd> llt;
  Eigen::MatrixXd b, c_mm;  // B = L^{-1} Sigma_om (|o| x |m|), C = Sigma_mm - B^T B
  double half_log_det = 0.0;
  Eigen::MatrixXd y(no, n);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const Eigen::MatrixXd sigma = p.covariances[static_cast<std::size_t>(k)].template cast<double>();
    const Eigen::VectorXd mu = p.means.col(k).template cast<double>();
    y = xo.colwise() - mu(pat.observed);
    if (diagonal) {
      const Eigen::VectorXd v = sigma.diagonal();
      const Eigen::VectorXd vo = v(pat.observed);
      y.array().colwise() /= vo.array().sqrt();
      half_log_det = 0.5 * vo.array().log().sum();
      if (fill) c_mm = v(pat.missing).asDiagonal();
    } else {
      if (k == 0 || type == covariance_type::full) {
        llt.compute(sigma(pat.observed, pat.observed));
        if (llt.info() != Eigen::Success) return false;
        half_log_det = llt.matrixLLT().diagonal().array().log().sum();
        if (fill) {
          b = llt.matrixL().solve(sigma(pat.observed, pat.missing));
          c_mm = sigma(pat.missing, pat.missing);
          c_mm.noalias() -= b.transpose() * b;
          c_mm = (0.5 * (c_mm + c_mm.transpose())).eval();
        }
      }
      llt.matrixL().solveInPlace(y);
    }
    out.log_joint.row(k) = (std::log(static_cast<double>(p.weights(k))) - half_log_2pi_o - half_log_det +
                            (extra.size() > 0 ? extra(k) : 0.0)) -
                           0.5 * y.colwise().squaredNorm().array();
    if (!fill) continue;
    Eigen::MatrixXd& f = out.filled[static_cast<std::size_t>(k)];
    f.resize(d, n);
    f(pat.observed, Eigen::all) = xo;
    if (diagonal) {
      f(pat.missing, Eigen::all) = mu(pat.missing).replicate(1, n);
    } else {
      Eigen::MatrixXd xm = b.transpose() * y;
      xm.colwise() += mu(pat.missing);
      f(pat.missing, Eigen::all) = xm;
    }
    out.cond_cov[static_cast<std::size_t>(k)] = c_mm;
  }
  return true;
}

/// Adds the expected statistics of the columns of pattern `pat` (weights `w`, n) to `s` and
/// returns their weighted objective sum_n w_n log sum_k exp(log_joint_kn), in double.
template <Scalar S>
double add_pattern_statistics(const pattern_conditional& cond, const missing_pattern& pat, const Eigen::VectorXd& w,
                              basic_gaussian_mixture_stats<S>& s) {
  const Eigen::Index k_count = cond.log_joint.rows(), n = cond.log_joint.cols();
  const Eigen::Index d = s.center.size();
  Eigen::MatrixXd r = cond.log_joint;
  Eigen::RowVectorXd lse(n);
  normalize_columns_log(r, lse);
  const double ll = lse.dot(w.transpose());
  r.array().rowwise() *= w.transpose().array();  // weighted responsibilities
  const Eigen::VectorXd center = s.center.template cast<double>();
  Eigen::MatrixXd z(d, n), zr(d, n), full(d, d);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const double nk = r.row(k).sum();
    if (!(nk > 0.0)) continue;
    z = cond.filled[static_cast<std::size_t>(k)].colwise() - center;
    zr = z.array().rowwise() * r.row(k).array();
    s.counts(k) += nk;
    s.sums.col(k) += zr.rowwise().sum();
    const Eigen::MatrixXd& ck = cond.cond_cov[static_cast<std::size_t>(k)];
    switch (s.type) {
      case covariance_type::full:
      case covariance_type::tied: {
        full.noalias() = zr * z.transpose();
        full(pat.missing, pat.missing) += nk * ck;
        if (s.type == covariance_type::full)
          s.scatter.middleRows(k * d, d) += full;
        else
          s.scatter += full;
        break;
      }
      case covariance_type::diagonal:
      case covariance_type::spherical: {
        Eigen::VectorXd dg = (zr.array() * z.array()).rowwise().sum();
        dg(pat.missing) += nk * ck.diagonal();
        s.diagonal_scatter.col(k) += dg;
        break;
      }
    }
  }
  return ll;
}

/// The observed columns of pattern `pat` from x, in double (|o| x n).
template <class X>
Eigen::MatrixXd observed_block(const X& x, const missing_pattern& pat) {
  return x(pat.observed, pat.columns).template cast<double>();
}

}  // namespace latent::detail::mixture
