// Beyond one pass in memory. Online (stepwise) EM: exactness of its first step, agreement with
// the batch optimum within the batch estimator's own sampling error, held-out improvement,
// streams, threads, bad input. Out-of-core data: .npy files read, written, streamed and
// memory-mapped, with EM on a mapped file equal to EM in memory.

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
  // The objective em traces (for the mixture with reg_covar > 0: the penalized likelihood).
  CHECK(fit.trace[1] == Approx(em_fit.trace[1]).epsilon(1e-13));
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
  latent::column_minibatches<double, std::mt19937_64> in_order(x, 256, rng, latent::minibatch_order::stored);
  const auto fb = latent::online_em(b, in_order, opts);
  // The same minibatches give the same M-steps, bit for bit; the evaluations differ only in
  // summation order (the in-memory source evaluates with one E-step over all columns).
  CHECK(a.params().means == b.params().means);
  REQUIRE(fa.trace.size() == fb.trace.size());
  for (std::size_t i = 0; i < fa.trace.size(); ++i) CHECK(fa.trace[i] == Approx(fb.trace[i]).epsilon(1e-13));
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

// ---- Out-of-core data: .npy files --------------------------------------------------------------

#include <latent/io/mapped_npy.hpp>
#include <latent/io/npy.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

// A file in the system's temporary directory, removed when the test case ends.
struct temp_file {
  std::string path;
  explicit temp_file(const std::string& name) : path("/tmp/latent_scale_test_" + name) {}
  ~temp_file() { std::remove(path.c_str()); }
};

// The bytes numpy.save writes (numpy 1.24, format 1.0): the header dict padded with spaces to
// 128 bytes in all, then the raw little-endian values.
template <class T>
std::string numpy_bytes(const std::string& dict, const std::vector<T>& values) {
  std::string header = dict;
  header += std::string(117 - dict.size(), ' ') + "\n";
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size());
  out += '\0';
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE(".npy files from numpy: C order is viewed as observation columns, Fortran order transposed",
          "[npy][io]") {
  // numpy: x = [[1.5, -2.0], [3.25, 4.0], [0.125, -6.5]] (3 observations of 2 variables).
  Eigen::MatrixXd expected(2, 3);
  expected << 1.5, 3.25, 0.125, -2.0, 4.0, -6.5;
  temp_file c("c.npy"), f("f.npy"), v("v.npy");
  write_bytes(c.path, numpy_bytes<double>("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
                                          {1.5, -2.0, 3.25, 4.0, 0.125, -6.5}));
  write_bytes(f.path, numpy_bytes<double>("{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }",
                                          {1.5, 3.25, 0.125, -2.0, 4.0, -6.5}));
  write_bytes(v.path, numpy_bytes<float>("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", {1.0f, 2.0f, 3.0f}));
  CHECK(latent::read_npy(c.path) == expected);
  CHECK(latent::read_npy(f.path) == expected);
  CHECK(latent::read_npy<float>(c.path) == expected.cast<float>());
  CHECK(latent::read_npy(v.path) == Eigen::RowVector3d(1.0, 2.0, 3.0));
  const latent::npy_header h = latent::read_npy_header(c.path);
  CHECK(h.data_offset == 128);
  CHECK(h.observations() == 3);
  CHECK(h.variables() == 2);
  const latent::mapped_npy mapped(c.path);
  CHECK(mapped.matrix() == expected);
  CHECK_THROWS_WITH(latent::mapped_npy(f.path), Catch::Contains("Fortran order"));
  CHECK_THROWS_WITH(latent::basic_mapped_npy<float>(c.path), Catch::Contains("basic_mapped_npy<double>"));
}

