#pragma once
/// @file
/// Gaussian log-densities evaluated over whole blocks of columns.

#include <latent/core/numerics.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace latent {

/// log N(x | mean, sigma^2), elementwise over an array of x, in x's scalar type. `variance`
/// must be positive.
template <class Derived>
Eigen::Array<typename Derived::Scalar, Eigen::Dynamic, Eigen::Dynamic> normal_log_density(
    const Eigen::ArrayBase<Derived>& x, typename Derived::Scalar mean, typename Derived::Scalar variance) {
  using S = typename Derived::Scalar;
  return S(-0.5) * (S(log_two_pi) + std::log(variance)) - S(0.5) * (x - mean).square() / variance;
}

/// log N(x_n | mean, Sigma) for every column x_n of `x` (d x N), with `chol` the Cholesky
/// factorization of Sigma. One triangular solve over all N columns: O(N d^2).
/// Returns a row vector of N log-densities.
template <class DerivedX, class DerivedM, class MatrixType>
row_vector_t<typename MatrixType::Scalar> mvn_log_density(const Eigen::MatrixBase<DerivedX>& x,
                                                          const Eigen::MatrixBase<DerivedM>& mean,
                                                          const Eigen::LLT<MatrixType>& chol) {
  using S = typename MatrixType::Scalar;
  matrix_t<S> z = x.colwise() - mean;
  chol.matrixL().solveInPlace(z);  // z = L^{-1} (x - mean)
  const S c = S(-0.5) * static_cast<S>(x.rows()) * S(log_two_pi) - S(0.5) * log_det_from_cholesky(chol);
  return (c - S(0.5) * z.colwise().squaredNorm().array()).matrix();
}

/// log N(x_n | mean, diag(variances)) for every column x_n of `x` (d x N). O(N d).
template <class DerivedX, class DerivedM, class DerivedV>
row_vector_t<typename DerivedX::Scalar> mvn_diag_log_density(const Eigen::MatrixBase<DerivedX>& x,
                                                             const Eigen::MatrixBase<DerivedM>& mean,
                                                             const Eigen::MatrixBase<DerivedV>& variances) {
  using S = typename DerivedX::Scalar;
  const array_t<S> inv = variances.array().inverse();
  const S c = S(-0.5) * (static_cast<S>(x.rows()) * S(log_two_pi) + variances.array().log().sum());
  return (c - S(0.5) * ((x.colwise() - mean).array().square().colwise() * inv).colwise().sum()).matrix();
}

}  // namespace latent
