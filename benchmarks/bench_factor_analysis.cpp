// Factor analysis: one exact EM iteration on N = 100000, d = 50, k = 10 (seeded simulated
// data) with 1 and 2 threads, in double (BM_EMIteration) and in float (BM_EMIterationFloat:
// the same data and start rounded to float; statistics still accumulate in double), and the
// fit from a covariance matrix and a count (cost independent of N once the moments are formed).
//
// Run: bench_factor_analysis --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// The peer: benchmarks/peers/sklearn_factor_analysis.py times scikit-learn's FactorAnalysis on
// the same problem (compare within one run: the machine is shared).

#include <latent/models/factor_analysis.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <random>

namespace {

constexpr Eigen::Index n_obs = 100000, dim = 50, factors = 10;

/// The seeded data set, built once: x = Lambda z + mu + Psi^{1/2} e.
const Eigen::MatrixXd& data() {
  static const Eigen::MatrixXd x = [] {
    std::mt19937_64 rng(42);
    latent::factor_analysis_params p;
    p.loadings = latent::standard_normal(dim, factors, rng);
    p.mean = latent::standard_normal(dim, 1, rng).col(0);
    p.uniquenesses = Eigen::VectorXd::LinSpaced(dim, 0.2, 1.0);
    return latent::factor_analysis(p).sample(n_obs, rng);
  }();
  return x;
}

/// A model at a random start drawn from the data (seeded).
latent::factor_analysis start_model() {
  std::mt19937_64 rng(7);
  latent::factor_analysis fa(factors);
  fa.initialize(data(), rng);
  return fa;
}

// Flops of one iteration: two GEMMs over the data (2 x 2 N d k) and the elementwise work.
constexpr double iteration_flops = 4.0 * n_obs * dim * factors + 8.0 * n_obs * dim;

/// The data and the start rounded to scalar type T.
template <class T>
const latent::matrix_t<T>& data_as() {
  static const latent::matrix_t<T> x = data().cast<T>();
  return x;
}

template <class T>
void em_iteration(benchmark::State& state) {
  const latent::matrix_t<T>& x = data_as<T>();
  latent::basic_factor_analysis<T> fa(start_model().params().cast<T>());
  const latent::parallel_options parallel{.threads = static_cast<int>(state.range(0))};
  double ll = 0.0;
  for (auto _ : state) {
    auto stats = fa.zero_stats();
    ll = latent::e_step(fa, x, stats, parallel);
    fa.m_step(stats);
    benchmark::DoNotOptimize(ll);
  }
  state.SetItemsProcessed(state.iterations() * n_obs);
  state.counters["FLOPS"] =
      benchmark::Counter(iteration_flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["loglik_per_obs"] = ll / static_cast<double>(n_obs);
}

void BM_EMIteration(benchmark::State& state) { em_iteration<double>(state); }
BENCHMARK(BM_EMIteration)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EMIterationFloat(benchmark::State& state) { em_iteration<float>(state); }
BENCHMARK(BM_EMIterationFloat)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MeanFieldIteration(benchmark::State& state) {
  const Eigen::MatrixXd& x = data();
  latent::factor_analysis fa = start_model();
  const latent::parallel_options parallel{.threads = static_cast<int>(state.range(0))};
  const latent::mean_field family{.max_sweeps = 20, .tolerance = 1e-8};
  for (auto _ : state) {
    auto stats = fa.zero_stats();
    benchmark::DoNotOptimize(latent::variational_e_step(fa, x, family, stats, parallel));
    fa.m_step(stats);
  }
  state.SetItemsProcessed(state.iterations() * n_obs);
}
BENCHMARK(BM_MeanFieldIteration)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

/// Forming the moments once: O(N d^2).
void BM_SampleMoments(benchmark::State& state) {
  const Eigen::MatrixXd& x = data();
  for (auto _ : state) benchmark::DoNotOptimize(latent::sample_moments::from_data(x).covariance.data());
  state.SetItemsProcessed(state.iterations() * n_obs);
}
BENCHMARK(BM_SampleMoments)->Unit(benchmark::kMillisecond);

/// One EM iteration from the moments alone: O(d^2 k), no N anywhere.
void BM_MomentIteration(benchmark::State& state) {
  const auto moments = latent::sample_moments::from_data(data());
  latent::factor_analysis fa = start_model();
  for (auto _ : state) {
    auto stats = fa.zero_stats();
    benchmark::DoNotOptimize(fa.e_step(moments, stats));
    fa.m_step(stats);
  }
}
BENCHMARK(BM_MomentIteration)->Unit(benchmark::kMicrosecond);

/// The whole fit from a covariance matrix and a count, from the same random start, to a
/// tolerance of 1e-8 per observation.
void BM_FitFromCovariance(benchmark::State& state) {
  const auto m = latent::sample_moments::from_data(data());
  const auto moments = latent::sample_moments::from_covariance(m.covariance, m.count, m.mean);
  const latent::factor_analysis start = start_model();
  std::size_t iterations = 0;
  double ll = 0.0;
  for (auto _ : state) {
    latent::factor_analysis fa(start.params());
    auto view = fa.moment_model();
    const auto fit = latent::em(view, moments, {.max_iterations = 10000, .tolerance = 1e-8});
    iterations = fit.iterations;
    ll = fit.objective;
  }
  state.counters["em_iterations"] = static_cast<double>(iterations);
  state.counters["loglik_per_obs"] = ll / static_cast<double>(n_obs);
}
BENCHMARK(BM_FitFromCovariance)->Unit(benchmark::kMillisecond);

}  // namespace
