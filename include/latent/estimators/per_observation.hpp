#pragma once
/// @file
/// What the estimators of an `AmortizedObjective` share: per-observation estimates with their
/// Monte Carlo standard errors, sets of diagonal Gaussians (one per observation), and the
/// machinery that makes every estimate reproducible whatever the number of threads.
///
/// **Randomness.** An estimator draws ONE 64-bit seed from the caller's engine and gives each
/// observation its own `std::mt19937_64` stream, seeded by (that seed, the observation's column
/// index, the purpose of the draws). The draws an observation gets therefore depend neither on
/// the number of threads nor on how the observations are grouped into `log_joint` calls, nor on
/// the other observations of the set; and the same seed gives the same numbers. The results are
/// identical for every thread count; other groupings (`columns_per_call`) change them at most
/// by the objective's rounding (matrix products over different column counts). Two calls that
/// draw their seeds from engines in the same state use the same noise (common random numbers).
///
/// **Threads and memory.** The observations of a set are cut into fixed groups (their size
/// depends on the number of draws and `columns_per_call`, never on the thread count) that
/// `thread_executor` runs in parallel; each group evaluates the objective in calls of at most
/// `columns_per_call` latent points (k x columns), so memory stays bounded for any K and N.

#include <latent/core/amortized.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/executor.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string_view>
#include <vector>

namespace latent {

/// n diagonal Gaussians N(mean.col(j), diag(exp(2 log_scale.col(j)))) over R^k, one per
/// observation of a set (column j for the j-th index of the set): the encoder's q(z | x), an
/// importance-sampling proposal, or per-observation variational parameters.
struct diagonal_gaussians {
  matrix_t<double> mean;       ///< k x n means
  matrix_t<double> log_scale;  ///< k x n log standard deviations
};

/// Per-observation Monte Carlo estimates with their standard errors, and their sum and mean.
///
/// The observations' estimates are independent (each has its own random stream), so
/// sum_standard_error = sqrt(sum_n standard_error_n^2) and mean = sum / n with
/// mean_standard_error = sum_standard_error / n.
struct per_observation_estimate {
  std::vector<Eigen::Index> indices;  ///< the observations (column indices), in the order given
  vector_t<double> value;             ///< the estimate of each observation
  vector_t<double> standard_error;    ///< its Monte Carlo standard error
  double sum = 0.0;                   ///< sum of `value`
  double sum_standard_error = 0.0;    ///< standard error of `sum`
  double mean = 0.0;                  ///< sum / n
  double mean_standard_error = 0.0;   ///< standard error of `mean`
};

/// The encoder's q(z | x_n) for the observations `indices` of `f`, in double.
/// @throws invalid_argument for an empty set, an index out of range or a wrong parameter length
/// @throws numerical_error if the encoder's output is not finite
template <AmortizedObjective F>
diagonal_gaussians encoder_gaussians(const F& f, const objective_vector_t<F>& params, minibatch indices);

namespace detail {

/// What an observation's random stream is used for; part of its seed, so that the streams of
/// different estimates of one observation are independent.
enum class stream_purpose : std::uint32_t { importance = 1, elbo = 2, optimization = 3 };

/// The one seed an estimator draws from the caller's engine.
template <std::uniform_random_bit_generator Rng>
std::uint64_t draw_stream_seed(Rng& rng) {
  return std::uniform_int_distribution<std::uint64_t>{}(rng);
}

/// The random stream of the observation in column `column` for `purpose`.
inline std::mt19937_64 observation_engine(std::uint64_t seed, Eigen::Index column, stream_purpose purpose) {
  const auto c = static_cast<std::uint64_t>(column);
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32),
                    static_cast<std::uint32_t>(purpose)};
  return std::mt19937_64(seq);
}

/// [0, n) as a list of indices.
inline std::vector<Eigen::Index> all_columns(Eigen::Index n) {
  std::vector<Eigen::Index> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), Eigen::Index{0});
  return v;
}

/// A non-empty set of distinct column indices in [0, n) (distinct, as every minibatch an
/// objective receives).
inline void require_indices(minibatch indices, Eigen::Index n, std::string_view fn) {
  require(!indices.empty(), fn, "argument 'indices' must not be empty");
  for (std::size_t j = 0; j < indices.size(); ++j)
    require(indices[j] >= 0 && indices[j] < n, fn, "argument 'indices' holds ", indices[j], " at position ", j,
            ", outside [0, ", n, ")");
  std::vector<Eigen::Index> sorted(indices.begin(), indices.end());
  std::sort(sorted.begin(), sorted.end());
  const auto repeat = std::adjacent_find(sorted.begin(), sorted.end());
  require(repeat == sorted.end(), fn, "argument 'indices' holds ", repeat == sorted.end() ? 0 : *repeat,
          " more than once");
}

