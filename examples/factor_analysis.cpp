// Factor analysis fitted to the same data by several solvers, and the gaps between them.
//
// Every solver maximizes the ELBO F(q, theta) = log p(x; theta) - KL(q || p(z | x; theta)):
//  - exact EM takes q = p(z | x), so F = log p(x) and the log-likelihood climbs to a maximum;
//  - mean-field variational EM restricts q to a product of independent Gaussians over the
//    factors, so it climbs F, which stays below log p(x) by the mean-field KL;
//  - the linear VAE amortizes q: one shared encoder q(z | x) = N(W x + b, diag s^2) is trained
//    together with the decoder (Lambda, mu, Psi) by Adam on the reparameterized ELBO
//    (latent::sgd_elbo), a noisy ascent with no closed-form step at all.
// The program prints, for each method, the objective it reaches, the exact log-likelihood of
// the parameters it ends with (for the VAE: of its decoder, as a factor-analysis model), the
// gaps to exact EM, and each variational method's own gap log p(x) - ELBO = sum_n KL(q || p(z|x))
// (all per observation, in nats).
//
// Data: a seeded simulation, and 2000 Fashion-MNIST images (d = 784) from Debian's
// dataset-fashion-mnist, if installed. Runs with no arguments.
//
// All methods start from the same point, the closed-form PPCA fit; the VAE's encoder starts at
// the best diagonal q for that decoder, so its starting ELBO is the mean-field one.
//
// First, R's factanal example (ability.cov): rotated loadings, the chi-square test of fit and
// standard errors (factanal_summary, print_factanal, standard_errors).
//
// With --plot-data DIR it also writes each method's objective per pass over the data and the
// log-likelihood at its final parameters (fa_gaps_<data>.tsv) for docs/figures/make_figures.sh.
//
// Adding a method: append a `method` to `methods()`; it receives the data and the common
// starting parameters and returns a `method_result`.

#include <latent/core/variational_families.hpp>
#include <latent/models/factor_analysis.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/sgd_elbo.hpp>
#include <latent/solvers/variational_em.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "plot_data.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using latent::factor_analysis;
using latent::factor_analysis_params;

/// What one method reports.
struct method_result {
  std::string objective_name;  ///< "log-lik" or "ELBO"
  double objective = 0.0;      ///< the objective it maximized, at its final parameters (total)
  double log_likelihood = 0.0; ///< exact log p(x) at its final parameters (total)
  std::size_t iterations = 0;
  double seconds = 0.0;
  std::string status;
  std::string note;            ///< printed under the table (settings worth knowing)
  std::vector<double> trace;   ///< the objective after each pass over the data (total), start first
};

/// A named way to fit factor analysis with k factors from `start`.
struct method {
  std::string name;
  std::function<method_result(const Eigen::MatrixXd& x, const factor_analysis_params& start)> fit;
};

constexpr std::size_t max_iterations = 150;
constexpr double tolerance = 1e-7;  // per observation
// One E-step thread: results are bit-identical for any count, and on a loaded 2-core machine
// a second OpenMP thread mostly waits (the d = 20 fits ran 10 times slower with two).
constexpr int threads = 1;

/// The linear VAE's Adam settings, picked by hand from a few tries per data set. The epochs are
/// a time budget that keeps the whole program to about 11 s on a loaded 2-core machine, not a
/// convergence criterion: on Fashion-MNIST the ELBO is still rising at the end (120 epochs
/// reach 465.24 nats per observation against 465.06 after 60). There a larger rate does worse
/// (3e-3: the decoder ends 1.2 nats per observation below EM instead of 0.4), probably (not
/// isolated) because Adam moves every coordinate by about the rate per step and the
/// log-uniquenesses of near-constant pixels do not tolerate that noise.
latent::sgd_elbo_options vae_options(const Eigen::MatrixXd& x) {
  const bool high_dimensional = x.rows() > 100;
  return {.max_epochs = high_dimensional ? 60u : 200u,
          .batch_size = 100,
          .num_samples = 1,
          .adam = {.learning_rate = high_dimensional ? 1e-3 : 3e-3, .decay_t0 = high_dimensional ? 100.0 : 500.0,
                   .decay_kappa = 1.0}};
}

