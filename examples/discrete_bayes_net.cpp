// The worked example of a discrete Bayesian network with missing values.
//
// Four binary variables with edges A -> C, B -> C, C -> D. The record (A=1, B=?, C=?, D=0) is
// completed four ways, each weighted by its posterior probability: the "weighted completed
// data set" that the E-step of EM feeds to the M-step as expected counts. Then EM (and
// mean-field variational EM alongside) learns the tables from simulated records with 20% of
// the values missing at random, more accurately as the number of records grows.
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

std::vector<latent::bn_variable> variables() {
  return {{"A", 2, {}}, {"B", 2, {}}, {"C", 2, {"A", "B"}}, {"D", 2, {"C"}}};
}

// Largest absolute difference between two networks' tables.
double max_error(const latent::discrete_bayes_net& a, const latent::discrete_bayes_net& b) {
  double e = 0.0;
  for (Eigen::Index v = 0; v < a.num_variables(); ++v) e = std::max(e, (a.table(v) - b.table(v)).cwiseAbs().maxCoeff());
  return e;
}

void print_tables(const char* label, const latent::discrete_bayes_net& net) {
  const auto& c = net.table("C");
  const auto& d = net.table("D");
  std::printf("  %-10s P(A=1)=%.4f P(B=1)=%.4f  P(C=1|A,B)=[%.4f %.4f %.4f %.4f]  P(D=1|C)=[%.4f %.4f]\n", label,
              net.table("A")(0, 1), net.table("B")(0, 1), c(0, 1), c(1, 1), c(2, 1), c(3, 1), d(0, 1), d(1, 1));
}

}  // namespace

int main() {
  // Tables: one row per parent configuration (last parent fastest), one column per state.
  Eigen::MatrixXd a(1, 2), b(1, 2), c(4, 2), d(2, 2);
  a << 0.7, 0.3;   // P(A=1) = 0.3
  b << 0.1, 0.9;   // P(B=1) = 0.9
  c << 0.9, 0.1,   // A=0, B=0
      0.5, 0.5,    // A=0, B=1
      0.4, 0.6,    // A=1, B=0: P(C=1 | A=1, B=0) = 0.6
      0.8, 0.2;    // A=1, B=1: P(C=1 | A=1, B=1) = 0.2
  d << 0.9, 0.1,   // C=0: P(D=1 | C=0) = 0.1
      0.2, 0.8;    // C=1: P(D=1 | C=1) = 0.8
  const latent::discrete_bayes_net truth(variables(), {a, b, c, d});

  std::printf("Network A -> C <- B, C -> D; record (A=1, B=?, C=?, D=0).\n");
  Eigen::VectorXi record(4);
  record << 1, latent::missing, latent::missing, 0;
  const latent::bn_posterior post = truth.posterior(record);
  std::printf("Weighted completed data set (log p(A=1, D=0) = %.6f):\n", post.log_likelihood);
  std::printf("   A  B  C  D   weight\n");
  for (Eigen::Index k = post.weights.size(); k-- > 0;)
    std::printf("   %d  %d  %d  %d   %.4f\n", post.completions(0, k), post.completions(1, k), post.completions(2, k),
                post.completions(3, k), post.weights(k));
  std::printf("Posterior marginals: P(B=1 | o) = %.4f, P(C=1 | o) = %.4f\n\n", post.marginals[0](1), post.marginals[1](1));

  std::printf("EM and mean-field variational EM on simulated records, 20%% of values missing at random.\n");
  print_tables("truth", truth);
  std::mt19937_64 rng(2024);
  for (const Eigen::Index n : {100, 1000, 10000, 100000, 1000000}) {
    const Eigen::MatrixXi x = latent::apply_missing_at_random(truth.sample(n, rng), 0.2, rng);
    const auto data = truth.make_data(x);  // identical records grouped: at most 3^4 = 81 distinct
    latent::discrete_bayes_net exact(variables());
    exact.initialize(data, rng);
    latent::discrete_bayes_net meanfield = exact;  // same start
    const auto fit = latent::em(exact, data, {.max_iterations = 2000, .tolerance = 1e-12});
    const auto vfit = latent::variational_em(meanfield, data, latent::mean_field{}, {.max_iterations = 2000, .tolerance = 1e-12});
    std::printf("N = %7lld (%2lld distinct records)\n", static_cast<long long>(n), static_cast<long long>(data.num_distinct()));
    print_tables("EM", exact);
    print_tables("mean field", meanfield);
    std::printf("  EM: %4zu iterations, %zu decreases, log-lik/N %.5f, max |error| %.4f\n", fit.iterations,
                fit.decreases, fit.objective / static_cast<double>(n), max_error(exact, truth));
    std::printf("  MF: %4zu iterations, %zu decreases, ELBO/N %.5f <= its exact log-lik/N %.5f, max |error| %.4f\n",
                vfit.iterations, vfit.decreases, vfit.objective / static_cast<double>(n),
                meanfield.log_likelihood(data) / static_cast<double>(n), max_error(meanfield, truth));
  }
  return 0;
}
