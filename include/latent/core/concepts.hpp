#pragma once
/// @file
/// The contracts between models and solvers.
///
/// Every solver maximizes the evidence lower bound
///   F(q, theta) = E_q[log p(x, z; theta)] + H(q)  <=  log p(x; theta)
/// and the concepts below say how a model lets a solver move q and theta:
///
///  - `SufficientStatistics`: expected sufficient statistics E_q[T(x, z)] are *additive*
///    (`a += b`) and *scalable* (`a *= w`). One E-step over a block of columns therefore serves
///    batch EM, threaded EM (blocks merged in a fixed order), online EM (decayed running sums)
///    and distributed EM (all-reduce of the statistics).
///  - `EMModel`: exact E-step (q = p(z | x; theta)) that adds a block's statistics into a
///    `stats_type` and returns the block's log-likelihood; closed-form M-step from statistics.
///  - `VariationalEMModel<M, Family>`: the same statistics and M-step, but the E-step optimizes q
///    inside `Family` and returns the block's ELBO.
///
/// Data orientation: observations are columns; blocks are half-open column ranges
/// [begin, end). Scaling: e_step returns the *sum* over the block's observations (weighted
/// by their sample weights), never a mean, so block values add up to the full-data objective.
///
/// Precision: a model computes in its `scalar_type` (float or double) and returns objectives
/// and accumulates statistics in at least double (`accumulator_t`, core/scalar.hpp).

#include <latent/core/statistics.hpp>

#include <Eigen/Core>

#include <concepts>
#include <random>
#include <type_traits>
#include <utility>

namespace latent {

/// A model with parameters that can be read and restored (solvers restore the last good
/// parameters when a fit runs into numerical trouble).
template <class M>
concept ParametricModel = requires(M& m, const M& cm, const typename M::params_type& p) {
  requires std::copy_constructible<typename M::params_type>;
  { cm.params() } -> std::convertible_to<const typename M::params_type&>;
  m.set_params(p);
};

/// A model that exact EM can fit.
///
/// | expression                  | meaning                                                     |
/// |-----------------------------|-------------------------------------------------------------|
/// | `M::data_type`              | what the model is fitted to                                 |
/// | `M::stats_type`             | expected sufficient statistics (`SufficientStatistics`)     |
/// | `M::params_type`            | parameter aggregate (`params()`, `set_params(p)`)           |
/// | `cm.num_observations(x)`    | N, the number of columns blocks partition                   |
/// | `cm.zero_stats()`           | statistics of no data, at the current parameters            |
/// | `cm.e_step(x, b, e, s)`     | `s += E[T]` over columns [b, e); returns their log p(x)     |
/// | `m.m_step(s)`               | theta = argmax E[log p(x, z)]; throws `numerical_error` and |
/// |                             | leaves the parameters unchanged if they cannot be formed    |
///
/// Optional hooks the solvers use when present: `cm.validate(x)` (checks the data once before
/// a fit and throws `invalid_argument`), `cm.observation_weight(x)` (total observation weight,
/// the scale of the convergence tolerance; default N), `m.initialize(x, rng)` (random starts).
template <class M>
concept EMModel =
    ParametricModel<M> && SufficientStatistics<typename M::stats_type> &&
    requires(M& m, const M& cm, const typename M::data_type& x, typename M::stats_type& s,
             const typename M::stats_type& cs, Eigen::Index b) {
      { cm.num_observations(x) } -> std::convertible_to<Eigen::Index>;
      { cm.zero_stats() } -> std::same_as<typename M::stats_type>;
      { cm.e_step(x, b, b, s) } -> std::convertible_to<double>;
      m.m_step(cs);
    };

/// A model whose E-step can optimize q inside the variational family `Family` (e.g. mean
/// field). `cm.e_step(x, b, e, s, family)` adds E_q[T] into `s` and returns the block's ELBO.
///
/// Local variational state (q of each observation, kept from one iteration to the next so
/// that coordinate ascent warm-starts and the ELBO never falls) belongs to the solver, not to
/// the model or the data: a model that keeps such state offers
///
///     auto make_variational_state(const data_type& x, const Family& family) const;
///     double e_step(const data_type& x, Index b, Index e, stats_type& s, const Family& family,
///                   State& state) const;
///
/// The solver makes the state once per fit and passes it to every E-step; the E-step of block
/// [b, e) reads and writes only the state of observations b .. e-1 (blocks run concurrently).
template <class M, class Family>
concept VariationalEMModel =
    ParametricModel<M> && SufficientStatistics<typename M::stats_type> &&
    requires(M& m, const M& cm, const typename M::data_type& x, typename M::stats_type& s,
             const typename M::stats_type& cs, Eigen::Index b, const Family& f) {
      { cm.num_observations(x) } -> std::convertible_to<Eigen::Index>;
      { cm.zero_stats() } -> std::same_as<typename M::stats_type>;
      m.m_step(cs);
    } &&
    (requires(const M& cm, const typename M::data_type& x, typename M::stats_type& s, Eigen::Index b,
              const Family& f) {
      { cm.e_step(x, b, b, s, f) } -> std::convertible_to<double>;
    } ||
     requires(const M& cm, const typename M::data_type& x, typename M::stats_type& s, Eigen::Index b,
              const Family& f, decltype(cm.make_variational_state(x, f))& state) {
       { cm.e_step(x, b, b, s, f, state) } -> std::convertible_to<double>;
     });

/// A `VariationalEMModel` whose local variational state the solver holds (see above).
template <class M, class Family>
concept StatefulVariationalEMModel =
    VariationalEMModel<M, Family> &&
    requires(const M& cm, const typename M::data_type& x, const Family& f) { cm.make_variational_state(x, f); };

/// A model that can draw its own starting parameters from data and a caller's engine of type
/// `Rng` (needed by EM with restarts). The default engine is the one the examples use.
template <class M, class Rng = std::mt19937_64>
concept RandomlyInitializable = std::uniform_random_bit_generator<std::remove_reference_t<Rng>> &&
    requires(M& m, const typename M::data_type& x, std::remove_reference_t<Rng>& rng) { m.initialize(x, rng); };

}  // namespace latent
