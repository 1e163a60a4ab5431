// One EM iteration (E-step over all groups + M-step) of the Neyman–Scott model, K = 5 replicates,
// N = 10^6 groups, with 1 and 2 threads; in double and in float (the same data cast to float,
// read at half the bytes; statistics still accumulated in double).
//
// Counters: items/s = groups per second; FLOPS counts 4K + 6 floating-point operations per group
// (K adds and one multiply for the mean, K subtractions, multiplies and adds for the sum of
// squares, five for the deviation and the weighted sums); bytes/s is the data read (8 K bytes
// per group; 4 K bytes in float). The E-step is two column passes per block over a 40 MB matrix
// (20 MB in float).
#include <latent/models/neyman_scott.hpp>
#include <latent/solvers/em.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <cstdint>
#include <random>
#include <type_traits>

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

// The same data in scalar type S.
template <class S>
const latent::matrix_t<S>& data_as() {
  if constexpr (std::is_same_v<S, double>) {
    return data();
  } else {
    static const latent::matrix_t<S> y = data().cast<S>();
    return y;
  }
}

template <class S>
void neyman_scott_em_iteration(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const latent::matrix_t<S>& y = data_as<S>();
  const latent::basic_observations<S> x(y);
  const latent::parallel_options parallel{.threads = threads, .block_size = 16384};
  latent::basic_neyman_scott<S> model(K);
  const auto start = model.params();
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
  state.SetBytesProcessed(state.iterations() * N * K * static_cast<std::int64_t>(sizeof(S)));
  state.counters["FLOPS"] = benchmark::Counter(static_cast<double>(N) * (4.0 * K + 6.0),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = threads;
  state.counters["loglik"] = ll;
}

void BM_NeymanScottEMIteration(benchmark::State& state) { neyman_scott_em_iteration<double>(state); }
void BM_NeymanScottEMIterationFloat(benchmark::State& state) { neyman_scott_em_iteration<float>(state); }

}  // namespace

BENCHMARK(BM_NeymanScottEMIteration)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NeymanScottEMIterationFloat)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
