#pragma once
/// @file
/// Kernels of the Gaussian mixture's E-step (internal; see gaussian_mixture.hpp).
///
/// Observations are processed in groups of `group`, held as the rows of a column-major block
/// (coordinate j of the whole group contiguous), so that every operation is vector arithmetic
/// across observations and a group's data stay in registers or L1. Sums over observations are
/// folded onto `lanes` partial sums per statistic and reduced once per E-step call. Both sizes
/// are fixed, so the arithmetic does not depend on how a solver cut the data into blocks: the
/// results are bit-identical for any number of threads.
///
/// The kernels are written with fixed-size Eigen arrays rather than GEMMs: with K and d small
/// (typical of mixtures), a GEMM's packing of its operands costs more than its arithmetic.

#include <Eigen/Core>

namespace latent::detail::mixture {

inline constexpr Eigen::Index group = 32;
inline constexpr Eigen::Index lanes = 8;
static_assert(group == 4 * lanes, "fold and add_products are written for four lane blocks");

using group_array = Eigen::Array<double, group, 1>;
using group_block = Eigen::Array<double, group, Eigen::Dynamic>;
using lane_array = Eigen::Array<double, lanes, 1>;
using lane_block = Eigen::Array<double, lanes, Eigen::Dynamic>;
using group_column = Eigen::Map<const group_array>;

/// out(i, j) = x(j, n0 + i) - center(j) for i < b and every row j of x, with `out` column-major
/// with leading dimension ld: columns of x (observations) become rows.
inline void load_rows(const Eigen::Ref<const Eigen::MatrixXd>& x, const Eigen::VectorXd& center, Eigen::Index n0,
                      Eigen::Index b, double* out, Eigen::Index ld) {
  const Eigen::Index d = x.rows(), stride = x.outerStride();
  const double* const c = center.data();
  for (Eigen::Index i = 0; i < b; ++i) {
    const double* const col = x.data() + (n0 + i) * stride;
    for (Eigen::Index j = 0; j < d; ++j) out[j * ld + i] = col[j] - c[j];
  }
}

/// The group's values folded onto the lanes, in a fixed order.
inline lane_array fold(const group_array& v) {
  return (v.segment<lanes>(0) + v.segment<lanes>(lanes)) + (v.segment<lanes>(2 * lanes) + v.segment<lanes>(3 * lanes));
}

/// acc (one lane_array) += the products a .* b of a group folded onto the lanes, written as one
/// chain so that it compiles to four fused multiply-adds.
inline void add_products(double* acc, const group_array& a, const double* b) {
  using lane_column = Eigen::Map<const lane_array>;
  Eigen::Map<lane_array> s(acc);
  s = s + a.segment<lanes>(0) * lane_column(b) + a.segment<lanes>(lanes) * lane_column(b + lanes) +
      a.segment<lanes>(2 * lanes) * lane_column(b + 2 * lanes) + a.segment<lanes>(3 * lanes) * lane_column(b + 3 * lanes);
}

/// Which second moments a mixture needs besides the counts and first moments.
enum class second_moments { none, diagonal, lower_triangle };

/// Statistics per component: 1 count, d first moments and the second moments.
inline Eigen::Index moment_count(Eigen::Index d, second_moments m) {
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
template <second_moments kind>
void accumulate_moments(const double* z, Eigen::Index ld, Eigen::Index bp, Eigen::Index d, const Eigen::MatrixXd& r,
                        lane_block& moments) {
  const Eigen::Index p = moment_count(d, kind);
  for (Eigen::Index k = 0; k < r.cols(); ++k) {
    double* const acc = moments.data() + k * p * lanes;
    for (Eigen::Index g = 0; g < bp; g += group) {
      const group_array rk = group_column(r.col(k).data() + g);
      Eigen::Map<lane_array>(acc) += fold(rk);
      double* second = acc + (1 + d) * lanes;
      for (Eigen::Index i = 0; i < d; ++i) {
        const double* const zi = z + i * ld + g;
        const group_array t = rk * group_column(zi);
        Eigen::Map<lane_array>(acc + (1 + i) * lanes) += fold(t);
        if constexpr (kind == second_moments::diagonal) {
          add_products(second, t, zi);
          second += lanes;
        } else if constexpr (kind == second_moments::lower_triangle) {
          for (Eigen::Index j = 0; j <= i; ++j, second += lanes) add_products(second, t, z + j * ld + g);
        }
      }
    }
  }
}

/// The lower triangles of `count` stacked d x d matrices, packed row by row into the columns
/// of a d(d+1)/2 x count matrix (the order whitened_norms and whiten_row read them in).
inline Eigen::MatrixXd pack_lower_rows(const Eigen::MatrixXd& stacked, Eigen::Index count) {
  const Eigen::Index d = stacked.cols();
  Eigen::MatrixXd t(d * (d + 1) / 2, count);
  for (Eigen::Index f = 0; f < count; ++f) {
    Eigen::Index at = 0;
    for (Eigen::Index i = 0; i < d; ++i)
      for (Eigen::Index j = 0; j <= i; ++j) t(at++, f) = stacked(f * d + i, j);
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
      const double v = packed(at++);
      s(i, j) += v;
      if (i != j) s(j, i) += v;
    }
}

/// Row i of L z - o_i for a group: z_n are rows [0, group) of the column-major block at z with
/// leading dimension ld, and `row` holds the i + 1 entries of row i of the lower-triangular L.
inline group_array whiten_row(const double* z, Eigen::Index ld, Eigen::Index i, const double* row, double o_i) {
  group_array y = group_column(z) * row[0] - o_i;
  for (Eigen::Index j = 1; j <= i; ++j) y += group_column(z + j * ld) * row[j];
  return y;
}

/// ||L z_n - o||^2 for a group (z as in whiten_row), with `tri` the lower triangle of L packed
/// by rows (pack_lower_rows). Only the triangle is touched, half the flops of a dense product,
/// and the whitened values never leave registers.
inline group_array whitened_norms(const double* z, Eigen::Index ld, Eigen::Index d, const double* tri,
                                  const double* o) {
  group_array nrm = whiten_row(z, ld, 0, tri, o[0]).square();
  for (Eigen::Index i = 1; i < d; ++i) {
    tri += i;  // row i starts after rows 0..i-1 (i(i+1)/2 entries)
    nrm += whiten_row(z, ld, i, tri, o[i]).square();
  }
  return nrm;
}

/// lj(:, k) = lc_k + sum_j z_j (a_kj + b_kj z_j) for a group (z as in whiten_row), with
/// coef = [a b] (K x 2d): the log-joint of diagonal Gaussians (see
/// gaussian_mixture::diagonal_coefficients). The first term initializes the sum: a broadcast constant would be
/// stored in halves and reloaded whole, which stalls store forwarding.
template <class Out>
void diagonal_log_joint(const double* z, Eigen::Index ld, Eigen::Index d, const Eigen::MatrixXd& coef,
                        const Eigen::VectorXd& lc, Out& lj) {
  for (Eigen::Index k = 0; k < coef.rows(); ++k) {
    group_array acc = group_column(z) * (coef(k, 0) + coef(k, d) * group_column(z)) + lc(k);
    for (Eigen::Index j = 1; j < d; ++j) {
      const group_column zj(z + j * ld);
      acc += zj * (coef(k, j) + coef(k, d + j) * zj);
    }
    lj.col(k).array() = acc;
  }
}

}  // namespace latent::detail::mixture

namespace latent::detail::mixture {

/// accumulate_moments with the kind chosen at run time.
inline void accumulate_moments(const double* z, Eigen::Index ld, Eigen::Index bp, Eigen::Index d,
                               const Eigen::MatrixXd& r, second_moments kind, lane_block& moments) {
  switch (kind) {
    case second_moments::none: accumulate_moments<second_moments::none>(z, ld, bp, d, r, moments); break;
    case second_moments::diagonal: accumulate_moments<second_moments::diagonal>(z, ld, bp, d, r, moments); break;
    case second_moments::lower_triangle:
      accumulate_moments<second_moments::lower_triangle>(z, ld, bp, d, r, moments);
      break;
  }
}

}  // namespace latent::detail::mixture
