// Training steps of the VAE at the Fashion-MNIST size of issue 11: a 784-400-20 encoder and a
// 20-400-784 decoder (ReLU hidden layers, Bernoulli likelihood), batch 128, Adam, in float and
// double. One benchmark iteration = `steps` minibatch steps (the objective's estimate and
// gradient, then one Adam update), over synthetic data uniform in [0, 1] (60000 columns, so
// the minibatch gather touches memory as a real epoch does; the timing does not depend on the
// pixel values). The counter `s_per_epoch` is the time of 60000 / 128 = 468.75 steps: the
// seconds per epoch over Fashion-MNIST's training set.
//
// FLOP count per observation and bound estimate (multiply-add = 2 flops): for every layer of
// n_in x n_out, the forward product (2 n_in n_out) and the weight gradient (2 n_in n_out), and
// the gradient with respect to the layer's input (2 n_in n_out) except for the encoder's first
// layer (the data need no gradient); the decoder runs on R = S K latent points per observation.
// For 784-400-20 with S = K = 1 that is 3.28 MFLOP per image. Elementwise work (activations,
// the likelihood, the reparameterization) and Adam's O(P) update are not counted.
//
// `eigen_threads` sets Eigen's GEMM threading (OpenMP). The reference setting is 2.
#include <latent/models/vae.hpp>
#include <latent/optim/adam.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace {

constexpr Eigen::Index image_dim = 784, train_images = 60000, batch = 128;

// Multiply-adds of one pass (forward + backward) per observation.
double flops_per_observation(const latent::nn::mlp_layout& encoder, const latent::nn::mlp_layout& decoder, double reps) {
  double enc = 0, dec = 0;
  for (Eigen::Index l = 0; l < encoder.num_layers(); ++l)
    enc += (l == 0 ? 2.0 : 3.0) * static_cast<double>(encoder.width(l) * encoder.width(l + 1));
  for (Eigen::Index l = 0; l < decoder.num_layers(); ++l)
    dec += 3.0 * static_cast<double>(decoder.width(l) * decoder.width(l + 1));
  return 2.0 * (enc + reps * dec);
}

template <class S>
const latent::matrix_t<S>& synthetic_images() {
  static const latent::matrix_t<S> x = [] {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    latent::matrix_t<S> m(image_dim, train_images);
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = static_cast<S>(u(rng));
    return m;
  }();
  return x;
}

template <class S>
void BM_VaeTrainSteps(benchmark::State& state) {
  const latent::vae_bound bound = state.range(0) == 1 ? latent::vae_bound::elbo : latent::vae_bound::iwae;
  const Eigen::Index k_iwae = state.range(0);
  const int threads_before = Eigen::nbThreads();
  Eigen::setNbThreads(static_cast<int>(state.range(1)));
  const int steps = 20;
  latent::basic_vae<S> vae(synthetic_images<S>(),
                           {.latent_dim = 20, .encoder_hidden = {400}, .decoder_hidden = {400}, .bound = bound,
                            .iwae_samples = k_iwae});
  std::mt19937_64 rng(7);
  latent::vector_t<S> params = vae.initial_params(rng);
  latent::vector_t<S> grad(vae.num_parameters());
  latent::basic_adam<S> adam({.learning_rate = 1e-3}, vae.num_parameters());
  std::vector<Eigen::Index> order(static_cast<std::size_t>(train_images));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::shuffle(order.begin(), order.end(), rng);
  std::size_t offset = 0;
  for (auto _ : state) {
    for (int i = 0; i < steps; ++i) {
      if (offset + batch > order.size()) offset = 0;
      const double v = vae.value_and_gradient(params, latent::minibatch(order.data() + offset, batch), 1, grad, rng);
      adam.step(params, grad);
      offset += batch;
      benchmark::DoNotOptimize(v);
    }
    benchmark::DoNotOptimize(params.data());
    benchmark::ClobberMemory();
  }
  const double images = static_cast<double>(steps * batch);
  state.SetItemsProcessed(state.iterations() * steps * batch);
  state.counters["FLOPS"] = benchmark::Counter(
      images * flops_per_observation(vae.encoder().layout(), vae.decoder().layout(), static_cast<double>(k_iwae)),
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  // epochs per second, inverted: seconds per 60000-image epoch.
  state.counters["s_per_epoch"] = benchmark::Counter(images / static_cast<double>(train_images),
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
  state.counters["eigen_threads"] = Eigen::nbThreads();
  Eigen::setNbThreads(threads_before);
}

// The same work without Adam and without the backward pass: the value-only path (held-out
// bounds), per 60000 images.
template <class S>
void BM_VaeValue(benchmark::State& state) {
  const int threads_before = Eigen::nbThreads();
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  const int steps = 20;
  latent::basic_vae<S> vae(synthetic_images<S>(), {.latent_dim = 20, .encoder_hidden = {400}, .decoder_hidden = {400}});
  std::mt19937_64 rng(7);
  const latent::vector_t<S> params = vae.initial_params(rng);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(train_images));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::size_t offset = 0;
  for (auto _ : state) {
    for (int i = 0; i < steps; ++i) {
      if (offset + batch > order.size()) offset = 0;
      benchmark::DoNotOptimize(vae.value(params, latent::minibatch(order.data() + offset, batch), 1, rng));
      offset += batch;
    }
  }
  state.SetItemsProcessed(state.iterations() * steps * batch);
  state.counters["s_per_epoch"] =
      benchmark::Counter(static_cast<double>(steps * batch) / static_cast<double>(train_images),
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["eigen_threads"] = Eigen::nbThreads();
  Eigen::setNbThreads(threads_before);
}

}  // namespace

BENCHMARK(BM_VaeTrainSteps<float>)->ArgsProduct({{1, 5}, {1, 2}})->ArgNames({"K", "eigen_threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VaeTrainSteps<double>)->ArgsProduct({{1, 5}, {1, 2}})->ArgNames({"K", "eigen_threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VaeValue<float>)->Arg(2)->ArgName("eigen_threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VaeValue<double>)->Arg(2)->ArgName("eigen_threads")->Unit(benchmark::kMillisecond)->UseRealTime();