std::vector<method> methods() {
  std::vector<method> m;
  m.push_back({"exact EM", [](const Eigen::MatrixXd& x, const factor_analysis_params& start) {
                 factor_analysis fa(start);
                 const auto fit = latent::em(
                     fa, x, {.max_iterations = max_iterations, .tolerance = tolerance, .threads = threads});
                 return method_result{"log-lik", fit.objective, fa.log_likelihood(x), fit.iterations, fit.seconds,
                                      std::string(latent::to_string(fit.status)), "", fit.trace};
               }});
  m.push_back({"mean-field VEM", [](const Eigen::MatrixXd& x, const factor_analysis_params& start) {
                 factor_analysis fa(start);
                 const latent::mean_field family{.max_sweeps = 100, .tolerance = 1e-9};
                 const auto fit = latent::variational_em(
                     fa, x, family, {.max_iterations = max_iterations, .tolerance = tolerance, .threads = threads});
                 return method_result{"ELBO", fit.objective, fa.log_likelihood(x), fit.iterations, fit.seconds,
                                      std::string(latent::to_string(fit.status)), "", fit.trace};
               }});
  m.push_back({"linear VAE", [](const Eigen::MatrixXd& x, const factor_analysis_params& start) {
                 // Decoder = the common start; encoder = the best diagonal Gaussian q for that
                 // decoder: means M^-1 Lambda^T Psi^-1 (x - mu) (the exact posterior means) and
                 // variances 1 / M_jj, with M = I + Lambda^T Psi^-1 Lambda.
                 const latent::linear_vae vae(x, start.loadings.cols());
                 const Eigen::MatrixXd lt_psi_inv =
                     start.loadings.transpose() * start.uniquenesses.cwiseInverse().asDiagonal();
                 const Eigen::MatrixXd m_mat =
                     Eigen::MatrixXd::Identity(start.loadings.cols(), start.loadings.cols()) +
                     lt_psi_inv * start.loadings;
                 latent::linear_vae::params_type p0;
                 p0.loadings = start.loadings;
                 p0.mean = start.mean;
                 p0.log_uniquenesses = start.uniquenesses.array().log();
                 p0.encoder_weights = m_mat.llt().solve(lt_psi_inv);
                 p0.encoder_bias = -p0.encoder_weights * start.mean;
                 p0.encoder_log_scales = -0.5 * m_mat.diagonal().array().log();
                 std::mt19937_64 rng(7);  // minibatch order and reparameterized draws
                 const latent::sgd_elbo_options opts = vae_options(x);
                 const auto fit = latent::sgd_elbo(vae, vae.pack(p0), rng, opts);
                 // The learned decoder as a factor-analysis model, for its exact log-likelihood.
                 const auto p = vae.unpack(fit.params);
                 const factor_analysis decoder(
                     factor_analysis_params{p.loadings, p.mean, p.log_uniquenesses.array().exp().matrix()});
                 char note[256];
                 std::snprintf(note, sizeof note,
                               "linear VAE: Adam, %zu epochs of batch %zu (%zu steps; a time budget, not run to "
                               "convergence), rate %g / (1 + t/%g)",
                               opts.max_epochs, opts.batch_size, fit.steps, opts.adam.learning_rate,
                               opts.adam.decay_t0);
                 return method_result{"ELBO", vae.elbo(fit.params), decoder.log_likelihood(x), fit.iterations,
                                      fit.seconds, std::string(latent::to_string(fit.status)), note, fit.trace};
               }});
  return m;
}