TEMPLATE_TEST_CASE("write_npy and the streaming writer round-trip bit for bit", "[npy][io]", float, double) {
  auto rng = make_rng(11);
  const latent::matrix_t<TestType> x = latent::standard_normal<TestType>(5, 1000, rng);
  temp_file whole("whole.npy"), streamed("streamed.npy");
  latent::write_npy(whole.path, x);
  {
    latent::basic_npy_writer<TestType> w(streamed.path, 5);
    for (Eigen::Index c = 0; c < 1000; c += 300) w.append(x.middleCols(c, std::min<Eigen::Index>(300, 1000 - c)));
    CHECK(w.observations() == 1000);
    w.close();
  }
  for (const auto& path : {whole.path, streamed.path}) {
    CHECK(latent::read_npy<TestType>(path) == x);
    const latent::npy_header h = latent::read_npy_header(path);
    CHECK(h.data_offset % 64 == 0);
    CHECK(h.word_size == static_cast<int>(sizeof(TestType)));
    CHECK(h.shape == std::vector<std::int64_t>{1000, 5});
    const latent::basic_mapped_npy<TestType> m(path);
    CHECK(m.matrix() == x);
  }
  // A writer that is not closed explicitly still finishes its header.
  {
    latent::basic_npy_writer<TestType> w(streamed.path, 5);
    w.append(x.leftCols(7));
  }
  CHECK(latent::read_npy<TestType>(streamed.path) == x.leftCols(7));
}

// 20000 draws of the truth mixture, written to a .npy file and mapped, and a mixture started
// on them.
struct mapped_sample {
  std::mt19937_64 rng;
  Eigen::MatrixXd x;
  temp_file file;
  latent::mapped_npy mapped;
  latent::gaussian_mixture start;

  mapped_sample(std::uint64_t seed, const std::string& name)
      : rng(make_rng(seed)), x(truth_mixture().sample(20000, rng)), file(name), mapped(written(file.path, x)),
        start(started(x, rng)) {}

  static std::string written(const std::string& path, const Eigen::MatrixXd& x) {
    latent::write_npy(path, x);
    return path;
  }
};

TEST_CASE("EM on a memory-mapped file equals EM in memory, bit for bit; online EM reads it in runs",
          "[npy][em]") {
  mapped_sample f(12, "mixture.npy");
  auto& [rng, x, file, mapped, start] = f;
  latent::gaussian_mixture in_memory = start, from_file = start;
  const auto a = latent::em(in_memory, x);
  const auto b = latent::em(from_file, mapped.observations());
  CHECK(a.trace == b.trace);
  CHECK(in_memory.params().means == from_file.params().means);

  latent::gaussian_mixture online = start;
  const auto fit = latent::online_em(online, mapped.observations(), rng,
                                     {.batch_size = 500, .order = latent::minibatch_order::shuffled_runs, .max_epochs = 3});
  CHECK(fit.status == latent::fit_status::max_iterations);
  CHECK(2.0 * (a.objective - fit.objective) <= latent_test::chi_square_critical(static_cast<int>(start.num_free_parameters())));
}

TEST_CASE("the read-ahead reader reads a pass in order, ahead of the blocks and never beyond its window",
          "[npy][read_ahead]") {
  using reader = latent::read_ahead_executor<double>::reader;
  const mapped_sample f(15, "reader.npy");
  const char* bytes = reinterpret_cast<const char*>(f.mapped.matrix().data());
  const std::uint64_t size = f.mapped.data_bytes();  // 320000: 79 pages, not a whole number
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  REQUIRE(size > 8 * page);
  using namespace std::chrono_literals;
  {
    reader r(bytes, size, page);
    CHECK(r.lead() == 2 * page);  // steps of one page when the window is one page
    const std::uint64_t first = 2 * page + 100, second = 5 * page + 7;
    r.wait_for(first);
    CHECK(r.bytes_read() >= first);
    std::this_thread::sleep_for(100ms);  // time to run on, if it did not stop
    CHECK(r.bytes_read() < first + r.lead());
    r.wait_for(second);  // asking for more lets it go on
    CHECK(r.bytes_read() >= second);
    std::this_thread::sleep_for(100ms);
    CHECK(r.bytes_read() < second + r.lead());
    r.wait_for(size);
    CHECK(r.bytes_read() == size);
    r.wait_for(size + 1);  // beyond the end: returns once the reader has finished
  }
  {
    reader r(bytes, size, std::uint64_t{1} << 30);  // a window larger than the region: all of it
    r.wait_for(1);
    r.wait_for(size);
    CHECK(r.bytes_read() == size);
  }
  { reader r(bytes, size, page); }  // destroyed while it waits for a block to ask: stops
}

