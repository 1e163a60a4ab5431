// Online EM against batch EM on a large simulated mixture: how far each gets per pass over the
// data. Online EM takes an M-step after every minibatch (Cappé and Moulines 2009), so one pass
// does the work of many batch iterations; batch EM then needs pass after pass to catch up.
//
// Run with no arguments: N = 10^6 observations of a 4-component full-covariance mixture in
// d = 5 (a pass is 40 MB of data). `--n N` sets another size.
//
// ctest-arguments: --n 200000

#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/online_em.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace {

// The mixture the data come from: means on a simplex, covariances with random correlations.
latent::gaussian_mixture truth(std::mt19937_64& rng) {
  const Eigen::Index d = 5, k = 4;
  latent::gaussian_mixture g(k, latent::covariance_type::full);
  latent::gaussian_mixture::params_type p;
  p.weights = Eigen::Vector4d(0.4, 0.3, 0.2, 0.1);
  p.means = Eigen::MatrixXd::Zero(d, k);
  for (Eigen::Index j = 0; j < k; ++j) p.means(j, j) = 3.0;
  std::normal_distribution<double> z;
  for (Eigen::Index j = 0; j < k; ++j) {
    Eigen::MatrixXd a(d, d);
    for (Eigen::Index i = 0; i < a.size(); ++i) a(i) = 0.4 * z(rng);
    p.covariances.push_back(a * a.transpose() + Eigen::MatrixXd::Identity(d, d));
  }
  g.set_params(p);
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::Index n = 1'000'000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--n") == 0) n = std::atol(argv[i + 1]);

  std::mt19937_64 rng(2009);
  const Eigen::MatrixXd x = truth(rng).sample(n, rng);
  latent::gaussian_mixture start(4, latent::covariance_type::full);
  start.initialize(x, rng);
  std::printf("N = %ld observations, d = 5, K = 4 (full covariances); per observation log-likelihood\n\n",
              static_cast<long>(n));

  // Batch EM to convergence: the optimum, and how many passes it took.
  latent::gaussian_mixture batch = start;
  const auto em_fit = latent::em(batch, x);
  const double nd = static_cast<double>(n);
  std::printf("batch EM: %-14s after %3zu iterations (%zu passes), %.2f s: %.6f\n",
              std::string(latent::to_string(em_fit.status)).c_str(), em_fit.iterations, em_fit.iterations + 1,
              em_fit.seconds, em_fit.objective / nd);
  std::printf("  after  1, 2, 3, 5 iterations: %.6f  %.6f  %.6f  %.6f\n", em_fit.trace[1] / nd,
              em_fit.trace[2] / nd, em_fit.trace[3] / nd, em_fit.trace[std::min<std::size_t>(5, em_fit.iterations)] / nd);

  // Online EM: three passes in minibatches of 2000.
  latent::gaussian_mixture online = start;
  const auto fit = latent::online_em(online, x, rng, {.batch_size = 2000, .kappa = 0.6, .max_epochs = 3});
  std::printf("online EM (batches of 2000, kappa = 0.6), %.2f s including one evaluation pass per epoch:\n",
              fit.seconds);
  for (std::size_t e = 1; e < fit.trace.size(); ++e) {
    // The first batch iteration at least as good as this epoch (batch EM's trace rises).
    std::size_t match = 0;
    while (match < em_fit.iterations && em_fit.trace[match] < fit.trace[e]) ++match;
    std::printf("  after epoch %zu: %.6f   (batch optimum - this = %.2e per observation; batch EM reached it after %zu "
                "iterations)\n",
                e, fit.trace[e] / nd, (em_fit.objective - fit.trace[e]) / nd, match);
  }
  std::printf("\nBIC of the batch fit %.1f, of the online fit %.1f\n", batch.bic(x), online.bic(x));
  return 0;
}
