#pragma once
/// @file
/// The contract between SGD-on-the-ELBO solvers and the objectives they maximize.
///
/// An `ElboObjective` owns the data and the maths: for a minibatch of observations and a
/// caller's random engine it returns a reparameterized Monte Carlo estimate of a lower bound
/// on log p(x) -- by default the ELBO
///
///   F(theta, phi) = sum_n E_{q_phi(z_n | x_n)}[ log p(x_n, z_n; theta) - log q_phi(z_n | x_n) ]
///
/// -- and its gradient with respect to ONE flat parameter vector holding the generative
/// parameters theta and the variational parameters phi together (each objective documents its
/// layout and offers pack/unpack helpers). The solver owns everything else: minibatching,
/// shuffling, the optimizer, schedules, stopping, callbacks and the held-out bound.
///
/// PARAMETERS AND PRECISION. The parameter vector has the objective's `scalar_type` (float or
/// double; double if the objective declares none): `vector_t<objective_scalar_t<F>>`. Values
/// are returned in at least double.
///
/// OTHER BOUNDS. An objective may estimate another named bound in place of the ELBO, e.g. the
/// importance-weighted bound L_K(x_n) = E[log (1/K) sum_k p(x_n, z_k) / q(z_k | x_n)] with K
/// proposals per estimate; K is then a property of the objective, distinct from the S
/// independent estimates per observation that `num_samples` asks for. Everything below holds
/// with f_n the single-estimate term of that bound.
///
/// SCALING (the one convention every objective must follow). For a minibatch B of |B|
/// distinct column indices out of N and S independent draws eps_{n,s} of the noise per
/// observation,
///
///   value = (N / |B|) * sum_{n in B} (1/S) sum_{s=1..S} f_n(params, eps_{n,s})  -  G(params),
///
/// where f_n is the single-draw reparameterized term of observation n (analytic parts, e.g. a
/// Gaussian KL or entropy, may replace their Monte Carlo counterparts) and G collects the
/// terms of *global* latent variables (e.g. KL(q(w) || p(w)) over a Bayesian network's
/// weights), counted ONCE per full-data estimate, never scaled by N/|B|. An objective with
/// global latents may draw them once per minibatch and share that draw across the minibatch's
/// observations (the f_n then depend on the shared draw; the estimate stays unbiased). If B is
/// a uniformly random subset of size |B| and eps ~ N(0, I), then E[value] is the FULL-DATA
/// bound F(params) (a SUM over all N observations, not a mean) and E[grad] = grad F(params).
/// A batch holding every column (|B| = N) gives an estimate whose only noise is eps. The
/// estimate is a deterministic function of params for a fixed engine state (the number of
/// draws never depends on params), which is what finite-difference checks with frozen noise
/// rely on.
///
/// Observations are columns of the objective's data; a minibatch is a list of column indices
/// in [0, N) (not necessarily sorted, no repeats).

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <concepts>
#include <cstddef>
#include <random>
#include <span>
#include <string_view>
#include <vector>

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

/// The scalar type of an objective's parameters: `F::scalar_type`, or double if F names none.
template <class F>
using objective_scalar_t = scalar_of_t<F>;
/// The flat parameter vector of an objective.
template <class F>
using objective_vector_t = vector_t<objective_scalar_t<F>>;

/// An objective that `sgd_elbo` can maximize, with noise drawn from an engine of type `Rng`.
///
/// | expression | meaning |
/// |---|---|
/// | `F::scalar_type` (optional) | the parameters' scalar type (default double) |
/// | `cf.num_parameters()` | length P of the flat parameter vector (theta and phi together) |
/// | `cf.num_observations()` | N, the number of columns a minibatch indexes |
/// | `f.value_and_gradient(params, batch, S, grad, rng)` | unbiased estimate of the full-data bound (see SCALING in the file comment), with S reparameterized draws per observation from `rng`; `grad` is resized to P and overwritten with the estimate's gradient |
///
/// Objectives throw `invalid_argument` for a parameter vector of the wrong length, an empty
/// batch, an index out of range or S = 0, and may throw `numerical_error`.
template <class F, class Rng = std::mt19937_64>
concept ElboObjective =
    std::uniform_random_bit_generator<Rng> &&
    requires(F& f, const F& cf, const objective_vector_t<F>& params, minibatch batch,
             std::size_t num_samples, objective_vector_t<F>& grad, Rng& rng) {
      { cf.num_parameters() } -> std::convertible_to<Eigen::Index>;
      { cf.num_observations() } -> std::convertible_to<Eigen::Index>;
      { f.value_and_gradient(params, batch, num_samples, grad, rng) } -> std::convertible_to<double>;
    };

