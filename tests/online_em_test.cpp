// Online (stepwise) EM: exactness of its first step, agreement with the batch optimum within
// the batch estimator's own sampling error, held-out improvement, streams, threads, bad input.

#include <latent/models/factor_analysis.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/online_em.hpp>

#include "support/test_support.hpp"

#include <cmath>
#include <optional>
#include <vector>

using latent::covariance_type;
using latent_test::make_rng;

namespace {

// Three well-separated but overlapping components in 2-d.
latent::gaussian_mixture truth_mixture() {
  latent::gaussian_mixture g(3, covariance_type::full);
  latent::gaussian_mixture::params_type p;
  p.weights = Eigen::Vector3d(0.5, 0.3, 0.2);
  p.means.resize(2, 3);
  p.means << 0.0, 4.0, 0.0, 0.0, 0.0, 4.0;
  Eigen::Matrix2d a, b, c;
  a << 1.0, 0.3, 0.3, 1.0;
  b << 1.5, -0.4, -0.4, 0.8;
  c << 0.7, 0.0, 0.0, 1.2;
  p.covariances = {a, b, c};
  g.set_params(p);
  return g;
}

// Factor analysis with d = 6, k = 2.
latent::factor_analysis truth_factor_analysis() {
  latent::factor_analysis::params_type p;
  p.loadings.resize(6, 2);
  p.loadings << 1.0, 0.0, 0.8, 0.3, 0.6, -0.5, 0.0, 1.0, -0.4, 0.7, 0.5, 0.5;
  p.mean = Eigen::VectorXd::LinSpaced(6, -1.0, 1.0);
  p.uniquenesses = Eigen::VectorXd::LinSpaced(6, 0.3, 0.8);
  return latent::factor_analysis(p);
}

// A mixture of 3 components started by k-means++ on x.
latent::gaussian_mixture started(const Eigen::MatrixXd& x, std::mt19937_64& rng,
                                 covariance_type type = covariance_type::full) {
  latent::gaussian_mixture g(3, type);
  g.initialize(x, rng);
  return g;
}

// A stream: contiguous blocks of a matrix in stored order (what a file reader would give).
struct block_stream {
  const Eigen::MatrixXd* x;
  Eigen::Index batch;
  Eigen::Index position = 0;
  Eigen::Index num_observations() const { return x->cols(); }
  void rewind() { position = 0; }
  std::optional<latent::observations> next() {
    if (position >= x->cols()) return std::nullopt;
    const Eigen::Index b = std::min(batch, x->cols() - position);
    latent::observations o(x->middleCols(position, b));
    position += b;
    return o;
  }
};
static_assert(latent::MinibatchSource<block_stream, latent::observations>);
static_assert(latent::MinibatchSource<latent::column_minibatches<double, std::mt19937_64>, latent::observations>);

// A callback recording the held-out log-likelihood after every epoch.
struct held_out_recorder {
  const latent::gaussian_mixture* model;
  const Eigen::MatrixXd* held_out;
  std::vector<double>* curve;
  void on_iteration(const latent::iteration_info& info) {
    if (info.iteration > 0) curve->push_back(model->log_likelihood(*held_out));
  }
};

// The sample standard deviation of the per-observation log-likelihoods.
template <class Row>
double sd(const Row& l) {
  const double mean = l.mean();
  return std::sqrt((l.array() - mean).square().sum() / static_cast<double>(l.size() - 1));
}

}  // namespace

