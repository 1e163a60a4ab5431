// One SGD-on-the-ELBO step of the linear VAE: the minibatch estimate and its hand-derived
// gradient (the objective) plus one Adam update, for batch 128, k = 10, d = 50 and d = 784
// (Fashion-MNIST's dimension). Seeded simulated data. items/s = observations per second.
//
// FLOP count per step (multiply-add = 2 flops), B = batch, S = draws, P = 2dk + 2d + 2k:
//   encoder means W X_B                      2 k d B
//   decoder Lambda Z                         2 d k B S
//   dLambda = U Z^T                          2 d k B S
//   G = Lambda^T U                           2 k d B S
//   dW = D_m X_B^T                           2 k d B
// i.e. 4 k d B + 6 d k B S, plus O(d B S) elementwise work and O(P) for Adam (not counted).
//
// `eigen_threads` sets Eigen's own GEMM threading (OpenMP) for the case. At these sizes one
// thread is the right choice: on a loaded 2-core machine Eigen's parallel GEMM waits at its
// barriers for descheduled threads and a d = 784 step was measured 50-80x slower with 2 threads
// than with 1. Report the eigen_threads:1 rows.
#include <latent/core/random.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/models/neyman_scott_elbo.hpp>
#include <latent/optim/adam.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace {

void BM_LinearVaeSgdStep(benchmark::State& state) {
  const Eigen::Index d = state.range(0), k = state.range(1), b = state.range(2);
  const std::size_t s = static_cast<std::size_t>(state.range(3));
  const int threads_before = Eigen::nbThreads();
  Eigen::setNbThreads(static_cast<int>(state.range(4)));
  const Eigen::Index n = 4096;
  std::mt19937_64 rng(42);
  const Eigen::MatrixXd lambda = latent::standard_normal(d, k, rng);
  const Eigen::MatrixXd x = lambda * latent::standard_normal(k, n, rng) + 0.5 * latent::standard_normal(d, n, rng);
  const latent::linear_vae vae(x, k);
  Eigen::VectorXd params = vae.initial_params(rng);
  latent::adam opt({.learning_rate = 1e-3}, vae.num_parameters());
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::shuffle(order.begin(), order.end(), rng);
  Eigen::VectorXd grad(vae.num_parameters());
  std::size_t offset = 0;
  for (auto _ : state) {
    if (offset + static_cast<std::size_t>(b) > order.size()) offset = 0;
    const double v = vae.value_and_gradient(params, latent::minibatch(order.data() + offset, static_cast<std::size_t>(b)),
                                            s, grad, rng);
    opt.step(params, grad);
    offset += static_cast<std::size_t>(b);
    benchmark::DoNotOptimize(v);
    benchmark::DoNotOptimize(params.data());
    benchmark::ClobberMemory();
  }
  const double bd = static_cast<double>(b), dd = static_cast<double>(d), kd = static_cast<double>(k),
               sd = static_cast<double>(s);
  Eigen::setNbThreads(threads_before);
  state.SetItemsProcessed(state.iterations() * b);
  state.counters["FLOPS"] = benchmark::Counter(4.0 * kd * dd * bd + 6.0 * dd * kd * bd * sd,
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

BENCHMARK(BM_LinearVaeSgdStep)
    ->ArgsProduct({{50, 784}, {10}, {128}, {1}, {1}})
    ->ArgNames({"d", "k", "batch", "samples", "eigen_threads"})
    ->Unit(benchmark::kMicrosecond);

/// The linear VAE's minibatch estimate alone (no optimizer), in scalar type T, with its gradient
/// (`value_and_gradient`) or without (`value`, the value-only path), batch 128, k = 10, S = 1,
/// Eigen on one thread.
template <class T, bool WithGradient>
void BM_LinearVaeEstimate(benchmark::State& state) {
  const Eigen::Index d = state.range(0), k = 10, b = 128, n = 4096;
  const int threads_before = Eigen::nbThreads();
  Eigen::setNbThreads(1);
  std::mt19937_64 rng(42);
  const Eigen::MatrixXd lambda = latent::standard_normal(d, k, rng);
  const latent::matrix_t<T> x =
      (lambda * latent::standard_normal(k, n, rng) + 0.5 * latent::standard_normal(d, n, rng)).cast<T>();
  const latent::basic_linear_vae<T> vae(x, k);
  const latent::vector_t<T> params = vae.initial_params(rng);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::shuffle(order.begin(), order.end(), rng);
  latent::vector_t<T> grad(vae.num_parameters());
  std::size_t offset = 0;
  for (auto _ : state) {
    if (offset + static_cast<std::size_t>(b) > order.size()) offset = 0;
    const latent::minibatch batch(order.data() + offset, static_cast<std::size_t>(b));
    double v;
    if constexpr (WithGradient) v = vae.value_and_gradient(params, batch, 1, grad, rng);
    else v = vae.value(params, batch, 1, rng);
    offset += static_cast<std::size_t>(b);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  Eigen::setNbThreads(threads_before);
  state.SetItemsProcessed(state.iterations() * b);
}
BENCHMARK_TEMPLATE(BM_LinearVaeEstimate, double, true)->ArgName("d")->Arg(50)->Arg(784)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_LinearVaeEstimate, double, false)->ArgName("d")->Arg(50)->Arg(784)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_LinearVaeEstimate, float, true)->ArgName("d")->Arg(50)->Arg(784)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_LinearVaeEstimate, float, false)->ArgName("d")->Arg(50)->Arg(784)->Unit(benchmark::kMicrosecond);

}  // namespace

// Neyman–Scott objective alone (no optimizer step): one minibatch estimate and gradient, K = 5,
// batch 100, S = 4 draws, for N = 10^4 and 10^6 groups. `sparse:0` is `value_and_gradient`
// (it writes the dense 3 + 2N gradient: O(N) per step), `sparse:1` is
// `value_and_sparse_gradient` (O(|B| S) per step, independent of N), `sparse:2` is the
// value-only path. items/s = groups of the batch per second.
namespace {

void BM_NeymanScottElboStep(benchmark::State& state) {
  const Eigen::Index n = state.range(0), b = 100, k = 5;
  const int mode = static_cast<int>(state.range(1));
  std::mt19937_64 rng(42);
  const Eigen::RowVectorXd z = 0.5 + latent::standard_normal(1, n, rng).array();
  const Eigen::MatrixXd y = std::sqrt(2.0) * latent::standard_normal(k, n, rng) + z.replicate(k, 1);
  const latent::neyman_scott_elbo obj(y);
  const Eigen::VectorXd params = obj.initial_params(rng);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::shuffle(order.begin(), order.end(), rng);
  Eigen::VectorXd grad(obj.num_parameters());
  latent::neyman_scott_elbo::sparse_gradient sparse;
  std::size_t offset = 0;
  for (auto _ : state) {
    if (offset + static_cast<std::size_t>(b) > order.size()) offset = 0;
    const latent::minibatch batch(order.data() + offset, static_cast<std::size_t>(b));
    double v = 0.0;
    if (mode == 0) v = obj.value_and_gradient(params, batch, 4, grad, rng);
    else if (mode == 1) v = obj.value_and_sparse_gradient(params, batch, 4, sparse, rng);
    else v = obj.value(params, batch, 4, rng);
    offset += static_cast<std::size_t>(b);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * b);
}

BENCHMARK(BM_NeymanScottElboStep)
    ->ArgsProduct({{10000, 1000000}, {0, 1, 2}})
    ->ArgNames({"groups", "sparse"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
