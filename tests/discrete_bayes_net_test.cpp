// Tests of latent::discrete_bayes_net: exact inference against brute-force enumeration of the
// full joint, EM and mean-field variational EM invariants, statistical recovery of the
// tables, thread-count invariance, input validation, the flat view of the statistics, and
// the float instantiation against the double one.
#include <latent/core/statistics.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/models/discrete_bayes_net_data.hpp>
#include <latent/models/discrete_bayes_net_inference.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

#include <support/test_support.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

// Tolerances per scalar type. Deterministic: exact inference on one record is a few dozen
// operations in S, so float agrees with the exact value to ~10 epsilon(float) ~ 1e-6
// relative; 1e-5 leaves room for the clique tree's longer products. Fit: a float EM fit
// stops when its objective moves by less than its own rounding (~1e-7 relative per record),
// so its tables sit ~1e-4 from the double optimum at worst.
template <class S>
struct tolerance;
template <>
struct tolerance<float> {
  static constexpr double deterministic = 1e-5;
  static constexpr double fit_table = 1e-3;
};
template <>
struct tolerance<double> {
  static constexpr double deterministic = 1e-12;
  static constexpr double fit_table = 1e-9;
};

// "X<i>" (built by appending: g++ 12 warns falsely on "literal" + std::string).
std::string var_name(int i) {
  std::string s = "X";
  s += std::to_string(i);
  return s;
}

using latent::bn_variable;
using latent::discrete_bayes_net;
using latent::missing;
using Catch::Matchers::Contains;

// The worked example: A -> C <- B, C -> D.
std::vector<bn_variable> abcd_variables() {
  return {{"A", 2, {}}, {"B", 2, {}}, {"C", 2, {"A", "B"}}, {"D", 2, {"C"}}};
}
std::vector<Eigen::MatrixXd> abcd_tables() {
  Eigen::MatrixXd a(1, 2), b(1, 2), c(4, 2), d(2, 2);
  a << 0.7, 0.3;
  b << 0.1, 0.9;
  c << 0.9, 0.1,   // A=0, B=0
      0.5, 0.5,    // A=0, B=1
      0.4, 0.6,    // A=1, B=0
      0.8, 0.2;    // A=1, B=1
  d << 0.9, 0.1,   // C=0
      0.2, 0.8;    // C=1
  return {a, b, c, d};
}

// A random network: n variables with 2-3 states, each with up to max_parents parents among
// the earlier variables (random order of definition, so table order != topological order is
// also exercised), rows drawn from Dirichlet(1).
discrete_bayes_net random_net(int n, int max_parents, std::mt19937_64& rng,
                              const latent::discrete_bayes_net_options& opts = {}) {
  std::uniform_int_distribution<int> states(2, 3);
  std::vector<int> perm(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
  std::shuffle(perm.begin(), perm.end(), rng);  // perm[i] = position of variable i in the DAG order
  std::vector<bn_variable> vars(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    vars[static_cast<std::size_t>(i)].name = var_name(i);
    vars[static_cast<std::size_t>(i)].states = states(rng);
  }
  for (int i = 0; i < n; ++i) {
    std::vector<int> earlier;
    for (int j = 0; j < n; ++j)
      if (perm[static_cast<std::size_t>(j)] < perm[static_cast<std::size_t>(i)]) earlier.push_back(j);
    std::shuffle(earlier.begin(), earlier.end(), rng);
    const int k = std::min<int>(max_parents, static_cast<int>(earlier.size()));
    const int np = std::uniform_int_distribution<int>(0, k)(rng);
    for (int p = 0; p < np; ++p) vars[static_cast<std::size_t>(i)].parents.push_back(var_name(earlier[static_cast<std::size_t>(p)]));
  }
  discrete_bayes_net net(vars, opts);
  net.initialize(net.make_data(Eigen::MatrixXi::Zero(n, 1)), rng);
  return net;
}

// Brute force over the full joint: log p(o) of each record and the expected counts.
struct brute_force {
  Eigen::VectorXd log_likelihood;
  latent::discrete_bayes_net_stats stats;
};

brute_force enumerate(const discrete_bayes_net& net, const Eigen::MatrixXi& x) {
  const Eigen::Index n = net.num_variables();
  std::vector<Eigen::VectorXi> configs;
  std::vector<double> prob;
  Eigen::VectorXi c = Eigen::VectorXi::Zero(n);
  for (;;) {
    double p = 1.0;
    for (Eigen::Index v = 0; v < n; ++v) p *= net.table(v)(net.parent_row(v, c), c(v));
    configs.push_back(c);
    prob.push_back(p);
    Eigen::Index i = 0;
    while (i < n && ++c(i) == net.cardinalities()[static_cast<std::size_t>(i)]) c(i++) = 0;
    if (i == n) break;
  }
  brute_force out{Eigen::VectorXd(x.cols()), net.zero_stats()};
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    double po = 0.0;
    std::vector<std::size_t> match;
    for (std::size_t t = 0; t < configs.size(); ++t) {
      bool ok = true;
      for (Eigen::Index v = 0; v < n && ok; ++v) ok = x(v, j) == missing || x(v, j) == configs[t](v);
      if (ok) {
        po += prob[t];
        match.push_back(t);
      }
    }
    out.log_likelihood(j) = std::log(po);
    for (std::size_t t : match)
      for (Eigen::Index v = 0; v < n; ++v)
        out.stats.counts[static_cast<std::size_t>(v)](net.parent_row(v, configs[t]), configs[t](v)) += prob[t] / po;
  }
  out.stats.weight = static_cast<double>(x.cols());
  return out;
}

// Random records: complete, all missing, and cells missing with probability 0.5.
Eigen::MatrixXi random_records(const discrete_bayes_net& net, Eigen::Index n, std::mt19937_64& rng) {
  Eigen::MatrixXi x = latent::apply_missing_at_random(net.sample(n, rng), 0.5, rng);
  x.col(0) = net.sample(1, rng).col(0);  // complete
  x.col(1).setConstant(missing);          // nothing observed
  return x;
}

