// Factor analysis as a linear VAE, trained by SGD on the ELBO (Adam), and the Neyman–Scott
// story of local and global latent variables. Seeded simulations; runs in a few seconds.
//
// Part 1: x = Lambda z + mu + eps (d = 10, k = 3). The linear VAE's encoder q(z|x) =
// N(W x + b, diag s^2) is trained together with the decoder. The program prints the ELBO per
// epoch (the epoch's Monte Carlo estimate and the exact ELBO of a held-out set), then the final
// exact ELBO against the exact log-likelihood of the learned decoder: the gap between them is
// KL(q || p(z|x)) summed over the data, the amortization plus approximation gap.
//
// Part 2: y_kn ~ N(z_n, theta), z_n ~ N(mu, tau^2) with a free Gaussian q per group (local)
// and theta, mu, tau^2 (global). SGD on the ELBO reaches the consistent marginal MLE of theta,
// not the inconsistent joint MLE theta (K-1)/K.
//
// With --plot-data DIR it also writes part 1's ELBO per epoch (linear_vae_trace.tsv) for
// docs/figures/make_figures.sh.
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/models/neyman_scott_elbo.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include <Eigen/Core>

#include "plot_data.hpp"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

int main(int argc, char** argv) {
  const std::string plot_dir = example::plot_data_dir(argc, argv);
  std::mt19937_64 rng(20240601);

  // ---- Part 1: linear VAE -------------------------------------------------------------------
  const Eigen::Index d = 10, k = 3, n_train = 2000, n_test = 500;
  const Eigen::MatrixXd lambda = latent::standard_normal(d, k, rng);
  // Uniquenesses between about 0.3 and 0.8.
  const Eigen::VectorXd psi = (0.2 + 0.8 * (latent::standard_normal(d, 1, rng).array() * 0.5).exp() / 2.0).matrix();
  const Eigen::VectorXd mu = latent::standard_normal(d, 1, rng);
  const auto simulate = [&](Eigen::Index n) {
    Eigen::MatrixXd x = lambda * latent::standard_normal(k, n, rng) +
                        psi.cwiseSqrt().asDiagonal() * latent::standard_normal(d, n, rng);
    x.colwise() += mu;
    return x;
  };
  const Eigen::MatrixXd train = simulate(n_train), test = simulate(n_test);
  const latent::linear_vae vae(train, k), held(test, k);

  const Eigen::VectorXd p0 = vae.initial_params(rng);
  const latent::sgd_elbo_options opts{
      .max_epochs = 200, .batch_size = 100, .num_samples = 1,
      .adam = {.learning_rate = 0.02, .decay_t0 = 1000.0, .decay_kappa = 1.0},
      .patience = 30, .min_improvement = 1.0};
  std::printf("Linear VAE: d = %ld, k = %ld, N = %ld (held out %ld); Adam, batch %zu\n", static_cast<long>(d),
              static_cast<long>(k), static_cast<long>(n_train), static_cast<long>(n_test), opts.batch_size);
  // The held-out set is evaluated exactly each epoch; patience watches it, and the parameters
  // of its best epoch are returned.
  const auto fit = latent::sgd_elbo(vae, held, p0, rng, opts);
  std::printf("  epoch   ELBO estimate (train)   exact held-out ELBO\n");
  for (std::size_t e = 0; e < fit.trace.size(); ++e)
    if (e % 20 == 0 || e + 1 == fit.trace.size())
      std::printf("  %5zu   %21.2f   %19.2f\n", e, fit.trace[e], fit.held_out_trace[e]);
  std::printf("  stopped: %s after %zu epochs (%zu Adam steps, %.2f s); best held-out epoch %zu\n",
              std::string(latent::to_string(fit.status)).c_str(), fit.iterations, fit.steps, fit.seconds,
              fit.best_epoch);

  const double elbo = vae.elbo(fit.params), loglik = vae.log_likelihood(fit.params);
  const double true_ll = [&] {
    latent::linear_vae::params_type t = vae.unpack(fit.params);
    t.loadings = lambda;
    t.mean = mu;
    t.log_uniquenesses = psi.array().log();
    return vae.log_likelihood(vae.pack(t));
  }();
  std::printf("\n  training set, exact values at the returned parameters (per observation in brackets)\n");
  std::printf("  ELBO                          %12.2f  (%.4f)\n", elbo, elbo / n_train);
  std::printf("  log-likelihood of the decoder %12.2f  (%.4f)\n", loglik, loglik / n_train);
  std::printf("  gap = sum_n KL(q || p(z|x))   %12.2f  (%.4f)  amortization + diagonal-q approximation\n",
              loglik - elbo, (loglik - elbo) / n_train);
  std::printf("  log-likelihood of the truth   %12.2f  (%.4f)\n", true_ll, true_ll / n_train);
  std::printf("  held-out ELBO                 %12.2f  (%.4f)\n", held.elbo(fit.params),
              held.elbo(fit.params) / n_test);
  if (!plot_dir.empty()) {
    example::table plot(plot_dir, "linear_vae_trace.tsv",
                        "epoch train_elbo_estimate held_out_elbo (per observation); final: exact train ELBO, "
                        "train log-likelihood of the decoder and of the truth");
    for (std::size_t e = 0; e < fit.trace.size(); ++e)
      plot.row(e, fit.trace[e] / n_train, fit.held_out_trace[e] / n_test, elbo / n_train, loglik / n_train,
               true_ll / n_train);
  }

  // ---- Part 2: Neyman–Scott -----------------------------------------------------------------
  const Eigen::Index reps = 3, groups = 300;
  const double theta = 1.0, prior_mean = 5.0, tau2 = 2.0;
  const Eigen::RowVectorXd z = (std::sqrt(tau2) * latent::standard_normal(1, groups, rng)).array() + prior_mean;
  const Eigen::MatrixXd y = std::sqrt(theta) * latent::standard_normal(reps, groups, rng) + z.replicate(reps, 1);
  const latent::neyman_scott_elbo ns(y);
  const double within = ns.within_ss().sum();
  const double theta_marginal = within / static_cast<double>(groups * (reps - 1));
  const double theta_joint = within / static_cast<double>(groups * reps);
  const auto ns_fit = latent::sgd_elbo(
      ns, ns.initial_params(rng), rng,
      {.max_epochs = 400, .batch_size = 20, .num_samples = 4,
       .adam = {.learning_rate = 0.05, .decay_t0 = 1000.0, .decay_kappa = 1.0}});
  const auto q = ns.unpack(ns_fit.params);
  std::printf("\nNeyman–Scott: K = %ld replicates, N = %ld groups, true theta = %.2f\n",
              static_cast<long>(reps), static_cast<long>(groups), theta);
  std::printf("  %zu local q's (m_n, log s_n) and 3 globals trained together by Adam (%zu steps, %.2f s)\n",
              static_cast<std::size_t>(groups), ns_fit.steps, ns_fit.seconds);
  std::printf("  theta by SGD on the ELBO           %.4f\n", std::exp(q.log_theta));
  std::printf("  marginal MLE (closed form)         %.4f   <- consistent; the ELBO's maximum\n", theta_marginal);
  std::printf("  joint MLE of (theta, z), (K-1)/K   %.4f   <- inconsistent\n", theta_joint);
  std::printf("  standard error of the marginal MLE %.4f\n",
              theta_marginal * std::sqrt(2.0 / static_cast<double>(groups * (reps - 1))));
  // The ELBO's maximum is the marginal log-likelihood at the marginal MLE (ybar_n ~ N(mu,
  // tau^2 + theta / K) plus the within-group part); the remaining gap is SGD's noise.
  const Eigen::ArrayXd ybar = ns.group_means().array();
  const double between = (ybar - ybar.mean()).square().mean(), g = static_cast<double>(groups),
               kr = static_cast<double>(reps);
  const double marginal_ll = -0.5 * g * (kr - 1.0) * (latent::log_two_pi + std::log(theta_marginal)) -
                             0.5 * within / theta_marginal - 0.5 * g * std::log(kr) -
                             0.5 * g * (latent::log_two_pi + std::log(between)) - 0.5 * g;
  std::printf("  exact ELBO at the SGD answer %.2f, maximum marginal log-likelihood %.2f\n",
              ns.elbo(ns_fit.params), marginal_ll);
  std::printf("  mu %.4f (mean of group means %.4f), tau^2 %.4f\n", q.mean, ns.group_means().mean(),
              std::exp(q.log_prior_variance));
  return 0;
}
