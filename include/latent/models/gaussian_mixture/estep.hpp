#pragma once
/// @file
/// The Gaussian mixture's E-step over a column range: chunks of observations loaded as rows,
/// the log-joint and responsibilities per group, the moments folded onto lanes and added to
/// the double statistics (internal; see model.hpp).

#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/density.hpp>
#include <latent/models/gaussian_mixture/kernels.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/models/gaussian_mixture/params.hpp>
#include <latent/models/gaussian_mixture/stats.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

namespace latent::detail::mixture {

/// The E-step of `basic_gaussian_mixture<S>`, as static functions of the model's parts.
template <Scalar S>
struct estep {
  using acc = accumulator_t<S>;
  using stats_type = basic_gaussian_mixture_stats<S>;
  using params_type = basic_gaussian_mixture_params<S>;
  using data_type = basic_observations<S>;
  static constexpr Eigen::Index group_size = group<S>, chunk_size = chunk<S>, lane_count = lanes<S>;
  /// Columns after which the S partial sums are added into the double totals (S != double):
  /// each lane then sums at most 2048 / lanes / 4 * 4 products, a relative error of a few
  /// hundred S epsilons at worst, and the statistics see one double addition per 2048 columns.
  static constexpr Eigen::Index flush_chunks =
      std::is_same_v<S, acc> ? 0 : std::max<Eigen::Index>(1, 2048 / chunk<S>);

  /// Buffers of one E-step call (allocated per call, freed at its end: a few chunks of data
  /// and K P partial sums, negligible next to the call's arithmetic).
  struct workspace {
    matrix_t<S> z;      ///< chunk x d: the chunk minus the reference point, observations as rows
    matrix_t<S> r;      ///< chunk x K: log-joint, then weighted responsibilities
    matrix_t<S> w;      ///< chunk x 1: observation weights, 0 on the padding rows
    group_block<S> y;   ///< tied: group x d, a whitened group
    lane_block<S> moments;  ///< lanes x K P partial sums (see accumulate_moments)
    lane_block<S> pooled;   ///< tied: lanes x P partial sums of the weighted scatter
    density<S> shifted;     ///< coefficients about another reference point (density_about)
  };

  static stats_type empty_stats(covariance_type type, Eigen::Index k, Eigen::Index d, const vector_t<acc>& center) {
    stats_type s;
    s.type = type;
    s.center = center;
    s.counts = vector_t<acc>::Zero(k);
    s.sums = matrix_t<acc>::Zero(d, k);
    if (type == covariance_type::full) s.scatter = matrix_t<acc>::Zero(k * d, d);
    if (type == covariance_type::tied) s.scatter = matrix_t<acc>::Zero(d, d);
    if (type == covariance_type::diagonal || type == covariance_type::spherical)
      s.diagonal_scatter = matrix_t<acc>::Zero(d, k);
    return s;
  }

  /// The E-step over columns [begin, end) about s.center (representable in S): adds the
  /// statistics to s and returns the weighted log-likelihood.
  static double expectation(const data_type& x, Eigen::Index begin, Eigen::Index end, covariance_type type,
                            const cache<S>& c, const params_type& p, stats_type& s) {
    const Eigen::Index d = x.dim();
    const vector_t<S> center = s.center.template cast<S>();
    workspace ws;
    const density<S>& dn = density_about(c, p, type, center, ws.shifted);
    return sweep(ws, x.x(), begin, end, center, type, s, [&](Eigen::Index c0, Eigen::Index b, Eigen::Index bp) {
      double ll = 0.0;
      for (Eigen::Index g = 0; g < bp; g += group_size) {
        auto lj = ws.r.template middleRows<group_size>(g);
        group_log_joint(type, ws.z.data() + g, chunk_size, d, dn, lj, ws.y);
        const group_array<S> w = group_weights(x, c0 + g, std::min(group_size, b - g));
        ll += static_cast<double>(group_responsibilities(lj, w));
        ws.w.template middleRows<group_size>(g).array() = w;
      }
      return ll;
    });
  }

  /// Adds to s the statistics of every column assigned with responsibility 1 (times its
  /// weight) to component lab(n), about `center`.
  static void hard_assignment(const data_type& x, const Eigen::VectorXi& lab, const vector_t<S>& center,
                              covariance_type type, stats_type& s) {
    workspace ws;
    sweep(ws, x.x(), 0, x.size(), center, type, s, [&](Eigen::Index c0, Eigen::Index b, Eigen::Index bp) {
      ws.r.topRows(bp).setZero();
      ws.w.topRows(bp).setZero();
      for (Eigen::Index i = 0; i < b; ++i) ws.r(i, lab(c0 + i)) = ws.w(i, 0) = x.weight(c0 + i);
      return 0.0;
    });
  }

  /// out (K x N) = log pi_k + log N(x_n | mu_k, Sigma_k) for the columns of x (the model's own
  /// log-joint, without the E-step's regularization penalty), by the E-step's kernels one group
  /// of columns at a time.
  static void log_joint(const Eigen::Ref<const matrix_t<S>>& x, covariance_type type, const cache<S>& c,
                        matrix_t<S>& out) {
    const Eigen::Index d = x.rows(), n = x.cols(), k = c.dn.log_const.size();
    density<S> plain;
    const bool penalized = c.plain_log_const != c.dn.log_const;
    if (penalized) {
      plain = c.dn;
      plain.log_const = c.plain_log_const;
    }
    const density<S>& dn = penalized ? plain : c.dn;
    out.resize(k, n);
    group_block<S> xg(group_size, d), y(group_size, d);
    Eigen::Matrix<S, group_size, Eigen::Dynamic> lj(group_size, k);
    for (Eigen::Index n0 = 0; n0 < n; n0 += group_size) {
      const Eigen::Index b = std::min(group_size, n - n0);
      load_rows(x, c.center, n0, b, xg.data(), group_size);
      xg.bottomRows(group_size - b).setZero();
      group_log_joint(type, xg.data(), group_size, d, dn, lj, y);
      out.middleCols(n0, b) = lj.topRows(b).transpose();
    }
  }