void require_stats_equal(const latent::discrete_bayes_net_stats& a, const latent::discrete_bayes_net_stats& b,
                         double rel) {
  REQUIRE(a.counts.size() == b.counts.size());
  for (std::size_t v = 0; v < a.counts.size(); ++v) REQUIRE_THAT(a.counts[v], latent_test::IsApprox(b.counts[v], rel, 1e-12));
  REQUIRE(a.weight == Approx(b.weight).epsilon(1e-12));
}

}  // namespace

TEMPLATE_TEST_CASE("worked example: posterior weights of the completions of (A=1, B=?, C=?, D=0)",
                   "[discrete_bayes_net]", float, double) {
  using S = TestType;
  const double tol = tolerance<S>::deterministic;
  std::vector<latent::matrix_t<S>> tables;
  for (const auto& t : abcd_tables()) tables.push_back(t.cast<S>());
  const latent::basic_discrete_bayes_net<S> net(abcd_variables(), tables);
  Eigen::VectorXi r(4);
  r << 1, missing, missing, 0;
  const auto post = net.posterior(r);
  REQUIRE(post.missing == std::vector<int>{1, 2});
  REQUIRE(post.weights.size() == 4);
  // Completions: B fastest, then C.
  const auto weight_of = [&](int b, int c) {
    for (Eigen::Index k = 0; k < 4; ++k)
      if (post.completions(1, k) == b && post.completions(2, k) == c) {
        REQUIRE(post.completions(0, k) == 1);
        REQUIRE(post.completions(3, k) == 0);
        return post.weights(k);
      }
    FAIL("completion not listed");
    return S(0);
  };
  CHECK(weight_of(1, 1) == Approx(0.0492).margin(5e-5));
  CHECK(weight_of(1, 0) == Approx(0.8852).margin(5e-5));
  CHECK(weight_of(0, 1) == Approx(0.0164).margin(5e-5));
  CHECK(weight_of(0, 0) == Approx(0.0492).margin(5e-5));
  // Exact values: p(A=1, B, C, D=0) = 0.3 * {0.9*0.2*0.2, 0.9*0.8*0.9, 0.1*0.6*0.2, 0.1*0.4*0.9}.
  const double j11 = 0.3 * 0.9 * 0.2 * 0.2, j10 = 0.3 * 0.9 * 0.8 * 0.9, j01 = 0.3 * 0.1 * 0.6 * 0.2,
               j00 = 0.3 * 0.1 * 0.4 * 0.9, z = j11 + j10 + j01 + j00;
  CHECK(weight_of(1, 1) == Approx(j11 / z).epsilon(tol));
  CHECK(weight_of(0, 0) == Approx(j00 / z).epsilon(tol));
  CHECK(post.log_likelihood == Approx(std::log(z)).epsilon(tol));
  CHECK(post.marginals[0](1) == Approx((j11 + j10) / z).epsilon(tol));  // p(B=1 | o)
  CHECK(post.marginals[1](1) == Approx((j11 + j01) / z).epsilon(tol));  // p(C=1 | o)
  CHECK(net.marginal("C", r)(1) == Approx((j11 + j01) / z).epsilon(tol));
  const auto all = net.marginals(r);
  CHECK(all[0](1) == Approx(1.0).margin(1e-14));  // observed A = 1
  CHECK(all[3](0) == Approx(1.0).margin(1e-14));  // observed D = 0
}

TEST_CASE("exact E-step and log-likelihood equal brute-force enumeration of the joint", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(11);
  for (int trial = 0; trial < 6; ++trial) {
    const int n = 4 + trial % 4;  // 4..7 variables
    const int max_parents = 1 + trial % 3;
    for (const std::size_t limit : {std::size_t{256}, std::size_t{1}, std::size_t{5}}) {
      // limit 1: every component goes through the clique tree; 5: a mixture of both paths.
      auto rng_net = latent_test::make_rng(100 + static_cast<std::uint64_t>(trial));
      const discrete_bayes_net net =
          random_net(n, max_parents, rng_net, latent::discrete_bayes_net_options{.enumeration_limit = limit});
      const Eigen::MatrixXi x = random_records(net, 60, rng);
      const brute_force bf = enumerate(net, x);
      INFO("trial " << trial << ", n " << n << ", enumeration_limit " << limit);

      REQUIRE_THAT(Eigen::MatrixXd(net.log_likelihood_per_observation(x).transpose()),
                   latent_test::IsApprox(bf.log_likelihood, 1e-11));
      const auto data = net.make_data(x);
      auto s = net.zero_stats();
      const double ll = net.e_step(data, 0, data.num_distinct(), s);
      CHECK(ll == Approx(bf.log_likelihood.sum()).epsilon(1e-11));
      require_stats_equal(s, bf.stats, 1e-11);
      // Marginals of every variable, and the joint posterior of one record.
      for (Eigen::Index j = 2; j < 6; ++j) {
        const auto m = net.marginals(x.col(j));
        const auto one = enumerate(net, x.col(j));
        for (Eigen::Index v = 0; v < n; ++v)
          REQUIRE_THAT(Eigen::MatrixXd(m[static_cast<std::size_t>(v)]),
                       latent_test::IsApprox(one.stats.counts[static_cast<std::size_t>(v)].colwise().sum().transpose(), 1e-11, 1e-14));
        const auto post = net.posterior(x.col(j));
        CHECK(post.weights.sum() == Approx(1.0).epsilon(1e-12));
        for (Eigen::Index c = 0; c < post.weights.size(); ++c) {
          const double lp = enumerate(net, post.completions.col(c)).log_likelihood(0);
          CHECK(post.weights(c) == Approx(std::exp(lp - post.log_likelihood)).epsilon(1e-10).margin(1e-15));
        }
      }
    }
  }
}

