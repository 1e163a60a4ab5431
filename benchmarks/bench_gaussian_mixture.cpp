// One EM iteration (E-step + M-step) of a Gaussian mixture: N = 200000, d = 16, K = 8.
// Arguments: covariance type (0 full, 1 diagonal, 2 spherical, 3 tied) and threads.
#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>

#include <benchmark/benchmark.h>

#include <random>

namespace {

// Seeded data: K clusters with random means (spread 3) and random full covariances.
Eigen::MatrixXd mixture_data(Eigen::Index d, Eigen::Index n, Eigen::Index k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Eigen::MatrixXd means = 3.0 * latent::standard_normal(d, k, rng);
  Eigen::MatrixXd x = latent::standard_normal(d, n, rng);
  for (Eigen::Index j = 0; j < k; ++j) {
    const Eigen::MatrixXd a = Eigen::MatrixXd::Identity(d, d) + 0.3 * latent::standard_normal(d, d, rng);
    auto block = x.middleCols(j * (n / k), n / k);
    block = (a * block).colwise() + means.col(j);
  }
  return x;
}

void BM_GaussianMixtureEMIteration(benchmark::State& state) {
  const auto type = static_cast<latent::covariance_type>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const Eigen::Index n = 200000, d = 16, k = 8;
  const Eigen::MatrixXd x = mixture_data(d, n, k, 42);
  std::mt19937_64 rng(7);
  latent::gaussian_mixture gmm(k, type);
  gmm.initialize(x, rng);
  const latent::parallel_options par{threads, 1024};
  for (auto _ : state) {
    auto stats = gmm.zero_stats();
    const double ll = latent::e_step(gmm, latent::observations(x), stats, par);
    gmm.m_step(stats);
    benchmark::DoNotOptimize(ll);
  }
  state.SetItemsProcessed(state.iterations() * n);
  // Full: whitening GEMM 2 N K d^2 plus the symmetric scatter N K d^2 (+ lower-order terms).
  // Diagonal/spherical: 4 GEMMs of N K d each. Tied: 2 N d^2 + N d^2 + 3 N K d.
  double flops = 0.0;
  const double nn = double(n), kk = double(k), dd = double(d);
  switch (type) {
    case latent::covariance_type::full: flops = 3.0 * nn * kk * dd * dd; break;
    case latent::covariance_type::diagonal:
    case latent::covariance_type::spherical: flops = 8.0 * nn * kk * dd; break;
    case latent::covariance_type::tied: flops = 3.0 * nn * dd * dd + 3.0 * nn * kk * dd; break;
  }
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

}  // namespace

BENCHMARK(BM_GaussianMixtureEMIteration)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}})
    ->ArgNames({"cov", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