TEST_CASE("the read-ahead executor gives the wrapped executor's results bit for bit", "[npy][read_ahead][em]") {
  const mapped_sample f(14, "read_ahead.npy");
  const auto& [rng, x, file, mapped, start] = f;
  const latent::thread_executor threads{.threads = 2, .block_size = 256};
  latent::gaussian_mixture plain = start, ahead = start;
  const auto a = latent::em(plain, mapped.observations(), threads, {.max_iterations = 5});
  // A window of one page and blocks of one page (256 columns of 2 doubles): the blocks wait for
  // the reader, and it for them, at every block.
  const latent::read_ahead_executor ex(mapped, threads, 4096);
  const auto b = latent::em(ahead, mapped.observations(), ex, {.max_iterations = 5});
  CHECK(a.trace == b.trace);
  CHECK(plain.params().means == ahead.params().means);
  CHECK(plain.params().covariances == ahead.params().covariances);
  // Other data than the file's (another column count): the wrapped executor alone.
  auto s1 = start.zero_stats(), s2 = start.zero_stats();
  CHECK(latent::e_step(start, latent::observations(x.leftCols(999)), s1, threads) ==
        latent::e_step(start, latent::observations(x.leftCols(999)), s2, ex));
  CHECK(s1.sums == s2.sums);
  // A block that throws ends the pass with its exception; the reader stops.
  auto s3 = start.zero_stats();
  CHECK_THROWS_AS(ex.reduce(
                      mapped.size(), [&] { return start.zero_stats(); },
                      [](Eigen::Index begin, Eigen::Index, auto&) {
                        if (begin >= 2560) throw std::runtime_error("block failed");
                        return 0.0;
                      },
                      s3),
                  std::runtime_error);
  CHECK_THROWS_AS(latent::read_ahead_executor(mapped, threads, 0), latent::invalid_argument);
  STATIC_REQUIRE(latent::Executor<latent::read_ahead_executor<double>>);
}

TEST_CASE("malformed, truncated or unsupported .npy files are invalid_argument, never a crash", "[npy][errors]") {
  using latent::invalid_argument;
  temp_file file("bad.npy");
  const std::string good = numpy_bytes<double>("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
                                               {1.5, -2.0, 3.25, 4.0, 0.125, -6.5});
  CHECK_THROWS_AS(latent::read_npy("/nonexistent/latent.npy"), invalid_argument);
  CHECK_THROWS_AS(latent::mapped_npy("/nonexistent/latent.npy"), invalid_argument);
  // Every truncation of a valid file.
  for (std::size_t len = 0; len < good.size(); ++len) {
    write_bytes(file.path, good.substr(0, len));
    INFO("truncated to " << len << " bytes");
    CHECK_THROWS_AS(latent::read_npy(file.path), invalid_argument);
    CHECK_THROWS_AS(latent::mapped_npy(file.path), invalid_argument);
  }
  // Every single-byte corruption of the header either reads or is rejected: never a crash.
  for (std::size_t i = 0; i < 128; ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    write_bytes(file.path, bad);
    try {
      (void)latent::read_npy(file.path);
    } catch (const invalid_argument&) {
    }
  }
  const auto rejects = [&](const std::string& dict, const char* what) {
    write_bytes(file.path, numpy_bytes<double>(dict, {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}));
    INFO(dict);
    CHECK_THROWS_WITH(latent::read_npy(file.path), Catch::Contains(what));
  };
  rejects("{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2), }", "float32 or float64");
  rejects("{'descr': '>f8', 'fortran_order': False, 'shape': (3, 2), }", "little-endian");
  rejects("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3, 2), }", "1-d (N,) or 2-d (N, d)");
  rejects("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2), }", "empty");
  rejects("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 2), }", "truncated");
  rejects("{'descr': '<f8', 'shape': (3, 2), }", "fortran_order");
  rejects("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999, 2), }", "overflows");
  write_bytes(file.path, "PK\x03\x04 not a numpy file at all");
  CHECK_THROWS_WITH(latent::read_npy(file.path), Catch::Contains("not a .npy file"));
  CHECK_THROWS_AS(latent::basic_npy_writer<double>("/nonexistent/dir/x.npy", 2), invalid_argument);
  CHECK_THROWS_AS(latent::basic_npy_writer<double>(file.path, 0), invalid_argument);
  latent::basic_npy_writer<double> w(file.path, 2);
  CHECK_THROWS_AS(w.append(Eigen::MatrixXd::Zero(3, 4)), invalid_argument);
}