TEST_CASE("a denser network with a large component goes through the clique tree exactly", "[discrete_bayes_net]") {
  // 9 binary variables, up to 3 parents: 512 joint states; enumeration limit 4 forces
  // multi-clique trees with non-trivial separators.
  auto rng = latent_test::make_rng(12);
  const discrete_bayes_net net = random_net(9, 3, rng, latent::discrete_bayes_net_options{.enumeration_limit = 4});
  const Eigen::MatrixXi x = random_records(net, 40, rng);
  const brute_force bf = enumerate(net, x);
  REQUIRE_THAT(Eigen::MatrixXd(net.log_likelihood_per_observation(x).transpose()),
               latent_test::IsApprox(bf.log_likelihood, 1e-11));
  const auto data = net.make_data(x);
  auto s = net.zero_stats();
  net.e_step(data, 0, data.num_distinct(), s);
  require_stats_equal(s, bf.stats, 1e-11);
}

TEST_CASE("grouping identical records changes nothing but the cost", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(13);
  const discrete_bayes_net net(abcd_variables(), abcd_tables());
  const Eigen::MatrixXi x = latent::apply_missing_at_random(net.sample(5000, rng), 0.3, rng);
  const auto grouped = net.make_data(x);
  const auto raw = net.make_data(x, latent::bn_data_options{.group = false});
  REQUIRE(raw.num_distinct() == 5000);
  REQUIRE(grouped.num_distinct() <= 81);  // 3^4 patterns of {0, 1, missing}
  REQUIRE(grouped.counts().sum() == 5000.0);
  REQUIRE(grouped.num_records() == 5000);
  auto sg = net.zero_stats(), sr = net.zero_stats();
  const double lg = net.e_step(grouped, 0, grouped.num_distinct(), sg);
  const double lr = net.e_step(raw, 0, raw.num_distinct(), sr);
  CHECK(lg == Approx(lr).epsilon(1e-12));
  require_stats_equal(sg, sr, 1e-12);
  // Weighted records are grouped by summing weights.
  const Eigen::VectorXd w = Eigen::VectorXd::LinSpaced(5000, 0.5, 2.0);
  const auto gw = net.make_data(x, w);
  auto sw = net.zero_stats();
  const double lw = net.e_step(gw, 0, gw.num_distinct(), sw);
  CHECK(lw == Approx(w.dot(net.log_likelihood_per_observation(x).transpose())).epsilon(1e-11));
  CHECK(sw.weight == Approx(w.sum()).epsilon(1e-12));
}

TEST_CASE("EM never decreases the log-likelihood, with and without a latent variable", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(14);
  SECTION("random network, 20% missing") {
    const discrete_bayes_net truth = random_net(7, 2, rng);
    const auto data = truth.make_data(latent::apply_missing_at_random(truth.sample(3000, rng), 0.2, rng));
    discrete_bayes_net model(truth.variables());
    model.initialize(data, rng);
    const auto fit = latent::em(model, data, {.max_iterations = 200, .tolerance = 1e-12});
    CHECK(fit.decreases == 0);
    for (std::size_t i = 1; i < fit.trace.size(); ++i)
      REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-10 * std::abs(fit.trace[i]));
    // The fit's objective is the log-likelihood of the returned tables.
    CHECK(model.log_likelihood(data) == Approx(fit.objective).epsilon(1e-12));
  }
  SECTION("latent class model: H never observed") {
    std::vector<bn_variable> vars{{"H", 2, {}}, {"Y1", 3, {"H"}}, {"Y2", 3, {"H"}}, {"Y3", 3, {"H"}}};
    Eigen::MatrixXd h(1, 2), y(2, 3);
    h << 0.4, 0.6;
    y << 0.7, 0.2, 0.1, 0.1, 0.3, 0.6;
    const discrete_bayes_net truth(vars, {h, y, y, y});
    Eigen::MatrixXi x = truth.sample(2000, rng);
    x.row(0).setConstant(missing);
    x = latent::apply_missing_at_random(x, 0.1, rng);
    const auto data = truth.make_data(x);
    discrete_bayes_net model(vars);
    model.initialize(data, rng);
    const auto fit = latent::em(model, data, {.max_iterations = 300, .tolerance = 1e-12});
    CHECK(fit.decreases == 0);
    for (std::size_t i = 1; i < fit.trace.size(); ++i)
      REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-10 * std::abs(fit.trace[i]));
  }
  SECTION("MAP EM (pseudo-counts) never decreases log-likelihood + log-prior") {
    const discrete_bayes_net truth = random_net(6, 2, rng);
    const auto data = truth.make_data(latent::apply_missing_at_random(truth.sample(500, rng), 0.3, rng));
    discrete_bayes_net model(truth.variables(), latent::discrete_bayes_net_options{.pseudo_count = 2.0});
    model.initialize(data, rng);
    double previous = -std::numeric_limits<double>::infinity();
    for (int it = 0; it < 50; ++it) {
      auto s = model.zero_stats();
      const double objective = latent::e_step(model, data, s) + model.log_prior();
      REQUIRE(objective >= previous - 1e-10 * std::abs(objective));
      previous = objective;
      model.m_step(s);
    }
  }
}

