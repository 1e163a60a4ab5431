#pragma once
/// @file
/// Factor analysis: the parameters (Lambda, mu, Psi) and a joint draw (x, z).

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

namespace latent {

/// Parameters of factor analysis in d dimensions with k factors, in scalar type `S`.
template <Scalar S>
struct basic_factor_analysis_params {
  using scalar_type = S;
  matrix_t<S> loadings;      ///< Lambda, d x k
  vector_t<S> mean;          ///< mu, d
  vector_t<S> uniquenesses;  ///< diagonal of Psi, d (all equal to sigma^2 for PPCA)

  /// The same parameters in scalar type `T`.
  template <Scalar T>
  basic_factor_analysis_params<T> cast() const {
    return {loadings.template cast<T>(), mean.template cast<T>(), uniquenesses.template cast<T>()};
  }
};
using factor_analysis_params = basic_factor_analysis_params<double>;

/// Observations drawn with their factors (`sample_joint`): x = Lambda z + mu + Psi^{1/2} e.
template <Scalar S>
struct basic_factor_analysis_draw {
  matrix_t<S> x;  ///< d x n observations
  matrix_t<S> z;  ///< k x n factors that generated them
};
using factor_analysis_draw = basic_factor_analysis_draw<double>;

}  // namespace latent