/// Fits every method from the same start and prints a table and the gaps to exact EM; with a
/// plot directory, writes the traces to `plot_file` there.
void compare(const std::string& title, const Eigen::MatrixXd& x, Eigen::Index k, const std::string& plot_dir,
             const std::string& plot_file) {
  const double n = static_cast<double>(x.cols());
  factor_analysis init(k);
  init.initialize_pca(x);  // the common, deterministic starting point
  std::cout << "\n== " << title << ": d = " << x.rows() << ", N = " << x.cols() << ", k = " << k
            << " (start: PPCA closed form; log-lik there " << std::fixed << std::setprecision(4)
            << init.log_likelihood(x) / n << " per observation)\n";
  std::cout << std::left << std::setw(16) << "method" << std::right << std::setw(10) << "objective" << std::setw(16)
            << "value/obs" << std::setw(16) << "log-lik/obs" << std::setw(8) << "iters" << std::setw(10) << "seconds"
            << "  status\n";
  std::vector<std::pair<std::string, method_result>> results;
  for (const auto& m : methods()) {
    const method_result r = m.fit(x, init.params());
    std::cout << std::left << std::setw(16) << m.name << std::right << std::setw(10) << r.objective_name
              << std::setw(16) << std::setprecision(6) << r.objective / n << std::setw(16) << r.log_likelihood / n
              << std::setw(8) << r.iterations << std::setw(10) << std::setprecision(3) << r.seconds << "  "
              << r.status << '\n';
    results.emplace_back(m.name, r);
  }
  for (const auto& [name, r] : results)
    if (!r.note.empty()) std::cout << "(" << r.note << ")\n";
  const method_result& em = results.front().second;
  for (std::size_t i = 1; i < results.size(); ++i) {
    const auto& [name, r] = results[i];
    std::cout << std::setprecision(6) << "gap, exact EM log-lik - " << name << " " << r.objective_name << ": "
              << (em.log_likelihood - r.objective) / n << " per observation\n"
              << "gap, exact EM log-lik - log-lik at " << name << "'s parameters: "
              << (em.log_likelihood - r.log_likelihood) / n << " per observation\n"
              << "gap, log-lik at " << name << "'s parameters - its " << r.objective_name
              << " (sum_n KL(q || p(z|x))): " << (r.log_likelihood - r.objective) / n << " per observation\n";
  }
  if (plot_dir.empty()) return;
  // One block per method: pass over the data, objective per observation, and the
  // log-likelihood per observation at the method's final parameters (constant in the block).
  example::table plot(plot_dir, plot_file, "pass objective_per_obs final_loglik_per_obs (blocks: methods in order)");
  for (const auto& [name, r] : results) {
    for (std::size_t i = 0; i < r.trace.size(); ++i) plot.row(i, r.trace[i] / n, r.log_likelihood / n);
    plot.next_block();
  }
}

/// Big-endian 32-bit integer from an IDX header.
std::uint32_t read_be32(std::FILE* f) {
  std::array<unsigned char, 4> b{};
  if (std::fread(b.data(), 1, 4, f) != 4) return 0;
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
}

/// The first `count` images of a gzipped IDX file as a 784 x count matrix of dequantized
/// pixels (pixel + U(0, 1)) / 256, so that a continuous density is meaningful; nothing if the
/// file is absent or malformed.
template <class Rng>
std::optional<Eigen::MatrixXd> read_fashion_mnist(const std::string& path, Eigen::Index count, Rng& rng) {
  if (std::FILE* probe = std::fopen(path.c_str(), "rb")) {
    std::fclose(probe);
  } else {
    return std::nullopt;
  }
  const std::string command = "gzip -dc '" + path + "'";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return std::nullopt;
  const std::uint32_t magic = read_be32(pipe.get()), n = read_be32(pipe.get());
  const std::uint32_t rows = read_be32(pipe.get()), cols = read_be32(pipe.get());
  if (magic != 0x00000803u || rows * cols != 784u || n < count) return std::nullopt;
  std::vector<unsigned char> buf(static_cast<std::size_t>(count) * 784u);
  if (std::fread(buf.data(), 1, buf.size(), pipe.get()) != buf.size()) return std::nullopt;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Eigen::MatrixXd x(784, count);
  for (Eigen::Index j = 0; j < count; ++j)
    for (Eigen::Index i = 0; i < 784; ++i)
      x(i, j) = (static_cast<double>(buf[static_cast<std::size_t>(j * 784 + i)]) + u(rng)) / 256.0;
  return x;
}

