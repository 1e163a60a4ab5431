#pragma once
/// @file
/// The contract between SGD-on-the-ELBO solvers and the objectives they maximize.
///
/// An `ElboObjective` owns the data and the maths: for a minibatch of observations and a
/// caller's random engine it returns a reparameterized Monte Carlo estimate of the ELBO
///
///   F(theta, phi) = sum_n E_{q_phi(z_n | x_n)}[ log p(x_n, z_n; theta) - log q_phi(z_n | x_n) ]
///
/// and its gradient with respect to ONE flat parameter vector holding the generative
/// parameters theta and the variational parameters phi together (each objective documents its
/// layout and offers pack/unpack helpers). The solver owns everything else: minibatching,
/// shuffling, the optimizer, schedules, stopping, callbacks and the held-out ELBO.
///
/// SCALING (the one convention every objective must follow). For a minibatch B of |B|
/// distinct column indices out of N and S draws eps_{n,s} of the noise per observation,
///
///   value = (N / |B|) * sum_{n in B} (1/S) sum_{s=1..S} f_n(params, eps_{n,s}),
///
/// where f_n is the single-draw reparameterized ELBO term of observation n (analytic parts,
/// e.g. a Gaussian KL or entropy, may replace their Monte Carlo counterparts). If B is a
/// uniformly random subset of size |B| and eps ~ N(0, I), then E[value] is the FULL-DATA ELBO
/// F(params) (a SUM over all N observations, not a mean) and E[grad] = grad F(params). A batch
/// holding every column (|B| = N) gives an estimate whose only noise is eps. The estimate is a
/// deterministic function of params for a fixed engine state (the number of draws never
/// depends on params), which is what finite-difference checks with frozen noise rely on.
///
/// Observations are columns of the objective's data; a minibatch is a list of column indices
/// in [0, N) (not necessarily sorted, no repeats).

#include <latent/core/error.hpp>

#include <Eigen/Core>

#include <concepts>
#include <cstddef>
#include <random>
#include <span>
#include <string_view>

namespace latent {

/// A minibatch: the indices of the columns (observations) it holds.
using minibatch = std::span<const Eigen::Index>;

namespace detail {

/// The checks every `value_and_gradient` makes of its minibatch arguments: a non-empty batch
/// of indices in [0, n) and at least one draw per observation.
/// @throws invalid_argument naming the offending argument.
inline void require_minibatch(minibatch batch, Eigen::Index n, std::size_t num_samples, std::string_view fn) {
  require(!batch.empty(), fn, "argument 'batch' must not be empty");
  require(num_samples > 0, fn, "argument 'num_samples' must be positive, got 0");
  for (const Eigen::Index i : batch)
    require(i >= 0 && i < n, fn, "argument 'batch' holds index ", i, ", outside [0, ", n, ")");
}

}  // namespace detail

/// An objective that `sgd_elbo` can maximize, with noise drawn from an engine of type `Rng`.
///
/// | expression | meaning |
/// |---|---|
/// | `cf.num_parameters()` | length P of the flat parameter vector (theta and phi together) |
/// | `cf.num_observations()` | N, the number of columns a minibatch indexes |
/// | `f.value_and_gradient(params, batch, S, grad, rng)` | unbiased estimate of the full-data ELBO (sum over `batch` times N/|B|, see the file comment), with S reparameterized draws per observation from `rng`; `grad` is resized to P and overwritten with the estimate's gradient |
///
/// Objectives throw `invalid_argument` for a parameter vector of the wrong length, an empty
/// batch, an index out of range or S = 0, and may throw `numerical_error`.
template <class F, class Rng = std::mt19937_64>
concept ElboObjective =
    std::uniform_random_bit_generator<Rng> &&
    requires(F& f, const F& cf, const Eigen::VectorXd& params, minibatch batch,
             std::size_t num_samples, Eigen::VectorXd& grad, Rng& rng) {
      { cf.num_parameters() } -> std::convertible_to<Eigen::Index>;
      { cf.num_observations() } -> std::convertible_to<Eigen::Index>;
      { f.value_and_gradient(params, batch, num_samples, grad, rng) } -> std::convertible_to<double>;
    };

/// An `ElboObjective` that can also evaluate its full-data ELBO exactly (no Monte Carlo), e.g.
/// because every expectation is Gaussian. `cf.elbo(params)` is the sum over all N columns, the
/// quantity `value_and_gradient` estimates. Solvers use it, when present, for the held-out
/// ELBO; tests use it for unbiasedness checks.
template <class F, class Rng = std::mt19937_64>
concept ExactElboObjective =
    ElboObjective<F, Rng> && requires(const F& cf, const Eigen::VectorXd& params) {
      { cf.elbo(params) } -> std::convertible_to<double>;
    };

}  // namespace latent