/// Gaussians of `name` with k x n finite means and log-scales. (Templates here and below keep
/// Eigen code out of translation units that do not use it.)
template <class Q = diagonal_gaussians>
void require_gaussians(const Q& q, Eigen::Index k, Eigen::Index n, std::string_view fn,
                              std::string_view name) {
  require(q.mean.rows() == k && q.mean.cols() == n, fn, "argument '", name, "' must have a ", k, " x ", n,
          " mean (latent dimension x observations), got ", q.mean.rows(), " x ", q.mean.cols());
  require(q.log_scale.rows() == k && q.log_scale.cols() == n, fn, "argument '", name, "' must have a ", k, " x ",
          n, " log_scale (latent dimension x observations), got ", q.log_scale.rows(), " x ", q.log_scale.cols());
  require(q.mean.allFinite(), fn, "argument '", name, "' has a non-finite mean");
  require(q.log_scale.allFinite(), fn, "argument '", name, "' has a non-finite log_scale");
}

/// Options every estimator checks the same way.
inline void require_positive(std::size_t v, std::string_view fn, std::string_view name) {
  require(v > 0, fn, "option '", name, "' must be positive, got 0");
}
inline void require_execution(Eigen::Index columns_per_call, int threads, std::string_view fn) {
  require(columns_per_call > 0, fn, "option 'columns_per_call' must be positive, got ", columns_per_call);
  require(threads >= 0, fn, "option 'threads' must be >= 0, got ", threads);
}

/// Statistics-free blocks for `thread_executor`: the groups write their own slots.
struct no_statistics {
  // Not empty: g++ 12 warns (-Warray-bounds, falsely) when a vector of an empty class grows.
  int unused = 0;
  no_statistics& operator+=(const no_statistics&) { return *this; }
  no_statistics& operator*=(double) { return *this; }
};

/// Run `group(begin, end)` over [0, n) in fixed groups of `group_size` positions, on `threads`
/// threads (0: the OpenMP default), through `thread_executor` (which rethrows the first
/// exception of a group).
template <class Group>
void for_each_group(Eigen::Index n, Eigen::Index group_size, int threads, Group&& group) {
  const thread_executor executor{.threads = threads, .block_size = group_size};
  no_statistics total;
  executor.reduce(
      n, [] { return no_statistics{}; },
      [&](Eigen::Index begin, Eigen::Index end, no_statistics&) {
        group(begin, end);
        return 0.0;
      },
      total);
}

/// Observations per group when each takes `draws` latent points: as many as fit in one call
/// of `columns_per_call` points, at least one.
inline Eigen::Index group_size(std::size_t draws, Eigen::Index columns_per_call) {
  return std::max<Eigen::Index>(1, columns_per_call / static_cast<Eigen::Index>(draws));
}

/// Fill the sums and their standard errors of `e` from its per-observation values and errors.
template <class Estimate>
void summarize(Estimate& e) {
  const double n = static_cast<double>(e.value.size());
  e.sum = e.value.sum();
  e.sum_standard_error = std::sqrt(e.standard_error.squaredNorm());
  e.mean = e.sum / n;
  e.mean_standard_error = e.sum_standard_error / n;
}

/// The standard normal draws of one observation: its engine and its own distribution object
/// (a distribution may keep a draw for the next call, so one is never shared between streams).
struct observation_stream {
  std::mt19937_64 engine;
  std::normal_distribution<double> normal{0.0, 1.0};
  double operator()() { return normal(engine); }
};

/// The streams of the observations `batch` for `purpose`.
inline std::vector<observation_stream> group_streams(minibatch batch, std::uint64_t seed, stream_purpose purpose) {
  std::vector<observation_stream> streams;
  streams.reserve(batch.size());
  for (const Eigen::Index n : batch) streams.push_back({observation_engine(seed, n, purpose)});
  return streams;
}

