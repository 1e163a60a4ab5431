// Core: numerics, densities, observations, CSV, callbacks, the block reducer and the EM loop.
#include <latent/core/callbacks.hpp>
#include <latent/core/chunks.hpp>
#include <latent/core/concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/missing.hpp>
#include <latent/core/missing_policy.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/parallel.hpp>
#include <latent/core/random.hpp>
#include <latent/core/executor.hpp>
#include <latent/core/statistics.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/io/csv.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>
#include <latent/version.hpp>

#include "support/test_support.hpp"

#include <Eigen/LU>

#include <algorithm>
#include <atomic>
#include <limits>
#include <span>
#include <sstream>

using latent_test::IsApprox;
using latent_test::make_rng;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// A toy EM model: x_n ~ N(mean, 1) with no latent variable, so EM reaches the sample mean in
// one step. Failures can be injected to exercise the solver's recovery.
struct toy_model {
  struct params_type {
    double mean = 0.0;
  };
  struct stats_type {
    double n = 0.0, sum = 0.0;
    stats_type& operator+=(const stats_type& o) {
      n += o.n;
      sum += o.sum;
      return *this;
    }
    stats_type& operator*=(double w) {
      n *= w;
      sum *= w;
      return *this;
    }
  };
  using data_type = latent::observations;

  params_type p;
  int m_steps = 0;
  int fail_m_step_at = -1;      // throw numerical_error on this M-step (1-based)
  double nan_after_mean = inf;  // e_step returns NaN once the mean exceeds this
  double shrink = 1.0;          // M-step moves only this fraction of the way (slow convergence)

  const params_type& params() const { return p; }
  void set_params(const params_type& q) { p = q; }
  Eigen::Index num_observations(const data_type& x) const { return x.size(); }
  stats_type zero_stats() const { return {}; }
  double e_step(const data_type& x, Eigen::Index b, Eigen::Index e, stats_type& s) const {
    if (p.mean > nan_after_mean) return std::numeric_limits<double>::quiet_NaN();
    const auto xs = x.x().row(0).segment(b, e - b).array();
    s.n += double(e - b);
    s.sum += xs.sum();
    return (-0.5 * latent::log_two_pi - 0.5 * (xs - p.mean).square()).sum();
  }
  void m_step(const stats_type& s) {
    ++m_steps;
    if (m_steps == fail_m_step_at) throw latent::numerical_error("injected failure");
    p.mean += shrink * (s.sum / s.n - p.mean);
  }
};
static_assert(latent::EMModel<toy_model>);

// A toy with solver-owned local variational state: the state counts, per observation, the
// E-steps that visited it; the model records the counts it saw in its last E-step.
struct stateful_toy : toy_model {
  mutable Eigen::VectorXd last_counts;
  mutable int states_made = 0;
  Eigen::VectorXd make_variational_state(const data_type& x, const latent::mean_field&) const {
    ++states_made;
    return Eigen::VectorXd::Zero(x.size());
  }
  double e_step(const data_type& x, Eigen::Index b, Eigen::Index e, stats_type& s, const latent::mean_field&,
                Eigen::VectorXd& state) const {
    state.segment(b, e - b).array() += 1.0;
    if (last_counts.size() != state.size()) last_counts = Eigen::VectorXd::Zero(state.size());
    last_counts.segment(b, e - b) = state.segment(b, e - b);
    return toy_model::e_step(x, b, e, s);
  }
};
static_assert(latent::VariationalEMModel<stateful_toy, latent::mean_field>);
static_assert(latent::StatefulVariationalEMModel<stateful_toy, latent::mean_field>);
static_assert(!latent::StatefulVariationalEMModel<toy_model, latent::mean_field>);

// The toy declaring that it reads weights (it does not: only the solver's check is tested).
struct weighted_toy : toy_model {
  static constexpr bool supports_weights = true;
};

struct counting_callback {
  int begins = 0, iterations = 0, ends = 0;
  void on_begin() { ++begins; }
  void on_iteration(const latent::iteration_info&) { ++iterations; }
  void on_end(const latent::iteration_info&) { ++ends; }
};

struct stop_at_two {
  bool on_iteration(const latent::iteration_info& i) { return i.iteration == 2; }
};

// The toy model with random starts, a MAP prior and a parameter distance: a toy for the
// solver's restart, stopping and prior rules.
struct restartable_toy : toy_model {
  double prior_weight = 0.0;  // log p(mean) = -prior_weight * mean^2 / 2 (0: no prior)
  std::vector<double> starts;  // the restart starting means, in order; a NaN start fails
  std::size_t next = 0;
  // A start below zero "collapses": its objective is inflated (finite, larger than any honest
  // one) and its first M-step fails, as a mixture component shrinking onto one point does.
  double e_step(const data_type& x, Eigen::Index b, Eigen::Index e, stats_type& s) const {
    const double v = toy_model::e_step(x, b, e, s);
    return p.mean < 0.0 ? 1e6 : v;
  }
  template <class Rng>
  void initialize(const data_type&, Rng&) {
    const double s = starts.at(next++);
    if (std::isnan(s)) throw latent::numerical_error("cannot form a start");
    p.mean = s;
  }
  double log_prior() const { return -0.5 * prior_weight * p.mean * p.mean; }
  void m_step(const stats_type& s) {
    ++m_steps;
    if (p.mean < 0.0) throw latent::numerical_error("collapsed");
    // MAP update: argmax of the expected complete-data log-likelihood plus the log prior.
    p.mean += shrink * (s.sum / (s.n + prior_weight) - p.mean);
  }
  double params_distance(const params_type& a, const params_type& b) const {
    return std::abs(a.mean - b.mean) / std::max({std::abs(a.mean), std::abs(b.mean), 1e-300});
  }
};
static_assert(latent::EMModel<restartable_toy>);
static_assert(latent::RandomlyInitializable<restartable_toy, std::minstd_rand>);

