// One EM iteration (E-step over all groups + M-step) of the Neyman–Scott model, K = 5 replicates,
// N = 10^6 groups, with 1 and 2 threads.
//
// Counters: items/s = groups per second; FLOPS counts 4K + 6 floating-point operations per group
// (K adds and one multiply for the mean, K subtractions, multiplies and adds for the sum of
// squares, five for the deviation and the weighted sums); bytes/s is the data read (8 K bytes
// per group). The E-step is two column passes per block over a 40 MB matrix.
#include <latent/models/neyman_scott.hpp>
#include <latent/solvers/em.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <cstdint>
#include <random>

namespace {

constexpr int K = 5;
constexpr Eigen::Index N = 1000000;

// Seeded simulated data, built once: theta = 2, z_n ~ N(0.5, 1).
const Eigen::MatrixXd& data() {
  static const Eigen::MatrixXd y = [] {
    std::mt19937_64 rng(42);
    return latent::neyman_scott(K, {2.0, 0.5, 1.0}).sample(N, rng);
  }();
  return y;
}

void BM_NeymanScottEMIteration(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const Eigen::MatrixXd& y = data();
  const latent::observations x(y);
  const latent::parallel_options parallel{.threads = threads, .block_size = 16384};
  latent::neyman_scott model(K);
  const latent::neyman_scott_params start = model.params();
  double ll = 0.0;
  for (auto _ : state) {
    model.set_params(start);  // every iteration does the same work from the same start
    auto stats = model.zero_stats();
    ll = latent::e_step(model, x, stats, parallel);
    model.m_step(stats);
    benchmark::DoNotOptimize(ll);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * N);
  state.SetBytesProcessed(state.iterations() * N * K * static_cast<std::int64_t>(sizeof(double)));
  state.counters["FLOPS"] = benchmark::Counter(static_cast<double>(N) * (4.0 * K + 6.0),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = threads;
  state.counters["loglik"] = ll;
}

}  // namespace

BENCHMARK(BM_NeymanScottEMIteration)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