/// For the observations batch[j] = indices[first + j] of a group, draw `draws` points from each
/// of the Gaussians `qs[i]` (columns first + j of each, all with the SAME standard normal noise
/// eps from the observation's stream `streams[j]`, consumed column by column) and write
/// out[i](j, r) = log p(x, z_r) - (subtract_log_q ? log q_i(z_r) : 0). The points go to
/// `log_joint` in calls of at most `columns_per_call` columns (laid out r |B| + j); they are
/// rounded to the objective's scalar type, and log q is evaluated at the rounded points.
template <AmortizedObjective F>
void sample_log_joint(const F& f, const objective_vector_t<F>& params, minibatch batch, Eigen::Index first,
                      const std::vector<const diagonal_gaussians*>& qs, std::vector<observation_stream>& streams,
                      std::size_t draws, Eigen::Index columns_per_call, bool subtract_log_q,
                      std::vector<matrix_t<double>>& out) {
  using S = objective_scalar_t<F>;
  const Eigen::Index b = static_cast<Eigen::Index>(batch.size()), total = static_cast<Eigen::Index>(draws);
  const Eigen::Index k = qs.front()->mean.rows();
  const Eigen::Index per_call = std::clamp<Eigen::Index>(columns_per_call / b, 1, total);
  out.assign(qs.size(), matrix_t<double>(b, total));
  matrix_t<double> eps(k, b * per_call), z(k, b * per_call);
  matrix_t<S> zs;
  vector_t<double> values;
  for (Eigen::Index r0 = 0; r0 < total; r0 += per_call) {
    const Eigen::Index rc = std::min(per_call, total - r0), cols = rc * b;
    // Observation j's draws r0 .. r0 + rc - 1, in its stream's order, to columns r b + j.
    for (Eigen::Index j = 0; j < b; ++j)
      for (Eigen::Index r = 0; r < rc; ++r)
        for (Eigen::Index i = 0; i < k; ++i) eps(i, r * b + j) = streams[static_cast<std::size_t>(j)]();
    for (std::size_t qi = 0; qi < qs.size(); ++qi) {
      const auto mean = qs[qi]->mean.middleCols(first, b);
      const auto log_scale = qs[qi]->log_scale.middleCols(first, b);
      const matrix_t<double> scale = log_scale.array().exp().matrix();
      for (Eigen::Index r = 0; r < rc; ++r)
        z.middleCols(r * b, b) = mean + (scale.array() * eps.middleCols(r * b, b).array()).matrix();
      zs = z.leftCols(cols).template cast<S>();
      f.log_joint(params, batch, zs, values, static_cast<matrix_t<S>*>(nullptr));
      require(values.size() == cols, "estimators", "the objective's log_joint returned ", values.size(),
              " values for ", cols, " latent points");
      if (subtract_log_q) {
        // log q at the rounded points, whose standardized values are recomputed from them.
        const array_t<double> log_norm =
            log_scale.colwise().sum().transpose().array() + 0.5 * static_cast<double>(k) * log_two_pi;
        for (Eigen::Index r = 0; r < rc; ++r) {
          const matrix_t<double> e =
              ((zs.middleCols(r * b, b).template cast<double>() - mean).array() / scale.array()).matrix();
          values.segment(r * b, b).array() += 0.5 * e.colwise().squaredNorm().transpose().array() + log_norm;
        }
      }
      for (Eigen::Index r = 0; r < rc; ++r) out[qi].col(r0 + r) = values.segment(r * b, b);
    }
  }
}

}  // namespace detail

template <AmortizedObjective F>
diagonal_gaussians encoder_gaussians(const F& f, const objective_vector_t<F>& params, minibatch indices) {
  using S = objective_scalar_t<F>;
  constexpr std::string_view fn = "encoder_gaussians";
  detail::require_indices(indices, f.num_observations(), fn);
  const Eigen::Index k = f.latent_dim(), n = static_cast<Eigen::Index>(indices.size());
  diagonal_gaussians q{matrix_t<double>(k, n), matrix_t<double>(k, n)};
  // In bounded blocks, so that a large set does not run the encoder over all of it at once.
  constexpr Eigen::Index block = 4096;
  matrix_t<S> mean, log_scale;
  for (Eigen::Index b0 = 0; b0 < n; b0 += block) {
    const Eigen::Index len = std::min(block, n - b0);
    f.encode(params, indices.subspan(static_cast<std::size_t>(b0), static_cast<std::size_t>(len)), mean, log_scale);
    detail::require(mean.rows() == k && mean.cols() == len && log_scale.rows() == k && log_scale.cols() == len, fn,
                    "the objective's encode returned ", mean.rows(), " x ", mean.cols(), " and ", log_scale.rows(),
                    " x ", log_scale.cols(), " matrices, expected ", k, " x ", len);
    q.mean.middleCols(b0, len) = mean.template cast<double>();
    q.log_scale.middleCols(b0, len) = log_scale.template cast<double>();
  }
  if (!q.mean.allFinite() || !q.log_scale.allFinite())
    throw numerical_error("encoder_gaussians: the encoder returned a non-finite mean or log-scale");
  return q;
}

}  // namespace latent