struct restart_recorder {
  std::vector<std::size_t> restarts_seen;
  int begins = 0;
  void on_begin() { ++begins; }
  void on_iteration(const latent::iteration_info& i) { restarts_seen.push_back(i.restart); }
};

// Statistics that count how many of them are alive at once (the wave bound); blocks run on
// several threads, so the counters are atomic.
struct counted {
  static inline std::atomic<int> alive{0}, peak{0};
  double s = 0.0;
  static void born() {
    const int now = ++alive;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  counted() { born(); }
  counted(const counted& o) : s(o.s) { born(); }
  counted& operator=(const counted&) = default;
  ~counted() { --alive; }
  counted& operator+=(const counted& o) {
    s += o.s;
    return *this;
  }
};

// The smallest statistics with a flat view.
struct two_arrays {
  Eigen::Vector3d a = Eigen::Vector3d::Zero();
  double w = 0.0;
  two_arrays& operator+=(const two_arrays& o) {
    a += o.a;
    w += o.w;
    return *this;
  }
  two_arrays& operator*=(double f) {
    a *= f;
    w *= f;
    return *this;
  }
  template <class F>
  void for_each_span(F&& f) {
    f(std::span<double>(a.data(), 3));
    f(std::span<double>(&w, 1));
  }
  template <class F>
  void for_each_span(F&& f) const {
    f(std::span<const double>(a.data(), 3));
    f(std::span<const double>(&w, 1));
  }
};

}  // namespace

TEST_CASE("log_sum_exp: values, empty input and infinities", "[core][numerics]") {
  Eigen::VectorXd v(3);
  v << 1.0, 2.0, 3.0;
  CHECK(latent::log_sum_exp(v) == Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0))).epsilon(1e-15));
  v << 1000.0, 1000.0, -inf;  // huge magnitudes: no overflow
  CHECK(latent::log_sum_exp(v) == Approx(1000.0 + std::log(2.0)).epsilon(1e-15));
  v << -1000.0, -1001.0, -inf;
  CHECK(latent::log_sum_exp(v) == Approx(-1000.0 + std::log1p(std::exp(-1.0))).epsilon(1e-15));
  CHECK(latent::log_sum_exp(Eigen::VectorXd()) == -inf);
  v.setConstant(-inf);
  CHECK(latent::log_sum_exp(v) == -inf);
  v << 0.0, inf, 1.0;
  CHECK(latent::log_sum_exp(v) == inf);
  CHECK(latent::log_sum_exp(Eigen::VectorXd::Constant(1, 0.25)) == 0.25);
}

TEST_CASE("normalize_columns_log: distributions, -inf columns and strided blocks", "[core][numerics]") {
  Eigen::MatrixXd big = Eigen::MatrixXd::Zero(5, 4);
  big.topRows(3) << 0, -inf, 1, -1000, 1, -inf, 1, 0, 2, -inf, 1, -2000;
  Eigen::RowVectorXd lse(4);
  // A block of a larger matrix has an outer stride; the result must not depend on it.
  latent::normalize_columns_log(big.topRows(3), lse);
  const Eigen::MatrixXd p = big.topRows(3);
  CHECK(lse(0) == Approx(std::log(1 + std::exp(1.0) + std::exp(2.0))).epsilon(1e-15));
  CHECK(lse(1) == -inf);
  CHECK(p.col(1).isZero(0.0));
  CHECK(lse(2) == Approx(1 + std::log(3.0)).epsilon(1e-15));
  CHECK(p(1, 3) == 1.0);  // others are below e^-600 relative: exactly 0
  CHECK(p(0, 3) == 0.0);
  CHECK(big.bottomRows(2).isZero(0.0));  // rows outside the block untouched
  for (int j : {0, 2, 3}) CHECK(p.col(j).sum() == Approx(1.0).epsilon(1e-15));
  CHECK(p(0, 0) == Approx(1.0 / (1 + std::exp(1.0) + std::exp(2.0))).epsilon(1e-14));
}

TEST_CASE("Gaussian densities agree with direct formulas", "[core][gaussian]") {
  auto rng = make_rng(1);
  const Eigen::MatrixXd x = latent::standard_normal(3, 7, rng);
  Eigen::Matrix3d a;
  a << 2, 0, 0, 0.5, 1, 0, -0.3, 0.2, 0.7;
  const Eigen::Matrix3d sigma = a * a.transpose();
  const Eigen::Vector3d mu(0.1, -0.2, 0.3);
  const latent::cholesky_result ch = latent::regularized_cholesky(sigma);
  REQUIRE(ch.ok);
  const Eigen::RowVectorXd l = latent::mvn_log_density(x, mu, ch.llt);
  const Eigen::Matrix3d inv = sigma.inverse();
  for (int n = 0; n < 7; ++n) {
    const Eigen::Vector3d r = x.col(n) - mu;
    const double direct = -1.5 * std::log(2 * M_PI) - 0.5 * std::log(sigma.determinant()) - 0.5 * r.dot(inv * r);
    CHECK(l(n) == Approx(direct).epsilon(1e-13));
  }
  const Eigen::Vector3d v(0.5, 2.0, 1.5);
  const Eigen::RowVectorXd ld = latent::mvn_diag_log_density(x, mu, v);
  const Eigen::Matrix3d dsig = v.asDiagonal();
  const latent::cholesky_result dch = latent::regularized_cholesky(dsig);
  CHECK_THAT(Eigen::MatrixXd(ld), IsApprox(latent::mvn_log_density(x, mu, dch.llt), 1e-14));
  const Eigen::ArrayXXd n1 = latent::normal_log_density(x.array(), 0.5, 2.0);
  CHECK(n1(1, 2) == Approx(-0.5 * std::log(2 * M_PI * 2.0) - 0.25 * std::pow(x(1, 2) - 0.5, 2)).epsilon(1e-14));
}