TEST_CASE("EM recovers the tables within standard errors on large simulated data", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(15);
  const discrete_bayes_net truth(abcd_variables(), abcd_tables());
  const Eigen::Index N = 200000;
  const double rate = 0.1;
  const auto data = truth.make_data(latent::apply_missing_at_random(truth.sample(N, rng), rate, rng));
  discrete_bayes_net model(abcd_variables());
  model.initialize(data, rng);
  const auto fit = latent::em(model, data, {.max_iterations = 1000, .tolerance = 1e-12});
  REQUIRE(fit.decreases == 0);
  // Under MCAR the MLE is at least as efficient as the complete-case estimate, whose
  // standard error for theta_v[r, s] is sqrt(theta (1 - theta) / n_r) with
  // n_r = N p(pa = r) (1 - rate)^{|family|} (the family fully observed). Allow 5 SE.
  const Eigen::VectorXi none = Eigen::VectorXi::Constant(4, missing);
  const auto prior = truth.marginals(none);
  for (Eigen::Index v = 0; v < 4; ++v) {
    const Eigen::MatrixXd& t = truth.table(v);
    const auto& pa = truth.parents(v);
    for (Eigen::Index r = 0; r < t.rows(); ++r) {
      // p(pa = r): parents of C are the independent roots A and B; D's parent is C.
      double pr = 1.0;
      Eigen::Index rest = r;
      for (std::size_t a = pa.size(); a-- > 0;) {
        const int K = truth.cardinalities()[static_cast<std::size_t>(pa[a])];
        pr *= prior[static_cast<std::size_t>(pa[a])](rest % K);
        rest /= K;
      }
      const double nr = static_cast<double>(N) * pr * std::pow(1.0 - rate, static_cast<double>(pa.size() + 1));
      for (Eigen::Index s = 0; s < t.cols(); ++s) {
        const double se = std::sqrt(t(r, s) * (1.0 - t(r, s)) / nr);
        INFO("variable " << truth.name(v) << " row " << r << " state " << s);
        CHECK(std::abs(model.table(v)(r, s) - t(r, s)) <= 5.0 * se);
      }
    }
  }
}

TEST_CASE("mean field: ELBO below the exact log-likelihood, never decreasing, exact with one missing value",
          "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(16);
  const discrete_bayes_net truth = random_net(7, 3, rng);
  const Eigen::MatrixXi x = latent::apply_missing_at_random(truth.sample(2000, rng), 0.3, rng);
  SECTION("ELBO <= log-likelihood record by record and in total, for several parameter values") {
    const auto data = truth.make_data(x);
    discrete_bayes_net model(truth.variables());
    for (int rep = 0; rep < 3; ++rep) {
      model.initialize(data, rng);
      for (Eigen::Index j = 0; j < data.num_distinct(); ++j) {
        auto s1 = model.zero_stats(), s2 = model.zero_stats();
        const double elbo = model.e_step(data, j, j + 1, s1, latent::mean_field{.warm_start = false});
        const double ll = model.e_step(data, j, j + 1, s2);
        REQUIRE(elbo <= ll + 1e-12 * std::abs(ll));
      }
    }
  }
  SECTION("variational EM: the ELBO never decreases and stays below the log-likelihood") {
    const auto data = truth.make_data(x);
    discrete_bayes_net model(truth.variables());
    model.initialize(data, rng);
    std::vector<double> lls;
    const auto fit = latent::variational_em(model, data, latent::mean_field{}, {.max_iterations = 100, .tolerance = 1e-12});
    CHECK(fit.decreases == 0);
    for (std::size_t i = 1; i < fit.trace.size(); ++i)
      REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-10 * std::abs(fit.trace[i]));
    CHECK(fit.objective <= model.log_likelihood(data));
    // The gap is real here: several missing values per record are coupled.
    CHECK(model.log_likelihood(data) - fit.objective > 1e-3);
    // The solver owns q: a second fit on the same data object starts from uniform factors
    // again, and repeats the first bit for bit.
    static_assert(latent::StatefulVariationalEMModel<discrete_bayes_net, latent::mean_field>);
    discrete_bayes_net first(truth.variables()), second(truth.variables());
    std::mt19937_64 r1(5), r2(5);
    first.initialize(data, r1);
    second.initialize(data, r2);
    const auto f1 = latent::variational_em(first, data, latent::mean_field{}, {.max_iterations = 20});
    const auto f2 = latent::variational_em(second, data, latent::mean_field{}, {.max_iterations = 20});
    CHECK(f1.trace == f2.trace);
  }
  SECTION("with at most one missing value per record, mean field is exact") {
    Eigen::MatrixXi y = truth.sample(500, rng);
    std::uniform_int_distribution<int> which(0, static_cast<int>(y.rows()) - 1);
    for (Eigen::Index j = 0; j < y.cols(); j += 2) y(which(rng), j) = missing;
    const auto data = truth.make_data(y);
    auto s1 = truth.zero_stats(), s2 = truth.zero_stats();
    const double elbo = latent::variational_e_step(truth, data, latent::mean_field{}, s1);
    const double ll = latent::e_step(truth, data, s2);
    CHECK(elbo == Approx(ll).epsilon(1e-12));
    require_stats_equal(s1, s2, 1e-10);
  }
}

TEST_CASE("fits are bit-identical for 1, 2 and 8 threads", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(17);
  const discrete_bayes_net truth = random_net(6, 2, rng);
  const Eigen::MatrixXi x = latent::apply_missing_at_random(truth.sample(3000, rng), 0.25, rng);
  discrete_bayes_net start(truth.variables());
  start.initialize(truth.make_data(x), rng);
  std::vector<latent::fit_result<latent::discrete_bayes_net_params>> exact, variational;
  for (const int threads : {1, 2, 8}) {
    discrete_bayes_net m1 = start, m2 = start;
    const auto data = truth.make_data(x);  // fresh: no mean-field state from a previous fit
    exact.push_back(latent::em(m1, data, {.max_iterations = 30, .threads = threads, .block_size = 7}));
    variational.push_back(latent::variational_em(m2, data, latent::mean_field{},
                                                 {.max_iterations = 30, .threads = threads, .block_size = 7}));
  }
  for (std::size_t t = 1; t < 3; ++t) {
    REQUIRE(exact[t].trace == exact[0].trace);
    REQUIRE(variational[t].trace == variational[0].trace);
    for (std::size_t v = 0; v < exact[0].params.tables.size(); ++v) {
      REQUIRE(exact[t].params.tables[v] == exact[0].params.tables[v]);
      REQUIRE(variational[t].params.tables[v] == variational[0].params.tables[v]);
    }
  }
}

