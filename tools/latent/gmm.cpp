// latent gmm fit | predict: Gaussian mixtures chosen by an information criterion.
#include "common.hpp"
#include "save.hpp"

#include <latent/model_selection.hpp>
#include <latent/models/gaussian_mixture.hpp>
#ifdef LATENT_CLI_HAS_JSON  // set by CMake when nlohmann_json is found
#include <latent/io/json.hpp>
#endif

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

namespace latent_cli {

namespace {

struct gmm_fit_args {
  std::string data;
  std::string components = "1:9";
  std::vector<std::string> covariance{"all"};
  std::string criterion = "bic";
  std::size_t restarts = 10;
  std::uint64_t seed = 1;
  double reg_covar = 1e-6;
  std::size_t max_iterations = 1000;
  std::string out;
  bool quiet = false;
};

struct gmm_predict_args {
  std::string model;
  std::string data;
  std::string out;
};

std::vector<latent::covariance_type> parse_covariances(const std::vector<std::string>& names) {
  using latent::covariance_type;
  std::vector<covariance_type> out;
  for (const auto& n : names) {
    if (n == "all") {
      for (auto t : {covariance_type::full, covariance_type::diagonal, covariance_type::spherical, covariance_type::tied})
        out.push_back(t);
    } else if (n == "full") {
      out.push_back(covariance_type::full);
    } else if (n == "diagonal") {
      out.push_back(covariance_type::diagonal);
    } else if (n == "spherical") {
      out.push_back(covariance_type::spherical);
    } else if (n == "tied") {
      out.push_back(covariance_type::tied);
    } else {
      throw usage_error("--covariance: '" + n + "' is not one of all, full, diagonal, spherical, tied");
    }
  }
  return out;
}

void print_model(const latent::gaussian_mixture& g, const std::vector<std::string>& names) {
  const auto& p = g.params();
  std::printf("%-16s", "");
  for (Eigen::Index k = 0; k < g.components(); ++k) std::printf(" %14s", ("component " + std::to_string(k + 1)).c_str());
  std::printf("\n%-16s", "weight");
  for (Eigen::Index k = 0; k < g.components(); ++k) std::printf(" %14.6f", p.weights(k));
  std::printf("\n");
  for (Eigen::Index i = 0; i < g.dim(); ++i) {
    std::printf("%-16s", ("mean " + names[static_cast<std::size_t>(i)]).c_str());
    for (Eigen::Index k = 0; k < g.components(); ++k) std::printf(" %14.6g", p.means(i, k));
    std::printf("\n");
  }
  for (Eigen::Index i = 0; i < g.dim(); ++i) {
    std::printf("%-16s", ("sd " + names[static_cast<std::size_t>(i)]).c_str());
    for (Eigen::Index k = 0; k < g.components(); ++k)
      std::printf(" %14.6g", std::sqrt(p.covariances[static_cast<std::size_t>(k)](i, i)));
    std::printf("\n");
  }
  if (g.dim() > 1 && (g.covariance_kind() == latent::covariance_type::full ||
                      g.covariance_kind() == latent::covariance_type::tied)) {
    std::printf("correlations (lower triangle, per component):\n");
    for (Eigen::Index k = 0; k < g.components(); ++k) {
      const Eigen::MatrixXd& c = p.covariances[static_cast<std::size_t>(k)];
      std::printf("  component %ld:", static_cast<long>(k + 1));
      for (Eigen::Index i = 1; i < g.dim(); ++i)
        for (Eigen::Index j = 0; j < i; ++j)
          std::printf(" %s~%s %.4f", names[static_cast<std::size_t>(i)].c_str(), names[static_cast<std::size_t>(j)].c_str(),
                      c(i, j) / std::sqrt(c(i, i) * c(j, j)));
      std::printf("\n");
    }
  }
}

void gmm_fit(const gmm_fit_args& a) {
  const progress prog(a.quiet);
  latent::mixture_selection_options o;
  o.components = parse_counts(a.components, "--components");
  o.covariances = parse_covariances(a.covariance);
  if (a.criterion == "bic") o.criterion = latent::information_criterion::bic;
  else if (a.criterion == "aic") o.criterion = latent::information_criterion::aic;
  else if (a.criterion == "icl") o.criterion = latent::information_criterion::icl;
  else throw usage_error("--criterion: '" + a.criterion + "' is not one of bic, aic, icl");
  o.seed = a.seed;
  o.em.restarts = a.restarts;
  o.em.max_iterations = a.max_iterations;
  o.mixture.reg_covar = a.reg_covar;
  const table t = read_table(a.data);
  std::string vars;
  for (const auto& n : t.names) vars += (vars.empty() ? "" : ", ") + n;
  std::printf("Gaussian mixtures fitted to %s: %ld observations of %ld variables (%s)\n", a.data.c_str(),
              static_cast<long>(t.data.cols()), static_cast<long>(t.data.rows()), vars.c_str());
  std::printf("EM from %zu k-means++ starts per cell, seed %llu, reg_covar %g; mclust's names: full = VVV, "
              "diagonal = VVI, spherical = VII, tied = EEE\n\n",
              a.restarts, static_cast<unsigned long long>(a.seed), a.reg_covar);
  const std::size_t cells = o.components.size() * o.covariances.size();
  std::size_t done = 0;
  double last = 0.0;
  const auto sel = latent::select_gaussian_mixture(
      latent::observations(t.data), o, [&](const latent::mixture_selection_cell& c, const latent::gaussian_mixture&) {
        ++done;
        const double now = prog.seconds();
        prog.line("[" + std::to_string(done) + "/" + std::to_string(cells) + "] K = " + std::to_string(c.components) +
                  ", " + std::string(to_string(c.covariance)) + ": " +
                  (c.fitted ? std::string(to_string(o.criterion)) + " " + number(c.value(o.criterion), 8)
                            : "missing (" + c.message + ")") +
                  " in " + number(now - last, 3) + " s");
        last = now;
      });
  std::fputs(latent::format_selection_table(sel, o.criterion).c_str(), stdout);
  for (const auto& c : sel.cells)
    if (!c.fitted)
      std::printf("NA: K = %ld, %s: %s\n", static_cast<long>(c.components), std::string(to_string(c.covariance)).c_str(),
                  c.message.c_str());
  if (!sel.best) throw std::runtime_error("every fit failed: no model to choose (see the NA lines above)");
  const auto& c = sel.chosen();
  std::printf("\nChosen by %s: K = %ld, %s covariance (log-likelihood %.4f, %ld free parameters, BIC %.3f, AIC %.3f, "
              "ICL %.3f)\n",
              std::string(to_string(o.criterion)).c_str(), static_cast<long>(c.components),
              std::string(to_string(c.covariance)).c_str(), c.log_likelihood, static_cast<long>(c.free_parameters), c.bic,
              c.aic, c.icl);
  print_model(*sel.model, t.names);
  if (!a.out.empty()) {
    save_model(*sel.model, a.out);
    std::printf("\nSaved the chosen model to %s\n", a.out.c_str());
  }
}

void gmm_predict(const gmm_predict_args& a) {
#ifdef LATENT_CLI_HAS_JSON
  const auto g = latent::load<latent::gaussian_mixture>(a.model);
  const table t = read_table(a.data);
  if (t.data.rows() != g.dim())
    throw usage_error(a.data + " has " + std::to_string(t.data.rows()) + " columns, the model in " + a.model +
                      " has " + std::to_string(g.dim()) + " variables");
  const Eigen::MatrixXd r = g.responsibilities(t.data);
  const Eigen::RowVectorXd ll = g.log_likelihood_per_observation(t.data);
  const Eigen::VectorXi labels = g.labels(t.data);
  std::ofstream file;
  if (!a.out.empty()) {
    file.open(a.out);
    if (!file) throw usage_error("--out: cannot open '" + a.out + "' for writing");
  }
  std::ostream& os = a.out.empty() ? std::cout : file;
  os << "component";
  for (Eigen::Index k = 0; k < r.rows(); ++k) os << ",p" << (k + 1);
  os << ",log_density\n";
  for (Eigen::Index n = 0; n < r.cols(); ++n) {
    os << (labels(n) + 1);
    for (Eigen::Index k = 0; k < r.rows(); ++k) os << ',' << number(r(k, n));
    os << ',' << number(ll(n)) << '\n';
  }
  if (!os) throw std::runtime_error("writing the predictions failed");
#else
  (void)a;
  throw usage_error("gmm predict: this build of latent cannot load models (it was built without nlohmann_json)");
#endif
}

}  // namespace

void add_gmm_commands(CLI::App& root) {
  CLI::App* gmm = root.add_subcommand("gmm", "Gaussian mixtures: choose K and the covariance type, predict");
  gmm->require_subcommand(1);

  auto fa = std::make_shared<gmm_fit_args>();
  CLI::App* fit = gmm->add_subcommand(
      "fit",
      "Fit a Gaussian mixture for every K and covariance type, print the table of the criterion "
      "(BIC = -2 log L + p log n, lower is better: the negative of mclust's) and the chosen model");
  fit->add_option("data", fa->data, "CSV file: header line of variable names, one observation per line")
      ->required();
  fit->add_option("-k,--components", fa->components, "values of K: a range 1:9, a list 1,2,5 or one value")
      ->capture_default_str();
  fit->add_option("-c,--covariance", fa->covariance,
                  "covariance types: all, or any of full, diagonal, spherical, tied (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  fit->add_option("--criterion", fa->criterion, "bic, aic or icl (all: lower is better)")->capture_default_str();
  fit->add_option("--restarts", fa->restarts, "k-means++ starts per cell (the best is kept)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  fit->add_option("--seed", fa->seed, "seed: the table is a function of the data and the seed")->capture_default_str();
  fit->add_option("--reg-covar", fa->reg_covar,
                  "added to every covariance diagonal (data units squared); raise it for data "
                  "recorded on a coarse grid, whose ties let a component collapse")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  fit->add_option("--max-iterations", fa->max_iterations, "EM iterations per start")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000000}))
      ->capture_default_str();
  fit->add_option("-o,--out", fa->out, "save the chosen model to this JSON file (for gmm predict)");
  fit->add_flag("-q,--quiet", fa->quiet, "no progress lines on stderr");
  fit->callback([fa] { gmm_fit(*fa); });

  auto pa = std::make_shared<gmm_predict_args>();
  CLI::App* predict = gmm->add_subcommand(
      "predict",
      "Write CSV: the most probable component (1..K), the responsibilities p1..pK and log p(x) of every record");
  predict->add_option("model", pa->model, "model JSON file written by gmm fit --out")->required();
  predict->add_option("data", pa->data, "CSV file with the model's variables, in the same order")->required();
  predict->add_option("-o,--out", pa->out, "write the CSV to this file instead of stdout");
  predict->callback([pa] { gmm_predict(*pa); });
}

}  // namespace latent_cli
