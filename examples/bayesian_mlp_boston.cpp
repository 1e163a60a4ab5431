// Boston housing (506 districts, 13 inputs, median value in $1000s) on the protocol of the
// Bayesian-deep-learning literature (Hernandez-Lobato & Adams (2015)): 20 random 90/10
// train/test splits, one hidden layer of 50 ReLU units, reporting the mean and standard error
// over the splits of the test RMSE and the test log-likelihood per district on the original
// scale. The BNN is fitted by Bayes by backprop (`sgd_elbo`, Adam with a decaying step size,
// batch 32) with a learned homoscedastic noise variance and the local reparameterization trick;
// the test log-likelihood is the log-mean-exp over 1000 weight draws. Each split also reports
// the fitted ELBO per training district (200 draws, standardized scale): the criterion that
// chose these defaults among the settings of docs/models/bayesian_mlp.md, without the test data.
//
// Published on this protocol: VI (Graves (2011)) RMSE 4.32 +- 0.29, log-likelihood -2.90 +- 0.07;
// probabilistic backpropagation 3.01 +- 0.18, -2.57 +- 0.09.
//
// Usage: bayesian_mlp_boston [--smoke] [--epochs E] [--splits K] [--learning-rate R] [--decay-t0 T]
//                            [--heteroscedastic] [--weight-draws] [--seed S]
//   --smoke    2 splits of 30 epochs (the ctest entry)
//   --epochs   epochs per split (default 2000, about 29000 steps: the stated budget)
//   --splits   number of splits (default 20)
//   --learning-rate  Adam's initial step size (default 1e-3)
//   --decay-t0       the step size's decay, alpha_t = R / sqrt(1 + t / T) (default 5000, so
//                    the last steps take R / 2.6)
//   --heteroscedastic  the network also outputs each district's log noise variance
//   --weight-draws     one weight draw per minibatch instead of the local reparameterization
//   --seed     the training and prediction engine's seed (default 2015; the splits keep theirs)
// ctest-arguments: --smoke
#include <latent/io/csv.hpp>
#include <latent/models/bayesian_mlp.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::size_t epochs = 2000, splits = 20;
  double learning_rate = 1e-3, decay_t0 = 5000.0;
  bool heteroscedastic = false, local = true;
  unsigned long seed = 2015;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") {
      epochs = 30;
      splits = 2;
    } else if (a == "--epochs" && i + 1 < argc) {
      epochs = std::stoul(argv[++i]);
    } else if (a == "--splits" && i + 1 < argc) {
      splits = std::stoul(argv[++i]);
    } else if (a == "--learning-rate" && i + 1 < argc) {
      learning_rate = std::stod(argv[++i]);
    } else if (a == "--decay-t0" && i + 1 < argc) {
      decay_t0 = std::stod(argv[++i]);
    } else if (a == "--heteroscedastic") {
      heteroscedastic = true;
    } else if (a == "--weight-draws") {
      local = false;
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::stoul(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: bayesian_mlp_boston [--smoke] [--epochs E] [--splits K] [--learning-rate R] [--decay-t0 T]\n"
                   "                           [--heteroscedastic] [--weight-draws] [--seed S]\n");
      return 2;
    }
  }
  Eigen::setNbThreads(1);  // 455 districts in batches of 32: one thread
  const latent::csv_table t = latent::read_csv(std::string(LATENT_EXAMPLES_DATA_DIR) + "/boston.csv");
  const Eigen::MatrixXd x = t.data.topRows(13), y = t.data.bottomRows(1);
  const Eigen::Index n = x.cols(), n_test = (n + 9) / 10;
  std::printf("Boston housing: %ld districts, 13 inputs; %zu splits of %ld train / %ld test; 13-50-%d ReLU BNN, "
              "prior N(0, 1), %s noise, %s, batch 32, Adam %g / sqrt(1 + t / %g), %zu epochs per split\n",
              static_cast<long>(n), splits, static_cast<long>(n - n_test), static_cast<long>(n_test),
              heteroscedastic ? 2 : 1, heteroscedastic ? "heteroscedastic" : "homoscedastic",
              local ? "local reparameterization" : "one weight draw per minibatch", learning_rate, decay_t0, epochs);
  // The splits come from their own engine, so that every setting (epochs, step size) is
  // scored on the same 20 splits; training and prediction draw from the other.
  std::mt19937_64 split_rng(20151111), rng(seed);
  std::vector<double> rmse, ll, elbo;
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  for (std::size_t s = 0; s < splits; ++s) {
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    std::shuffle(order.begin(), order.end(), split_rng);
    const std::vector<Eigen::Index> test(order.begin(), order.begin() + n_test), train(order.begin() + n_test, order.end());
    latent::bnn_options o{.hidden = {50}, .activation = latent::nn::activation::relu};
    o.initial_scale = 1e-3;
    o.noise_variance = 0.1;
    if (heteroscedastic) o.likelihood = latent::bnn_likelihood::heteroscedastic_gaussian;
    o.local_reparameterization = local;
    latent::bayesian_mlp model(x(Eigen::all, train), y(Eigen::all, train), o);
    const auto fit = latent::sgd_elbo(model, model.initial_params(rng), rng,
                                      {.max_epochs = epochs, .batch_size = 32,
                                       .adam = {.learning_rate = learning_rate, .decay_t0 = decay_t0, .decay_kappa = 0.5}});
    if (fit.status == latent::fit_status::numerical_issue) {
      std::fprintf(stderr, "split %zu: %s\n", s, fit.message.c_str());
      return 1;
    }
    const Eigen::MatrixXd xt = x(Eigen::all, test), yt = y(Eigen::all, test);
    const auto pred = model.predict(fit.params, xt, 1000, rng);
    rmse.push_back(std::sqrt((pred.mean - yt).squaredNorm() / static_cast<double>(n_test)));
    ll.push_back(model.log_likelihood(fit.params, xt, yt, 1000, rng).mean());
    // The fitted ELBO over all training districts, from an engine of its own so that it does
    // not move the training and prediction draws of the next splits.
    std::vector<Eigen::Index> all(train.size());
    std::iota(all.begin(), all.end(), Eigen::Index{0});
    std::mt19937_64 elbo_rng(s);
    elbo.push_back(model.value(fit.params, all, 200, elbo_rng) / static_cast<double>(train.size()));
    // The learned noise: its sd (homoscedastic), or the root mean of the test districts' noise
    // variances (heteroscedastic): the aleatoric part of the predictive variance either way.
    std::printf("split %2zu: test RMSE %.3f, test log-likelihood %.3f, noise sd %.2f, ELBO %.3f, %.1f s\n", s,
                rmse.back(), ll.back(), std::sqrt(pred.aleatoric_variance.mean()), elbo.back(), fit.seconds);
  }
  const auto summary = [](const std::vector<double>& v) {
    const double k = static_cast<double>(v.size());
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / k;
    double ss = 0.0;
    for (const double e : v) ss += (e - mean) * (e - mean);
    return std::pair{mean, v.size() > 1 ? std::sqrt(ss / (k - 1.0) / k) : 0.0};
  };
  const auto [r, rse] = summary(rmse);
  const auto [l, lse] = summary(ll);
  const auto [e, ese] = summary(elbo);
  std::printf("over %zu splits: test RMSE %.2f +- %.2f, test log-likelihood %.2f +- %.2f, ELBO per training district "
              "%.3f +- %.3f (mean +- standard error)\n",
              splits, r, rse, l, lse, e, ese);
  return 0;
}
