// latent: fit latent variable models from the command line. See docs/cli.md.
//
//   latent gmm fit data.csv --components 1:9 --covariance all --criterion bic --out model.json
//   latent gmm predict model.json new.csv
//   latent fa fit data.csv --factors 2 --rotation varimax
//   latent random-effects fit groups.csv
//   latent bayesnet fit --graph graph.txt data.csv
//
// Every error is one line on stderr, "latent: error: ...", and a non-zero exit status: 2 for
// a command line or input that cannot be used, 1 for a fit that failed.
#include "common.hpp"

#include <latent/core/error.hpp>
#include <latent/version.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"latent: fit latent variable models (Gaussian mixtures, factor analysis, random effects, discrete Bayesian networks) from CSV files.\n"
               "Data files are CSV with a header line of variable names and one record per line."};
  app.name("latent");
  app.set_version_flag("--version", std::string("latent ") + latent::version);
  app.require_subcommand(1);
  // One line per error (CLI11's default adds a second, "Run with --help ...").
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("latent: error: ") + e.what() + " (see --help)\n";
  });
  latent_cli::add_gmm_commands(app);
  latent_cli::add_fa_commands(app);
  latent_cli::add_random_effects_commands(app);
  latent_cli::add_bayesnet_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const latent_cli::usage_error& e) {
    std::cerr << "latent: error: " << e.what() << '\n';
    return 2;
  } catch (const latent::invalid_argument& e) {
    std::cerr << "latent: error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "latent: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