/// An `ElboObjective` with a value-only path: `f.value(params, batch, S, rng)` returns the
/// same estimate `value_and_gradient` would for the same engine state, without computing a
/// gradient (held-out bounds, large-sample likelihood estimates). Solvers use it when present
/// and fall back on `value_and_gradient` otherwise (`estimate_value`).
template <class F, class Rng = std::mt19937_64>
concept ElboValueObjective =
    ElboObjective<F, Rng> && requires(F& f, const objective_vector_t<F>& params, minibatch batch,
                                      std::size_t num_samples, Rng& rng) {
      { f.value(params, batch, num_samples, rng) } -> std::convertible_to<double>;
    };

/// An `ElboObjective` that can also evaluate its full-data bound exactly (no Monte Carlo),
/// e.g. because every expectation is Gaussian. `cf.elbo(params)` is the sum over all N
/// columns, the quantity `value_and_gradient` estimates. Solvers use it, when present, for
/// the held-out bound; tests use it for unbiasedness checks.
template <class F, class Rng = std::mt19937_64>
concept ExactElboObjective =
    ElboObjective<F, Rng> && requires(const F& cf, const objective_vector_t<F>& params) {
      { cf.elbo(params) } -> std::convertible_to<double>;
    };

/// An `ElboObjective` whose gradient can also come in sparse form, for objectives with local
/// variational parameters (one block per observation): a minibatch's gradient vanishes
/// outside the global parameters and the batch's local ones, and writing the dense P-vector
/// would cost O(N) per step.
///
/// `F::sparse_gradient` has members `global` (a `vector_t<S>`: the gradient with respect to
/// the first `global.size()` parameters), `indices` (a `std::vector<Eigen::Index>` of
/// distinct flat indices >= `global.size()`) and `values` (a `vector_t<S>`: the gradient at
/// `indices`); every other entry is exactly 0. `f.value_and_sparse_gradient(params, batch, S,
/// grad, rng)` returns the same value and numbers as `value_and_gradient` for the same engine
/// state. With a `SparseOptimizer`, `sgd_elbo` then takes O(|B|) steps.
template <class F, class Rng = std::mt19937_64>
concept ElboSparseObjective =
    ElboObjective<F, Rng> &&
    requires(F& f, const objective_vector_t<F>& params, minibatch batch, std::size_t num_samples,
             typename F::sparse_gradient& g, Rng& rng) {
      { g.global } -> std::convertible_to<const objective_vector_t<F>&>;
      { g.indices } -> std::convertible_to<const std::vector<Eigen::Index>&>;
      { g.values } -> std::convertible_to<const objective_vector_t<F>&>;
      { f.value_and_sparse_gradient(params, batch, num_samples, g, rng) } -> std::convertible_to<double>;
    };

/// The objective's estimate at `params` for `batch`, without a gradient when the objective
/// has a value-only path.
template <class F, class Rng>
  requires ElboObjective<F, Rng>
double estimate_value(F& f, const objective_vector_t<F>& params, minibatch batch, std::size_t num_samples,
                      Rng& rng) {
  if constexpr (ElboValueObjective<F, Rng>) {
    return static_cast<double>(f.value(params, batch, num_samples, rng));
  } else {
    objective_vector_t<F> grad;
    return static_cast<double>(f.value_and_gradient(params, batch, num_samples, grad, rng));
  }
}

}  // namespace latent
