#pragma once
/// @file
/// Sampling from a caller's engine. Nothing here reads a global seed: every function takes the
/// engine, so the same seed gives the same numbers (on the same standard library:
/// `std::normal_distribution` is implementation-defined across libraries).

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <concepts>
#include <random>

namespace latent {

/// A d x n matrix of independent N(0, 1) draws in scalar type `S` (default double), filled
/// column by column. The draws are made in double and rounded, so `standard_normal<float>`
/// consumes the engine exactly as `standard_normal<double>` does.
template <Scalar S = double, std::uniform_random_bit_generator Rng>
matrix_t<S> standard_normal(Eigen::Index rows, Eigen::Index cols, Rng& rng) {
  std::normal_distribution<double> z(0.0, 1.0);
  matrix_t<S> m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = static_cast<S>(z(rng));
  return m;
}

/// One draw from a categorical distribution with (unnormalized, non-negative) `weights`.
template <class Derived, std::uniform_random_bit_generator Rng>
Eigen::Index sample_categorical(const Eigen::DenseBase<Derived>& weights, Rng& rng) {
  const double total = static_cast<double>(weights.sum());
  std::uniform_real_distribution<double> u(0.0, total);
  double t = u(rng), acc = 0.0;
  for (Eigen::Index k = 0; k < weights.size(); ++k) {
    acc += weights(k);
    if (t < acc) return k;
  }
  // Rounding can leave t == total; return the last category with positive weight.
  for (Eigen::Index k = weights.size() - 1; k > 0; --k)
    if (weights(k) > 0.0) return k;
  return 0;
}

}  // namespace latent