TEST_CASE("M-step: unseen parent configurations follow the documented fallback, never NaN", "[discrete_bayes_net]") {
  const auto tables = abcd_tables();
  Eigen::MatrixXi x(4, 3);
  // A is always 0: rows A=1 of C's table see no data.
  x << 0, 0, 0,
       0, 1, 1,
       1, 0, missing,
       1, 0, 1;
  for (const auto policy : {latent::unseen_parent_policy::keep_previous, latent::unseen_parent_policy::uniform}) {
    discrete_bayes_net net(abcd_variables(), tables, latent::discrete_bayes_net_options{.unseen = policy});
    const auto data = net.make_data(x);
    auto s = net.zero_stats();
    latent::e_step(net, data, s);
    net.m_step(s);
    const Eigen::MatrixXd& c = net.table("C");
    REQUIRE(c.allFinite());
    for (Eigen::Index r : {2, 3}) {
      if (policy == latent::unseen_parent_policy::keep_previous)
        CHECK(c.row(r) == tables[2].row(r));
      else
        CHECK(c.row(r) == Eigen::RowVector2d(0.5, 0.5));
    }
    CHECK(net.table("A")(0, 0) == 1.0);
  }
  // With pseudo-counts the unseen rows become uniform: (0 + a) / (0 + 2a).
  discrete_bayes_net map(abcd_variables(), tables, latent::discrete_bayes_net_options{.pseudo_count = 1.0});
  auto s = map.zero_stats();
  latent::e_step(map, map.make_data(x), s);
  map.m_step(s);
  CHECK(map.table("C").row(3) == Eigen::RowVector2d(0.5, 0.5));
  CHECK(map.table("A")(0, 0) == Approx(4.0 / 5.0).epsilon(1e-14));
}

TEST_CASE("ancestral sampling matches the joint (chi-square) and masks hide the requested share", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(18);
  const discrete_bayes_net net(abcd_variables(), abcd_tables());
  const Eigen::Index N = 40000;
  const Eigen::MatrixXi x = net.sample(N, rng);
  Eigen::VectorXd observed = Eigen::VectorXd::Zero(16);
  for (Eigen::Index j = 0; j < N; ++j) observed(x(0, j) + 2 * x(1, j) + 4 * x(2, j) + 8 * x(3, j)) += 1.0;
  const Eigen::VectorXd ll = net.log_likelihood_per_observation(
      (Eigen::MatrixXi(4, 16) << Eigen::RowVectorXi::LinSpaced(16, 0, 15).unaryExpr([](int c) { return c & 1; }),
       Eigen::RowVectorXi::LinSpaced(16, 0, 15).unaryExpr([](int c) { return (c >> 1) & 1; }),
       Eigen::RowVectorXi::LinSpaced(16, 0, 15).unaryExpr([](int c) { return (c >> 2) & 1; }),
       Eigen::RowVectorXi::LinSpaced(16, 0, 15).unaryExpr([](int c) { return (c >> 3) & 1; }))
          .finished()).transpose();
  REQUIRE(ll.array().exp().sum() == Approx(1.0).epsilon(1e-12));
  const Eigen::VectorXd expected = static_cast<double>(N) * ll.array().exp();
  const double chi2 = ((observed - expected).array().square() / expected.array()).sum();
  CHECK(chi2 < latent_test::chi_square_critical(15));

  const Eigen::MatrixXi masked = latent::apply_missing_at_random(x, Eigen::Vector4d(0.0, 0.1, 0.5, 1.0), rng);
  for (Eigen::Index v = 0; v < 4; ++v) {
    const double rate = std::array<double, 4>{0.0, 0.1, 0.5, 1.0}[static_cast<std::size_t>(v)];
    const double share = static_cast<double>((masked.row(v).array() == missing).count()) / static_cast<double>(N);
    CHECK(std::abs(share - rate) <= 5.0 * std::sqrt(rate * (1.0 - rate) / static_cast<double>(N)));
  }
  CHECK((masked.array() == missing || masked.array() == x.array()).all());
}

