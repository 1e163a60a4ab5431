// One EM iteration (E-step + M-step) of a Gaussian mixture: N = 200000, d = 16, K = 8, in
// double (BM_GaussianMixtureEMIteration) and in float on the same data rounded to float
// (BM_GaussianMixtureEMIterationFloat). Arguments: covariance type (0 full, 1 diagonal,
// 2 spherical, 3 tied) and threads. BM_GaussianMixtureEMIterationMissing: the double
// iteration on the same data with missing values allowed and blocks of coordinates missing
// (10 % of the observations miss coordinates 0-3, 10 % miss 12-15: three patterns, as when
// groups of survey questions go unanswered); threads 1.
#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>

#include <benchmark/benchmark.h>

#include <limits>
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

template <class S>
void em_iteration(benchmark::State& state, bool missing = false) {
  const auto type = static_cast<latent::covariance_type>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const Eigen::Index n = 200000, d = 16, k = 8;
  latent::matrix_t<S> x = mixture_data(d, n, k, 42).cast<S>();
  if (missing) {
    std::mt19937_64 mask(11);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (Eigen::Index i = 0; i < n; ++i) {
      const double v = u(mask);
      if (v < 0.1) x.col(i).head(4).setConstant(std::numeric_limits<S>::quiet_NaN());
      else if (v < 0.2) x.col(i).tail(4).setConstant(std::numeric_limits<S>::quiet_NaN());
    }
  }
  std::mt19937_64 rng(7);
  latent::basic_gaussian_mixture<S> gmm(
      k, type, {.missing_values = missing ? latent::missing_policy::allow : latent::missing_policy::reject});
  gmm.initialize(x, rng);
  const latent::parallel_options par{threads, 1024};
  for (auto _ : state) {
    auto stats = gmm.zero_stats();
    const double ll = latent::e_step(gmm, latent::basic_observations<S>(x), stats, par);
    gmm.m_step(stats);
    benchmark::DoNotOptimize(ll);
  }
  state.SetItemsProcessed(state.iterations() * n);
  // The kernels' arithmetic (a multiply-add counts 2). Full: per component a triangular
  // whitening and a lower-triangle scatter, d(d+1)/2 multiply-adds each. Diagonal/spherical:
  // 2 multiply-adds per coordinate and component for the densities, 2 for the moments.
  // Tied: one whitening and one pooled scatter, plus K distances (3 per coordinate) and first
  // moments (2).
  double flops = 0.0;
  const double nn = double(n), kk = double(k), dd = double(d);
  switch (type) {
    case latent::covariance_type::full: flops = 2.0 * nn * kk * dd * (dd + 1.0); break;
    case latent::covariance_type::diagonal:
    case latent::covariance_type::spherical: flops = 8.0 * nn * kk * dd; break;
    case latent::covariance_type::tied: flops = 2.0 * nn * dd * (dd + 1.0) + 5.0 * nn * kk * dd; break;
  }
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

void BM_GaussianMixtureEMIteration(benchmark::State& state) { em_iteration<double>(state); }
void BM_GaussianMixtureEMIterationFloat(benchmark::State& state) { em_iteration<float>(state); }
void BM_GaussianMixtureEMIterationMissing(benchmark::State& state) { em_iteration<double>(state, true); }

}  // namespace

BENCHMARK(BM_GaussianMixtureEMIteration)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}})
    ->ArgNames({"cov", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GaussianMixtureEMIterationFloat)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}})
    ->ArgNames({"cov", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GaussianMixtureEMIterationMissing)
    ->ArgsProduct({{0, 1, 2, 3}, {1}})
    ->ArgNames({"cov", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
