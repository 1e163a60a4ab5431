#pragma once
/// @file
/// Executors: how an E-step over N columns is cut into blocks, run, and reduced.
///
/// A solver never loops over data itself: it hands an executor the number of columns, a way
/// to make empty statistics and a block function, and gets back the merged statistics and
/// the summed objective. Two executors live here; the distributed one (MPI) is an optional
/// component built on the same contract and on the statistics' flat view.
///
///  - `serial_executor`: blocks one after another in the calling thread.
///  - `thread_executor`: blocks run by OpenMP threads (serially without OpenMP).
///
/// **Determinism.** The columns [0, N) are cut into fixed blocks of `block_size` columns,
/// independent of the thread count. Each block is reduced into fresh statistics, and the
/// blocks are merged into the total strictly in block order. The floating-point sums are
/// therefore the same whatever the number of threads: both executors give identical bits for
/// the same block size.
///
/// **Bounded memory.** Blocks run in waves; a wave's statistics are merged (in block order)
/// before the next wave starts. A wave holds as many blocks as fit in `wave_memory_budget`
/// (8 MB; at least 4 per thread), so peak memory is independent of N.

#include <latent/core/error.hpp>
#include <latent/core/statistics.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <exception>
#include <limits>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace latent {

namespace detail {

/// The number of blocks of `bs` columns that cover `n` columns (no overflow for any bs >= 1).
inline Eigen::Index block_count(Eigen::Index n, Eigen::Index bs) { return n / bs + (n % bs != 0 ? 1 : 0); }

/// The memory a wave's statistics may take (bytes). Waves hold as many blocks as fit in it,
/// at least 4 per thread: many blocks per wave let threads balance blocks of unequal cost
/// and meet at few barriers (waves of one block per thread cost up to 30 % of a 2-thread
/// E-step), while the budget keeps memory independent of N.
inline constexpr std::size_t wave_memory_budget = std::size_t{8} << 20;

/// Blocks per wave for `threads` threads and statistics like `prototype`: as many as fit in
/// `wave_memory_budget` (statistics with a flat view report their size; others get 4 per
/// thread), at least 4 per thread, at most all of them.
template <class Stats>
Eigen::Index wave_blocks(const Stats& prototype, Eigen::Index team, Eigen::Index nblocks) {
  Eigen::Index wave = 4 * team;
  if constexpr (FlatStatistics<Stats>) {
    const std::size_t bytes = sizeof(Stats) + sizeof(double) * flat_size(prototype);
    wave = std::max<Eigen::Index>(wave, static_cast<Eigen::Index>(wave_memory_budget / bytes));
  }
  return std::min(wave, nblocks);
}

/// Blocks of [0, n) in waves (`wave_blocks`), merged into `total` in block order.
///
/// With OpenMP one parallel region serves every wave: its threads take a wave's blocks
/// dynamically, wait at the wave's barrier, one of them merges the wave in block order while the
/// others wait, and the next wave starts. (A region per wave would pay a fork and a join per
/// wave: ~10 % of a light E-step over 1024-column blocks.) The first exception thrown by a
/// block or a merge is rethrown after the region; later blocks are skipped.
template <class Stats, class Zero, class Block>
double reduce_in_waves(Eigen::Index n, Eigen::Index block_size, int threads, Zero&& zero, Block&& block,
                       Stats& total) {
  require(block_size > 0, "executor", "option 'block_size' must be positive, got ", block_size);
  const Eigen::Index nblocks = block_count(n, block_size);
  if (nblocks == 0) return 0.0;
  if (nblocks == 1) return static_cast<double>(block(Eigen::Index{0}, n, total));
  const Eigen::Index team = std::clamp<Eigen::Index>(threads, 1, nblocks);
  std::vector<Stats> parts(1, zero());
  const Eigen::Index wave = wave_blocks(parts[0], team, nblocks);
  parts.resize(static_cast<std::size_t>(wave), parts[0]);
  std::vector<double> values(static_cast<std::size_t>(wave), 0.0);
  double value = 0.0;
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  const auto record = [&] {
#if defined(_OPENMP)
#pragma omp critical(latent_executor_error)
#endif
    if (!error) error = std::current_exception();
    failed = true;
  };
  // Block `first + i` into slot i.
  const auto run = [&](Eigen::Index first, Eigen::Index i) {
    if (failed) return;
    try {
      const Eigen::Index begin = (first + i) * block_size, end = std::min(n, begin + block_size);
      const auto slot = static_cast<std::size_t>(i);
      parts[slot] = zero();
      values[slot] = static_cast<double>(block(begin, end, parts[slot]));
    } catch (...) {
      record();
    }
  };
  // The wave's slots into the total, in block order.
  const auto merge = [&](Eigen::Index count) {
    if (failed) return;
    try {
      for (Eigen::Index i = 0; i < count; ++i) {
        total += parts[static_cast<std::size_t>(i)];
        value += values[static_cast<std::size_t>(i)];
      }
    } catch (...) {
      record();
    }
  };
#if defined(_OPENMP)
  if (team > 1) {
#pragma omp parallel num_threads(static_cast<int>(team))
    {
      // Eigen would otherwise start its own GEMM threads inside a block (nested regions are
      // active), oversubscribing the cores. This sets the ICV of this region's threads only;
      // the caller's setting is untouched.
      omp_set_num_threads(1);
      for (Eigen::Index first = 0; first < nblocks; first += wave) {
        const Eigen::Index count = std::min(nblocks, first + wave) - first;
#pragma omp for schedule(dynamic, 1)
        for (Eigen::Index i = 0; i < count; ++i) run(first, i);
#pragma omp single
        merge(count);
      }
    }
    if (error) std::rethrow_exception(error);
    return value;
  }
#endif
  for (Eigen::Index first = 0; first < nblocks; first += wave) {
    const Eigen::Index count = std::min(nblocks, first + wave) - first;
    for (Eigen::Index i = 0; i < count; ++i) run(first, i);
    merge(count);
    if (error) std::rethrow_exception(error);
  }
  return value;
}

/// Archetypes used only to check the `Executor` concept.
struct archetype_stats {
  archetype_stats& operator+=(const archetype_stats&) { return *this; }
  archetype_stats& operator*=(double) { return *this; }
  template <class F>
  void for_each_span(F&&) {}
  template <class F>
  void for_each_span(F&&) const {}
};
struct archetype_zero {
  archetype_stats operator()() const { return {}; }
};
struct archetype_block {
  double operator()(Eigen::Index, Eigen::Index, archetype_stats&) const { return 0.0; }
};

}  // namespace detail