TEST_CASE("bad input is rejected with a message naming the variable", "[discrete_bayes_net]") {
  using E = latent::invalid_argument;
  SECTION("cycles") {
    REQUIRE_THROWS_AS(discrete_bayes_net({{"A", 2, {"C"}}, {"B", 2, {"A"}}, {"C", 2, {"B"}}}), E);
    REQUIRE_THROWS_WITH(discrete_bayes_net({{"A", 2, {"C"}}, {"B", 2, {"A"}}, {"C", 2, {"B"}}}),
                        Contains("cycle") && Contains("'A'") && Contains("'B'") && Contains("'C'"));
    REQUIRE_THROWS_WITH(discrete_bayes_net({{"A", 2, {"A"}}}), Contains("'A'") && Contains("cycle"));
  }
  SECTION("unknown, repeated parent, duplicate names, no states") {
    REQUIRE_THROWS_WITH(discrete_bayes_net({{"A", 2, {}}, {"C", 2, {"A", "Z"}}}),
                        Contains("'C'") && Contains("unknown parent 'Z'"));
    REQUIRE_THROWS_AS(discrete_bayes_net({{"A", 2, {}}, {"C", 2, {"A", "Z"}}}), E);
    REQUIRE_THROWS_WITH(discrete_bayes_net({{"A", 2, {}}, {"C", 2, {"A", "A"}}}), Contains("'C'") && Contains("twice"));
    REQUIRE_THROWS_WITH(discrete_bayes_net({{"A", 2, {}}, {"A", 3, {}}}), Contains("'A'") && Contains("twice"));
    REQUIRE_THROWS_WITH(discrete_bayes_net({{"A", 0, {}}}), Contains("'A'"));
  }
  SECTION("states out of range") {
    const discrete_bayes_net net(abcd_variables(), abcd_tables());
    Eigen::MatrixXi x = Eigen::MatrixXi::Zero(4, 5);
    x(2, 3) = 2;
    REQUIRE_THROWS_AS(net.make_data(x), E);
    REQUIRE_THROWS_WITH(net.make_data(x), Contains("'C'") && Contains("record 3") && Contains("got 2"));
    x(2, 3) = -2;
    REQUIRE_THROWS_WITH(net.make_data(x), Contains("'C'"));
    REQUIRE_THROWS_WITH(net.log_likelihood_per_observation(x), Contains("'C'"));
    REQUIRE_THROWS_WITH(net.marginals(x.col(3)), Contains("'C'"));
    REQUIRE_THROWS_AS(net.make_data(Eigen::MatrixXi::Zero(3, 5)), E);
  }
  SECTION("wrong table sizes") {
    auto t = abcd_tables();
    t[2] = Eigen::MatrixXd::Constant(2, 2, 0.5);  // C has 4 parent configurations
    REQUIRE_THROWS_AS(discrete_bayes_net(abcd_variables(), t), E);
    REQUIRE_THROWS_WITH(discrete_bayes_net(abcd_variables(), t), Contains("'C'") && Contains("4 x 2"));
    t = abcd_tables();
    t[3] = Eigen::MatrixXd::Constant(2, 3, 1.0 / 3.0);
    REQUIRE_THROWS_WITH(discrete_bayes_net(abcd_variables(), t), Contains("'D'"));
    t = abcd_tables();
    t.pop_back();
    REQUIRE_THROWS_AS(discrete_bayes_net(abcd_variables(), t), E);
  }
  SECTION("rows not summing to 1, entries outside [0, 1]") {
    auto t = abcd_tables();
    t[3](1, 1) = 0.7;  // row 1 of D sums to 0.9
    REQUIRE_THROWS_AS(discrete_bayes_net(abcd_variables(), t), E);
    REQUIRE_THROWS_WITH(discrete_bayes_net(abcd_variables(), t), Contains("'D'") && Contains("row 1") && Contains("sum to 1"));
    t = abcd_tables();
    t[0] << 1.5, -0.5;
    REQUIRE_THROWS_WITH(discrete_bayes_net(abcd_variables(), t), Contains("'A'"));
    discrete_bayes_net net(abcd_variables(), abcd_tables());
    t = abcd_tables();
    t[1] << 0.5, 0.4;
    REQUIRE_THROWS_WITH(net.set_params({t}), Contains("'B'"));
    CHECK(net.table("B")(0, 1) == 0.9);  // unchanged
  }
  SECTION("data made for another network, bad options") {
    const discrete_bayes_net net(abcd_variables(), abcd_tables());
    const discrete_bayes_net other({{"A", 3, {}}, {"B", 2, {}}, {"C", 2, {}}, {"D", 2, {}}});
    const auto data = other.make_data(Eigen::MatrixXi::Zero(4, 2));
    auto s = net.zero_stats();
    REQUIRE_THROWS_AS(net.e_step(data, 0, 1, s), E);
    REQUIRE_THROWS_AS(discrete_bayes_net(abcd_variables(), latent::discrete_bayes_net_options{.pseudo_count = -1.0}), E);
    discrete_bayes_net copy = net;
    REQUIRE_THROWS_AS(latent::variational_em(copy, net.make_data(Eigen::MatrixXi::Zero(4, 2)),
                                             latent::mean_field{.max_sweeps = 0}),
                      E);
  }
}

TEST_CASE("every index accessor is checked and throws invalid_argument naming the argument", "[discrete_bayes_net]") {
  using E = latent::invalid_argument;
  const discrete_bayes_net net(abcd_variables(), abcd_tables());
  const Eigen::VectorXi complete = Eigen::VectorXi::Zero(4);
  for (const Eigen::Index v : {Eigen::Index{-1}, Eigen::Index{4}}) {
    REQUIRE_THROWS_AS(net.table(v), E);
    REQUIRE_THROWS_WITH(net.table(v), Contains("argument 'v'") && Contains("[0, 4)"));
    REQUIRE_THROWS_AS(net.name(v), E);
    REQUIRE_THROWS_AS(net.parents(v), E);
    REQUIRE_THROWS_AS(net.parent_row(v, complete), E);
    REQUIRE_THROWS_AS(net.marginal(v, complete), E);
  }
  REQUIRE_THROWS_WITH(net.table("Z"), Contains("'Z'"));
  // parent_row: a record of the wrong size, a parent missing or out of range.
  REQUIRE_THROWS_WITH(net.parent_row(2, Eigen::VectorXi::Zero(3)), Contains("argument 'record'"));
  Eigen::VectorXi r = complete;
  r(1) = missing;
  REQUIRE_THROWS_WITH(net.parent_row(2, r), Contains("'B'") && Contains("'C'"));
  CHECK(net.parent_row(3, r) == 0);  // D's parent C is observed
  r(1) = 2;
  REQUIRE_THROWS_AS(net.parent_row(2, r), E);
  r(1) = 1;
  r(0) = 1;
  CHECK(net.parent_row(2, r) == 3);  // (A, B) = (1, 1): the last parent fastest
}

TEST_CASE("data made for other variables, or with weights summing to infinity, is rejected",
          "[discrete_bayes_net]") {
  const discrete_bayes_net net(abcd_variables(), abcd_tables());
  const discrete_bayes_net reversed({{"D", 2, {}}, {"C", 2, {"D"}}, {"B", 2, {}}, {"A", 2, {}}});
  const auto data = reversed.make_data(Eigen::MatrixXi::Zero(4, 3));
  auto s = net.zero_stats();
  REQUIRE_THROWS_WITH(net.e_step(data, 0, 1, s), Contains("other variables"));
  discrete_bayes_net copy = net;
  std::mt19937_64 engine(1);
  REQUIRE_THROWS_AS(copy.initialize(data, engine), latent::invalid_argument);
  // Weights each finite whose sum overflows.
  REQUIRE_THROWS_WITH(net.make_data(Eigen::MatrixXi::Zero(4, 2), Eigen::Vector2d(1e308, 1e308)),
                      Contains("'weights'") && Contains("finite sum"));
}

