#pragma once
/// @file
/// Running the chunks of a minibatch on OpenMP threads, for objectives whose training step is
/// cut into chunks of columns (a split that does not depend on the thread count) and whose
/// chunks' values and gradients are then added in chunk order: the result is the same bits
/// for any number of threads. One parallel region per step, instead of Eigen's parallel
/// GEMMs, which spin at several barriers per product and lose badly on a loaded machine; a
/// single chunk runs in the calling thread and may use Eigen's GEMM threads.

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <exception>
#include <vector>

namespace latent::detail {

/// The number of threads a step of `count` chunks uses: `Eigen::nbThreads()`, at most `count`.
inline int chunk_threads(Eigen::Index count) {
  return static_cast<int>(std::max<Eigen::Index>(1, std::min<Eigen::Index>(Eigen::nbThreads(), count)));
}

/// Calls `run(i)` for every chunk i in [0, count) on `threads` OpenMP threads (serially with
/// one thread or without OpenMP). The first exception thrown by a chunk is rethrown.
template <class Run>
void run_chunks(Eigen::Index count, int threads, const Run& run) {
#if defined(_OPENMP)
  if (threads > 1) {
    std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (Eigen::Index i = 0; i < count; ++i) {
      try {
        run(i);
      } catch (...) {
#pragma omp critical(latent_run_chunks_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  (void)threads;
  for (Eigen::Index i = 0; i < count; ++i) run(i);
}

/// total += parts[1] + ... + parts[count - 1] (in that order, entry by entry), split over
/// `threads` by segments of the vector. `part(i)` returns chunk i's vector.
template <Scalar S, class Part>
void add_chunk_vectors(vector_t<S>& total, Eigen::Index count, int threads, const Part& part) {
  if (count < 2) return;
  const Eigen::Index p = total.size(), segment = 1 << 14, segments = (p + segment - 1) / segment;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
#endif
  for (Eigen::Index t = 0; t < segments; ++t) {
    const Eigen::Index begin = t * segment, len = std::min(segment, p - begin);
    for (Eigen::Index i = 1; i < count; ++i) total.segment(begin, len) += part(i).segment(begin, len);
  }
  (void)threads;
}

}  // namespace latent::detail