/// R's factanal on R's `ability.cov` (Smith & Stanley 1983; 6 ability tests, n = 112): the
/// fit from the covariance matrix and n alone, printed as R prints it (varimax and promax),
/// then standard errors of the uniquenesses and communalities from the observed information.
void factanal_demo() {
  Eigen::MatrixXd cov(6, 6);
  cov << 24.641, 5.991, 33.520, 6.023, 20.755, 29.701, 5.991, 6.700, 18.137, 1.782, 4.936, 7.204, 33.520, 18.137,
      149.831, 19.424, 31.430, 50.753, 6.023, 1.782, 19.424, 12.711, 4.757, 9.075, 20.755, 4.936, 31.430, 4.757,
      52.604, 66.762, 29.701, 7.204, 50.753, 9.075, 66.762, 135.292;
  const std::vector<std::string> names{"general", "picture", "blocks", "maze", "reading", "vocab"};
  const auto moments = latent::sample_moments::from_covariance(cov, 112.0);
  factor_analysis fa(2);
  fa.initialize_pca(moments);
  auto view = fa.moment_model();
  const auto fit = latent::em(view, moments, {.max_iterations = 200000, .tolerance = 1e-15, .parameter_tolerance = 1e-12});
  std::cout << "\n== factanal(factors = 2, covmat = ability.cov), n = 112: EM from the moments, " << fit.iterations
            << " iterations, " << latent::to_string(fit.status) << " ==\n\n";
  latent::print_factanal(std::cout, latent::factanal_summary(fa, moments, latent::factor_rotation::varimax), names);
  std::cout << "\n-- promax --\n";
  const latent::factanal_result promax = latent::factanal_summary(fa, moments, latent::factor_rotation::promax);
  latent::print_factanal(std::cout, promax, names);
  const latent::factor_analysis_standard_errors se = latent::standard_errors(fa, moments);
  // In the covariance's units (dividing by the sample variances would ignore their own
  // sampling error).
  std::cout << "\nStandard errors (observed information), in the covariance's units:\n" << std::setw(10) << ""
            << std::setw(10) << "Psi_jj" << std::setw(8) << "SE" << std::setw(14) << "communality" << std::setw(8)
            << "SE" << std::setw(10) << "variance" << '\n'
            << std::fixed << std::setprecision(3);
  for (Eigen::Index j = 0; j < 6; ++j)
    std::cout << std::setw(10) << std::left << names[static_cast<std::size_t>(j)] << std::right << std::setw(10)
              << fa.params().uniquenesses(j) << std::setw(8) << se.uniquenesses_se(j) << std::setw(14)
              << se.loadings.row(j).squaredNorm() << std::setw(8) << se.communalities_se(j) << std::setw(10)
              << cov(j, j) << '\n';
  std::cout.unsetf(std::ios::floatfield);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string plot_dir = example::plot_data_dir(argc, argv);
  // Eigen's own GEMM threads stall on a loaded machine at these sizes (see linear_vae.md).
  Eigen::setNbThreads(1);
  std::mt19937_64 rng(20240611);
  factanal_demo();

  // A seeded simulation: d = 20, k = 4, diagonal uniquenesses between 0.2 and 1.
  {
    const Eigen::Index d = 20, k = 4, n = 5000;
    factor_analysis_params truth;
    truth.loadings = latent::standard_normal(d, k, rng);
    truth.mean = latent::standard_normal(d, 1, rng).col(0);
    truth.uniquenesses = Eigen::VectorXd::LinSpaced(d, 0.2, 1.0);
    const Eigen::MatrixXd x = factor_analysis(truth).sample(n, rng);
    compare("simulation", x, k, plot_dir, "fa_gaps_simulation.tsv");
  }

  // Fashion-MNIST: 2000 training images, 784 pixels each.
  const std::string path = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  if (const auto x = read_fashion_mnist(path, 2000, rng)) {
    compare("Fashion-MNIST (first 2000 training images, dequantized pixels / 256)", *x, 10, plot_dir,
            "fa_gaps_fashion_mnist.tsv");
  } else {
    std::cout << "\nFashion-MNIST not found at " << path
              << " (Debian package dataset-fashion-mnist); showing the simulation only.\n";
  }
  return 0;
}