/// An executor: runs `block(begin, end, stats) -> objective` over a partition of [0, n) into
/// statistics made by `zero()`, merges them into `total` in a fixed order and returns the
/// summed objective; `all_sum(v)` combines a scalar over the executor's parts (the identity
/// for executors that see all the data, a sum over ranks for a distributed one).
template <class E>
concept Executor = std::copy_constructible<E> &&
    requires(const E& e, Eigen::Index n, detail::archetype_stats& total, double v) {
      { e.reduce(n, detail::archetype_zero{}, detail::archetype_block{}, total) } -> std::convertible_to<double>;
      { e.all_sum(v) } -> std::convertible_to<double>;
    };

/// Blocks one after another in the calling thread. Same bits as `thread_executor` with the
/// same `block_size`.
struct serial_executor {
  /// Columns per block; part of the arithmetic (it fixes the summation order).
  Eigen::Index block_size = 1024;

  template <class Stats, class Zero, class Block>
  double reduce(Eigen::Index n, Zero&& zero, Block&& block, Stats& total) const {
    return detail::reduce_in_waves(n, block_size, 1, zero, block, total);
  }
  double all_sum(double v) const { return v; }
};

/// Blocks run by OpenMP threads in waves (serially without OpenMP); see the file comment.
struct thread_executor {
  /// Threads; 0 means the OpenMP default (all cores). Ignored without OpenMP.
  int threads = 0;
  /// Columns per block. Part of the arithmetic (it fixes the summation order), so the same
  /// block size gives the same bits; it does not depend on the thread count.
  Eigen::Index block_size = 1024;

  /// The number of threads this executor uses on this machine (1 without OpenMP).
  int resolved_threads() const {
#if defined(_OPENMP)
    return threads > 0 ? threads : omp_get_max_threads();
#else
    return 1;
#endif
  }

  template <class Stats, class Zero, class Block>
  double reduce(Eigen::Index n, Zero&& zero, Block&& block, Stats& total) const {
    detail::require(threads >= 0, "thread_executor", "option 'threads' must be >= 0, got ", threads);
    return detail::reduce_in_waves(n, block_size, resolved_threads(), zero, block, total);
  }
  double all_sum(double v) const { return v; }
};

/// The first edition's name for `thread_executor` (same members, same order).
using parallel_options = thread_executor;

/// The number of threads `opts` asks for on this machine (1 without OpenMP).
inline int resolved_threads(const thread_executor& opts) { return opts.resolved_threads(); }

namespace detail {
/// The first edition's reduction entry point, kept for model code and tests: `threads` and
/// `block_size` of `opts`, waves of blocks merged in block order.
template <class Stats, class Zero, class Block>
double reduce_blocks(Eigen::Index n, const thread_executor& opts, Zero&& zero, Block&& block, Stats& total) {
  return opts.reduce(n, zero, block, total);
}
}  // namespace detail

}  // namespace latent