// ---- CSV to .npy, streamed ------------------------------------------------------------------------

#include <latent/io/csv_to_npy.hpp>

#include <iomanip>
#include <sstream>

TEST_CASE("csv_to_npy streams a CSV into a .npy file that reads back bit for bit", "[npy][csv][io]") {
  auto rng = make_rng(13);
  const Eigen::MatrixXd x = latent::standard_normal(3, 2500, rng) * 1e3;
  std::ostringstream csv;
  csv << std::setprecision(17) << "a,\"b\",c\n";
  for (Eigen::Index n = 0; n < x.cols(); ++n) {
    csv << x(0, n) << ',' << x(1, n) << ',' << x(2, n) << '\n';
    if (n == 10) csv << "  \n";  // blank lines are skipped
  }
  temp_file out("converted.npy");
  // Chunks that divide N, that do not, and one record at a time.
  for (const Eigen::Index chunk : {Eigen::Index{1}, Eigen::Index{1000}, Eigen::Index{2500}, Eigen::Index{65536}}) {
    std::istringstream in(csv.str());
    const latent::csv_to_npy_result r = latent::csv_to_npy(in, out.path, "test.csv", chunk);
    CHECK(r.names == std::vector<std::string>{"a", "b", "c"});
    CHECK(r.observations == 2500);
    CHECK(latent::read_npy(out.path) == x);  // 17 digits: every double round-trips
  }
  // float32 output rounds the parsed doubles, as parse_csv<float> does.
  std::istringstream in(csv.str()), again(csv.str());
  latent::csv_to_npy<float>(in, out.path, "test.csv", 700);
  CHECK(latent::read_npy<float>(out.path) == latent::parse_csv<float>(again).data);
  CHECK(latent::read_npy_header(out.path).word_size == 4);
}

TEST_CASE("csv_to_npy rejects malformed CSV and leaves no partial .npy behind", "[npy][csv][errors]") {
  temp_file out("bad_converted.npy");
  const auto exists = [&] { return std::ifstream(out.path).good(); };
  std::string text = "a,b\n";
  for (int i = 0; i < 50; ++i) text += "1,2\n";
  std::istringstream bad(text + "3,oops\n");  // line 52, after two full chunks of 20 records
  CHECK_THROWS_WITH(latent::csv_to_npy(bad, out.path, "bad.csv", 20),
                    Catch::Contains("bad.csv: line 52, column 2: field 'b' is not a number"));
  CHECK_FALSE(exists());
  std::istringstream ragged(text + "3\n");
  CHECK_THROWS_WITH(latent::csv_to_npy(ragged, out.path, "bad.csv", 20), Catch::Contains("line 52 has 1 fields"));
  CHECK_FALSE(exists());
  std::istringstream empty("a,b\n\n");
  CHECK_THROWS_WITH(latent::csv_to_npy(empty, out.path, "empty.csv"), Catch::Contains("no records"));
  CHECK_FALSE(exists());
  std::istringstream fine(text);
  CHECK_THROWS_WITH(latent::csv_to_npy(fine, out.path, "fine.csv", 0), Catch::Contains("chunk_records"));
  CHECK_THROWS_WITH(latent::csv_to_npy("/nonexistent/in.csv", out.path), Catch::Contains("cannot open"));
}
