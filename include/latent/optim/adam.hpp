#pragma once
/// @file
/// Adam (Kingma & Ba (2015), arXiv:1412.6980), in the ASCENT convention: `step` moves the
/// parameters UP the gradient, because every objective in latent (log-likelihood, ELBO) is
/// maximized. To minimize a loss, pass the negated gradient.
///
/// With g_t the gradient at step t = 1, 2, ...:
///
///   m_t = beta1 m_{t-1} + (1 - beta1) g_t,        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2,
///   mhat = m_t / (1 - beta1^t),                   vhat = v_t / (1 - beta2^t),
///   params += alpha_t * mhat / (sqrt(vhat) + epsilon)                (elementwise),
///
/// with alpha_t = learning_rate by default (the paper's algorithm), or, with `decay_t0 > 0`,
/// the decaying alpha_t = learning_rate / (1 + (t - 1) / decay_t0)^decay_kappa (the paper's
/// convergence analysis, section 4, uses alpha / sqrt(t)). A constant rate leaves the iterates
/// jittering around the optimum at a scale set by the rate and the gradient noise; the decay
/// lets a noisy ascent settle.
///
/// The hyper-parameters (`adam_options`) are separate from the per-run state (`adam_state`:
/// the moments and the step count), so one set of options serves many runs and a state can
/// be saved, inspected or restarted. Adam is invariant to a constant rescaling of the
/// gradient (up to epsilon), so the N/|B| scaling of ELBO estimates does not change its steps.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/optim/optimizer.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace latent {

/// Hyper-parameters of Adam. Defaults are the paper's.
///
/// `groups` gives parts of the parameter vector their own learning rate (e.g. a smaller rate
/// for a decoder than for an encoder, or for the global parameters than for the local ones);
/// coordinates outside every group use `learning_rate`. The decay schedule applies to every
/// group alike.
struct adam_options {
  double learning_rate = 1e-3;  ///< alpha > 0: the largest step per coordinate, roughly
  double beta1 = 0.9;           ///< decay of the first moment, in [0, 1)
  double beta2 = 0.999;         ///< decay of the second moment, in [0, 1)
  double epsilon = 1e-8;        ///< > 0, added to sqrt(vhat) so a zero gradient is a zero step
  double decay_t0 = 0.0;        ///< >= 0: 0 = constant learning rate, else steps before the decay
  double decay_kappa = 0.5;     ///< decay exponent in (0, 1] (used only if decay_t0 > 0)
  std::vector<parameter_group> groups{};  ///< per-group learning rates (checked at `reset`)
};

/// Throws `invalid_argument` naming the offending option.
inline void validate(const adam_options& o, std::string_view function = "adam") {
  detail::require(std::isfinite(o.learning_rate) && o.learning_rate > 0.0, function,
                  "option 'learning_rate' must be finite and positive, got ", o.learning_rate);
  detail::require(o.beta1 >= 0.0 && o.beta1 < 1.0, function,
                  "option 'beta1' must be in [0, 1), got ", o.beta1);
  detail::require(o.beta2 >= 0.0 && o.beta2 < 1.0, function,
                  "option 'beta2' must be in [0, 1), got ", o.beta2);
  detail::require(std::isfinite(o.epsilon) && o.epsilon > 0.0, function,
                  "option 'epsilon' must be finite and positive, got ", o.epsilon);
  detail::require(std::isfinite(o.decay_t0) && o.decay_t0 >= 0.0, function,
                  "option 'decay_t0' must be finite and >= 0, got ", o.decay_t0);
  detail::require(o.decay_kappa > 0.0 && o.decay_kappa <= 1.0, function,
                  "option 'decay_kappa' must be in (0, 1], got ", o.decay_kappa);
  detail::validate_group_rates(o.groups, function);
}

/// The learning rate alpha_t of `o` at step t = 1, 2, ... (before any group's own rate).
inline double adam_learning_rate(const adam_options& o, std::size_t t) {
  if (o.decay_t0 <= 0.0) return o.learning_rate;
  return o.learning_rate / std::pow(1.0 + static_cast<double>(t - 1) / o.decay_t0, o.decay_kappa);
}

/// Per-run state of Adam: moment estimates and the number of steps taken.
template <Scalar S>
struct basic_adam_state {
  vector_t<S> m;      ///< first-moment estimate (biased)
  vector_t<S> v;      ///< second-moment estimate (biased)
  std::size_t t = 0;  ///< steps taken
};
using adam_state = basic_adam_state<double>;

/// Adam on a parameter vector of scalar type `S` and fixed length: validated options plus a
/// per-run state. Satisfies `Optimizer<basic_adam<S>, S>`.
///
/// Cost per step: O(P) for P parameters.
template <Scalar S>
class basic_adam {
 public:
  using scalar_type = S;