TEST_CASE("statistics: the flat view is additive and scales", "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(19);
  const discrete_bayes_net net = random_net(6, 2, rng);
  const auto data = net.make_data(latent::apply_missing_at_random(net.sample(200, rng), 0.3, rng));
  const Eigen::Index half = data.num_distinct() / 2;
  auto a = net.zero_stats(), b = net.zero_stats();
  net.e_step(data, 0, half, a);
  net.e_step(data, half, data.num_distinct(), b);
  const auto fa = latent::to_flat(a), fb = latent::to_flat(b);
  std::size_t expected = 1;  // the weight
  for (const auto& c : a.counts) expected += static_cast<std::size_t>(c.size());
  REQUIRE(fa.size() == expected);
  REQUIRE(fa.back() == a.weight);
  auto sum = a;
  sum += b;
  const auto fs = latent::to_flat(sum);
  for (std::size_t i = 0; i < fs.size(); ++i) REQUIRE(fs[i] == fa[i] + fb[i]);
  auto scaled = a;
  scaled *= 0.25;
  const auto fw = latent::to_flat(scaled);
  for (std::size_t i = 0; i < fw.size(); ++i) REQUIRE(fw[i] == 0.25 * fa[i]);
  // from_flat round trip into fresh statistics.
  auto back = net.zero_stats();
  latent::from_flat(back, fs);
  require_stats_equal(back, sum, 0.0);
}

TEST_CASE("num_free_parameters, BIC and AIC", "[discrete_bayes_net]") {
  const discrete_bayes_net net(abcd_variables(), abcd_tables());
  CHECK(net.num_free_parameters() == 1 + 1 + 4 + 2);  // sum_v P_v (K_v - 1)
  const discrete_bayes_net three({{"A", 3, {}}, {"B", 4, {"A"}}});
  CHECK(three.num_free_parameters() == 2 + 3 * 3);
  auto rng = latent_test::make_rng(20);
  const Eigen::MatrixXi x = latent::apply_missing_at_random(net.sample(300, rng), 0.2, rng);
  const Eigen::VectorXd w = Eigen::VectorXd::LinSpaced(300, 0.5, 1.5);
  for (const auto& data : {net.make_data(x), net.make_data(x, w)}) {
    const double ll = net.log_likelihood(data), n = data.total_weight();
    CHECK(net.bic(data) == Approx(-2.0 * ll + 8.0 * std::log(n)).epsilon(1e-14));
    CHECK(net.aic(data) == Approx(-2.0 * ll + 16.0).epsilon(1e-14));
  }
}

TEST_CASE("float: the exact and mean-field E-steps agree with double", "[discrete_bayes_net][float]") {
  auto rng = latent_test::make_rng(21);
  for (const std::size_t limit : {std::size_t{256}, std::size_t{1}}) {
    const discrete_bayes_net net = random_net(8, 3, rng, latent::discrete_bayes_net_options{.enumeration_limit = limit});
    std::vector<latent::matrix_t<float>> tables;
    for (const auto& t : net.params().tables) tables.push_back(t.cast<float>());
    const latent::basic_discrete_bayes_net<float> netf(net.variables(), tables, net.options());
    const Eigen::MatrixXi x = random_records(net, 500, rng);
    const auto data = net.make_data(x);
    const auto dataf = netf.make_data(x);
    REQUIRE(dataf.num_distinct() == data.num_distinct());
    INFO("enumeration_limit " << limit);

    auto s = net.zero_stats();
    auto sf = netf.zero_stats();
    static_assert(std::is_same_v<decltype(sf.counts[0]), Eigen::MatrixXd&>, "counts accumulate in double");
    const double ll = net.e_step(data, 0, data.num_distinct(), s);
    const double llf = netf.e_step(dataf, 0, dataf.num_distinct(), sf);
    CHECK(llf == Approx(ll).epsilon(tolerance<float>::deterministic));
    for (std::size_t v = 0; v < s.counts.size(); ++v)
      REQUIRE_THAT(sf.counts[v], latent_test::IsApprox(s.counts[v], tolerance<float>::deterministic));
    CHECK(sf.weight == s.weight);
    // Per-record log-likelihoods, in double for both.
    const Eigen::RowVectorXd per = net.log_likelihood_per_observation(x), perf = netf.log_likelihood_per_observation(x);
    REQUIRE_THAT(Eigen::MatrixXd(perf), latent_test::IsApprox(per, tolerance<float>::deterministic));

    const latent::mean_field cold{.warm_start = false};
    auto m = net.zero_stats();
    auto mf = netf.zero_stats();
    const double elbo = net.e_step(data, 0, data.num_distinct(), m, cold);
    const double elbof = netf.e_step(dataf, 0, dataf.num_distinct(), mf, cold);
    CHECK(elbof == Approx(elbo).epsilon(tolerance<float>::deterministic));
  }
}

