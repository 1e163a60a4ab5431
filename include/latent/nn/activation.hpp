#pragma once
/// @file
/// Elementwise activation functions of a dense network, and their derivatives written in terms
/// of the activation's OUTPUT h = f(a) (so a layer's backward pass needs only what its forward
/// pass produced, not the pre-activation a):
///
/// | activation | f(a) | f'(a) as a function of h = f(a) |
/// |---|---|---|
/// | `identity` | a | 1 |
/// | `relu` | max(a, 0) | 1 if h > 0, else 0 (0 at a = 0) |
/// | `tanh` | tanh(a) | 1 - h^2 |
/// | `sigmoid` | 1 / (1 + e^-a) | h (1 - h) |
/// | `softplus` | log(1 + e^a) | sigmoid(a) = 1 - e^-h = -expm1(-h) |
/// | `elu` | a if a > 0, else e^a - 1 | 1 if h > 0, else h + 1 |
///
/// Softplus is evaluated stably as max(a, 0) + log1p(e^-|a|), and ELU as
/// max(a, 0) + expm1(min(a, 0)), both as one vectorized pass without branches.

#include <latent/core/error.hpp>

#include <Eigen/Core>

#include <array>
#include <cstddef>
#include <string_view>

namespace latent::nn {

/// An elementwise activation (see the file comment for the formulas).
enum class activation { identity, relu, tanh, sigmoid, softplus, elu };

/// The activation's name ("identity", "relu", ...).
constexpr std::string_view name(activation f) {
  constexpr std::array<std::string_view, 6> names{"identity", "relu", "tanh", "sigmoid", "softplus", "elu"};
  const auto i = static_cast<std::size_t>(f);
  return i < names.size() ? names[i] : std::string_view("unknown");
}

/// True for the activations defined by the enum (a value cast from an arbitrary integer is not).
constexpr bool is_valid(activation f) {
  return static_cast<unsigned>(f) <= static_cast<unsigned>(activation::elu);
}

/// Replace every entry a of `m` by f(a), in place.
template <class Derived>
void activate(activation f, Eigen::DenseBase<Derived>& m) {
  using S = typename Derived::Scalar;
  auto&& a = m.derived().array();  // a view of a matrix, the array itself for an array
  switch (f) {
    case activation::identity: break;
    case activation::relu: a = a.max(S(0)); break;
    case activation::tanh: a = a.tanh(); break;
    case activation::sigmoid: a = a.logistic(); break;
    case activation::softplus: a = a.max(S(0)) + (-a.abs()).exp().log1p(); break;
    case activation::elu: a = a.max(S(0)) + a.min(S(0)).expm1(); break;
  }
}

/// Multiply every entry of `d` (the gradient with respect to the activation's output h) by
/// f'(a) computed from h (same shape), in place: afterwards `d` is the gradient with respect to
/// the pre-activation a.
template <class DerivedD, class DerivedH>
void multiply_derivative(activation f, Eigen::DenseBase<DerivedD>& d, const Eigen::DenseBase<DerivedH>& h) {
  using S = typename DerivedD::Scalar;
  auto&& g = d.derived().array();
  const auto& y = h.derived().array();
  switch (f) {
    case activation::identity: break;
    case activation::relu: g = (y > S(0)).select(g, S(0)); break;
    case activation::tanh: g *= S(1) - y.square(); break;
    case activation::sigmoid: g *= y * (S(1) - y); break;
    case activation::softplus: g *= -((-y).expm1()); break;
    case activation::elu: g *= (y > S(0)).select(S(1), y + S(1)); break;
  }
}

}  // namespace latent::nn
