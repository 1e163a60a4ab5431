#pragma once
/// @file
/// Gaussian log-densities evaluated over whole blocks of columns.

#include <latent/core/numerics.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace latent {

/// log N(x | mean, sigma^2), elementwise over an array of x. `variance` must be positive.
template <class Derived>
Eigen::ArrayXXd normal_log_density(const Eigen::ArrayBase<Derived>& x, double mean, double variance) {
  return -0.5 * (log_two_pi + std::log(variance)) - 0.5 * (x - mean).square() / variance;
}

/// log N(x_n | mean, Sigma) for every column x_n of `x` (d x N), with `chol` the Cholesky
/// factorization of Sigma. One triangular solve over all N columns: O(N d^2).
/// Returns a row vector of N log-densities.
inline Eigen::RowVectorXd mvn_log_density(const Eigen::Ref<const Eigen::MatrixXd>& x,
                                          const Eigen::Ref<const Eigen::VectorXd>& mean,
                                          const Eigen::LLT<Eigen::MatrixXd>& chol) {
  Eigen::MatrixXd z = x.colwise() - mean;
  chol.matrixL().solveInPlace(z);  // z = L^{-1} (x - mean)
  const double c = -0.5 * static_cast<double>(x.rows()) * log_two_pi - 0.5 * log_det_from_cholesky(chol);
  return (c - 0.5 * z.colwise().squaredNorm().array()).matrix();
}

/// log N(x_n | mean, diag(variances)) for every column x_n of `x` (d x N). O(N d).
inline Eigen::RowVectorXd mvn_diag_log_density(const Eigen::Ref<const Eigen::MatrixXd>& x,
                                               const Eigen::Ref<const Eigen::VectorXd>& mean,
                                               const Eigen::Ref<const Eigen::VectorXd>& variances) {
  const Eigen::ArrayXd inv = variances.array().inverse();
  const double c = -0.5 * (static_cast<double>(x.rows()) * log_two_pi + variances.array().log().sum());
  return (c - 0.5 * ((x.colwise() - mean).array().square().colwise() * inv).colwise().sum()).matrix();
}

}  // namespace latent
