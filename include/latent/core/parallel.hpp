#pragma once
/// @file
/// Deterministic parallel reduction of sufficient statistics over column blocks.
///
/// The columns [0, N) are cut into fixed blocks of `block_size` columns, independent of the
/// thread count. Each block is reduced into its own statistics object (by whichever thread),
/// and the blocks are then merged in block order. Floating-point sums therefore happen in the
/// same order whatever the number of threads, and results are identical bit for bit for 1, 2
/// or 8 threads. OpenMP is optional: without it the blocks run one after another.

#include <latent/core/error.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace latent {

/// How the solver cuts data into blocks and runs them.
struct parallel_options {
  /// Threads for the E-step; 0 means the OpenMP default (all cores). Ignored without OpenMP.
  int threads = 0;
  /// Columns per block. Part of the arithmetic (it fixes the summation order), so the same
  /// block size gives the same bits; it does not depend on the thread count.
  Eigen::Index block_size = 1024;
};

/// The number of threads `opts` asks for on this machine (1 without OpenMP).
inline int resolved_threads(const parallel_options& opts) {
#if defined(_OPENMP)
  return opts.threads > 0 ? opts.threads : omp_get_max_threads();
#else
  (void)opts;
  return 1;
#endif
}

namespace detail {

/// Runs `block(begin, end, stats) -> double` on every block of [0, n), each into a fresh
/// `zero()`, and merges statistics and returned values in block order into `total`.
/// Returns the sum of the block values. Exceptions thrown by a block are rethrown here.
template <class Stats, class Zero, class Block>
double reduce_blocks(Eigen::Index n, const parallel_options& opts, Zero&& zero, Block&& block,
                     Stats& total) {
  const Eigen::Index bs = std::max<Eigen::Index>(1, opts.block_size);
  const Eigen::Index nblocks = (n + bs - 1) / bs;
  if (nblocks == 0) return 0.0;

  std::vector<Stats> parts;
  parts.reserve(static_cast<std::size_t>(nblocks));
  parts.push_back(std::move(total));  // block 0 adds straight into the running total
  for (Eigen::Index b = 1; b < nblocks; ++b) parts.push_back(zero());
  std::vector<double> values(static_cast<std::size_t>(nblocks), 0.0);
  std::exception_ptr error;

#if defined(_OPENMP)
  const int threads = std::min<int>(resolved_threads(opts), static_cast<int>(nblocks));
#pragma omp parallel num_threads(threads)
  {
    // Eigen would otherwise start its own GEMM threads inside a one-thread region (whose
    // nested regions are active), oversubscribing the cores. This sets the ICV of this
    // region's threads only; the caller's setting is untouched.
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
#endif
    for (Eigen::Index b = 0; b < nblocks; ++b) {
      try {
        const Eigen::Index begin = b * bs, end = std::min(n, begin + bs);
        values[static_cast<std::size_t>(b)] = block(begin, end, parts[static_cast<std::size_t>(b)]);
      } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(latent_reduce_blocks_error)
#endif
        if (!error) error = std::current_exception();
      }
    }
#if defined(_OPENMP)
  }
#endif
  total = std::move(parts[0]);
  if (error) std::rethrow_exception(error);

  double value = values[0];
  for (Eigen::Index b = 1; b < nblocks; ++b) {
    total += parts[static_cast<std::size_t>(b)];
    value += values[static_cast<std::size_t>(b)];
  }
  return value;
}

}  // namespace detail
}  // namespace latent
