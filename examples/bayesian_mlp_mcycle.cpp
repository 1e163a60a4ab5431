// Bayesian neural-network regression on the motorcycle-crash data (mcycle: head acceleration in g
// against milliseconds after impact, 133 readings; Silverman (1985)), whose noise grows from
// almost nothing before the impact to tens of g during it: a homoscedastic BNN (one learned noise
// variance) against a heteroscedastic one (the network outputs a mean and a log-variance), both
// 1-10-out tanh networks with the scale-mixture prior, fitted by Bayes by backprop (`sgd_elbo`, Adam).
//
// It prints, per model, the test log-likelihood per reading and the test RMSE on a held-out fifth
// of the data (every fifth reading; the model trained on the rest), then refits each model on all
// 133 readings and writes the predictive mean and the 50 % and 95 % predictive bands on a grid of
// 200 times, with the data, to a tab-separated file for docs/figures/bayesian_mlp_mcycle.gp.
//
// Usage: bayesian_mlp_mcycle [--smoke] [--out DIR]
//   --smoke   100 epochs instead of 1000 (the ctest entry: well under a second)
//   --out     directory for bayesian_mlp_mcycle.tsv (default: the working directory)
// ctest-arguments: --smoke
#include <latent/io/csv.hpp>
#include <latent/models/bayesian_mlp.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct fitted {
  latent::bayesian_mlp model;
  Eigen::VectorXd params;
};

fitted fit(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, latent::bnn_likelihood lik, std::size_t epochs,
           std::mt19937_64& rng) {
  latent::bnn_options o{.hidden = {10}, .activation = latent::nn::activation::tanh, .likelihood = lik};
  // The scale mixture of Blundell et al.: weights the data do not need can sit in the narrow
  // component at little KL cost, instead of adding prior-wide random functions to the fit.
  o.prior = {.scale = 1.0, .mixture_weight = 0.5, .second_scale = std::exp(-6.0)};
  o.initial_scale = 1e-3;
  o.noise_variance = 0.05;  // the homoscedastic model's starting noise, standardized scale: start small, or
                           // the fit can settle on "all noise" (variance 1) with prior-like weights
  latent::bayesian_mlp model(x, y, o);
  const auto result = latent::sgd_elbo(model, model.initial_params(rng), rng,
                                       {.max_epochs = epochs, .batch_size = 32, .num_samples = 1,
                                        .adam = {.learning_rate = 1e-2, .decay_t0 = 2000.0, .decay_kappa = 0.5}});
  if (result.status == latent::fit_status::numerical_issue) throw std::runtime_error("fit failed: " + result.message);
  return {std::move(model), result.params};
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  std::string out_dir = ".";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") smoke = true;
    else if (a == "--out" && i + 1 < argc) out_dir = argv[++i];
    else {
      std::fprintf(stderr, "usage: bayesian_mlp_mcycle [--smoke] [--out DIR]\n");
      return 2;
    }
  }
  std::size_t epochs = smoke ? 100 : 1000;
  if (const char* e = std::getenv("LATENT_MCYCLE_EPOCHS")) epochs = std::stoul(e);
  // Minibatches of 32 readings: one thread (OpenMP threads would only wait on each other).
  Eigen::setNbThreads(1);
  const latent::csv_table t = latent::read_csv(std::string(LATENT_EXAMPLES_DATA_DIR) + "/mcycle.csv");
  const Eigen::MatrixXd x = t.data.topRows(1), y = t.data.bottomRows(1);
  const Eigen::Index n = x.cols();
  std::vector<Eigen::Index> train, test;
  for (Eigen::Index j = 0; j < n; ++j) (j % 5 == 2 ? test : train).push_back(j);
  std::printf("mcycle: %ld readings (%zu to train, %zu held out), 1-10-out tanh BNN, scale-mixture prior, batch 32, "
              "Adam 1e-2, %zu epochs\n", static_cast<long>(n), train.size(), test.size(), epochs);

  std::mt19937_64 rng(20261202);
  const latent::bnn_likelihood kinds[] = {latent::bnn_likelihood::gaussian,
                                          latent::bnn_likelihood::heteroscedastic_gaussian};
  const char* names[] = {"homoscedastic", "heteroscedastic"};
  std::printf("%-16s %22s %12s\n", "model", "test log-lik/reading", "test RMSE");
  for (int k = 0; k < 2; ++k) {
    const fitted f = fit(x(Eigen::all, train), y(Eigen::all, train), kinds[k], epochs, rng);
    const Eigen::MatrixXd xt = x(Eigen::all, test), yt = y(Eigen::all, test);
    const double ll = f.model.log_likelihood(f.params, xt, yt, 500, rng).mean();
    const auto p = f.model.predict(f.params, xt, 500, rng);
    const double rmse = std::sqrt((p.mean - yt).squaredNorm() / static_cast<double>(yt.cols()));
    std::printf("%-16s %22.3f %12.2f\n", names[k], ll, rmse);
  }

  // Refit on every reading; bands on a grid.
  const Eigen::Index g = 200;
  Eigen::MatrixXd grid(1, g);
  for (Eigen::Index i = 0; i < g; ++i) grid(0, i) = x.minCoeff() + (x.maxCoeff() - x.minCoeff()) * i / (g - 1.0);
  const std::string path = out_dir + "/bayesian_mlp_mcycle.tsv";
  std::ofstream out(path);
  out << "# mcycle: time, then per model (homoscedastic, heteroscedastic): mean, 50% lower, 50% upper, 95% lower, "
         "95% upper, epistemic sd, aleatoric sd\n";
  std::vector<latent::bayesian_mlp::regression_prediction> preds;
  for (int k = 0; k < 2; ++k) {
    const fitted f = fit(x, y, kinds[k], epochs, rng);
    preds.push_back(f.model.predict(f.params, grid, 1000, rng));
  }
  for (Eigen::Index i = 0; i < g; ++i) {
    out << grid(0, i);
    for (const auto& p : preds) {
      const auto i50 = latent::predictive_interval(p, 0.5), i95 = latent::predictive_interval(p, 0.95);
      out << '\t' << p.mean(0, i) << '\t' << i50.lower(0, i) << '\t' << i50.upper(0, i) << '\t' << i95.lower(0, i)
          << '\t' << i95.upper(0, i) << '\t' << std::sqrt(p.epistemic_variance(0, i)) << '\t'
          << std::sqrt(p.aleatoric_variance(0, i));
    }
    out << '\n';
  }
  out << "\n\n# data: time, acceleration\n";
  for (Eigen::Index j = 0; j < n; ++j) out << x(0, j) << '\t' << y(0, j) << '\n';
  if (!out) throw std::runtime_error("cannot write " + path);
  for (int k = 0; k < 2; ++k) {
    const auto& p = preds[k];
    std::printf("%s, all data: predictive sd at t = %.0f ms: %.1f g (aleatoric %.1f, epistemic %.1f); at t = %.0f ms: "
                "%.1f g\n", names[k], grid(0, 20), std::sqrt(p.variance()(0, 20)), std::sqrt(p.aleatoric_variance(0, 20)),
                std::sqrt(p.epistemic_variance(0, 20)), grid(0, 120), std::sqrt(p.variance()(0, 120)));
  }
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
