#pragma once
/// @file
/// Parameters, options and posterior of the Neyman–Scott model (see models/neyman_scott.hpp
/// for the model and its maths).

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

namespace latent {

/// Parameters of the Neyman–Scott model, in the model's scalar type.
template <Scalar S>
struct basic_neyman_scott_params {
  S theta = S(1);  ///< replicate (within-group) variance, > 0
  S mu = S(0);     ///< prior mean of the group means
  S tau2 = S(1);   ///< prior variance of the group means, > 0 in the model (0 only as an MLE boundary)
};
using neyman_scott_params = basic_neyman_scott_params<double>;

/// Whether EM estimates the prior of the group means or keeps it fixed.
enum class neyman_scott_prior {
  estimated,  ///< EM moves theta, mu and tau2
  fixed       ///< mu and tau2 stay as given; EM moves theta only
};

/// Options of `basic_neyman_scott` (no scalar-typed member, hence not a template).
///
/// | name | meaning | default |
/// |---|---|---|
/// | `prior` | `estimated` (mu, tau2 fitted by EM) or `fixed` (mu, tau2 kept as given) | `estimated` |
struct neyman_scott_options {
  neyman_scott_prior prior = neyman_scott_prior::estimated;
};

/// The posterior of the group means: z_n | y_n ~ N(mean(n), variance) (same variance for all).
template <Scalar S>
struct basic_neyman_scott_posterior {
  row_vector_t<S> mean;  ///< 1 x N posterior means m_n
  S variance = S(0);     ///< v = 1 / (K/theta + 1/tau2)
};
using neyman_scott_posterior = basic_neyman_scott_posterior<double>;

/// A joint draw from the model (`sample_joint`): the data and the latent group means.
template <Scalar S>
struct basic_neyman_scott_sample {
  matrix_t<S> y;      ///< K x n replicates, one group per column
  row_vector_t<S> z;  ///< 1 x n latent group means z_n
};
using neyman_scott_sample = basic_neyman_scott_sample<double>;

}  // namespace latent
