#pragma once
// Shared pieces of the `latent` program: the subcommand families' entry points, argument
// parsing helpers, and progress and error reporting.

#include <CLI/CLI.hpp>

#include <Eigen/Core>

#include <chrono>
#include <string>
#include <vector>

namespace latent_cli {

/// Bad command-line input found after parsing (a range that is not a range, a file of the
/// wrong shape): reported as one line "latent: error: ..." with exit status 2, as CLI11's own
/// parse errors are.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Each family adds its subcommands to the root (tools/latent/<family>.cpp).
void add_gmm_commands(CLI::App& root);
void add_fa_commands(CLI::App& root);
void add_random_effects_commands(CLI::App& root);
void add_bayesnet_commands(CLI::App& root);

/// "1:9" (inclusive), "3" or "1,2,5" as a list of positive counts.
std::vector<Eigen::Index> parse_counts(const std::string& text, const std::string& option);

/// A numeric CSV file (header line of names, one record per line) as d x N: variables are
/// rows, records are columns.
struct table {
  std::vector<std::string> names;
  Eigen::MatrixXd data;
};
table read_table(const std::string& path);

/// Progress lines on stderr, unless quiet.
class progress {
 public:
  explicit progress(bool quiet) : quiet_(quiet), start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void line(const std::string& text) const;

 private:
  bool quiet_;
  std::chrono::steady_clock::time_point start_;
};

/// "%.*g" of a double, for CSV and tables (17 significant digits round-trip).
std::string number(double v, int digits = 17);

}  // namespace latent_cli