TEST_CASE("one full-batch step with rho = 1 is one batch EM iteration, bit for bit", "[online_em][exact]") {
  auto rng = make_rng(1);
  const Eigen::MatrixXd x = truth_mixture().sample(2000, rng);
  const latent::gaussian_mixture start = started(x, rng);

  latent::gaussian_mixture batch = start;
  const auto em_fit = latent::em(batch, x, {.max_iterations = 1, .tolerance = 0.0, .parameter_tolerance = 0.0});
  REQUIRE(em_fit.iterations == 1);

  latent::gaussian_mixture online = start;
  block_stream stream{&x, x.cols()};
  const auto fit = latent::online_em(online, stream, {.max_epochs = 1});
  REQUIRE(fit.status == latent::fit_status::max_iterations);
  REQUIRE(fit.trace.size() == 2);
  CHECK(fit.trace[0] == em_fit.trace[0]);
  CHECK(online.params().means == batch.params().means);
  CHECK(online.params().weights == batch.params().weights);
  for (std::size_t k = 0; k < 3; ++k) CHECK(online.params().covariances[k] == batch.params().covariances[k]);
  CHECK(fit.trace[1] == Approx(online.log_likelihood(x)).epsilon(1e-12));
}

TEST_CASE("warm-up epochs are batch EM iterations", "[online_em][exact]") {
  auto rng = make_rng(2);
  const Eigen::MatrixXd x = truth_mixture().sample(1500, rng);
  const latent::gaussian_mixture start = started(x, rng);
  latent::gaussian_mixture batch = start;
  const auto em_fit = latent::em(batch, x, {.max_iterations = 3, .tolerance = 0.0, .parameter_tolerance = 0.0});
  REQUIRE(em_fit.iterations == 3);
  // Three warm-up epochs and one online epoch: the first four trace entries are EM's.
  latent::gaussian_mixture online = start;
  block_stream stream{&x, 100};
  const auto fit = latent::online_em(online, stream, {.max_epochs = 1, .warmup_epochs = 3});
  REQUIRE(fit.trace.size() == 5);
  for (std::size_t i = 0; i < 4; ++i) CHECK(fit.trace[i] == Approx(em_fit.trace[i]).epsilon(1e-13));
  CHECK(fit.iterations == 4);
}

TEST_CASE("a stream and the in-memory source in stored order give the same fit", "[online_em][stream]") {
  auto rng = make_rng(3);
  const Eigen::MatrixXd x = truth_mixture().sample(3000, rng);
  const latent::gaussian_mixture start = started(x, rng, covariance_type::diagonal);
  const latent::online_em_options opts{.batch_size = 256, .max_epochs = 3};

  latent::gaussian_mixture a = start, b = start;
  block_stream stream{&x, 256};
  const auto fa = latent::online_em(a, stream, opts);
  latent::column_minibatches<double, std::mt19937_64> in_order(x, 256, rng, /*shuffle=*/false);
  const auto fb = latent::online_em(b, in_order, opts);
  CHECK(fa.trace == fb.trace);
  CHECK(a.params().means == b.params().means);
}

TEST_CASE("results are bit-identical for 1 and 2 threads", "[online_em][threads]") {
  auto rng = make_rng(4);
  const Eigen::MatrixXd x = truth_mixture().sample(5000, rng);
  const latent::gaussian_mixture start = started(x, rng);
  std::vector<latent::gaussian_mixture> fits;
  std::vector<std::vector<double>> traces;
  for (int threads : {1, 2}) {
    latent::gaussian_mixture g = start;
    auto engine = make_rng(40);
    traces.push_back(latent::online_em(g, x, engine, {.batch_size = 700, .max_epochs = 2, .threads = threads,
                                                      .block_size = 256}).trace);
    fits.push_back(g);
  }
  CHECK(traces[0] == traces[1]);
  CHECK(fits[0].params().means == fits[1].params().means);
}

