// Gaussian mixtures, two stories.
//  1. Old Faithful (272 eruptions: duration and waiting time): choose the number of
//     components and the covariance type by BIC, and print the fitted components.
//     With --plot-data DIR it also writes the data, the fitted components' 50% and 95%
//     ellipses and the BIC table for docs/figures/make_figures.sh.
//  2. A larger simulated problem (N = 100000, d = 10, K = 6): fit time, iterations and how
//     well the clusters are recovered.
#include <latent/latent.hpp>

#include "plot_data.hpp"

#include <Eigen/Cholesky>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

namespace {

/// Writes the eruptions with their labels, each component's ellipses holding 50% and 95% of its
/// probability (in minutes), and the BIC table (empty cells as NaN).
void write_plot_data(const std::string& dir, const Eigen::MatrixXd& minutes, const Eigen::VectorXi& labels,
                     const latent::gaussian_mixture& best, const Eigen::VectorXd& mean, const Eigen::VectorXd& sd,
                     const latent::mixture_selection& sel) {
  example::table points(dir, "faithful_points.tsv", "eruptions waiting component");
  for (Eigen::Index i = 0; i < minutes.cols(); ++i) points.row(minutes(0, i), minutes(1, i), labels(i));

  example::table ellipses(dir, "faithful_ellipses.tsv", "eruptions waiting (blocks: component k, level 50% then 95%)");
  const auto& p = best.params();
  for (Eigen::Index k = 0; k < best.components(); ++k) {
    // The covariance in minutes is D C D, D = diag(sd); a level-a contour of a 2-d Gaussian is
    // mean + L (r cos t, r sin t) with L L^T = D C D and r^2 = -2 log(1 - a).
    const Eigen::MatrixXd cov = sd.asDiagonal() * p.covariances[static_cast<std::size_t>(k)] * sd.asDiagonal();
    const Eigen::MatrixXd chol = cov.llt().matrixL();
    const Eigen::VectorXd centre = mean + sd.cwiseProduct(p.means.col(k));
    for (const double level : {0.5, 0.95}) {
      const double r = std::sqrt(-2.0 * std::log(1.0 - level));
      for (int s = 0; s <= 100; ++s) {
        const double t = 2.0 * 3.14159265358979323846 * s / 100.0;
        const Eigen::Vector2d point = centre + r * chol * Eigen::Vector2d(std::cos(t), std::sin(t));
        ellipses.row(point(0), point(1));
      }
      ellipses.next_block();
    }
  }

  std::string columns = "K";
  for (const auto type : sel.covariances) columns += " " + std::string(to_string(type));
  example::table bic(dir, "faithful_bic.tsv", columns);
  for (std::size_t i = 0; i < sel.components.size(); ++i) {
    std::string line = std::to_string(sel.components[i]);
    for (std::size_t j = 0; j < sel.covariances.size(); ++j) {
      char value[32];
      std::snprintf(value, sizeof value, " %.10g", sel.cell(i, j).bic);
      line += value;
    }
    bic.row(line);
  }
}

void old_faithful(const std::string& plot_dir) {
  const latent::csv_table t = latent::read_csv(std::string(LATENT_EXAMPLES_DATA_DIR) + "/faithful.csv");
  // 2 x 272: row 0 eruptions (minutes), row 1 waiting (minutes). Waiting times are whole
  // minutes, so a component can sit on a dozen identical values: its variance collapses to
  // reg_covar and BIC rewards the spike. The fit is therefore made on standardized variables
  // with reg_covar = 1e-3, above the variance of the rounding (1/12 min^2 = 4.5e-4 in
  // standard units), and reported back in minutes.
  const Eigen::VectorXd mean = t.data.rowwise().mean();
  const Eigen::VectorXd sd = ((t.data.colwise() - mean).array().square().rowwise().mean()).sqrt();
  const Eigen::MatrixXd x = (t.data.colwise() - mean).array().colwise() / sd.array();
  std::printf("Old Faithful: %ld eruptions, variables %s and %s (standardized for the fit)\n\n",
              static_cast<long>(x.cols()), t.names[0].c_str(), t.names[1].c_str());
  // The mclust-style table: K = 1..5 by the four covariance types, 10 k-means++ starts per
  // cell, BIC lower is better (mclust prints the negative).
  latent::mixture_selection_options opts;
  opts.components = {1, 2, 3, 4, 5};
  opts.em.restarts = 10;
  opts.seed = 2024;
  opts.mixture.reg_covar = 1e-3;
  const latent::mixture_selection sel = latent::select_gaussian_mixture(latent::observations(x), opts);
  std::printf("Best of 10 k-means++ starts per cell, seed 2024:\n%s",
              latent::format_selection_table(sel, latent::information_criterion::bic).c_str());
  const double best_bic = sel.chosen().bic;  // throws if every cell failed
  const latent::gaussian_mixture& best = *sel.model;
  const auto& p = best.params();
  std::printf("\nChosen: K = %ld, %s covariance (BIC %.2f, log-likelihood %.4f)\n", static_cast<long>(best.components()),
              std::string(to_string(best.covariance_kind())).c_str(), best_bic, best.log_likelihood(x));
  for (Eigen::Index k = 0; k < best.components(); ++k) {
    const Eigen::MatrixXd& c = p.covariances[static_cast<std::size_t>(k)];
    const Eigen::Vector2d m = mean + sd.cwiseProduct(p.means.col(k));
    std::printf("  component %ld: weight %.4f  mean (%.3f, %.2f) min  sd (%.3f, %.2f) min  correlation %.3f\n",
                static_cast<long>(k), p.weights(k), m(0), m(1), sd(0) * std::sqrt(c(0, 0)),
                sd(1) * std::sqrt(c(1, 1)), c(0, 1) / std::sqrt(c(0, 0) * c(1, 1)));
  }
  const Eigen::VectorXi labels = best.labels(x);
  std::printf("  eruptions per component:");
  for (Eigen::Index k = 0; k < best.components(); ++k)
    std::printf(" %ld", static_cast<long>((labels.array() == k).count()));
  std::printf("\n\n");
  if (!plot_dir.empty()) write_plot_data(plot_dir, t.data, labels, best, mean, sd, sel);
}

void simulated() {
  const Eigen::Index n = 100000, d = 10, k = 6;
  std::mt19937_64 rng(7);
  // Truth: K components with random means and random full covariances, equal weights.
  latent::gaussian_mixture_params truth;
  truth.weights = Eigen::VectorXd::Constant(k, 1.0 / double(k));
  truth.means = 0.8 * latent::standard_normal(d, k, rng);  // overlapping: EM has work to do
  for (Eigen::Index j = 0; j < k; ++j) {
    const Eigen::MatrixXd a = 0.9 * (Eigen::MatrixXd::Identity(d, d) + 0.3 * latent::standard_normal(d, d, rng));
    truth.covariances.push_back(a * a.transpose());
  }
  const latent::gaussian_mixture generator(truth);
  const auto [x, component] = generator.sample_joint(n, rng);

  latent::gaussian_mixture gmm(k, latent::covariance_type::full);
  const auto start = std::chrono::steady_clock::now();
  const auto fit = latent::em(gmm, x, rng, {.tolerance = 1e-10, .restarts = 3});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("Simulated: N = %ld, d = %ld, K = %ld, full covariance, 3 restarts\n", static_cast<long>(n),
              static_cast<long>(d), static_cast<long>(k));
  std::printf("  %s after %zu iterations (best restart %zu), %.2f s in all, %.1f ms per iteration of the best\n",
              std::string(to_string(fit.status)).c_str(), fit.iterations, fit.restart, seconds,
              1e3 * fit.seconds / double(std::max<std::size_t>(1, fit.iterations + 1)));
  // gmm.log_likelihood, not fit.objective: with reg_covar > 0 the trace holds the penalized
  // log-likelihood EM maximizes (see docs/models/gaussian_mixture.md).
  std::printf("  log-likelihood per observation: fitted %.5f, true parameters %.5f\n", gmm.log_likelihood(x) / double(n),
              generator.log_likelihood(x) / double(n));
  // Agreement with the generating components, matching each fitted component to the true one
  // it shares most points with.
  const Eigen::VectorXi labels = gmm.labels(x);
  Eigen::MatrixXi table = Eigen::MatrixXi::Zero(k, k);
  for (Eigen::Index i = 0; i < n; ++i) ++table(labels(i), component(i));
  long agree = 0;
  for (Eigen::Index j = 0; j < k; ++j) agree += table.row(j).maxCoeff();
  std::printf("  points in the majority true component of their fitted one: %.4f%%\n", 100.0 * double(agree) / double(n));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    old_faithful(example::plot_data_dir(argc, argv));
    simulated();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}