 private:
  /// The weights of observations [n0, n0 + b) as a group; 0 on the padding rows.
  static group_array<S> group_weights(const data_type& x, Eigen::Index n0, Eigen::Index b) {
    group_array<S> w = group_array<S>::Zero();
    if (x.weighted())
      w.head(b) = x.weights().segment(n0, b).array();
    else
      w.head(b).setOnes();
    return w;
  }

  /// Turns a group's log-joint (group x K) into responsibilities scaled by the weights w and
  /// returns the group's weighted log-likelihood (the padding rows have finite log p and w = 0).
  template <class Group>
  static S group_responsibilities(Group& lj, const group_array<S>& w) {
    group_array<S> lse;
    normalize_rows_log(lj, lse);
    for (Eigen::Index k = 0; k < lj.cols(); ++k) lj.col(k).array() *= w;
    return (lse * w).sum();
  }

  static second_moments moment_kind(covariance_type type) {
    switch (type) {
      case covariance_type::full: return second_moments::lower_triangle;
      case covariance_type::diagonal:
      case covariance_type::spherical: return second_moments::diagonal;
      case covariance_type::tied: break;
    }
    return second_moments::none;  // tied: the scatter is pooled (see sweep)
  }

  /// Runs over columns [begin, end) of x in chunks, with each chunk minus `center` as the rows
  /// of ws.z (zero-padded to whole groups). `fill(c0, b, bp)` sets the chunk's weighted
  /// responsibilities ws.r and weights ws.w on rows [0, bp), zero on the padding rows [b, bp),
  /// and returns the chunk's log-likelihood. The moments are accumulated by lanes in S, added
  /// into double totals every `flush_chunks` chunks, and the totals to s at the end; returns
  /// the summed log-likelihood.
  template <class Fill>
  static double sweep(workspace& ws, const Eigen::Ref<const matrix_t<S>>& x, Eigen::Index begin, Eigen::Index end,
                      const vector_t<S>& center, covariance_type type, stats_type& s, Fill&& fill) {
    // (d from x: initialize sweeps before the mixture has parameters.)
    const Eigen::Index d = x.rows(), k = s.counts.size();
    const second_moments kind = moment_kind(type);
    const Eigen::Index p = moment_count(d, kind), pp = moment_count(d, second_moments::lower_triangle);
    const bool tied = type == covariance_type::tied;
    ws.z.resize(chunk_size, d);
    ws.r.resize(chunk_size, k);
    ws.w.resize(chunk_size, 1);
    ws.y.resize(group_size, d);
    ws.moments.setZero(lane_count, k * p);
    if (tied) ws.pooled.setZero(lane_count, pp);
    // Double totals of the lanes (only when S is not the accumulator: else the lanes are).
    Eigen::Array<acc, 1, Eigen::Dynamic> moments_total, pooled_total;
    const auto flush = [&] {
      if constexpr (flush_chunks > 0) {
        moments_total += ws.moments.colwise().sum().template cast<acc>();
        ws.moments.setZero();
        if (tied) {
          pooled_total += ws.pooled.colwise().sum().template cast<acc>();
          ws.pooled.setZero();
        }
      }
    };
    if constexpr (flush_chunks > 0) {
      moments_total.setZero(k * p);
      pooled_total.setZero(tied ? pp : 0);
    }
    double ll = 0.0;
    [[maybe_unused]] Eigen::Index chunks = 0;
    for (Eigen::Index c0 = begin; c0 < end; c0 += chunk_size) {
      const Eigen::Index b = std::min(chunk_size, end - c0);
      const Eigen::Index bp = (b + group_size - 1) / group_size * group_size;
      load_rows(x, center, c0, b, ws.z.data(), chunk_size);
      ws.z.middleRows(b, bp - b).setZero();
      ll += fill(c0, b, bp);
      accumulate_moments(ws.z.data(), chunk_size, bp, d, ws.r, kind, ws.moments);
      if (tied) accumulate_moments(ws.z.data(), chunk_size, bp, d, ws.w, second_moments::lower_triangle, ws.pooled);
      if constexpr (flush_chunks > 0)
        if (++chunks % flush_chunks == 0) flush();
    }
    matrix_t<acc> m;
    vector_t<acc> q;
    if constexpr (flush_chunks > 0) {
      flush();
      m = moments_total.matrix().reshaped(p, k);
      if (tied) q = pooled_total.matrix().transpose();
    } else {
      m = ws.moments.colwise().sum().matrix().reshaped(p, k);
      if (tied) q = ws.pooled.colwise().sum().transpose().matrix();
    }
    s.counts += m.row(0).transpose();
    s.sums += m.middleRows(1, d);
    switch (type) {
      case covariance_type::full:
        for (Eigen::Index j = 0; j < k; ++j)
          add_packed_symmetric(m.col(j).tail(p - 1 - d), s.scatter.middleRows(j * d, d));
        break;
      case covariance_type::diagonal:
      case covariance_type::spherical:
        s.diagonal_scatter += m.middleRows(1 + d, d);
        break;
      case covariance_type::tied:
        add_packed_symmetric(q.tail(q.size() - 1 - d), s.scatter);
        break;
    }
    return ll;
  }
};

}  // namespace latent::detail::mixture
