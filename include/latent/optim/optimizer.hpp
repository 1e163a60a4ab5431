#pragma once
/// @file
/// The contract of an ascent optimizer, and parameter groups with their own learning rates.
///
/// `sgd_elbo` takes the optimizer as a value of any type meeting `Optimizer<O, S>`: `adam`,
/// `sgd`, or a user's type. The solver copies it, calls `reset(P)` once at the start of a fit
/// (so one optimizer object serves many fits) and then `step(params, grad)` once per
/// minibatch. Every optimizer here ASCENDS: objectives in latent are maximized.
///
/// An optimizer that also has `step_sparse(params, indices, values)` (`SparseOptimizer`) can
/// take steps whose cost is O(|indices|) for gradients that vanish outside `indices`; the
/// solver uses it for objectives with local variational parameters.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace latent {

/// A contiguous part of the parameter vector [begin, begin + size) with its own learning
/// rate (which replaces the optimizer's base rate there).
struct parameter_group {
  Eigen::Index begin = 0;
  Eigen::Index size = 0;
  double learning_rate = 1e-3;
};

/// An ascent optimizer of parameter vectors of scalar type `S`.
///
/// | expression | meaning |
/// |---|---|
/// | `o.reset(P)` | start a run on P parameters (forget moments, restart schedules) |
/// | `o.step(params, grad)` | one ascent step from the gradient `grad` (both of length P) |
template <class O, class S = double>
concept Optimizer = std::copy_constructible<O> &&
    requires(O& o, Eigen::Index p, Eigen::Ref<vector_t<S>> params, const Eigen::Ref<const vector_t<S>>& grad) {
      o.reset(p);
      o.step(params, grad);
    };

/// An `Optimizer` that can also take a step from a sparse gradient: `values(j)` is the
/// gradient's entry at `indices[j]`, every other entry is zero.
template <class O, class S = double>
concept SparseOptimizer = Optimizer<O, S> &&
    requires(O& o, Eigen::Ref<vector_t<S>> params, std::span<const Eigen::Index> indices,
             const Eigen::Ref<const vector_t<S>>& values) { o.step_sparse(params, indices, values); };

namespace detail {

/// Throws unless every group has a finite positive rate, begin >= 0 and size >= 0.
inline void validate_group_rates(const std::vector<parameter_group>& groups, std::string_view function) {
  for (std::size_t g = 0; g < groups.size(); ++g) {
    require(groups[g].begin >= 0 && groups[g].size >= 0, function, "option 'groups' entry ", g,
            " must have begin >= 0 and size >= 0, got begin ", groups[g].begin, ", size ", groups[g].size);
    require(std::isfinite(groups[g].learning_rate) && groups[g].learning_rate > 0.0, function,
            "option 'groups' entry ", g, " must have a finite positive learning_rate, got ",
            groups[g].learning_rate);
  }
}

/// Per-coordinate multipliers of the base rate for `groups` over `p` parameters (empty if
/// there are no groups). @throws invalid_argument if a group does not fit or groups overlap.
template <Scalar S>
vector_t<S> group_rate_multipliers(const std::vector<parameter_group>& groups, double base_rate,
                                   Eigen::Index p, std::string_view function) {
  if (groups.empty()) return {};
  vector_t<S> rates = vector_t<S>::Ones(p);
  std::vector<bool> taken(static_cast<std::size_t>(p), false);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const parameter_group& gr = groups[g];
    require(gr.begin + gr.size <= p, function, "option 'groups' entry ", g, " covers [", gr.begin, ", ",
            gr.begin + gr.size, "), outside the ", p, " parameters");
    for (Eigen::Index i = gr.begin; i < gr.begin + gr.size; ++i) {
      require(!taken[static_cast<std::size_t>(i)], function, "option 'groups' entry ", g,
              " overlaps an earlier group at parameter ", i);
      taken[static_cast<std::size_t>(i)] = true;
      rates(i) = static_cast<S>(gr.learning_rate / base_rate);
    }
  }
  return rates;
}

/// The checks of a sparse step: params of the optimizer's length, one value per index, every
/// index in range.
inline void require_sparse_step(Eigen::Index params_size, Eigen::Index state_size,
                                std::span<const Eigen::Index> indices, Eigen::Index values_size,
                                std::string_view function) {
  require(params_size == state_size, function, "argument 'params' must have ", state_size, " entries, got ",
          params_size);
  require(values_size == static_cast<Eigen::Index>(indices.size()), function,
          "argument 'values' must have one entry per index (", indices.size(), "), got ", values_size);
  for (const Eigen::Index i : indices)
    require(i >= 0 && i < state_size, function, "argument 'indices' holds ", i, ", outside [0, ", state_size, ")");
}

}  // namespace detail
}  // namespace latent