TEST_CASE("regularized_cholesky: ridge and failure", "[core][numerics]") {
  Eigen::Matrix2d singular;
  singular << 1, 1, 1, 1;
  CHECK_FALSE(latent::regularized_cholesky(singular).ok);
  const auto r = latent::regularized_cholesky(singular, {.ridge = 1e-3});
  REQUIRE(r.ok);
  CHECK(latent::log_det_from_cholesky(r.llt) == Approx(std::log((1 + 1e-3) * (1 + 1e-3) - 1)).epsilon(1e-12));
  CHECK_FALSE(latent::regularized_cholesky(-Eigen::Matrix2d::Identity()).ok);
  Eigen::Matrix2d nan_matrix = Eigen::Matrix2d::Identity();
  nan_matrix(0, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(latent::regularized_cholesky(nan_matrix).ok);
}

TEST_CASE("sample_categorical follows its weights (chi-square)", "[core][random]") {
  auto rng = make_rng(2);
  Eigen::Vector4d w(1.0, 2.0, 0.0, 5.0);
  Eigen::Vector4d counts = Eigen::Vector4d::Zero();
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts(latent::sample_categorical(w, rng)) += 1;
  CHECK(counts(2) == 0);
  double chi2 = 0;
  for (int k : {0, 1, 3}) {
    const double e = n * w(k) / w.sum();
    chi2 += (counts(k) - e) * (counts(k) - e) / e;
  }
  CHECK(chi2 < latent_test::chi_square_critical(2));
  // Standard normal draws: mean and variance within 5 standard errors.
  const Eigen::MatrixXd z = latent::standard_normal(1, n, rng);
  CHECK(std::abs(z.mean()) < 5.0 / std::sqrt(double(n)));
  CHECK(std::abs(z.array().square().mean() - 1.0) < 5.0 * std::sqrt(2.0 / n));
}

TEST_CASE("observations: weights and validation", "[core][observations]") {
  Eigen::MatrixXd x(2, 3);
  x << 1, 2, 3, 4, 5, 6;
  const latent::observations plain(x);
  CHECK(plain.size() == 3);
  CHECK(plain.dim() == 2);
  CHECK_FALSE(plain.weighted());
  CHECK(plain.total_weight() == 3.0);
  const Eigen::Vector3d w(0.5, 0.0, 2.0);
  const latent::observations weighted(x, w);
  CHECK(weighted.total_weight() == 2.5);
  CHECK(weighted.weight(2) == 2.0);
  CHECK(weighted.x().data() == x.data());  // a view, not a copy
  CHECK_THROWS_WITH(latent::observations(x, Eigen::Vector2d(1, 1)), Catch::Contains("one entry per column"));
  CHECK_THROWS_WITH(latent::observations(x, Eigen::Vector3d(1, inf, 1)), Catch::Contains("entry 1"));
}

TEST_CASE("CSV: parse, orientation and errors", "[core][io]") {
  std::istringstream good("\"a\",\"b\"\n1,2.5\n\n3,-4e2\r\n");
  const latent::csv_table t = latent::parse_csv(good);
  REQUIRE(t.names == std::vector<std::string>{"a", "b"});
  REQUIRE(t.data.rows() == 2);
  REQUIRE(t.data.cols() == 2);
  CHECK(t.data(1, 0) == 2.5);
  CHECK(t.data(1, 1) == -400.0);
  std::istringstream ragged("a,b\n1,2\n3\n");
  CHECK_THROWS_WITH(latent::parse_csv(ragged), Catch::Contains("line 3 has 1 fields"));
  std::istringstream text("a,b\n1,x\n");
  CHECK_THROWS_WITH(latent::parse_csv(text), Catch::Contains("field 'b' is not a number"));
  CHECK_THROWS_AS(latent::read_csv("/nonexistent/file.csv"), latent::invalid_argument);
}

TEST_CASE("reduce_blocks: fixed blocks, any thread count, exceptions propagate", "[core][parallel]") {
  auto rng = make_rng(3);
  const Eigen::RowVectorXd v = latent::standard_normal(1, 10007, rng) * 1e8;
  struct sum_stats {
    double s = 0.0;
    sum_stats& operator+=(const sum_stats& o) {
      s += o.s;
      return *this;
    }
  };
  std::vector<double> results;
  for (int threads : {1, 2, 3, 8}) {
    sum_stats total;
    const double value = latent::detail::reduce_blocks(
        v.size(), {threads, 100}, [] { return sum_stats{}; },
        [&](Eigen::Index b, Eigen::Index e, sum_stats& s) {
          s.s += v.segment(b, e - b).sum();
          return double(e - b);
        },
        total);
    CHECK(value == double(v.size()));
    results.push_back(total.s);
  }
  for (double r : results) CHECK(r == results[0]);  // bit for bit
  sum_stats total;
  CHECK_THROWS_AS(latent::detail::reduce_blocks(
                      v.size(), {2, 100}, [] { return sum_stats{}; },
                      [&](Eigen::Index b, Eigen::Index, sum_stats&) -> double {
                        if (b == 5000) throw latent::numerical_error("block failed");
                        return 0.0;
                      },
                      total),
                  latent::numerical_error);
}

TEST_CASE("em: converges, traces and notifies callbacks", "[core][em]") {
  auto rng = make_rng(4);
  const Eigen::MatrixXd x = latent::standard_normal(1, 1000, rng).array() + 3.0;
  toy_model m;
  m.shrink = 0.5;  // halves the distance every iteration: a geometric approach
  counting_callback count;
  latent::record_trace trace;
  const auto fit = latent::em(m, x, {.tolerance = 1e-12}, count, trace);
  CHECK(fit.converged());
  CHECK(fit.decreases == 0);
  CHECK(fit.params.mean == Approx(x.mean()).epsilon(1e-6));
  CHECK(fit.trace.size() == fit.iterations + 1);
  CHECK(trace.values == fit.trace);
  CHECK(count.begins == 1);
  CHECK(count.ends == 1);
  CHECK(count.iterations == static_cast<int>(fit.trace.size()));
  CHECK(fit.objective == fit.trace.back());
  // The objective is the log-likelihood of the returned parameters.
  CHECK(fit.objective == Approx((-0.5 * latent::log_two_pi - 0.5 * (x.array() - fit.params.mean).square()).sum()).epsilon(1e-13));
  CHECK(fit.seconds >= 0.0);
}

TEST_CASE("em: stopping by callback, by early stopping and by the iteration budget", "[core][em]") {
  auto rng = make_rng(5);
  const Eigen::MatrixXd x = latent::standard_normal(1, 100, rng);
  toy_model m;
  m.shrink = 0.1;
  const auto a = latent::em(m, x, {}, stop_at_two{});
  CHECK(a.status == latent::fit_status::stopped_by_callback);
  CHECK(a.iterations == 2);
  toy_model m2;
  m2.shrink = 0.1;
  const auto b = latent::em(m2, x, {.max_iterations = 3});
  CHECK(b.status == latent::fit_status::max_iterations);
  CHECK(b.trace.size() == 4);
  CHECK(m2.m_steps == 3);
  toy_model m3;
  m3.shrink = 0.1;
  const auto c = latent::em(m3, x, {.tolerance = 0.0}, latent::early_stopping{.patience = 2, .min_improvement = 1e3});
  CHECK(c.status == latent::fit_status::stopped_by_callback);
  CHECK(c.iterations == 2);
  std::ostringstream out;
  toy_model m4;
  latent::em(m4, x, {}, latent::print_progress(out));
  CHECK_THAT(out.str(), Catch::Contains("     0"));
}

TEST_CASE("em: numerical trouble stops with a status and keeps the last good parameters", "[core][em]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(50, 9.0, 11.0);
  SECTION("M-step failure") {
    toy_model m;
    m.shrink = 0.5;
    m.fail_m_step_at = 3;
    const auto fit = latent::em(m, x);
    CHECK(fit.status == latent::fit_status::numerical_issue);
    CHECK_THAT(fit.message, Catch::Contains("injected failure") && Catch::Contains("iteration 3"));
    CHECK(fit.params.mean == Approx(10.0 * 0.75).epsilon(1e-14));  // after two half steps from 0
    CHECK(m.p.mean == fit.params.mean);
  }
  SECTION("non-finite objective") {
    toy_model m;
    m.shrink = 0.5;
    m.nan_after_mean = 6.0;  // the third parameter value (7.5) gives NaN
    const auto fit = latent::em(m, x);
    CHECK(fit.status == latent::fit_status::numerical_issue);
    CHECK(fit.params.mean == Approx(5.0).epsilon(1e-14));  // half way from 0 to the sample mean 10
    CHECK(m.p.mean == fit.params.mean);  // restored
    CHECK(fit.trace.size() == 2);
  }
}

TEST_CASE("em: option validation names the option", "[core][em]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(10, 0.0, 1.0);
  toy_model m;
  CHECK_THROWS_WITH(latent::em(m, x, {.max_iterations = 0}), Catch::Contains("max_iterations"));
  CHECK_THROWS_WITH(latent::em(m, x, {.tolerance = std::numeric_limits<double>::quiet_NaN()}), Catch::Contains("tolerance"));
  CHECK_THROWS_WITH(latent::em(m, x, {.threads = -1}), Catch::Contains("threads"));
  CHECK_THROWS_WITH(latent::em(m, x, {.block_size = 0}), Catch::Contains("block_size"));
  CHECK_THROWS_WITH(latent::em(m, x, {.restarts = 3}), Catch::Contains("restarts"));
}

TEST_CASE("fit_status names", "[core]") {
  CHECK(latent::to_string(latent::fit_status::converged) == "converged");
  CHECK(latent::to_string(latent::fit_status::numerical_issue) == "numerical_issue");
}

TEST_CASE("version string matches the version macros", "[core]") {
  const std::string expected = std::to_string(LATENT_VERSION_MAJOR) + "." + std::to_string(LATENT_VERSION_MINOR) +
                               "." + std::to_string(LATENT_VERSION_PATCH);
  CHECK(std::string(latent::version) == expected);
}

TEST_CASE("normalize_rows_log is normalize_columns_log transposed", "[core][numerics]") {
  auto rng = make_rng(6);
  Eigen::MatrixXd a = 30.0 * latent::standard_normal(5, 40, rng);
  a.col(3).setConstant(-inf);        // an impossible item
  a(2, 7) = -inf;                    // one impossible alternative
  a.col(9) *= 100.0;                 // terms far below the maximum
  Eigen::MatrixXd cols = a, rows = a.transpose();
  Eigen::RowVectorXd lse_c(40);
  Eigen::VectorXd lse_r(40);
  latent::normalize_columns_log(cols, lse_c);
  latent::normalize_rows_log(rows, lse_r);
  CHECK(lse_r(3) == -inf);
  CHECK(rows.row(3).isZero(0.0));
  for (Eigen::Index n = 0; n < 40; ++n) {
    if (n == 3) continue;
    CHECK(lse_r(n) == Approx(lse_c(n)).epsilon(1e-14));
    CHECK(rows.row(n).sum() == Approx(1.0).epsilon(1e-14));
  }
  CHECK((rows.transpose() - cols).cwiseAbs().maxCoeff() <= 1e-15);
  CHECK(((rows.array() == 0.0) == (cols.transpose().array() == 0.0)).all());  // same flushes
  // Writable blocks, passed as temporaries, and a fixed-size block.
  Eigen::MatrixXd wide = Eigen::MatrixXd::Zero(40, 9);
  wide.middleCols(2, 5) = a.transpose();
  Eigen::VectorXd lse_b = Eigen::VectorXd::Zero(45);
  latent::normalize_rows_log(wide.middleCols(2, 5), lse_b.segment(5, 40));
  // (The same arithmetic, but a compiler may fuse multiply-adds differently in unrolled and
  // looped code: compare to the last bits rather than for identity.)
  CHECK((wide.middleCols(2, 5) - rows).cwiseAbs().maxCoeff() <= 1e-15);
  CHECK(wide.leftCols(2).isZero(0.0));
  CHECK(wide.rightCols(2).isZero(0.0));
  CHECK(lse_b.head(5).isZero(0.0));
  CHECK(lse_b(3 + 5) == -inf);
  Eigen::Matrix<double, 8, 5> fixed = a.transpose().topRows(8);
  Eigen::Array<double, 8, 1> lse_f;
  latent::normalize_rows_log(fixed, lse_f);
  CHECK((fixed - rows.topRows(8)).cwiseAbs().maxCoeff() <= 1e-15);
  CHECK(lse_f(3) == -inf);
  for (Eigen::Index n = 0; n < 40; ++n) {
    if (n == 3) continue;
    CHECK(lse_b(n + 5) == Approx(lse_r(n)).epsilon(1e-15));
    if (n < 8) CHECK(lse_f(n) == Approx(lse_r(n)).epsilon(1e-15));
  }
}

TEST_CASE("executors: the same bits for any thread count and serially, in bounded memory", "[core][executor]") {
  auto rng = make_rng(11);
  const Eigen::RowVectorXd v = latent::standard_normal(1, 10007, rng) * 1e8;
  const auto block = [&](Eigen::Index b, Eigen::Index e, counted& c) {
    c.s += v.segment(b, e - b).sum();
    return double(e - b);
  };
  std::vector<double> results;
  for (int threads : {1, 2, 3, 8}) {
    counted total;
    counted::peak = counted::alive.load();
    const int base = counted::alive;
    const double value = latent::thread_executor{threads, 50}.reduce(v.size(), [] { return counted{}; }, block, total);
    CHECK(value == double(v.size()));
    // 201 blocks, but never more than one wave alive: its 4 * threads slots, plus at most
    // one fresh zero() per thread while it resets a slot, plus the wave vector's prototype.
    CHECK(counted::peak - base <= 5 * threads + 1);
    results.push_back(total.s);
  }
  counted serial_total;
  latent::serial_executor{50}.reduce(v.size(), [] { return counted{}; }, block, serial_total);
  results.push_back(serial_total.s);
  for (double r : results) CHECK(r == results[0]);  // bit for bit
  static_assert(latent::Executor<latent::thread_executor>);
  static_assert(latent::Executor<latent::serial_executor>);
  static_assert(!latent::Executor<latent::em_options>);
  // A block size as large as an Index does not overflow the block count.
  counted one;
  CHECK(latent::serial_executor{std::numeric_limits<Eigen::Index>::max()}.reduce(
            v.size(), [] { return counted{}; }, block, one) == double(v.size()));
  CHECK(one.s == v.sum());
  CHECK_THROWS_WITH(latent::serial_executor{0}.reduce(v.size(), [] { return counted{}; }, block, one),
                    Catch::Contains("block_size"));
}

TEST_CASE("flat view: to_flat, from_flat and additivity", "[core][statistics]") {
  static_assert(latent::FlatStatistics<two_arrays>);
  static_assert(!latent::FlatStatistics<toy_model::stats_type>);
  two_arrays x, y;
  x.a << 1, 2, 3;
  x.w = 4;
  y.a << 0.5, -1, 8;
  y.w = 2;
  CHECK(latent::flat_size(x) == 4);
  const std::vector<double> fx = latent::to_flat(x), fy = latent::to_flat(y);
  CHECK(fx == std::vector<double>{1, 2, 3, 4});
  two_arrays sum = x;
  sum += y;
  const std::vector<double> fs = latent::to_flat(sum);
  for (std::size_t i = 0; i < fs.size(); ++i) CHECK(fs[i] == fx[i] + fy[i]);
  two_arrays back;
  latent::from_flat(back, fs);
  CHECK(latent::to_flat(back) == fs);
  CHECK_THROWS_WITH(latent::from_flat(back, std::vector<double>(3, 0.0)), Catch::Contains("values"));
}

TEST_CASE("em: a fall never counts as convergence; the parameter rule; the prior enters the objective", "[core][em]") {
  auto rng = make_rng(12);
  const Eigen::MatrixXd x = latent::standard_normal(1, 400, rng).array() + 2.0;
  SECTION("parameter tolerance holds the fit until the parameters settle") {
    restartable_toy a, b;
    a.shrink = b.shrink = 0.5;
    // The objective rule alone stops early (the objective is quadratic in the error).
    const auto loose = latent::em(a, x, {.tolerance = 1e-8, .parameter_tolerance = 0.0});
    const auto tight = latent::em(b, x, {.tolerance = 1e-8, .parameter_tolerance = 1e-10});
    REQUIRE(loose.converged());
    REQUIRE(tight.converged());
    CHECK(tight.iterations > loose.iterations);
    const double mle = x.mean();
    CHECK(std::abs(tight.params.mean - mle) <= 1e-9 * std::abs(mle));
    CHECK(std::abs(loose.params.mean - mle) > 1e-9 * std::abs(mle));
  }
  SECTION("with defaults the parameters reach 1e-6 relative") {
    restartable_toy m;
    m.shrink = 0.05;  // a slow, linearly converging EM (rate 0.95)
    const auto fit = latent::em(m, x);
    REQUIRE(fit.converged());
    CHECK(std::abs(fit.params.mean - x.mean()) <= 1e-6 * std::abs(x.mean()));
  }
  SECTION("MAP EM: the trace is log-likelihood + log prior and never falls") {
    restartable_toy m;
    m.prior_weight = 50.0;
    const auto fit = latent::em(m, x);
    REQUIRE(fit.converged());
    CHECK(fit.decreases == 0);
    const double map = x.sum() / (x.cols() + 50.0);
    CHECK(fit.params.mean == Approx(map).epsilon(1e-9));
    const double ll = (-0.5 * latent::log_two_pi - 0.5 * (x.array() - fit.params.mean).square()).sum();
    CHECK(fit.objective == Approx(ll - 25.0 * fit.params.mean * fit.params.mean).epsilon(1e-13));
  }
}

TEST_CASE("em with restarts: failures never win, callbacks restart, summaries", "[core][em][restarts]") {
  auto rng = make_rng(13);
  const Eigen::MatrixXd x = latent::standard_normal(1, 200, rng).array() + 50.0;
  restartable_toy m;
  m.shrink = 0.5;
  m.starts = {-1.0, std::numeric_limits<double>::quiet_NaN(), 49.0, 51.0};
  restart_recorder rec;
  latent::record_trace trace;
  std::minstd_rand other_engine(1);  // any engine, not only mt19937_64
  const auto fit = latent::em(m, x, other_engine, {.max_iterations = 50, .restarts = 4}, rec, trace);
  REQUIRE(fit.restarts.size() == 4);
  CHECK(fit.restarts[0].status == latent::fit_status::numerical_issue);  // collapsed mid-fit
  CHECK(fit.restarts[0].objective == 1e6);  // ... with the highest objective of all
  CHECK(fit.restarts[1].status == latent::fit_status::numerical_issue);  // could not start
  CHECK(fit.restarts[1].iterations == 0);
  CHECK(fit.status != latent::fit_status::numerical_issue);
  CHECK((fit.restart == 2 || fit.restart == 3));
  CHECK(fit.restart_objectives.size() == 4);
  double seconds = 0.0;
  std::size_t iterations = 0;
  for (const auto& r : fit.restarts) {
    seconds += r.seconds;
    iterations += r.iterations;
  }
  CHECK(fit.total_seconds == Approx(seconds).epsilon(1e-12));
  CHECK(fit.total_iterations == iterations);
  // on_begin once per restart that started a fit; the trace holds the last restart only.
  CHECK(rec.begins == 3);
  CHECK(trace.values.size() == fit.restarts[3].iterations + 1);
  CHECK(std::find(rec.restarts_seen.begin(), rec.restarts_seen.end(), std::size_t{3}) != rec.restarts_seen.end());
  CHECK(std::find(rec.restarts_seen.begin(), rec.restarts_seen.end(), std::size_t{1}) == rec.restarts_seen.end());
  CHECK(m.p.mean == fit.params.mean);
}

TEST_CASE("em: weighted data are refused by a model that does not declare it reads weights", "[core][em]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(10, 0.0, 1.0);
  const Eigen::VectorXd w = Eigen::VectorXd::Constant(10, 2.0);
  toy_model m;
  CHECK_THROWS_WITH(latent::em(m, latent::observations(x, w)), Catch::Contains("supports_weights"));
  CHECK(latent::em(m, latent::observations(x)).converged());  // unweighted views are fine
  weighted_toy d;
  CHECK_NOTHROW(latent::em(d, latent::observations(x, w)));
}

TEST_CASE("variational_em: the solver owns the local variational state for the whole fit", "[core][variational_em]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(300, 0.0, 3.0);
  stateful_toy m;
  m.shrink = 0.5;
  const auto fit = latent::variational_em(m, x, latent::mean_field{}, {.max_iterations = 7, .tolerance = 0.0,
                                                                       .threads = 1, .block_size = 64});
  CHECK(m.states_made == 1);
  // Every observation was visited by every E-step of the fit, in the same state object.
  CHECK((m.last_counts.array() == double(fit.trace.size())).all());
}

TEST_CASE("bad counts: a negative int converted to std::size_t is an invalid_argument, not a hang", "[core][em][bad-input]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(10, 0.0, 1.0);
  const std::size_t minus_one = static_cast<std::size_t>(-1);
  toy_model m;
  CHECK_THROWS_WITH(latent::em(m, x, {.max_iterations = minus_one}),
                    Catch::Contains("max_iterations") && Catch::Contains("negative"));
  CHECK_THROWS_WITH(latent::em(m, x, {.max_iterations = latent::max_iteration_count + 1}),
                    Catch::Contains("max_iterations"));
  CHECK_NOTHROW(latent::em(m, x, {.max_iterations = latent::max_iteration_count}));  // the cap itself is fine
  restartable_toy r;
  r.starts = {1.0};
  std::minstd_rand engine(1);
  CHECK_THROWS_WITH(latent::em(r, x, engine, {.restarts = minus_one}),
                    Catch::Contains("restarts") && Catch::Contains("negative"));
  CHECK_THROWS_WITH(latent::em(r, x, engine, {.restarts = latent::max_restart_count + 1}), Catch::Contains("restarts"));
  CHECK_THROWS_WITH(latent::em(r, x, engine, {.restarts = 0}), Catch::Contains("restarts"));
  CHECK(r.next == 0);  // nothing ran
  stateful_toy s;
  CHECK_THROWS_WITH(latent::variational_em(s, x, latent::mean_field{}, {.max_iterations = minus_one}),
                    Catch::Contains("max_iterations"));
}

TEST_CASE("block_size: the largest Index is one block, without overflow", "[core][executor]") {
  // (n + bs - 1) / bs would overflow; the executors count blocks without it (UBSan in CI).
  const Eigen::Index huge = std::numeric_limits<Eigen::Index>::max();
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(3000, 0.0, 1.0);
  CHECK(latent::detail::block_count(3000, huge) == 1);
  CHECK(latent::detail::block_count(huge, huge) == 1);
  CHECK(latent::detail::block_count(huge, 1) == huge);
  CHECK(latent::detail::block_count(huge, 2) == huge / 2 + 1);
  toy_model a, b;
  const auto fa = latent::em(a, x, {.threads = 2, .block_size = huge});
  const auto fb = latent::em(b, x, {.threads = 1, .block_size = 3000});
  CHECK(fa.converged());
  CHECK(fa.trace == fb.trace);  // one block either way: the same bits
  double total = 0.0;
  const double value = latent::serial_executor{huge}.reduce(
      x.cols(), [] { return 0.0; }, [&](Eigen::Index begin, Eigen::Index end, double&) { return double(end - begin); },
      total);
  CHECK(value == 3000.0);
}

TEST_CASE("weights: a sum that overflows is refused; no weight is refused on warm starts as on cold ones", "[core][observations][bad-input]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(4, 0.0, 1.0);
  CHECK_THROWS_WITH(latent::observations(x, Eigen::VectorXd::Constant(4, 1e308)),
                    Catch::Contains("weights") && Catch::Contains("finite sum"));
  CHECK_NOTHROW(latent::observations(x, Eigen::VectorXd::Constant(4, 1e307)));
  // Float weights are summed in double: their sum never overflows.
  const Eigen::MatrixXf xf = x.cast<float>();
  CHECK(latent::basic_observations<float>(xf, Eigen::VectorXf::Constant(4, 3e38f)).total_weight() ==
        Approx(4 * double(3e38f)).epsilon(1e-15));
  // All-zero weights are a valid view, but there is nothing to fit: invalid_argument, not a
  // numerical_issue from an M-step dividing by zero.
  weighted_toy m;
  const latent::observations none(x, Eigen::VectorXd::Zero(4));
  CHECK_THROWS_AS(latent::em(m, none), latent::invalid_argument);
  CHECK_THROWS_WITH(latent::em(m, none), Catch::Contains("'x'") && Catch::Contains("weight"));
  CHECK_THROWS_WITH(latent::em(m, Eigen::MatrixXd(1, 0)), Catch::Contains("'x'"));
  stateful_toy s;
  CHECK_THROWS_AS(latent::variational_em(s, Eigen::MatrixXd(1, 0), latent::mean_field{}), latent::invalid_argument);
}

TEST_CASE("em with restarts: no restart's unevaluated parameters are passed on", "[core][em][restarts]") {
  const Eigen::MatrixXd x = Eigen::RowVectorXd::LinSpaced(50, 9.0, 11.0);
  std::minstd_rand engine(3);
  SECTION("every restart fails: the result reports what the model holds") {
    restartable_toy m;
    m.p.mean = 3.0;  // the user's parameters
    m.starts = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
    const auto fit = latent::em(m, x, engine, {.restarts = 2});
    CHECK(fit.status == latent::fit_status::numerical_issue);
    CHECK(fit.trace.empty());
    CHECK(m.p.mean == 3.0);  // no start could be formed: the model kept its parameters
    CHECK(fit.params.mean == m.p.mean);
  }
  SECTION("a start whose objective is not finite never wins and is not set back") {
    restartable_toy m;
    m.nan_after_mean = 20.0;
    m.shrink = 0.5;
    m.starts = {50.0, 12.0, std::numeric_limits<double>::quiet_NaN()};  // NaN objective, good, cannot start
    const auto fit = latent::em(m, x, engine, {.restarts = 3});
    CHECK(fit.restart == 1);
    CHECK(fit.restarts[0].status == latent::fit_status::numerical_issue);
    CHECK(fit.restarts[0].iterations == 0);
    CHECK(fit.status == latent::fit_status::converged);
    CHECK(m.p.mean == fit.params.mean);
    CHECK(std::isfinite(fit.params.mean));
    CHECK(fit.params.mean == Approx(10.0).epsilon(1e-6));
  }
}

TEST_CASE("CSV (issue 10): byte-order mark, subnormals, overflow and embedded NUL", "[core][io][issue10]") {
  // A UTF-8 byte-order mark before the header is not part of the first name.
  std::istringstream bom("\xEF\xBB\xBF" "a,b\n1,2\n");
  const latent::csv_table t = latent::parse_csv(bom);
  REQUIRE(t.names == std::vector<std::string>{"a", "b"});
  CHECK(t.data(0, 0) == 1.0);
  // Subnormal values and values that underflow to 0 are numbers (strtod reports ERANGE).
  std::istringstream tiny("a,b,c\n1e-310,2.2e-308,1e-400\n");
  const latent::csv_table u = latent::parse_csv(tiny);
  CHECK(u.data(0, 0) == 1e-310);
  CHECK(u.data(1, 0) == 2.2e-308);
  CHECK(u.data(2, 0) == 0.0);
  CHECK(std::fpclassify(u.data(0, 0)) == FP_SUBNORMAL);
  // Overflow stays an error: of double, and of float when the table is read as float.
  std::istringstream huge("a\n1e400\n");
  CHECK_THROWS_WITH(latent::parse_csv(huge), Catch::Contains("line 2") && Catch::Contains("out of the range of double"));
  std::istringstream huge_f("a\n1e39\n");
  CHECK_THROWS_WITH(latent::parse_csv<float>(huge_f), Catch::Contains("out of the range of float"));
  std::istringstream fine_f("a\n1e38\n");
  CHECK(latent::parse_csv<float>(fine_f).data(0, 0) == 1e38f);
  // An embedded NUL is an error naming the line and column, not a silently truncated field.
  static constexpr char nul_text[] = "a,b\n1,2\n3,4\0" "5\n";
  std::istringstream nul(std::string(nul_text, sizeof(nul_text) - 1));
  CHECK_THROWS_WITH(latent::parse_csv(nul), Catch::Contains("line 3, column 2") && Catch::Contains("NUL"));
  static constexpr char header_nul[] = "a\0x,b\n1,2\n";
  std::istringstream hn(std::string(header_nul, sizeof(header_nul) - 1));
  CHECK_THROWS_WITH(latent::parse_csv(hn), Catch::Contains("column 1") && Catch::Contains("NUL"));
}

TEST_CASE("run_chunks and add_chunk_vectors: every chunk once, a sum in chunk order, the first error rethrown", "[core][chunks]") {
  const Eigen::Index count = 7, p = (1 << 14) + 5;  // two segments of add_chunk_vectors
  std::vector<Eigen::VectorXd> parts;
  for (Eigen::Index i = 0; i < count; ++i) parts.push_back(Eigen::VectorXd::Random(p));
  for (const int threads : {1, 2}) {
    std::vector<int> calls(static_cast<std::size_t>(count), 0);
    latent::detail::run_chunks(count, threads, [&](Eigen::Index i) { ++calls[static_cast<std::size_t>(i)]; });
    CHECK(std::all_of(calls.begin(), calls.end(), [](int c) { return c == 1; }));
    Eigen::VectorXd total = parts[0], expected = parts[0];
    for (Eigen::Index i = 1; i < count; ++i) expected += parts[static_cast<std::size_t>(i)];
    latent::detail::add_chunk_vectors<double>(total, count, threads,
                                             [&](Eigen::Index i) -> const Eigen::VectorXd& { return parts[static_cast<std::size_t>(i)]; });
    CHECK(total == expected);  // the same additions in the same order: the same bits
    CHECK_THROWS_AS(latent::detail::run_chunks(count, threads,
                                               [](Eigen::Index i) {
                                                 if (i == 3) throw latent::invalid_argument("chunk 3 failed");
                                               }),
                    latent::invalid_argument);
  }
  CHECK(latent::detail::chunk_threads(1) == 1);
}

TEST_CASE("missing values: columns grouped by pattern in first-seen order, means imputed by weight", "[core][missing]") {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  Eigen::MatrixXd x(3, 5);
  x << 1, nan, 3, nan, 5,   //
      2, 2, nan, 4, 6,      //
      nan, 1, 1, 1, 1;
  const auto split = latent::detail::split_by_pattern(x, 0, 5, "test");
  CHECK(split.complete == std::vector<Eigen::Index>{4});
  REQUIRE(split.patterns.size() == 3);
  CHECK(split.patterns[0].columns == std::vector<Eigen::Index>{0});
  CHECK(split.patterns[0].missing == std::vector<Eigen::Index>{2});
  CHECK(split.patterns[1].columns == std::vector<Eigen::Index>{1, 3});
  CHECK(split.patterns[1].observed == std::vector<Eigen::Index>{1, 2});
  CHECK(split.patterns[2].columns == std::vector<Eigen::Index>{2});
  const Eigen::VectorXd w = (Eigen::VectorXd(5) << 1, 1, 2, 1, 1).finished();
  const latent::observations obs(x, w);
  latent::detail::require_missing_at_random_data(obs, "test");
  const Eigen::MatrixXd filled = latent::detail::impute_observed_means(obs);
  CHECK(filled(0, 1) == Approx((1.0 + 2 * 3.0 + 5.0) / 4.0));
  CHECK(filled(1, 2) == Approx((2.0 + 2.0 + 4.0 + 6.0) / 4.0));
  CHECK(filled(2, 0) == 1.0);
  Eigen::MatrixXd bad = x;
  bad(0, 0) = inf;
  CHECK_THROWS_WITH(latent::detail::split_by_pattern(bad, 0, 5, "test"), Catch::Contains("entry (0, 0)"));
  bad = x;
  bad.col(2).setConstant(nan);
  CHECK_THROWS_WITH(latent::detail::require_missing_at_random_data(latent::observations(bad), "test"),
                    Catch::Contains("column 2"));
  bad = x;
  bad.row(1).setConstant(nan);
  CHECK_THROWS_WITH(latent::detail::require_missing_at_random_data(latent::observations(bad), "test"),
                    Catch::Contains("coordinate 1"));
  CHECK(latent::to_string(latent::missing_policy::allow) == "allow");
  CHECK(latent::to_string(latent::missing_policy::reject) == "reject");
}
