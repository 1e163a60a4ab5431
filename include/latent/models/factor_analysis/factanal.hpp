#pragma once
/// @file
/// factanal-style output of a fitted factor analysis (R's `stats::factanal`): uniquenesses and
/// loadings on the correlation scale, rotated and sorted, the variance each factor explains,
/// and the likelihood-ratio test that k factors suffice, with Bartlett's correction.
///
/// The ML fit is scale-equivariant, so a fit to the covariance matrix gives R's correlation-scale
/// answer after standardizing: with s_j^2 the sample variances (the diagonal of S),
///
///     uniqueness_j = Psi_jj / s_j^2,        loading_ja = Lambda_ja / s_j.
///
/// The unrotated loadings are R's canonical ones (computed from the standardized Psi alone):
/// with R the sample correlation matrix and R* = Psi^{-1/2} R Psi^{-1/2} = E diag(theta) E^T
/// (theta descending), Lambda = Psi^{1/2} E_k diag(max(theta_a - 1, 0))^{1/2}, the maximizer over
/// Lambda for the given Psi (so Lambda^T Psi^{-1} Lambda is diagonal). They are rotated
/// (`rotation.hpp`), then, as R's factanal does, the columns are sorted by decreasing sum of
/// squares and each column whose sum is negative is negated; the rotation matrix and the factor
/// correlations are permuted and signed the same way, so `loadings = unrotated * rotation`
/// always holds. (R's printed "Factor Correlations" use the rotation matrix *before* this
/// sorting, so for promax their off-diagonal signs and order can differ from ours when the
/// sort moved or negated a column.)
///
/// The test statistic is R's:
///
///     F = log det Sigma - log det R + tr(Sigma^{-1} R) - p,    Sigma = Lambda Lambda^T + Psi,
///     statistic = (n - 1 - (2p + 5)/6 - 2k/3) F,   df = ((p - k)^2 - (p + k)) / 2,
///     p-value = P(chi^2(df) > statistic)   (only when df > 0).
///
/// The summary describes the parameters it is given: fit to convergence first (EM from the
/// moments is cheap: O(p^2 k) per iteration; see docs/models/factor_analysis.md).

#include <latent/core/chi_square.hpp>
#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/model.hpp>
#include <latent/models/factor_analysis/rotation.hpp>
#include <latent/models/factor_analysis/sample_moments.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// What R's `print(factanal(...))` shows, in double (see the file comment).
struct factanal_result {
  Eigen::Index variables = 0;             ///< p
  Eigen::Index factors = 0;               ///< k
  double n_obs = 0.0;                     ///< the moments' count n
  factor_rotation rotation_kind = factor_rotation::varimax;
  Eigen::VectorXd uniquenesses;           ///< p, Psi_jj / s_j^2
  Eigen::MatrixXd unrotated_loadings;     ///< p x k, canonical (Lambda^T Psi^{-1} Lambda diagonal), standardized
  Eigen::MatrixXd loadings;               ///< p x k, rotated, sorted and signed as R prints them
  Eigen::MatrixXd rotation;               ///< k x k, loadings = unrotated_loadings * rotation
  Eigen::MatrixXd factor_correlation;     ///< k x k, Phi = rotation^{-1} rotation^{-T} (I if orthogonal)
  Eigen::VectorXd ss_loadings;            ///< k, column sums of squared loadings ("SS loadings")
  Eigen::VectorXd proportion_variance;    ///< k, ss_loadings / p
  Eigen::VectorXd cumulative_variance;    ///< k, running sums of proportion_variance
  double objective = 0.0;                 ///< F, the ML discrepancy at the fit (R's criteria["objective"])
  double degrees_of_freedom = 0.0;        ///< ((p - k)^2 - (p + k)) / 2, >= 0
  bool has_test = false;                  ///< df > 0: the chi-square test below is defined
  double statistic = std::numeric_limits<double>::quiet_NaN();  ///< Bartlett-corrected chi-square (if has_test)
  double p_value = std::numeric_limits<double>::quiet_NaN();    ///< P(chi^2(df) > statistic) (if has_test)
};

