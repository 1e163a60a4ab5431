#pragma once
/// @file
/// Expected sufficient statistics of the Neyman–Scott model.

#include <latent/core/scalar.hpp>
#include <latent/core/statistics.hpp>

#include <initializer_list>
#include <span>

namespace latent {

/// Expected sufficient statistics of the Neyman–Scott model (additive and scalable), kept in
/// `accumulator_t<S>` (double for float and double models).
///
/// The moments of the group means are kept about a centre `center` (the prior mean when the
/// statistics were created), so that tau2 = M2/W - (M1/W)^2 does not lose digits when |mu| is
/// large compared with tau. Adding statistics with another centre re-centres them exactly.
///
/// Flat view (`for_each_span`): weight, replicate_weight, residual, first, second, one number
/// each; `center` is structural (the reference point) and not in the view.
template <Scalar S>
struct basic_neyman_scott_stats {
  using value_type = accumulator_t<S>;
  value_type weight = 0;            ///< W = sum of the group weights
  value_type replicate_weight = 0;  ///< K W, the number (weight) of replicates
  value_type residual = 0;          ///< R = sum w_n E[sum_k (y_nk - z_n)^2]
  value_type center = 0;            ///< c, the reference point of M1 and M2
  value_type first = 0;             ///< M1 = sum w_n E[z_n - c]
  value_type second = 0;            ///< M2 = sum w_n E[(z_n - c)^2]

  /// Merge another block's statistics (re-centred onto this centre if needed).
  basic_neyman_scott_stats& operator+=(const basic_neyman_scott_stats& o) {
    weight += o.weight;
    replicate_weight += o.replicate_weight;
    residual += o.residual;
    if (o.center == center) {
      first += o.first;
      second += o.second;
    } else {
      // sum w (m - c) = sum w (m - c_o) + W_o (c_o - c); likewise for the squares.
      const value_type d = o.center - center;
      first += o.first + o.weight * d;
      second += o.second + 2 * d * o.first + o.weight * d * d;
    }
    return *this;
  }
  /// Scale every sum by `w` (online EM's decay).
  basic_neyman_scott_stats& operator*=(double w) {
    const auto v = static_cast<value_type>(w);
    weight *= v;
    replicate_weight *= v;
    residual *= v;
    first *= v;
    second *= v;
    return *this;
  }

  /// The additive numbers, one span each, in declaration order (see the class comment).
  template <class F>
  void for_each_span(F&& f) {
    for (value_type* v : {&weight, &replicate_weight, &residual, &first, &second})
      f(std::span<value_type>(v, 1));
  }
  template <class F>
  void for_each_span(F&& f) const {
    for (const value_type* v : {&weight, &replicate_weight, &residual, &first, &second})
      f(std::span<const value_type>(v, 1));
  }
};
using neyman_scott_stats = basic_neyman_scott_stats<double>;

}  // namespace latent
