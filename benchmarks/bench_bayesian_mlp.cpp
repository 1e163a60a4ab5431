// One training epoch of the Bayesian MLP at the Fashion-MNIST size of issue 12: a 784-100-10 ReLU
// network with a softmax likelihood, mean-field Gaussian q over its 79510 weights, prior N(0, 1),
// batch 128, one weight draw per step, Adam, float32 (and double for reference). One benchmark
// iteration = one epoch of 60000 / 128 = 469 steps (the objective's estimate and gradient, then
// one Adam update of the 2 x 79510 variational parameters), over synthetic images uniform in
// [0, 1] with random labels (the timing does not depend on the values). The peer is
// benchmarks/peers/torch_bnn.py, the same network and estimator in PyTorch.
//
// FLOP count per image (multiply-add = 2 flops): per layer of n_in x n_out the forward product
// and the weight gradient (2 n_in n_out each), and the gradient with respect to the layer's input
// except for the first layer: 2 (3 x 100 x 10 + 2 x 784 x 100) = 0.32 MFLOP. The per-step O(P)
// work (drawing 79510 normals, w = mu + sigma eps, the KL and its gradient, Adam) is not counted.
//
// Arguments: the number of Eigen/OpenMP threads (the setting is 2) and whether local
// reparameterization is used (0 = one weight draw per minibatch).
#include <latent/models/bayesian_mlp.hpp>
#include <latent/optim/adam.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace {

constexpr Eigen::Index image_dim = 784, classes = 10, train_images = 60000, batch = 128;

template <class S>
struct fashion_sized_data {
  latent::matrix_t<S> x, y;
};

template <class S>
const fashion_sized_data<S>& synthetic_data() {
  static const fashion_sized_data<S> d = [] {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    fashion_sized_data<S> s{latent::matrix_t<S>(image_dim, train_images), latent::matrix_t<S>(1, train_images)};
    for (Eigen::Index j = 0; j < train_images; ++j) {
      for (Eigen::Index i = 0; i < image_dim; ++i) s.x(i, j) = static_cast<S>(u(rng));
      s.y(0, j) = static_cast<S>(j % classes);
    }
    return s;
  }();
  return d;
}

template <class S>
void BM_BayesianMlpEpoch(benchmark::State& state) {
  const int threads_before = Eigen::nbThreads();
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  const auto& data = synthetic_data<S>();
  latent::bnn_options o{.hidden = {100}, .likelihood = latent::bnn_likelihood::categorical, .num_classes = classes};
  o.standardize = false;
  o.local_reparameterization = state.range(1) != 0;
  latent::basic_bayesian_mlp<S> model(data.x, data.y, o);
  std::mt19937_64 rng(7);
  latent::vector_t<S> params = model.initial_params(rng), grad;
  latent::basic_adam<S> adam({.learning_rate = 1e-3}, model.num_parameters());
  std::vector<Eigen::Index> order(static_cast<std::size_t>(train_images));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  double value = 0.0;
  for (auto _ : state) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t b0 = 0; b0 < order.size(); b0 += batch) {
      const std::size_t len = std::min<std::size_t>(batch, order.size() - b0);
      value = model.value_and_gradient(params, latent::minibatch(order.data() + b0, len), 1, grad, rng);
      adam.step(params, grad);
    }
    benchmark::DoNotOptimize(params.data());
    benchmark::ClobberMemory();
  }
  Eigen::setNbThreads(threads_before);
  const double flops = 2.0 * (3.0 * 100 * classes + 2.0 * image_dim * 100);
  state.SetItemsProcessed(state.iterations() * train_images);
  state.counters["FLOPS"] = benchmark::Counter(flops * static_cast<double>(train_images),
                                               benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["elbo_per_image"] = value / static_cast<double>(train_images);
}

}  // namespace

BENCHMARK(BM_BayesianMlpEpoch<float>)->ArgsProduct({{1, 2}, {0, 1}})->ArgNames({"threads", "local"})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_BayesianMlpEpoch<double>)->Args({2, 0})->ArgNames({"threads", "local"})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
