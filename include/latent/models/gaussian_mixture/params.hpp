#pragma once
/// @file
/// `basic_gaussian_mixture_params<S>`: the parameters of a K-component mixture in d dimensions.

#include <latent/core/scalar.hpp>

#include <vector>

namespace latent {

/// Parameters of a K-component mixture in d dimensions, in scalar type `S`.
///
/// `covariances` always holds K full d x d matrices, whatever the covariance type: diagonal
/// ones are diagonal, spherical ones a multiple of I, tied ones all equal. Users can read and
/// write them without knowing the internal representation.
template <Scalar S>
struct basic_gaussian_mixture_params {
  using scalar_type = S;
  vector_t<S> weights;                   ///< K mixing proportions, summing to 1
  matrix_t<S> means;                     ///< d x K, column k is mu_k
  std::vector<matrix_t<S>> covariances;  ///< K matrices, d x d
};

/// Double-precision mixture parameters.
using gaussian_mixture_params = basic_gaussian_mixture_params<double>;

}  // namespace latent
