#pragma once
/// @file
/// Stochastic gradient ASCENT with a Robbins–Monro step schedule. `step` moves the parameters
/// UP the gradient (every objective in latent is maximized); to minimize, negate the gradient.
///
///   a_t = step_size / (1 + t / t0)^kappa,        params += a_t * g_t,      t = 0, 1, 2, ...
///
/// With kappa in (1/2, 1] the steps satisfy the Robbins–Monro conditions sum a_t = infinity,
/// sum a_t^2 < infinity, so for a noisy but unbiased gradient of a smooth concave objective
/// the iterates converge to the maximizer (Robbins & Monro (1951); Bottou, Curtis & Nocedal
/// (2018), SIAM Review 60(2), section 4). `t0` sets how many steps the schedule stays near
/// `step_size` before it decays.
///
/// Unlike Adam, plain SGD is not scale invariant: its step is proportional to the gradient,
/// and ELBO estimates are full-data sums (N/|B| scaling), so `step_size` must be of the order
/// of 1 / (N * curvature per observation).

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/optim/optimizer.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// Hyper-parameters of the Robbins–Monro schedule a_t = step_size / (1 + t / t0)^kappa.
/// `groups` give parts of the parameter vector their own a_0 (their `learning_rate`); the
/// schedule's decay applies to every group alike.
struct sgd_options {
  double step_size = 1e-3;  ///< a_0 > 0
  double t0 = 100.0;        ///< > 0: steps before the decay sets in
  double kappa = 1.0;       ///< decay exponent in (0.5, 1]
  std::vector<parameter_group> groups{};  ///< per-group a_0 (checked at `reset`)
};

/// Throws `invalid_argument` naming the offending option.
inline void validate(const sgd_options& o, std::string_view function = "sgd") {
  detail::require(std::isfinite(o.step_size) && o.step_size > 0.0, function,
                  "option 'step_size' must be finite and positive, got ", o.step_size);
  detail::require(std::isfinite(o.t0) && o.t0 > 0.0, function,
                  "option 't0' must be finite and positive, got ", o.t0);
  detail::require(o.kappa > 0.5 && o.kappa <= 1.0, function,
                  "option 'kappa' must be in (0.5, 1], got ", o.kappa);
  detail::validate_group_rates(o.groups, function);
}

/// The Robbins–Monro step size a_t of `o` at step t (0-based).
inline double robbins_monro_step(const sgd_options& o, std::size_t t) {
  return o.step_size / std::pow(1.0 + static_cast<double>(t) / o.t0, o.kappa);
}

/// Per-run state of SGD: the number of steps taken (the schedule's clock).
struct sgd_state {
  std::size_t t = 0;
};

/// Stochastic gradient ascent with a Robbins–Monro schedule on parameters of scalar type `S`.
/// Satisfies `SparseOptimizer<basic_sgd<S>, S>`. Cost per step: O(P), or O(|indices|) sparse.
template <Scalar S>
class basic_sgd {
 public:
  using scalar_type = S;

  /// @throws invalid_argument for invalid options or a negative size.
  explicit basic_sgd(sgd_options options = {}, Eigen::Index num_parameters = 0) : options_(std::move(options)) {
    validate(options_);
    reset(num_parameters);
  }

  /// Restart the schedule for a parameter vector of length `num_parameters`.
  void reset(Eigen::Index num_parameters) {
    detail::require(num_parameters >= 0, "sgd::reset",
                    "argument 'num_parameters' must be >= 0, got ", num_parameters);
    size_ = num_parameters;
    state_.t = 0;
    rates_ = detail::group_rate_multipliers<S>(options_.groups, options_.step_size, num_parameters, "sgd::reset");
  }

  /// One ascent step params += a_t * grad, then t += 1.
  /// @throws invalid_argument if `params` or `grad` do not have the reset length.
  void step(Eigen::Ref<vector_t<S>> params, const Eigen::Ref<const vector_t<S>>& grad) {
    detail::require(params.size() == size_, "sgd::step", "argument 'params' must have ", size_,
                    " entries, got ", params.size());
    detail::require(grad.size() == size_, "sgd::step", "argument 'grad' must have ", size_,
                    " entries, got ", grad.size());
    const S a = static_cast<S>(robbins_monro_step(options_, state_.t));
    if (rates_.size() == 0) params += a * grad;
    else params.array() += a * rates_.array() * grad.array();
    ++state_.t;
  }

  /// One step from a gradient that is zero outside `indices` (`values(j)` at `indices[j]`).
  void step_sparse(Eigen::Ref<vector_t<S>> params, std::span<const Eigen::Index> indices,
                   const Eigen::Ref<const vector_t<S>>& values) {
    detail::require_sparse_step(params.size(), size_, indices, values.size(), "sgd::step_sparse");
    const S a = static_cast<S>(robbins_monro_step(options_, state_.t));
    for (std::size_t j = 0; j < indices.size(); ++j) {
      const Eigen::Index i = indices[j];
      params(i) += (rates_.size() == 0 ? a : a * rates_(i)) * values(static_cast<Eigen::Index>(j));
    }
    ++state_.t;
  }

  /// The step size the next call to `step` will use.
  double current_step_size() const { return robbins_monro_step(options_, state_.t); }
  std::size_t steps() const { return state_.t; }
  const sgd_options& options() const { return options_; }
  const sgd_state& state() const { return state_; }
  void set_state(const sgd_state& s) { state_ = s; }

 private:
  sgd_options options_;
  sgd_state state_;
  Eigen::Index size_ = 0;
  vector_t<S> rates_;  ///< per-coordinate multipliers of a_t (empty: all 1)
};

/// Robbins–Monro SGD in double precision.
using sgd = basic_sgd<double>;

}  // namespace latent
