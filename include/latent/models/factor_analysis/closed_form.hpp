#pragma once
/// @file
/// The closed-form maximum-likelihood PPCA fit (Tipping & Bishop 1999) from sample moments:
/// with S = U diag(l_1 >= ... >= l_d) U^T, sigma^2 = mean(l_{k+1..d}),
/// Lambda = U_k (diag(l_1..l_k) - sigma^2 I)^{1/2} (the rotation R = I), mu = the mean. O(d^3),
/// in the moments' precision (double).

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/params.hpp>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <string_view>

namespace latent::detail {

/// The PPCA MLE of k factors from a mean and an ML covariance, in their scalar type A.
/// @throws numerical_error if the eigen-decomposition fails or sigma^2 <= 0 (the data span at
///         most k dimensions, and the MLE does not exist).
template <Scalar A>
basic_factor_analysis_params<A> ppca_closed_form(const vector_t<A>& mean, const matrix_t<A>& covariance,
                                                 Eigen::Index k, std::string_view fn) {
  const Eigen::Index d = mean.size();
  const Eigen::SelfAdjointEigenSolver<matrix_t<A>> es(covariance);
  if (es.info() != Eigen::Success) throw numerical_error(concat(fn, ": eigen-decomposition failed"));
  const vector_t<A>& l = es.eigenvalues();  // ascending
  const A sigma2 = l.head(d - k).mean();
  if (!(sigma2 > A(0)))
    throw numerical_error(
        concat(fn, ": the data span at most k = ", k, " dimensions (mean discarded eigenvalue ", sigma2, "); no MLE exists"));
  basic_factor_analysis_params<A> p;
  p.mean = mean;
  p.loadings.resize(d, k);
  for (Eigen::Index c = 0; c < k; ++c)  // largest eigenvalue first
    p.loadings.col(c) = es.eigenvectors().col(d - 1 - c) * std::sqrt(std::max(l(d - 1 - c) - sigma2, A(0)));
  p.uniquenesses = vector_t<A>::Constant(d, sigma2);
  return p;
}

}  // namespace latent::detail