  /// @throws invalid_argument for invalid options or a negative size.
  explicit basic_adam(adam_options options = {}, Eigen::Index num_parameters = 0)
      : options_(std::move(options)) {
    validate(options_);
    reset(num_parameters);
  }

  /// Forget the moments and the step count; the state is sized for `num_parameters`.
  /// @throws invalid_argument if a parameter group does not fit in `num_parameters`.
  void reset(Eigen::Index num_parameters) {
    detail::require(num_parameters >= 0, "adam::reset",
                    "argument 'num_parameters' must be >= 0, got ", num_parameters);
    state_.m = vector_t<S>::Zero(num_parameters);
    state_.v = vector_t<S>::Zero(num_parameters);
    state_.t = 0;
    rates_ = detail::group_rate_multipliers<S>(options_.groups, options_.learning_rate, num_parameters,
                                               "adam::reset");
  }

  /// One ascent step: params += alpha_t * mhat / (sqrt(vhat) + epsilon).
  /// @throws invalid_argument if `params` or `grad` do not have the state's length.
  void step(Eigen::Ref<vector_t<S>> params, const Eigen::Ref<const vector_t<S>>& grad) {
    detail::require(params.size() == state_.m.size(), "adam::step", "argument 'params' must have ",
                    state_.m.size(), " entries, got ", params.size());
    detail::require(grad.size() == state_.m.size(), "adam::step", "argument 'grad' must have ",
                    state_.m.size(), " entries, got ", grad.size());
    ++state_.t;
    const S b1 = static_cast<S>(options_.beta1), b2 = static_cast<S>(options_.beta2);
    state_.m = b1 * state_.m + (S(1) - b1) * grad;
    state_.v = b2 * state_.v + (S(1) - b2) * grad.cwiseAbs2();
    const auto [alpha, c1, c2] = corrections();
    if (rates_.size() == 0)
      params.array() += alpha * (state_.m.array() / c1) / ((state_.v.array() / c2).sqrt() + eps());
    else
      params.array() +=
          alpha * rates_.array() * (state_.m.array() / c1) / ((state_.v.array() / c2).sqrt() + eps());
  }

  /// One *lazy* ascent step for a gradient that is zero outside the coordinates `indices`
  /// (e.g. the local variational parameters of a minibatch plus the global parameters): only
  /// those coordinates' moments and values move, at the step size of the current step count,
  /// so a step costs O(|indices|) instead of O(P). This is the usual sparse variant of Adam
  /// ("lazy Adam"): a coordinate's moments decay only on the steps that touch it, so for
  /// coordinates touched every step it equals `step`.
  /// @throws invalid_argument if `indices` and `values` differ in length or an index is out of range.
  void step_sparse(Eigen::Ref<vector_t<S>> params, std::span<const Eigen::Index> indices,
                   const Eigen::Ref<const vector_t<S>>& values) {
    detail::require_sparse_step(params.size(), state_.m.size(), indices, values.size(), "adam::step_sparse");
    ++state_.t;
    const S b1 = static_cast<S>(options_.beta1), b2 = static_cast<S>(options_.beta2);
    const auto [alpha, c1, c2] = corrections();
    for (std::size_t j = 0; j < indices.size(); ++j) {
      const Eigen::Index i = indices[j];
      const S g = values(static_cast<Eigen::Index>(j));
      state_.m(i) = b1 * state_.m(i) + (S(1) - b1) * g;
      state_.v(i) = b2 * state_.v(i) + (S(1) - b2) * g * g;
      const S rate = rates_.size() == 0 ? alpha : alpha * rates_(i);
      params(i) += rate * (state_.m(i) / c1) / (std::sqrt(state_.v(i) / c2) + eps());
    }
  }

  /// Steps taken since the last reset.
  std::size_t steps() const { return state_.t; }
  const adam_options& options() const { return options_; }
  const basic_adam_state<S>& state() const { return state_; }
  /// Replace the state (e.g. to resume a run). @throws invalid_argument if m and v differ in size.
  void set_state(basic_adam_state<S> s) {
    detail::require(s.m.size() == s.v.size(), "adam::set_state",
                    "argument 's' must have moments of equal length, got ", s.m.size(), " and ",
                    s.v.size());
    state_ = std::move(s);
  }

 private:
  /// alpha_t and the bias corrections 1 - beta1^t, 1 - beta2^t, computed in double.
  std::tuple<S, S, S> corrections() const {
    const double t = static_cast<double>(state_.t);
    return {static_cast<S>(adam_learning_rate(options_, state_.t)),
            static_cast<S>(1.0 - std::pow(options_.beta1, t)), static_cast<S>(1.0 - std::pow(options_.beta2, t))};
  }
  S eps() const { return static_cast<S>(options_.epsilon); }

  adam_options options_;
  basic_adam_state<S> state_;
  vector_t<S> rates_;  ///< per-coordinate rate multipliers (empty: all 1)
};

/// Adam in double precision.
using adam = basic_adam<double>;

}  // namespace latent
