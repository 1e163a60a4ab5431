#pragma once
/// @file
/// Factor analysis: the mean-field posterior of the factors over a set of observations.

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cstddef>

namespace latent {

/// Mean-field posterior of the factors: q(z_n) = prod_j N(means(j, n), variances(j)). Means
/// and variances are in the model's scalar type S; the per-observation ELBOs in
/// `accumulator_t<S>` (double).
template <Scalar S>
struct basic_mean_field_posterior {
  matrix_t<S> means;                         ///< k x N
  vector_t<S> variances;                     ///< k: s_j^2 = 1 / M_jj, the same for every observation
  row_vector_t<accumulator_t<S>> elbo;       ///< 1 x N: the ELBO of each observation at q
  std::size_t sweeps = 0;                    ///< coordinate-ascent sweeps taken (the most over blocks)
};
using mean_field_posterior = basic_mean_field_posterior<double>;

}  // namespace latent
