// latent random-effects fit: the one-way random-effects normal model (Neyman-Scott) by
// maximum likelihood, with standard errors from the observed information.
#include "common.hpp"

#include <latent/models/neyman_scott.hpp>

#include <cstdio>
#include <memory>

namespace latent_cli {

namespace {

struct re_fit_args {
  std::string data;
};

void re_fit(const re_fit_args& a) {
  const table t = read_table(a.data);
  // One group per record, one replicate per column: the file's d x N is the model's K x N.
  const Eigen::Index k = t.data.rows(), n = t.data.cols();
  if (k < 2) throw usage_error(a.data + ": needs at least 2 columns (replicates per group), got " + std::to_string(k));
  const latent::observations y(t.data);
  const latent::neyman_scott_mle mle = latent::neyman_scott_marginal_mle(y);
  const auto& p = mle.params;
  std::printf("One-way random effects, y_gk = z_g + e_gk, z_g ~ N(mu, tau2), e_gk ~ N(0, theta)\n");
  std::printf("%s: %ld groups (records) of %ld replicates (columns)\n\n", a.data.c_str(), static_cast<long>(n),
              static_cast<long>(k));
  std::printf("Maximum-likelihood estimates (log-likelihood %.6f):\n", mle.log_likelihood);
  if (mle.on_boundary) {
    std::printf("%-8s %14.6f\n%-8s %14.6f\n%-8s %14.6f\n", "theta", p.theta, "mu", p.mu, "tau2", p.tau2);
    std::printf("\nThe maximum is on the boundary tau2 = 0 (no variation between groups beyond the within-group\n"
                "noise): the estimates are not asymptotically normal there and no standard errors are given.\n");
    return;
  }
  const latent::neyman_scott model(k, p);
  const latent::neyman_scott_standard_errors se = latent::standard_errors(model, y);
  std::printf("%-8s %14s %14s\n", "", "estimate", "std. error");
  std::printf("%-8s %14.6f %14.6f   within-group variance\n", "theta", p.theta, se.theta);
  std::printf("%-8s %14.6f %14.6f   mean of the group means\n", "mu", p.mu, se.mu);
  std::printf("%-8s %14.6f %14.6f   variance of the group means\n", "tau2", p.tau2, se.tau2);
  std::printf("\nIntraclass correlation tau2 / (tau2 + theta) = %.6f\n", p.tau2 / (p.tau2 + p.theta));
  std::printf("Standard errors from the observed information (inverse of minus the Hessian of the log-likelihood).\n");
  const latent::neyman_scott_joint_estimate joint = latent::neyman_scott_joint_mle(y);
  std::printf("(The joint maximizer over theta and the group means gives theta = %.6f, too small by the factor\n"
              " (K - 1) / K in expectation: the Neyman-Scott inconsistency.)\n",
              static_cast<double>(joint.theta));
}

}  // namespace

void add_random_effects_commands(CLI::App& root) {
  CLI::App* re = root.add_subcommand("random-effects", "One-way random-effects normal model (Neyman-Scott)");
  re->require_subcommand(1);
  auto args = std::make_shared<re_fit_args>();
  CLI::App* fit = re->add_subcommand(
      "fit", "Maximum-likelihood estimates of theta, mu and tau2 with standard errors (observed information)");
  fit->add_option("groups", args->data,
                  "CSV file: one group per line, one replicate per column (K >= 2 columns, the same K for all)")
      ->required();
  fit->callback([args] { re_fit(*args); });
}

}  // namespace latent_cli
