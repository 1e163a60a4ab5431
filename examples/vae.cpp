// A variational autoencoder on Fashion-MNIST (Debian package `dataset-fashion-mnist`): the
// issue-11 setting, a 784-400-20 encoder and a 20-400-784 decoder with ReLU hidden layers and a
// Bernoulli likelihood on pixel intensities in [0, 1], batch 128, Adam 1e-3, in float32.
//
// It prints, per epoch, the training ELBO per image (the epoch's running Monte Carlo estimate,
// lagging the end-of-epoch parameters by half an epoch), the test ELBO per image (one draw per
// test image at the end of the epoch) and the epoch's wall time (the training pass plus the test
// evaluation). Then it writes three image grids as PGM files: test images above their
// reconstructions, samples from the generative model (Bernoulli means), and decoded straight
// lines between the posterior means of pairs of test images.
//
// Usage: vae [--smoke] [--epochs E] [--iwae K] [--threads T] [--data DIR] [--out DIR]
//   --smoke    2000 training and 500 test images, 1 epoch: a few seconds (the ctest entry)
//   --epochs   epochs to train (default 10: 1-6 minutes on 2 cores, then 2-8 minutes of
//              log p(x) and gap estimates)
//   --iwae     train the importance-weighted bound with K proposals instead of the ELBO
//   --threads  threads of a training step (Eigen::setNbThreads; default 2). On a machine busy
//              with other work, 1 thread or OMP_WAIT_POLICY=passive is faster (docs/models/vae.md)
//   --data     directory of the IDX files (default /usr/share/datasets/fashion-mnist; plain or .gz)
//   --out      directory for the PGM files (default: the working directory)
// With --smoke and no dataset installed it trains on synthetic images instead, so the smoke
// test runs anywhere; without --smoke a missing dataset is an error.
//
// Then it estimates, on the first 1000 test images, log p(x) by importance sampling with
// K = 5000 draws from the encoder's q (IWAE-5000), and on the first 100 the gap decomposition
// log p(x) - L[q] = (log p(x) - L[q*]) + (L[q*] - L[q]) (approximation + amortization gap), with
// q* the best diagonal Gaussian per image (estimators/, docs/estimators.md). --smoke uses 50
// and 5 images, K = 200, S = 100 and at most 100 evaluations per q*.
//
// The images are read with io/idx_gzip.hpp (zlib).
// ctest-arguments: --smoke
#include <latent/estimators/gap_decomposition.hpp>
#include <latent/estimators/importance_sampling.hpp>
#include <latent/io/idx_gzip.hpp>
#include <latent/models/vae.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using matrix = Eigen::MatrixXf;

std::string find_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {dir + "/" + name, dir + "/" + name + ".gz"})
    if (std::filesystem::exists(candidate)) return candidate;
  return {};
}

// Synthetic stand-in for the smoke test when the dataset is absent: blurry random blobs.
matrix synthetic_images(Eigen::Index n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(4.0, 24.0), w(2.0, 8.0);
  matrix x(784, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double cx = u(rng), cy = u(rng), s = w(rng);
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c)
        x(r * 28 + c, j) = static_cast<float>(std::exp(-((r - cy) * (r - cy) + (c - cx) * (c - cx)) / (2 * s * s)));
  }
  return x;
}

