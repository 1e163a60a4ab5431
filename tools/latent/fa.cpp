// latent fa fit: maximum-likelihood factor analysis with factanal-style output.
#include "common.hpp"
#include "save.hpp"

#include <latent/models/factor_analysis.hpp>
#include <latent/solvers/em.hpp>

#include <cstdio>
#include <memory>

namespace latent_cli {

namespace {

struct fa_fit_args {
  std::string data;
  Eigen::Index factors = 1;
  std::string rotation = "varimax";
  double n_obs = 0.0;
  std::size_t max_iterations = 100000;
  std::string out;
  bool quiet = false;
};

void print_row(const std::string& label, const Eigen::RowVectorXd& v, int width) {
  std::printf("%-*s", width, label.c_str());
  for (Eigen::Index j = 0; j < v.size(); ++j) std::printf(" %8.3f", v(j));
  std::printf("\n");
}

void fa_fit(const fa_fit_args& a) {
  const progress prog(a.quiet);
  latent::factor_rotation rotation;
  if (a.rotation == "varimax") rotation = latent::factor_rotation::varimax;
  else if (a.rotation == "promax") rotation = latent::factor_rotation::promax;
  else if (a.rotation == "none") rotation = latent::factor_rotation::none;
  else throw usage_error("--rotation: '" + a.rotation + "' is not one of varimax, promax, none");

  const table t = read_table(a.data);
  const Eigen::Index p = t.data.rows();
  // With --n-obs the file is a p x p covariance or correlation matrix (R's factanal(covmat =,
  // n.obs =)); the summary is on the correlation scale either way.
  if (a.n_obs > 0.0 && t.data.cols() != p)
    throw usage_error(a.data + ": with --n-obs the file must hold a square matrix, got " + std::to_string(p) +
                      " columns and " + std::to_string(t.data.cols()) + " rows");
  const latent::sample_moments m =
      a.n_obs > 0.0 ? latent::sample_moments::from_covariance(t.data, a.n_obs)
                    : latent::sample_moments::from_data(latent::observations(t.data));
  const double df = (double(p - a.factors) * double(p - a.factors) - double(p + a.factors)) / 2.0;
  if (df < 0)
    throw usage_error("--factors: " + std::to_string(a.factors) + " factors are too many for " + std::to_string(p) +
                      " variables (degrees of freedom " + number(df, 3) + " < 0)");

  latent::factor_analysis fa(a.factors);
  fa.initialize_pca(m);
  auto view = fa.moment_model();
  prog.line("fitting " + std::to_string(a.factors) + " factors to " + std::to_string(p) + " variables by EM");
  // EM on the moments costs O(p^2 k) per iteration: run it to a tight fixed point, as R's
  // optimizer is (the summary describes the parameters it is given).
  const auto fit = latent::em(view, m,
                              {.max_iterations = a.max_iterations, .tolerance = 1e-14, .parameter_tolerance = 1e-10});
  prog.line(std::string(to_string(fit.status)) + " after " + std::to_string(fit.iterations) + " EM iterations");
  if (fit.status == latent::fit_status::numerical_issue) throw std::runtime_error("the fit failed: " + fit.message);
  const latent::factanal_result r = latent::factanal_summary(fa, m, rotation);

  int width = 15;
  for (const auto& n : t.names) width = std::max(width, static_cast<int>(n.size()));
  std::printf("Factor analysis of %s: %ld variables, n = %s%s, %ld factors, rotation %s\n", a.data.c_str(),
              static_cast<long>(p), number(m.count, 10).c_str(), a.n_obs > 0.0 ? " (--n-obs)" : "",
              static_cast<long>(a.factors), std::string(to_string(rotation)).c_str());
  if (!fit.converged())
    std::printf("warning: EM stopped (%s) after %zu iterations; raise --max-iterations\n",
                std::string(to_string(fit.status)).c_str(), fit.iterations);
  std::printf("\nUniquenesses:\n");
  for (Eigen::Index j = 0; j < p; ++j)
    std::printf("%-*s %8.3f\n", width, t.names[static_cast<std::size_t>(j)].c_str(), r.uniquenesses(j));
  std::printf("\nLoadings:\n%-*s", width, "");
  for (Eigen::Index f = 0; f < a.factors; ++f) std::printf(" %8s", ("Factor" + std::to_string(f + 1)).c_str());
  std::printf("\n");
  for (Eigen::Index j = 0; j < p; ++j) print_row(t.names[static_cast<std::size_t>(j)], r.loadings.row(j), width);
  std::printf("\n");
  print_row("SS loadings", r.ss_loadings.transpose(), width);
  print_row("Proportion Var", r.proportion_variance.transpose(), width);
  print_row("Cumulative Var", r.cumulative_variance.transpose(), width);
  if (rotation == latent::factor_rotation::promax) {
    std::printf("\nFactor Correlations:\n");
    for (Eigen::Index f = 0; f < a.factors; ++f) print_row("Factor" + std::to_string(f + 1), r.factor_correlation.row(f), width);
  }
  std::printf("\nTest of the hypothesis that %ld factor%s sufficient.\n", static_cast<long>(a.factors),
              a.factors == 1 ? " is" : "s are");
  if (r.has_test)
    std::printf("The chi square statistic is %.2f on %g degrees of freedom.\nThe p-value is %.3g\n", r.statistic,
                r.degrees_of_freedom, r.p_value);
  else
    std::printf("The degrees of freedom for the model is 0 and the fit was %.4f\n", r.objective);
  if (!a.out.empty()) {
    save_model(fa, a.out);
    std::printf("\nSaved the fitted model (unrotated, in the data's units) to %s\n", a.out.c_str());
  }
}

}  // namespace

void add_fa_commands(CLI::App& root) {
  CLI::App* fa = root.add_subcommand("fa", "Factor analysis by maximum likelihood, printed like R's factanal");
  fa->require_subcommand(1);
  auto args = std::make_shared<fa_fit_args>();
  CLI::App* fit = fa->add_subcommand(
      "fit",
      "Fit k factors; print uniquenesses, rotated loadings and the likelihood-ratio (Bartlett) test that k "
      "factors suffice");
  fit->add_option("data", args->data,
                  "CSV file: one observation per line; or, with --n-obs, a covariance or correlation matrix "
                  "(header of names, one row per variable)")
      ->required();
  fit->add_option("-k,--factors", args->factors, "number of factors")
      ->check(CLI::Range(Eigen::Index{1}, Eigen::Index{100000}))
      ->capture_default_str();
  fit->add_option("-r,--rotation", args->rotation, "varimax, promax or none")->capture_default_str();
  fit->add_option("-n,--n-obs", args->n_obs, "the file is a covariance or correlation matrix of this many observations")
      ->check(CLI::PositiveNumber);
  fit->add_option("--max-iterations", args->max_iterations, "EM iterations at most")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000000}))
      ->capture_default_str();
  fit->add_option("-o,--out", args->out, "save the fitted model to this JSON file");
  fit->add_flag("-q,--quiet", args->quiet, "no progress lines on stderr");
  fit->callback([args] { fa_fit(*args); });
}

}  // namespace latent_cli