TEST_CASE("the online mixture fit reaches the batch optimum within the batch estimator's sampling error",
          "[online_em][gaussian_mixture]") {
  auto rng = make_rng(5);
  const Eigen::Index n = 30000;
  const Eigen::MatrixXd x = truth_mixture().sample(n, rng);
  const latent::gaussian_mixture start = started(x, rng);

  latent::gaussian_mixture batch = start;
  const auto em_fit = latent::em(batch, x);
  REQUIRE(em_fit.converged());
  latent::gaussian_mixture online = start;
  const auto fit = latent::online_em(online, x, rng, {.batch_size = 300, .max_epochs = 10});
  REQUIRE(fit.status == latent::fit_status::max_iterations);
  REQUIRE(fit.trace.size() == 11);

  // The batch fit is the maximum: the online fit is below it, and by less than the sampling
  // error of the maximum-likelihood estimate itself. If the online parameters differ from the
  // MLE by at most its own sampling spread, 2 (l* - l) is at most a chi-square with as many
  // degrees of freedom as free parameters.
  const double gap = em_fit.objective - fit.objective;
  const int p = static_cast<int>(batch.num_free_parameters());
  INFO("2 (l* - l) = " << 2.0 * gap << " with " << p << " free parameters");
  CHECK(gap >= -1e-9 * std::abs(em_fit.objective));
  CHECK(2.0 * gap <= latent_test::chi_square_critical(p));
  // (The starting point was not already there: the test can fail.)
  CHECK(2.0 * (em_fit.objective - fit.trace[0]) > latent_test::chi_square_critical(p));
  // And the gap is tiny next to the Monte Carlo error of the mean log-likelihood per observation.
  const Eigen::RowVectorXd l = batch.log_likelihood_per_observation(x);
  CHECK(gap / static_cast<double>(n) <= 0.05 * sd(l) / std::sqrt(static_cast<double>(n)));
  // Means within 4 standard errors of the batch MLE (components matched by their means).
  for (Eigen::Index k = 0; k < 3; ++k) {
    Eigen::Index j;
    (online.params().means.colwise() - batch.params().means.col(k)).colwise().norm().minCoeff(&j);
    const double nk = batch.params().weights(k) * static_cast<double>(n);
    const Eigen::Vector2d se = (batch.params().covariances[static_cast<std::size_t>(k)].diagonal() / nk).cwiseSqrt();
    CHECK(((online.params().means.col(j) - batch.params().means.col(k)).cwiseAbs().array() <= 4.0 * se.array()).all());
  }
}

TEST_CASE("online factor analysis reaches the batch optimum within the batch estimator's sampling error",
          "[online_em][factor_analysis]") {
  auto rng = make_rng(6);
  const Eigen::Index n = 20000;
  const Eigen::MatrixXd x = truth_factor_analysis().sample(n, rng);
  latent::factor_analysis start(2);
  start.initialize(x, rng);
  latent::factor_analysis batch = start;
  const auto em_fit = latent::em(batch, x);
  REQUIRE(em_fit.converged());
  latent::factor_analysis online = start;
  const auto fit = latent::online_em(online, x, rng, {.batch_size = 200, .max_epochs = 10});
  REQUIRE(fit.status == latent::fit_status::max_iterations);
  const double gap = em_fit.objective - fit.objective;
  const int p = static_cast<int>(batch.num_free_parameters());
  INFO("2 (l* - l) = " << 2.0 * gap << " with " << p << " free parameters");
  CHECK(gap >= -1e-9 * std::abs(em_fit.objective));
  CHECK(2.0 * gap <= latent_test::chi_square_critical(p));
  // (The starting point was not already there: the test can fail.)
  CHECK(2.0 * (em_fit.objective - fit.trace[0]) > latent_test::chi_square_critical(p));
  // The implied covariance (rotation-invariant) agrees with the batch fit's to a few SE:
  // entries of a sample covariance have standard error about sqrt((s_ii s_jj + s_ij^2) / N).
  const auto implied = [](const latent::factor_analysis& m) {
    const Eigen::MatrixXd l = m.params().loadings;
    Eigen::MatrixXd c = l * l.transpose();
    c.diagonal() += m.params().uniquenesses;
    return c;
  };
  const Eigen::MatrixXd cb = implied(batch), co = implied(online);
  for (Eigen::Index i = 0; i < 6; ++i)
    for (Eigen::Index j = 0; j <= i; ++j) {
      const double se = std::sqrt((cb(i, i) * cb(j, j) + cb(i, j) * cb(i, j)) / static_cast<double>(n));
      CHECK(std::abs(co(i, j) - cb(i, j)) <= 4.0 * se);
    }
}