/// The factanal summary of `fitted` (a factor analysis with diagonal Psi, at its ML fit to
/// `moments`) with the given rotation. O(p^3).
/// @throws invalid_argument if `fitted` has no parameters or isotropic noise (PPCA: the test
///         would have other degrees of freedom), `moments` do not have p = fitted.dim() variables
///         or are not finite and symmetric, a variable has zero variance, or df < 0 (too many
///         factors for p variables, as R's factanal refuses); numerical_error if R* cannot be
///         decomposed or Sigma or R is not positive definite.
template <Scalar S>
factanal_result factanal_summary(const basic_factor_analysis<S>& fitted, const basic_sample_moments<S>& moments,
                                 factor_rotation rotation = factor_rotation::varimax) {
  constexpr std::string_view fn = "factanal_summary";
  detail::require(fitted.has_params(), fn, "argument 'fitted' has no parameters: fit it first");
  detail::require(fitted.noise() == noise_model::diagonal, fn,
                  "argument 'fitted' must have diagonal noise (factor analysis), got ", to_string(fitted.noise()));
  const Eigen::Index p = fitted.dim(), k = fitted.factors();
  detail::require(moments.covariance.rows() == p && moments.covariance.cols() == p, fn,
                  "argument 'moments' must have p = ", p, " variables, got a ", moments.covariance.rows(), " x ",
                  moments.covariance.cols(), " covariance");
  detail::require(std::isfinite(static_cast<double>(moments.count)) && moments.count > 0, fn,
                  "argument 'moments' must have a positive finite count, got ", moments.count);
  const Eigen::MatrixXd s = moments.covariance.template cast<double>();
  detail::require_finite_symmetric(s, fn, "moments.covariance");
  const double dof = 0.5 * (static_cast<double>((p - k) * (p - k)) - static_cast<double>(p + k));
  detail::require(dof >= 0.0, fn, k, " factors are too many for ", p, " variables (degrees of freedom ", dof, " < 0)");
  const Eigen::VectorXd var = s.diagonal();
  for (Eigen::Index j = 0; j < p; ++j)
    detail::require(var(j) > 0.0, fn, "variable ", j, " of 'moments' has zero variance");
  const Eigen::VectorXd sd = var.cwiseSqrt();
  const Eigen::MatrixXd corr = sd.cwiseInverse().asDiagonal() * s * sd.cwiseInverse().asDiagonal();

  factanal_result r;
  r.variables = p;
  r.factors = k;
  r.n_obs = static_cast<double>(moments.count);
  r.rotation_kind = rotation;
  r.uniquenesses = fitted.params().uniquenesses.template cast<double>().cwiseQuotient(var);

  // Canonical loadings from Psi alone.
  const Eigen::VectorXd root = r.uniquenesses.cwiseSqrt();
  const Eigen::MatrixXd star = root.cwiseInverse().asDiagonal() * corr * root.cwiseInverse().asDiagonal();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(star);
  if (es.info() != Eigen::Success) throw numerical_error(concat(fn, ": eigen-decomposition of Psi^-1/2 R Psi^-1/2 failed"));
  r.unrotated_loadings.resize(p, k);
  for (Eigen::Index a = 0; a < k; ++a) {
    const double theta = es.eigenvalues()(p - 1 - a);
    r.unrotated_loadings.col(a) = root.asDiagonal() * es.eigenvectors().col(p - 1 - a) * std::sqrt(std::max(theta - 1.0, 0.0));
  }

  // The discrepancy F and the test.
  Eigen::MatrixXd sigma = r.unrotated_loadings * r.unrotated_loadings.transpose();
  sigma.diagonal() += r.uniquenesses;
  const Eigen::LLT<Eigen::MatrixXd> ls(sigma), lr(corr);
  if (ls.info() != Eigen::Success || lr.info() != Eigen::Success)
    throw numerical_error(concat(fn, ": the fitted or the sample correlation matrix is not positive definite"));
  const auto log_det = [](const Eigen::LLT<Eigen::MatrixXd>& l) {
    return 2.0 * l.matrixL().toDenseMatrix().diagonal().array().log().sum();
  };
  r.objective = log_det(ls) - log_det(lr) + ls.solve(corr).trace() - static_cast<double>(p);
  r.degrees_of_freedom = dof;
  r.has_test = dof > 0.0;
  if (r.has_test) {
    const double pd = static_cast<double>(p), kd = static_cast<double>(k);
    r.statistic = (r.n_obs - 1.0 - (2.0 * pd + 5.0) / 6.0 - 2.0 * kd / 3.0) * r.objective;
    r.p_value = chi_square_upper_tail(std::max(r.statistic, 0.0), dof);
  }

  // Rotate, then sort and sign as R's factanal.
  rotated_loadings rot = rotate(r.unrotated_loadings, rotation);
  const Eigen::RowVectorXd ss = rot.loadings.cwiseAbs2().colwise().sum();
  std::vector<Eigen::Index> order(static_cast<std::size_t>(k));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return ss(a) > ss(b); });
  Eigen::MatrixXd perm_sign = Eigen::MatrixXd::Zero(k, k);  // columns: new a <- old order[a], signed
  for (Eigen::Index a = 0; a < k; ++a) {
    const Eigen::Index old = order[static_cast<std::size_t>(a)];
    perm_sign(old, a) = rot.loadings.col(old).sum() < 0.0 ? -1.0 : 1.0;
  }
  r.loadings = rot.loadings * perm_sign;
  r.rotation = rot.rotation * perm_sign;
  r.factor_correlation = perm_sign.transpose() * rot.factor_correlation * perm_sign;
  r.ss_loadings = r.loadings.cwiseAbs2().colwise().sum().transpose();
  r.proportion_variance = r.ss_loadings / static_cast<double>(p);
  r.cumulative_variance = r.proportion_variance;
  for (Eigen::Index a = 1; a < k; ++a) r.cumulative_variance(a) += r.cumulative_variance(a - 1);
  return r;
}