TEST_CASE("float: an EM fit reaches the double fit's optimum within float tolerance", "[discrete_bayes_net][float]") {
  auto rng = latent_test::make_rng(22);
  const discrete_bayes_net truth = random_net(6, 2, rng);
  const Eigen::MatrixXi x = latent::apply_missing_at_random(truth.sample(5000, rng), 0.2, rng);
  discrete_bayes_net model(truth.variables());
  latent::basic_discrete_bayes_net<float> modelf(truth.variables());
  const auto data = model.make_data(x);
  const auto dataf = modelf.make_data(x);
  auto r1 = latent_test::make_rng(23), r2 = latent_test::make_rng(23);
  model.initialize(data, r1);
  modelf.initialize(dataf, r2);  // the same draws, rounded to float
  for (std::size_t v = 0; v < model.params().tables.size(); ++v)
    REQUIRE_THAT(Eigen::MatrixXd(modelf.table(static_cast<Eigen::Index>(v)).cast<double>()),
                 latent_test::IsApprox(model.table(static_cast<Eigen::Index>(v)), 1e-7));
  const auto fit = latent::em(model, data, {.max_iterations = 2000, .tolerance = 1e-12});
  // Float: stop when the log-likelihood moves by less than ~its rounding per record.
  const auto fitf = latent::em(modelf, dataf, {.max_iterations = 2000, .tolerance = 1e-7});
  REQUIRE(fit.status == latent::fit_status::converged);
  REQUIRE(fitf.status == latent::fit_status::converged);
  static_assert(std::is_same_v<decltype(fitf.objective), double>);
  // The float tables, renormalized in double, evaluated by the double network.
  std::vector<Eigen::MatrixXd> tables;
  double worst = 0.0;
  for (std::size_t v = 0; v < fitf.params.tables.size(); ++v) {
    Eigen::MatrixXd t = fitf.params.tables[v].cast<double>();
    for (Eigen::Index r = 0; r < t.rows(); ++r) t.row(r) /= t.row(r).sum();
    worst = std::max(worst, (t - fit.params.tables[v]).cwiseAbs().maxCoeff());
    tables.push_back(std::move(t));
  }
  CHECK(worst <= tolerance<float>::fit_table);
  discrete_bayes_net evaluated(truth.variables(), tables);
  const double n = data.total_weight();
  // At the optimum the log-likelihood is flat: table errors of 1e-3 cost ~1e-6 per record.
  CHECK(evaluated.log_likelihood(data) / n == Approx(fit.objective / n).margin(1e-6));
  CHECK(evaluated.log_likelihood(data) <= fit.objective + 1e-9 * std::abs(fit.objective));
  CHECK(fitf.objective / n == Approx(fit.objective / n).margin(1e-6));
}

TEST_CASE("mean field: a caller-owned variational state gives the same E-steps as the one the data keeps",
          "[discrete_bayes_net]") {
  auto rng = latent_test::make_rng(24);
  const discrete_bayes_net truth = random_net(6, 3, rng);
  const Eigen::MatrixXi x = latent::apply_missing_at_random(truth.sample(500, rng), 0.4, rng);
  discrete_bayes_net a(truth.variables());
  const auto data = a.make_data(x);  // keeps the state `a` warm-starts from
  a.initialize(data, rng);
  discrete_bayes_net b = a;
  auto state = b.make_variational_state(data);  // owned here, used by `b`
  const Eigen::Index n = data.num_distinct();
  REQUIRE(state.num_records() == n);
  const latent::mean_field mf{};
  for (int it = 0; it < 5; ++it) {
    auto sa = a.zero_stats(), sb = b.zero_stats();
    double ea = 0.0, eb = 0.0;
    for (Eigen::Index j0 = 0; j0 < n; j0 += 7) {
      const Eigen::Index j1 = std::min(j0 + 7, n);
      ea += a.e_step(data, j0, j1, sa, mf);
      eb += b.e_step(data, j0, j1, sb, mf, state.slice(j0, j1));
    }
    REQUIRE(ea == eb);
    require_stats_equal(sa, sb, 0.0);
    a.m_step(sa);
    b.m_step(sb);
  }
  // After reset() the next E-step starts from uniform factors, as a fresh state does; the
  // kept factors make a difference.
  auto fresh = b.make_variational_state(data);
  auto s1 = b.zero_stats(), s2 = b.zero_stats(), s3 = b.zero_stats();
  const double warm = b.e_step(data, 0, n, s3, latent::mean_field{.max_sweeps = 1}, state.slice(0, n));
  state.reset();
  const double e1 = b.e_step(data, 0, n, s1, latent::mean_field{.max_sweeps = 1}, state.slice(0, n));
  const double e2 = b.e_step(data, 0, n, s2, latent::mean_field{.max_sweeps = 1}, fresh.slice(0, n));
  CHECK(e1 == e2);
  CHECK(warm != e1);
  REQUIRE_THROWS_AS(b.e_step(data, 0, 3, s1, mf, state.slice(0, 2)), latent::invalid_argument);
  REQUIRE_THROWS_AS(state.slice(0, n + 1), latent::invalid_argument);
}

TEST_CASE("issue 10: data with no records or all-zero weights is rejected, not fitted", "[discrete_bayes_net][issue10]") {
  discrete_bayes_net net(abcd_variables(), abcd_tables());
  // Before: em "converged" with objective 0 and the tables unchanged.
  REQUIRE_THROWS_WITH(net.make_data(Eigen::MatrixXi::Zero(4, 0)),
                      Contains("argument 'x'") && Contains("at least one record"));
  REQUIRE_THROWS_WITH(net.make_data(Eigen::MatrixXi::Zero(4, 3), Eigen::Vector3d::Zero()),
                      Contains("argument 'weights'") && Contains("all be zero"));
  // Some zero weights are fine.
  const auto data = net.make_data(Eigen::MatrixXi::Zero(4, 3), Eigen::Vector3d(0.0, 1.0, 0.0));
  CHECK(data.total_weight() == 1.0);
  // Data made for (D, C, B, A) with the same cardinalities: the names differ, so it is rejected
  // by every entry point, not fitted as if it were (A, B, C, D).
  const discrete_bayes_net reversed({{"D", 2, {}}, {"C", 2, {"D"}}, {"B", 2, {}}, {"A", 2, {}}});
  const auto other = reversed.make_data(Eigen::MatrixXi::Zero(4, 3));
  REQUIRE_THROWS_WITH(latent::em(net, other), Contains("other variables"));
  REQUIRE_THROWS_WITH(net.log_likelihood(other), Contains("other variables"));
}