TEST_CASE("the held-out log-likelihood improves epoch after epoch on average", "[online_em][held_out]") {
  // Average over seeds of the held-out log-likelihood after each epoch: non-decreasing up to
  // the standard error of the average's increments.
  const int seeds = 8;
  const std::size_t epochs = 6;
  std::vector<std::vector<double>> curves;
  for (int s = 0; s < seeds; ++s) {
    auto rng = make_rng(100 + static_cast<std::uint64_t>(s));
    const latent::gaussian_mixture truth = truth_mixture();
    const Eigen::MatrixXd x = truth.sample(4000, rng), held_out = truth.sample(4000, rng);
    latent::gaussian_mixture g(3, covariance_type::full);
    g.initialize(x, rng);
    std::vector<double> curve{g.log_likelihood(held_out)};
    held_out_recorder record{&g, &held_out, &curve};
    latent::online_em(g, x, rng, {.batch_size = 100, .kappa = 0.7, .max_epochs = epochs, .evaluate = false}, record);
    REQUIRE(curve.size() == epochs + 1);
    curves.push_back(curve);
  }
  for (std::size_t e = 1; e <= epochs; ++e) {
    Eigen::VectorXd inc(seeds);
    for (int s = 0; s < seeds; ++s) inc(s) = curves[static_cast<std::size_t>(s)][e] - curves[static_cast<std::size_t>(s)][e - 1];
    const double se = sd(inc.transpose()) / std::sqrt(static_cast<double>(seeds));
    INFO("epoch " << e << ": mean increment " << inc.mean() << ", SE " << se);
    CHECK(inc.mean() >= -3.0 * se);
  }
  // The first epoch's gain is real, not noise.
  Eigen::VectorXd first(seeds);
  for (int s = 0; s < seeds; ++s) first(s) = curves[static_cast<std::size_t>(s)][1] - curves[static_cast<std::size_t>(s)][0];
  CHECK(first.mean() > 3.0 * sd(first.transpose()) / std::sqrt(static_cast<double>(seeds)));
}

TEST_CASE("bad schedules and options are invalid_argument", "[online_em][errors]") {
  auto rng = make_rng(7);
  const Eigen::MatrixXd x = truth_mixture().sample(200, rng);
  latent::gaussian_mixture g = started(x, rng);
  const auto params = g.params();
  using latent::invalid_argument;
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.kappa = 0.5}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.kappa = 0.2}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.kappa = 1.5}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.kappa = std::nan("")}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.t0 = -1.0}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.batch_size = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.batch_size = 201}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.batch_size = static_cast<std::size_t>(-1)}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.max_epochs = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.max_epochs = static_cast<std::size_t>(-1)}), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, x, rng, {.threads = -1}), invalid_argument);
  CHECK_THROWS_WITH(latent::online_em(g, x, rng, {.kappa = 0.5}), Catch::Contains("kappa"));
  // Data the model rejects: a wrong dimension, a non-finite entry.
  Eigen::MatrixXd bad = x;
  bad(0, 5) = std::nan("");
  CHECK_THROWS_AS(latent::online_em(g, bad, rng), invalid_argument);
  CHECK_THROWS_AS(latent::online_em(g, Eigen::MatrixXd(x.topRows(1)), rng), invalid_argument);
  // Nothing moved.
  CHECK(g.params().means == params.means);
}

TEST_CASE("a non-finite stream value ends the fit with numerical_issue and the last good parameters",
          "[online_em][errors]") {
  auto rng = make_rng(8);
  Eigen::MatrixXd x = truth_mixture().sample(1000, rng);
  latent::gaussian_mixture g = started(x, rng);
  const auto params = g.params();
  x(1, 500) = std::numeric_limits<double>::infinity();  // the stream is not validated up front
  block_stream stream{&x, 100};
  const auto fit = latent::online_em(g, stream, {.max_epochs = 2});
  CHECK(fit.status == latent::fit_status::numerical_issue);
  CHECK(fit.trace.empty());
  CHECK(g.params().means == params.means);
  CHECK(g.params().means.allFinite());
}
