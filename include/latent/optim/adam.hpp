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

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <string_view>
#include <utility>

namespace latent {

/// Hyper-parameters of Adam. Defaults are the paper's.
struct adam_options {
  double learning_rate = 1e-3;  ///< alpha > 0: the largest step per coordinate, roughly
  double beta1 = 0.9;           ///< decay of the first moment, in [0, 1)
  double beta2 = 0.999;         ///< decay of the second moment, in [0, 1)
  double epsilon = 1e-8;        ///< > 0, added to sqrt(vhat) so a zero gradient is a zero step
  double decay_t0 = 0.0;        ///< >= 0: 0 = constant learning rate, else steps before the decay
  double decay_kappa = 0.5;     ///< decay exponent in (0, 1] (used only if decay_t0 > 0)
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
}

/// The learning rate alpha_t of `o` at step t = 1, 2, ...
inline double adam_learning_rate(const adam_options& o, std::size_t t) {
  if (o.decay_t0 <= 0.0) return o.learning_rate;
  return o.learning_rate / std::pow(1.0 + static_cast<double>(t - 1) / o.decay_t0, o.decay_kappa);
}

/// Per-run state of Adam: moment estimates and the number of steps taken.
struct adam_state {
  Eigen::VectorXd m;  ///< first-moment estimate (biased)
  Eigen::VectorXd v;  ///< second-moment estimate (biased)
  std::size_t t = 0;  ///< steps taken
};

/// Adam for a parameter vector of fixed length: validated options plus a state.
///
/// Cost per step: O(P) for P parameters.
class adam {
 public:
  /// @throws invalid_argument for invalid options or a negative size.
  explicit adam(const adam_options& options = {}, Eigen::Index num_parameters = 0)
      : options_(options) {
    validate(options_);
    reset(num_parameters);
  }

  /// Forget the moments and the step count; the state is sized for `num_parameters`.
  void reset(Eigen::Index num_parameters) {
    detail::require(num_parameters >= 0, "adam::reset",
                    "argument 'num_parameters' must be >= 0, got ", num_parameters);
    state_.m = Eigen::VectorXd::Zero(num_parameters);
    state_.v = Eigen::VectorXd::Zero(num_parameters);
    state_.t = 0;
  }

  /// One ascent step: params += alpha_t * mhat / (sqrt(vhat) + epsilon).
  /// @throws invalid_argument if `params` or `grad` do not have the state's length.
  void step(Eigen::Ref<Eigen::VectorXd> params, const Eigen::Ref<const Eigen::VectorXd>& grad) {
    detail::require(params.size() == state_.m.size(), "adam::step", "argument 'params' must have ",
                    state_.m.size(), " entries, got ", params.size());
    detail::require(grad.size() == state_.m.size(), "adam::step", "argument 'grad' must have ",
                    state_.m.size(), " entries, got ", grad.size());
    ++state_.t;
    const double b1 = options_.beta1, b2 = options_.beta2;
    state_.m = b1 * state_.m + (1.0 - b1) * grad;
    state_.v = b2 * state_.v + (1.0 - b2) * grad.cwiseAbs2();
    const double t = static_cast<double>(state_.t);
    const double c1 = 1.0 - std::pow(b1, t), c2 = 1.0 - std::pow(b2, t);
    params.array() += adam_learning_rate(options_, state_.t) * (state_.m.array() / c1) /
                      ((state_.v.array() / c2).sqrt() + options_.epsilon);
  }

  /// Steps taken since the last reset.
  std::size_t steps() const { return state_.t; }
  const adam_options& options() const { return options_; }
  const adam_state& state() const { return state_; }
  /// Replace the state (e.g. to resume a run). @throws invalid_argument if m and v differ in size.
  void set_state(adam_state s) {
    detail::require(s.m.size() == s.v.size(), "adam::set_state",
                    "argument 's' must have moments of equal length, got ", s.m.size(), " and ",
                    s.v.size());
    state_ = std::move(s);
  }

 private:
  adam_options options_;
  adam_state state_;
};

}  // namespace latent
