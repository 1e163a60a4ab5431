// Peak memory of one threaded E-step, for docs/benchmarks.md: a full-covariance Gaussian
// mixture with d = 64, K = 32 on N = 500000 observations (256 MB of data), 1024-column blocks.
// Run it under `/usr/bin/time -f %M` (peak resident set, KB); the data alone is 250 000 KB.
// Usage: memory_estep [threads] [float]
#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace {
template <class S>
double one_e_step(int threads) {
  const Eigen::Index d = 64, k = 32, n = 500000;
  std::mt19937_64 rng(1);
  const latent::matrix_t<S> x = latent::standard_normal<S>(d, n, rng);
  latent::basic_gaussian_mixture<S> gmm(k, latent::covariance_type::full);
  gmm.initialize(latent::matrix_t<S>(x.leftCols(20000)), rng);
  auto stats = gmm.zero_stats();
  return latent::e_step(gmm, latent::basic_observations<S>(x), stats, latent::thread_executor{threads, 1024});
}
}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const bool single = argc > 2 && std::strcmp(argv[2], "float") == 0;
  const double ll = single ? one_e_step<float>(threads) : one_e_step<double>(threads);
  std::printf("log-likelihood %.6f (%s, %d threads)\n", ll, single ? "float" : "double", threads);
}