/// Print `r` as R's `print.factanal` does (3 decimals; the statistic to 2, the p-value to 3
/// significant digits), with variable names `names` (default V1..Vp). Unlike R, every loading
/// is printed (R blanks those below 0.1 in absolute value).
/// @throws invalid_argument if `names` is neither empty nor of p entries.
inline void print_factanal(std::ostream& os, const factanal_result& r, const std::vector<std::string>& names = {}) {
  detail::require(names.empty() || static_cast<Eigen::Index>(names.size()) == r.variables, "print_factanal",
                  "argument 'names' must be empty or have p = ", r.variables, " entries, got ", names.size());
  const auto name = [&](Eigen::Index j) {
    return names.empty() ? concat("V", j + 1) : names[static_cast<std::size_t>(j)];
  };
  std::size_t width = 14;
  for (Eigen::Index j = 0; j < r.variables; ++j) width = std::max(width, name(j).size());
  char buf[64];
  const auto num = [&](double v, int digits, int w) {
    std::snprintf(buf, sizeof buf, "%*.*f", w, digits, v);
    return std::string(buf);
  };
  const auto pad = [&](const std::string& s) { return s + std::string(width - std::min(width, s.size()), ' '); };
  os << "Uniquenesses:\n";
  for (Eigen::Index j = 0; j < r.variables; ++j) os << pad(name(j)) << num(r.uniquenesses(j), 3, 8) << '\n';
  os << "\nLoadings (" << to_string(r.rotation_kind) << "):\n" << std::string(width, ' ');
  for (Eigen::Index a = 0; a < r.factors; ++a) os << "  Factor" << a + 1;
  os << '\n';
  for (Eigen::Index j = 0; j < r.variables; ++j) {
    os << pad(name(j));
    for (Eigen::Index a = 0; a < r.factors; ++a) os << num(r.loadings(j, a), 3, 9);
    os << '\n';
  }
  os << '\n' << std::string(width, ' ');
  for (Eigen::Index a = 0; a < r.factors; ++a) os << "  Factor" << a + 1;
  const auto row = [&](const char* label, const Eigen::VectorXd& v) {
    os << '\n' << pad(label);
    for (Eigen::Index a = 0; a < r.factors; ++a) os << num(v(a), 3, 9);
  };
  row("SS loadings", r.ss_loadings);
  row("Proportion Var", r.proportion_variance);
  row("Cumulative Var", r.cumulative_variance);
  os << '\n';
  if (!r.factor_correlation.isIdentity(1e-12)) {
    os << "\nFactor Correlations:\n" << std::string(width, ' ');
    for (Eigen::Index a = 0; a < r.factors; ++a) os << "  Factor" << a + 1;
    for (Eigen::Index a = 0; a < r.factors; ++a) {
      os << '\n' << pad(concat("Factor", a + 1));
      for (Eigen::Index b = 0; b < r.factors; ++b) os << num(r.factor_correlation(a, b), 3, 9);
    }
    os << '\n';
  }
  if (r.has_test) {
    std::snprintf(buf, sizeof buf, "%.3g", r.p_value);
    const std::string p_value(buf);  // num() below reuses buf
    os << "\nTest of the hypothesis that " << r.factors << (r.factors == 1 ? " factor is" : " factors are")
       << " sufficient.\nThe chi square statistic is " << num(r.statistic, 2, 0) << " on " << r.degrees_of_freedom
       << (r.degrees_of_freedom == 1.0 ? " degree" : " degrees") << " of freedom.\nThe p-value is " << p_value << '\n';
  } else {
    os << "\nThe degrees of freedom for the model is " << r.degrees_of_freedom << " and the fit was "
       << num(r.objective, 4, 0) << '\n';
  }
}

}  // namespace latent
