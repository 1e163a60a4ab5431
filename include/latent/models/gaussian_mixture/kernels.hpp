#pragma once
/// @file
/// Kernels of the Gaussian mixture's E-step (internal; see model.hpp).
///
/// Observations are processed in groups of `group<S>`, held as the rows of a column-major
/// block (coordinate j of the whole group contiguous), so that every operation is vector
/// arithmetic across observations and a group's data stay in registers or L1. Sums over
/// observations are folded onto `lanes<S>` partial sums per statistic. The sizes are fixed
/// in *bytes* (a lane block is 64 bytes, a group four of them, a chunk four groups), so float
/// gets twice the observations per instruction that double gets: 16 lanes and groups of 64
/// against 8 and 32. They are fixed, so the arithmetic does not depend on how a solver cut
/// the data into blocks: the results are bit-identical for any number of threads.
///
/// The kernels are written with fixed-size Eigen arrays rather than GEMMs: with K and d small
/// (typical of mixtures), a GEMM's packing of its operands costs more than its arithmetic.
/// The small ones are forced inline: a group returned by value from an out-of-line call
/// goes through memory (256 bytes) instead of staying in registers, which cost the full
/// covariance kernel 40% when they were plain templates.

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

namespace latent::detail::mixture {

/// Partial sums per statistic: one 64-byte vector (8 doubles, 16 floats).
template <Scalar S>
inline constexpr Eigen::Index lanes = static_cast<Eigen::Index>(64 / sizeof(S));
/// Observations per group: four lane blocks.
template <Scalar S>
inline constexpr Eigen::Index group = 4 * lanes<S>;
/// Observations per chunk of the E-step: four groups, so that a chunk's data (chunk x d) and
/// one component's partial sums stay in L1 while the moments are accumulated.
template <Scalar S>
inline constexpr Eigen::Index chunk = 4 * group<S>;

template <Scalar S>
using group_array = Eigen::Array<S, group<S>, 1>;
template <Scalar S>
using group_block = Eigen::Array<S, group<S>, Eigen::Dynamic>;
template <Scalar S>
using lane_array = Eigen::Array<S, lanes<S>, 1>;
template <Scalar S>
using lane_block = Eigen::Array<S, lanes<S>, Eigen::Dynamic>;
template <Scalar S>
using group_column = Eigen::Map<const group_array<S>>;

/// out(i, j) = x(j, n0 + i) - center(j) for i < b and every row j of x, with `out` column-major
/// with leading dimension ld: columns of x (observations) become rows.
template <class X, class Center, Scalar S>
inline void load_rows(const X& x, const Center& center, Eigen::Index n0, Eigen::Index b, S* out, Eigen::Index ld) {
  const Eigen::Index d = x.rows(), stride = x.outerStride();
  const S* const c = center.data();
  for (Eigen::Index i = 0; i < b; ++i) {
    const S* const col = x.data() + (n0 + i) * stride;
    for (Eigen::Index j = 0; j < d; ++j) out[j * ld + i] = col[j] - c[j];
  }
}

/// The group's values folded onto the lanes, in a fixed order.
template <Scalar S>
EIGEN_ALWAYS_INLINE lane_array<S> fold(const group_array<S>& v) {
  constexpr Eigen::Index l = lanes<S>;
  return (v.template segment<l>(0) + v.template segment<l>(l)) +
         (v.template segment<l>(2 * l) + v.template segment<l>(3 * l));
}

/// acc (one lane_array) += the products a .* b of a group folded onto the lanes, written as one
/// chain so that it compiles to four fused multiply-adds.
template <Scalar S>
EIGEN_ALWAYS_INLINE void add_products(S* acc, const group_array<S>& a, const S* b) {
  constexpr Eigen::Index l = lanes<S>;
  using lane_column = Eigen::Map<const lane_array<S>>;
  Eigen::Map<lane_array<S>> s(acc);
  s = s + a.template segment<l>(0) * lane_column(b) + a.template segment<l>(l) * lane_column(b + l) +
      a.template segment<l>(2 * l) * lane_column(b + 2 * l) + a.template segment<l>(3 * l) * lane_column(b + 3 * l);
}

/// Which second moments a mixture needs besides the counts and first moments.
enum class second_moments { none, diagonal, lower_triangle };

/// Statistics per component: 1 count, d first moments and the second moments.
constexpr Eigen::Index moment_count(Eigen::Index d, second_moments m) {
  switch (m) {
    case second_moments::none: return 1 + d;
    case second_moments::diagonal: return 1 + 2 * d;
    case second_moments::lower_triangle: return 1 + d + d * (d + 1) / 2;
  }
  return 1 + d;
}

/// Adds the moments of one chunk to the lane partial sums `moments` (lanes x K P, P =
/// moment_count): for component k, column k P accumulates r_nk, the next d columns r_nk z_ni,
/// then r_nk z_ni^2 (diagonal) or r_nk z_ni z_nj for j <= i row by row (lower triangle).
/// The chunk's observations z_n are rows [0, bp) of the column-major z with leading dimension
/// ld (bp a multiple of `group`), their weighted responsibilities the K columns of r. The loop
/// over components is outermost, so one component's partial sums stay in L1 while the chunk
/// streams past them. (`kind` is a template argument so that the inner loop has no branch.)
template <second_moments kind, Scalar S, class R>
inline void accumulate_moments(const S* z, Eigen::Index ld, Eigen::Index bp, Eigen::Index d, const R& r,
                        lane_block<S>& moments) {
  constexpr Eigen::Index l = lanes<S>, g_size = group<S>;
  const Eigen::Index p = moment_count(d, kind);
  for (Eigen::Index k = 0; k < r.cols(); ++k) {
    S* const acc = moments.data() + k * p * l;
    for (Eigen::Index g = 0; g < bp; g += g_size) {
      const group_array<S> rk = group_column<S>(r.col(k).data() + g);
      Eigen::Map<lane_array<S>>(acc) += fold(rk);
      S* second = acc + (1 + d) * l;
      for (Eigen::Index i = 0; i < d; ++i) {
        const S* const zi = z + i * ld + g;
        const group_array<S> t = rk * group_column<S>(zi);
        Eigen::Map<lane_array<S>>(acc + (1 + i) * l) += fold(t);
        if constexpr (kind == second_moments::diagonal) {
          add_products(second, t, zi);
          second += l;
        } else if constexpr (kind == second_moments::lower_triangle) {
          for (Eigen::Index j = 0; j <= i; ++j, second += l) add_products(second, t, z + j * ld + g);
        }
      }
    }
  }
}

/// accumulate_moments with the kind chosen at run time.
template <Scalar S, class R>
void accumulate_moments(const S* z, Eigen::Index ld, Eigen::Index bp, Eigen::Index d, const R& r,
                        second_moments kind, lane_block<S>& moments) {
  switch (kind) {
    case second_moments::none: accumulate_moments<second_moments::none>(z, ld, bp, d, r, moments); break;
    case second_moments::diagonal: accumulate_moments<second_moments::diagonal>(z, ld, bp, d, r, moments); break;
    case second_moments::lower_triangle:
      accumulate_moments<second_moments::lower_triangle>(z, ld, bp, d, r, moments);
      break;
  }
}

/// The lower triangles of `count` stacked d x d matrices, packed row by row into the columns
/// of a d(d+1)/2 x count matrix of scalar `S` (the order whitened_norms and whiten_row read
/// them in).
template <Scalar S, class Stacked>
matrix_t<S> pack_lower_rows(const Stacked& stacked, Eigen::Index count) {
  const Eigen::Index d = stacked.cols();
  matrix_t<S> t(d * (d + 1) / 2, count);
  for (Eigen::Index f = 0; f < count; ++f) {
    Eigen::Index at = 0;
    for (Eigen::Index i = 0; i < d; ++i)
      for (Eigen::Index j = 0; j <= i; ++j) t(at++, f) = static_cast<S>(stacked(f * d + i, j));
  }
  return t;
}

/// s += the symmetric matrix whose lower triangle is `packed` (row by row, as accumulated by
/// accumulate_moments).
template <class Packed, class Out>
void add_packed_symmetric(const Packed& packed, Out&& s) {
  Eigen::Index at = 0;
  for (Eigen::Index i = 0; i < s.rows(); ++i)
    for (Eigen::Index j = 0; j <= i; ++j) {
      const auto v = packed(at++);
      s(i, j) += v;
      if (i != j) s(j, i) += v;
    }
}

/// Row i of L z - o_i for a group: z_n are rows [0, group) of the column-major block at z with
/// leading dimension ld, and `row` holds the i + 1 entries of row i of the lower-triangular L.
template <Scalar S>
EIGEN_ALWAYS_INLINE group_array<S> whiten_row(const S* z, Eigen::Index ld, Eigen::Index i, const S* row, S o_i) {
  group_array<S> y = group_column<S>(z) * row[0] - o_i;
  for (Eigen::Index j = 1; j <= i; ++j) y += group_column<S>(z + j * ld) * row[j];
  return y;
}

/// ||L z_n - o||^2 for a group (z as in whiten_row), with `tri` the lower triangle of L packed
/// by rows (pack_lower_rows). Only the triangle is touched, half the flops of a dense product,
/// and the whitened values never leave registers.
template <Scalar S>
EIGEN_ALWAYS_INLINE group_array<S> whitened_norms(const S* z, Eigen::Index ld, Eigen::Index d, const S* tri,
                                                  const S* o) {
  group_array<S> nrm = whiten_row(z, ld, 0, tri, o[0]).square();
  for (Eigen::Index i = 1; i < d; ++i) {
    tri += i;  // row i starts after rows 0..i-1 (i(i+1)/2 entries)
    nrm += whiten_row(z, ld, i, tri, o[i]).square();
  }
  return nrm;
}

/// lj(:, k) = lc_k + sum_j z_j (a_kj + b_kj z_j) for a group (z as in whiten_row), with
/// coef = [a b] (K x 2d): the log-joint of diagonal Gaussians (see density.hpp). The first
/// term initializes the sum: a broadcast constant would be stored in halves and reloaded
/// whole, which stalls store forwarding.
template <Scalar S, class Out>
inline void diagonal_log_joint(const S* z, Eigen::Index ld, Eigen::Index d, const matrix_t<S>& coef,
                        const vector_t<S>& lc, Out& lj) {
  for (Eigen::Index k = 0; k < coef.rows(); ++k) {
    group_array<S> acc = group_column<S>(z) * (coef(k, 0) + coef(k, d) * group_column<S>(z)) + lc(k);
    for (Eigen::Index j = 1; j < d; ++j) {
      const group_column<S> zj(z + j * ld);
      acc += zj * (coef(k, j) + coef(k, d + j) * zj);
    }
    lj.col(k).array() = acc;
  }
}

}  // namespace latent::detail::mixture
