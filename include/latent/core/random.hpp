#pragma once
/// @file
/// Sampling from a caller's engine. Nothing here reads a global seed: every function takes the
/// engine, so the same seed gives the same numbers (on the same standard library:
/// `std::normal_distribution` is implementation-defined across libraries).

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <concepts>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <type_traits>

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

/// Fill `out` (a matrix, vector or array of any size) with independent N(0, 1) draws by the Box–Muller
/// transform, z = sqrt(-2 log u1) (cos, sin)(2 pi u2), evaluated as whole-array (vectorized)
/// operations: several times faster than `standard_normal` for the hundreds of thousands of
/// draws per step of a Bayesian network's weights. With a 64-bit engine each pair of float
/// draws consumes one engine call (24 bits for each uniform; the tails are then cut at
/// |z| = sqrt(2 log 2^24) = 5.77, a probability of 8e-9) and each pair of double draws two
/// calls (53 bits each); other engines go through `std::uniform_real_distribution`. The draws
/// differ from `standard_normal`'s; the same engine state gives the same draws.
template <class Derived, std::uniform_random_bit_generator Rng>
void fill_standard_normal(Eigen::PlainObjectBase<Derived>& out, Rng& rng) {
  using S = typename Derived::Scalar;
  const Eigen::Index n = out.size(), half = (n + 1) / 2;
  array_t<S> u1(half), u2(half);
  constexpr bool bits64 = Rng::min() == 0 && Rng::max() == std::numeric_limits<std::uint64_t>::max();
  if constexpr (bits64 && std::is_same_v<S, float>) {
    for (Eigen::Index i = 0; i < half; ++i) {
      const std::uint64_t x = rng();
      u1(i) = static_cast<float>((x >> 40) + 1) * 0x1p-24f;            // (0, 1]
      u2(i) = static_cast<float>((x >> 16) & 0xFFFFFFu) * 0x1p-24f;     // [0, 1)
    }
  } else if constexpr (bits64) {
    for (Eigen::Index i = 0; i < half; ++i) {
      u1(i) = static_cast<S>(static_cast<double>((rng() >> 11) + 1) * 0x1p-53);
      u2(i) = static_cast<S>(static_cast<double>(rng() >> 11) * 0x1p-53);
    }
  } else {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (Eigen::Index i = 0; i < half; ++i) {
      u1(i) = static_cast<S>(1.0 - u(rng));
      u2(i) = static_cast<S>(u(rng));
    }
  }
  u1 = (S(-2) * u1.log()).sqrt();
  u2 *= static_cast<S>(2.0 * std::numbers::pi);
  // The first half of the entries (in storage order) take the cosines, the rest the sines.
  Eigen::Map<array_t<S>> flat(out.derived().data(), n);
  flat.head(half) = u1 * u2.cos();
  flat.tail(n - half) = u1.head(n - half) * u2.head(n - half).sin();
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