// Writes 28 x 28 images (columns of `tiles`, values in [0, 1]) as a grid of `per_row` tiles
// with 2-pixel gaps, as a binary PGM.
void write_pgm_grid(const std::string& path, const matrix& tiles, Eigen::Index per_row) {
  const Eigen::Index side = 28, gap = 2, n = tiles.cols(), rows = (n + per_row - 1) / per_row;
  const Eigen::Index width = per_row * (side + gap) + gap, height = rows * (side + gap) + gap;
  std::vector<unsigned char> pixels(static_cast<std::size_t>(width * height), 255);
  for (Eigen::Index t = 0; t < n; ++t) {
    const Eigen::Index x0 = gap + (t % per_row) * (side + gap), y0 = gap + (t / per_row) * (side + gap);
    for (Eigen::Index r = 0; r < side; ++r)
      for (Eigen::Index c = 0; c < side; ++c) {
        // Dark ink on white, as the garments are usually shown.
        const float v = std::clamp(tiles(r * side + c, t), 0.0f, 1.0f);
        pixels[static_cast<std::size_t>((y0 + r) * width + x0 + c)] = static_cast<unsigned char>(std::lround(255.0f * (1.0f - v)));
      }
  }
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << width << ' ' << height << "\n255\n";
  out.write(reinterpret_cast<const char*>(pixels.data()), static_cast<std::streamsize>(pixels.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Per-epoch wall time, recorded by the solver's iteration hook.
struct epoch_clock {
  std::vector<double> seconds;  // since the start of the fit, at the end of each epoch
  void on_iteration(const latent::iteration_info& i) {
    seconds.push_back(i.seconds);
    std::fprintf(stderr, "  epoch %zu done (%.1f s)\n", i.iteration, i.seconds);
  }
};

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  std::size_t epochs = 10;
  Eigen::Index iwae_k = 0;
  int threads = 2;
  std::string data_dir = "/usr/share/datasets/fashion-mnist", out_dir = ".";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("missing value after " + a);
      return argv[++i];
    };
    if (a == "--smoke") smoke = true;
    else if (a == "--epochs") epochs = std::stoul(next());
    else if (a == "--iwae") iwae_k = std::stol(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--data") data_dir = next();
    else if (a == "--out") out_dir = next();
    else {
      std::fprintf(stderr, "usage: vae [--smoke] [--epochs E] [--iwae K] [--threads T] [--data DIR] [--out DIR]\n");
      return 2;
    }
  }
  if (smoke) epochs = 1;
  Eigen::setNbThreads(threads);
  std::mt19937_64 rng(20240611);

  const Eigen::Index max_train = smoke ? 2000 : 60000, max_test = smoke ? 500 : 10000;
  const std::string train_file = find_file(data_dir, "train-images-idx3-ubyte");
  const std::string test_file = find_file(data_dir, "t10k-images-idx3-ubyte");
  matrix train, test;
  if (!train_file.empty() && !test_file.empty()) {
    train = latent::read_idx_images_gz(train_file, 1.0 / 255.0).data;
    test = latent::read_idx_images_gz(test_file, 1.0 / 255.0).data;
    if (train.cols() > max_train) train.conservativeResize(Eigen::NoChange, max_train);
    if (test.cols() > max_test) test.conservativeResize(Eigen::NoChange, max_test);
    std::printf("Fashion-MNIST from %s: %ld training and %ld test images of 28 x 28\n", data_dir.c_str(),
                static_cast<long>(train.cols()), static_cast<long>(test.cols()));
  } else if (smoke) {
    train = synthetic_images(max_train, rng);
    test = synthetic_images(max_test, rng);
    std::printf("Fashion-MNIST not found in %s: smoke run on %ld synthetic images\n", data_dir.c_str(),
                static_cast<long>(train.cols()));
  } else {
    std::fprintf(stderr, "Fashion-MNIST not found in %s (install dataset-fashion-mnist or pass --data DIR)\n",
                 data_dir.c_str());
    return 1;
  }

  const latent::vae_options options{.latent_dim = 20,
                                    .encoder_hidden = {400},
                                    .decoder_hidden = {400},
                                    .likelihood = latent::vae_likelihood::bernoulli,
                                    .bound = iwae_k > 0 ? latent::vae_bound::iwae : latent::vae_bound::elbo,
                                    .iwae_samples = std::max<Eigen::Index>(iwae_k, 1)};
  latent::basic_vae<float> vae(train, options), held_out(test, options);
  const Eigen::VectorXf p0 = vae.initial_params(rng);
  std::printf("VAE 784-400-%ld-400-784 (ReLU, Bernoulli), %ld parameters, float32, %s, batch 128, Adam 1e-3, "
              "%d Eigen thread(s)\n",
              static_cast<long>(options.latent_dim), static_cast<long>(vae.num_parameters()),
              iwae_k > 0 ? ("IWAE K = " + std::to_string(iwae_k)).c_str() : "ELBO", Eigen::nbThreads());

  // The test bound is estimated with one draw per image at the end of every epoch; the
  // parameters of the last epoch are returned (no early stopping).
  epoch_clock clock;
  const auto fit = latent::sgd_elbo(vae, held_out, p0, rng,
                                    {.max_epochs = epochs, .batch_size = 128, .adam = {.learning_rate = 1e-3},
                                     .held_out_samples = 1, .restore_best = false},
                                    clock);
  const char* bound = iwae_k > 0 ? "IWAE bound" : "ELBO";
  std::printf("epoch   train %s/image   test %s/image   seconds\n", bound, bound);
  for (std::size_t e = 0; e < fit.trace.size(); ++e) {
    const double dt = e == 0 ? clock.seconds[0] : clock.seconds[e] - clock.seconds[e - 1];
    std::printf("%5zu   %17.2f   %16.2f   %7.2f%s\n", e, fit.trace[e] / static_cast<double>(train.cols()),
                fit.held_out_trace[e] / static_cast<double>(test.cols()), dt, e == 0 ? "  (start: no steps)" : "");
  }
  std::printf("status: %s, %zu Adam steps, %.1f s in total\n", std::string(latent::to_string(fit.status)).c_str(),
              fit.steps, fit.seconds);
  if (fit.status == latent::fit_status::numerical_issue) return 1;

  // log p(x) by IWAE-5000 and the gap decomposition, on the first test images.
  using steady = std::chrono::steady_clock;
  const auto seconds_since = [](steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); };
  const Eigen::Index n_lp = std::min<Eigen::Index>(smoke ? 50 : 1000, test.cols());
  const Eigen::Index n_gap = std::min<Eigen::Index>(smoke ? 5 : 100, test.cols());
  std::vector<Eigen::Index> first(static_cast<std::size_t>(n_lp));
  std::iota(first.begin(), first.end(), Eigen::Index{0});
  const std::size_t k_lp = smoke ? 200 : 5000;
  auto t0 = steady::now();
  const latent::log_likelihood_estimate lp =
      latent::estimate_log_likelihood(held_out, fit.params, first, rng, {.num_samples = k_lp});
  std::printf("test log p(x), IWAE-%zu on %ld images: %.2f +- %.2f per image (%.1f s)\n", k_lp, static_cast<long>(n_lp),
              lp.mean, lp.mean_standard_error, seconds_since(t0));
  t0 = steady::now();
  const latent::gap_decomposition_result gap = latent::gap_decomposition(
      held_out, fit.params, latent::minibatch(first.data(), static_cast<std::size_t>(n_gap)), rng,
      {.elbo_samples = smoke ? std::size_t{100} : std::size_t{1000},
       .importance_samples = smoke ? std::size_t{200} : std::size_t{5000},
       .max_evaluations = smoke ? std::size_t{100} : std::size_t{1000},
       // groups of 32 images (32 cubature points each): several groups, so both threads work
       .columns_per_call = 1024});
  std::printf("gap decomposition on %ld test images (%.1f s; q* converged %zu, stalled %zu, budget %zu), per image:\n",
              static_cast<long>(n_gap), seconds_since(t0), gap.optimization.num_converged, gap.optimization.num_stalled,
              gap.optimization.num_max_evaluations);
  const auto row = [](const char* name, const latent::per_observation_estimate& e) {
    std::printf("  %-28s %9.2f +- %.2f\n", name, e.mean, e.mean_standard_error);
  };
  row("log p(x) (IWAE, proposal q*)", gap.log_likelihood);
  row("L[q*]", gap.optimal_elbo);
  row("L[q] (amortized ELBO)", gap.amortized_elbo);
  row("approximation gap", gap.approximation_gap);
  row("amortization gap", gap.amortization_gap);

  // Image grids.
  const Eigen::VectorXf& p = fit.params;
  const Eigen::Index shown = std::min<Eigen::Index>(10, test.cols());
  const matrix recon = vae.reconstruct(p, test.leftCols(shown));
  matrix pairs(784, 2 * shown);
  pairs << test.leftCols(shown), recon;
  write_pgm_grid(out_dir + "/vae_reconstructions.pgm", pairs, shown);
  const latent::basic_vae_sample<float> samples = vae.sample(p, 50, rng);
  write_pgm_grid(out_dir + "/vae_samples.pgm", samples.mean, 10);
  const Eigen::Index lines = std::min<Eigen::Index>(4, test.cols() / 2), steps = 10;
  matrix path(784, lines * steps);
  for (Eigen::Index l = 0; l < lines; ++l)
    path.middleCols(l * steps, steps) = vae.interpolate(p, test.col(2 * l), test.col(2 * l + 1), steps);
  write_pgm_grid(out_dir + "/vae_interpolation.pgm", path, steps);
  std::printf("wrote %s/vae_reconstructions.pgm (test images above their reconstructions), vae_samples.pgm, "
              "vae_interpolation.pgm\n",
              out_dir.c_str());
  return 0;
}
