#pragma once
/// @file
/// The contract between amortized Gaussian objectives (the linear VAE, the VAE) and the
/// estimators that look inside them: importance-weighted log p(x) estimates and the
/// approximation / amortization gap decomposition.
///
/// An amortized objective has a generative model p(x, z; theta) = p(x | z; theta) p(z) with a
/// k-dimensional latent z per observation, and an encoder giving a diagonal-Gaussian
/// q(z | x) = N(m(x), diag s(x)^2). The estimators need only two things from it, both for a
/// minibatch of observations (column indices of its data, as for `ElboObjective`):
///
/// - the encoder's output: the k x |B| matrices of means m and log-scales log s;
/// - the log joint log p(x_n, z) = log p(x_n | z) + log p(z) at given latent points, with
///   optionally its gradient with respect to z (for optimizing per-observation variational
///   parameters), for R points per observation laid out as ONE k x (|B| R) matrix whose
///   column r |B| + j belongs to observation batch[j] (r = 0..R-1): the decoder then runs as
///   one block matrix product over all of them.
///
/// Everything else (the ELBO of any diagonal Gaussian q, importance weights, their standard
/// errors) is generic and lives with the estimators (latent/estimators/: `encoder_gaussians`,
/// `estimate_log_likelihood`, `estimate_elbo`, `fit_local_gaussians`, `gap_decomposition`).
/// They pass batches of distinct indices, call `log_joint` with at most about
/// `columns_per_call` columns (R up to K, the importance samples, for one observation), ask
/// for `dz` only when fitting per-observation Gaussians, and call both functions concurrently
/// from several threads on one object.

#include <latent/core/elbo_concepts.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <concepts>

namespace latent {

/// An objective with an amortized diagonal-Gaussian encoder and a log joint the estimators
/// can evaluate at arbitrary latent points.
///
/// | expression | meaning |
/// |---|---|
/// | `F::scalar_type` (optional) | the parameters' scalar type S (default double) |
/// | `cf.latent_dim()` | k, the dimension of z |
/// | `cf.num_observations()` | N, the number of columns a minibatch indexes |
/// | `cf.encode(params, batch, mean, log_scale)` | resizes `mean` and `log_scale` to k x \|B\| and fills them with the encoder's q(z \| x_n) for n in `batch` |
/// | `cf.log_joint(params, batch, z, values, dz)` | for z of size k x (\|B\| R), R >= 1, resizes `values` to \|B\| R and sets values(c) = log p(x_n, z_c) (prior included) for the observation n of column c (see the file comment); if `dz` is not null, resizes `*dz` to k x (\|B\| R) and sets it to the gradient of values(c) with respect to z_c |
///
/// Both are const and must be safe to call concurrently from several threads on one object
/// (no mutable workspaces), so that estimators may split observations over threads. They throw
/// `invalid_argument` for a parameter vector of the wrong length, an index out of range or a
/// z whose shape does not match the batch.
template <class F>
concept AmortizedObjective =
    requires(const F& cf, const objective_vector_t<F>& params, minibatch batch,
             matrix_t<objective_scalar_t<F>>& mean, matrix_t<objective_scalar_t<F>>& log_scale,
             const matrix_t<objective_scalar_t<F>>& z, vector_t<double>& values,
             matrix_t<objective_scalar_t<F>>* dz) {
      { cf.latent_dim() } -> std::convertible_to<Eigen::Index>;
      { cf.num_observations() } -> std::convertible_to<Eigen::Index>;
      cf.encode(params, batch, mean, log_scale);
      cf.log_joint(params, batch, z, values, dz);
    };

}  // namespace latent
