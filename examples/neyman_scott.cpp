// The Neyman–Scott problem: maximizing the joint likelihood over the parameter theta AND the
// latent group means z_1..z_N gives an inconsistent estimate of theta; integrating the z_n out
// (EM on the marginal likelihood) gives a consistent one.
//
// Simulation: theta = 2, z_n ~ N(0.5, 1), K replicates per group. For N = 10^2 ... 10^6 groups
// (prefixes of one sample) the table shows the joint MLE heading to theta (K-1)/K and the
// marginal MLE found by EM heading to theta, for K = 2 and K = 5; then the K = 5 fit in float,
// and the standard errors of the marginal MLE on N = 1000 groups (observed information).
// With --plot-data DIR it also writes both estimates on a finer grid of N (the closed forms,
// which EM reaches) for docs/figures/make_figures.sh.
#include <latent/models/neyman_scott.hpp>
#include <latent/solvers/em.hpp>

#include <Eigen/Core>

#include "plot_data.hpp"

#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

int main(int argc, char** argv) {
  const std::string plot_dir = example::plot_data_dir(argc, argv);
  std::optional<example::table> plot;
  if (!plot_dir.empty())
    plot.emplace(plot_dir, "neyman_scott_consistency.tsv", "N joint_mle marginal_mle (blocks: K = 2, K = 5)");
  const double theta = 2.0, mu = 0.5, tau2 = 1.0;
  std::mt19937_64 rng(20240601);
  std::printf("Neyman-Scott: y_nk ~ N(z_n, theta), z_n ~ N(mu, tau2), theta = %.1f, mu = %.1f, tau2 = %.1f\n",
              theta, mu, tau2);
  for (const int K : {2, 5}) {
    const latent::neyman_scott truth(K, {theta, mu, tau2});
    const Eigen::MatrixXd y = truth.sample(1000000, rng);
    std::printf("\nK = %d: joint MLE -> theta (K-1)/K = %.4f, marginal MLE -> theta = %.4f\n", K,
                theta * (K - 1) / K, theta);
    std::printf("%9s  %10s  %17s  %12s  %10s  %8s\n", "N", "joint MLE", "marginal MLE (EM)",
                "closed form", "rel. diff", "EM iters");
    for (Eigen::Index n = 100; n <= y.cols(); n *= 10) {
      const auto groups = y.leftCols(n);
      const double joint = latent::neyman_scott_joint_mle(groups).theta;
      const auto exact = latent::neyman_scott_marginal_mle(groups);
      latent::neyman_scott model(K);  // start: theta = 1, mu = 0, tau2 = 1
      const auto fit = latent::em(model, groups, {.max_iterations = 1000, .tolerance = 1e-13});
      std::printf("%9lld  %10.5f  %17.5f  %12.5f  %10.1e  %8zu%s\n", static_cast<long long>(n), joint,
                  fit.params.theta, exact.params.theta,
                  std::abs(fit.params.theta - exact.params.theta) / exact.params.theta, fit.iterations,
                  fit.converged() ? "" : "  (not converged)");
    }
    if (plot) {
      for (int j = 0; j <= 16; ++j) {  // N = 10^2 ... 10^6, four points per decade
        const auto groups = y.leftCols(static_cast<Eigen::Index>(std::lround(std::pow(10.0, 2.0 + j / 4.0))));
        plot->row(groups.cols(), latent::neyman_scott_joint_mle(groups).theta,
                  latent::neyman_scott_marginal_mle(groups).params.theta);
      }
      plot->next_block();
    }
  }
  // The same estimate in single precision: float data (half the bytes), float parameters, the
  // statistics and log-likelihoods still summed in double.
  {
    const Eigen::MatrixXd y = latent::neyman_scott(5, {theta, mu, tau2}).sample(1000000, rng);
    const Eigen::MatrixXf yf = y.cast<float>();
    latent::basic_neyman_scott<float> model(5);
    const auto fit = latent::em(model, yf, {.max_iterations = 1000, .tolerance = 1e-12});
    const auto exact = latent::neyman_scott_marginal_mle(y);  // double data, double closed form
    std::printf("\nfloat, K = 5, N = 1000000: theta %.5f, tau2 %.5f after %zu EM iterations\n"
                "  double closed form:     theta %.5f, tau2 %.5f (rel. diff %.1e, %.1e)\n",
                fit.params.theta, fit.params.tau2, fit.iterations, exact.params.theta, exact.params.tau2,
                std::abs(fit.params.theta - exact.params.theta) / exact.params.theta,
                std::abs(fit.params.tau2 - exact.params.tau2) / exact.params.tau2);
  }
  // Standard errors of the marginal MLE from the observed information, and 95% intervals
  // (estimate +- 1.96 SE), for one data set of N = 1000 groups of K = 5.
  {
    const latent::neyman_scott truth(5, {theta, mu, tau2});
    const Eigen::MatrixXd y = truth.sample(1000, rng);
    latent::neyman_scott model(5);
    latent::em(model, y, {.max_iterations = 1000, .tolerance = 1e-13});
    const latent::neyman_scott_standard_errors se = latent::standard_errors(model, latent::observations(y));
    const auto& p = model.params();
    std::printf("\nK = 5, N = 1000: marginal MLE with standard errors (observed information)\n");
    std::printf("  %-6s %9s %9s   %-20s %s\n", "", "estimate", "SE", "95% interval", "truth");
    const double est[] = {p.theta, p.mu, p.tau2}, sds[] = {se.theta, se.mu, se.tau2}, tru[] = {theta, mu, tau2};
    const char* names[] = {"theta", "mu", "tau2"};
    for (int i = 0; i < 3; ++i)
      std::printf("  %-6s %9.4f %9.4f   [%7.4f, %7.4f]   %.1f\n", names[i], est[i], sds[i], est[i] - 1.96 * sds[i],
                  est[i] + 1.96 * sds[i], tru[i]);
  }
  std::printf("\nThe joint MLE sum_nk (y_nk - ybar_n)^2 / (N K) estimates theta (K-1)/K: each group\n"
              "mean spends one of the group's K degrees of freedom. EM maximizes the marginal\n"
              "likelihood, whose estimate sum_nk (y_nk - ybar_n)^2 / (N (K-1)) is consistent.\n");
  return 0;
}
