// Gaussian mixture: closed forms, EM invariants, recovery, thread invariance, bad input, in
// double and (where the kernels or a fit are worth checking twice) in float.
#include <latent/core/callbacks.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/statistics.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/models/gaussian_mixture/missing.hpp>
#include <latent/solvers/em.hpp>

#include "support/missing_values.hpp"
#include "support/test_support.hpp"

#include <algorithm>
#include <numeric>

using latent::covariance_type;
using latent_test::IsApprox;
using latent_test::make_rng;

namespace {

// Tolerances per scalar type (relative, Frobenius norms for matrices).
//  - kernel: one E-step against a direct per-observation computation in double from the same
//    (rounded) inputs. Double: rounding of a few hundred operations. Float: the log-joint of
//    d = 33 coordinates is a sum of terms of size ~10-100 rounded at 6e-8; the largest error
//    measured is 5.6e-6 (diagonal responsibilities, d = 33), so 3e-5 leaves a margin of ~5.
//  - fit: a float fit against the double fit from the same start, both at the same optimum;
//    float statistics carry ~1e-7 relative noise, which EM's fixed point amplifies by the
//    conditioning of the likelihood (measured: 7e-6 at worst, diagonal), so 3e-5.
template <class S>
struct tolerance;
template <>
struct tolerance<double> {
  static constexpr double kernel = 1e-13, fit = 1e-9;
};
template <>
struct tolerance<float> {
  static constexpr double kernel = 3e-5, fit = 3e-5;
};

const covariance_type all_types[] = {covariance_type::full, covariance_type::diagonal,
                                     covariance_type::spherical, covariance_type::tied};

// Three well-separated clusters in 3-D with distinct covariances; returns data and true labels.
Eigen::MatrixXd three_clusters(Eigen::Index n_per, std::mt19937_64& rng) {
  Eigen::MatrixXd x = latent::standard_normal(3, 3 * n_per, rng);
  Eigen::Matrix3d a1, a2, a3;
  a1 << 1.0, 0.0, 0.0, 0.5, 0.8, 0.0, 0.2, -0.3, 0.6;
  a2 << 0.5, 0.0, 0.0, 0.0, 1.2, 0.0, 0.0, 0.4, 0.7;
  a3 << 0.9, 0.0, 0.0, -0.4, 0.5, 0.0, 0.0, 0.0, 1.1;
  x.leftCols(n_per) = (a1 * x.leftCols(n_per)).colwise() + Eigen::Vector3d(0, 0, 0);
  x.middleCols(n_per, n_per) = (a2 * x.middleCols(n_per, n_per)).colwise() + Eigen::Vector3d(10, 0, 0);
  x.rightCols(n_per) = (a3 * x.rightCols(n_per)).colwise() + Eigen::Vector3d(0, 10, 5);
  return x;
}

}  // namespace

TEST_CASE("one component: EM reaches the sample mean and covariance", "[gaussian_mixture][closed_form]") {
  auto rng = make_rng(11);
  Eigen::MatrixXd x = latent::standard_normal(4, 500, rng);
  Eigen::Matrix4d a = Eigen::Matrix4d::Identity();
  a(1, 0) = 0.7;
  a(3, 2) = -1.5;
  x = ((a * x).colwise() + Eigen::Vector4d(100, -3, 0.5, 7)).eval();
  const Eigen::VectorXd mean = x.rowwise().mean();
  const Eigen::MatrixXd xc = x.colwise() - mean;
  const Eigen::MatrixXd cov = xc * xc.transpose() / 500.0;

  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture gmm(1, t, {.reg_covar = 0.0});
    const auto fit = latent::em(gmm, x, rng, {.tolerance = 1e-12});
    REQUIRE(fit.converged());
    REQUIRE(fit.decreases == 0);
    CHECK_THAT(Eigen::MatrixXd(fit.params.means), IsApprox(mean, 1e-12));
    Eigen::MatrixXd expected = cov;
    if (t == covariance_type::diagonal) expected = Eigen::MatrixXd(cov.diagonal().asDiagonal());
    if (t == covariance_type::spherical)
      expected = cov.diagonal().mean() * Eigen::MatrixXd::Identity(4, 4);
    CHECK_THAT(fit.params.covariances[0], IsApprox(expected, 1e-10));
    // The log-likelihood of the closed form, by the independent block density.
    latent::cholesky_result ch = latent::regularized_cholesky(expected);
    REQUIRE(ch.ok);
    const double ll = latent::mvn_log_density(x, mean, ch.llt).sum();
    CHECK(fit.objective == Approx(ll).epsilon(1e-12));
  }
}

TEST_CASE("one component with weights equals repeated columns", "[gaussian_mixture][weights]") {
  auto rng = make_rng(12);
  const Eigen::MatrixXd x = latent::standard_normal(2, 50, rng);
  Eigen::VectorXd w(50);
  for (int i = 0; i < 50; ++i) w(i) = i % 3;  // 0, 1, 2 copies
  Eigen::MatrixXd rep(2, static_cast<Eigen::Index>(w.sum()));
  for (Eigen::Index i = 0, j = 0; i < 50; ++i)
    for (int c = 0; c < static_cast<int>(w(i)); ++c) rep.col(j++) = x.col(i);
  for (covariance_type t : all_types) {
    latent::gaussian_mixture a(2, t, {.reg_covar = 0.0}), b(2, t, {.reg_covar = 0.0});
    auto params = latent::gaussian_mixture_params{Eigen::Vector2d(0.4, 0.6), (Eigen::Matrix2d() << -1, 1, 0, 0.5).finished(),
                                                  {Eigen::Matrix2d::Identity(), Eigen::Matrix2d::Identity() * 2}};
    if (t == covariance_type::tied) params.covariances[1] = params.covariances[0];
    a.set_params(params);
    b.set_params(params);
    // A few iterations: EM on 50 points amplifies rounding differences over many more.
    const auto fa = latent::em(a, latent::observations(x, w), {.max_iterations = 3, .tolerance = 0});
    const auto fb = latent::em(b, rep, {.max_iterations = 3, .tolerance = 0});
    CAPTURE(to_string(t));
    CHECK(fa.objective == Approx(fb.objective).epsilon(1e-12));
    CHECK_THAT(fa.params.means, IsApprox(fb.params.means, 1e-11));
    CHECK_THAT(fa.params.covariances[1], IsApprox(fb.params.covariances[1], 1e-11));
  }
}

TEMPLATE_TEST_CASE("E-step statistics equal a direct per-observation computation", "[gaussian_mixture][kernel]", float,
                   double) {
  using S = TestType;
  const double tol = tolerance<S>::kernel;
  // The E-step kernels work on groups of 32 observations (64 in float) with lane-wise partial
  // sums; N = 77 leaves a partial group, d = 1, 5 and 33 are not multiples of anything the
  // kernels use (33 is more coordinates than a double group has rows), the weights are
  // arbitrary and the statistics are taken about a point away from the model's own center
  // (which float cannot represent: the E-step sums about its rounding and shifts exactly).
  auto rng = make_rng(13);
  for (Eigen::Index d : {1, 5, 33}) {
    const Eigen::Index n = 77, k = 3;
    // The data and parameters are rounded to S; the direct computation is in double from them.
    const Eigen::MatrixXd x = (2.0 * latent::standard_normal(d, n, rng)).template cast<S>().template cast<double>();
    std::uniform_real_distribution<double> unif(0.5, 2.5);
    Eigen::VectorXd w(n);
    for (Eigen::Index i = 0; i < n; ++i) w(i) = static_cast<S>(unif(rng));
    for (covariance_type t : all_types) {
      CAPTURE(d, to_string(t));
      latent::gaussian_mixture_params p;
      p.weights = Eigen::Vector3d(0.2, 0.5, 0.3);
      p.means = latent::standard_normal(d, k, rng).template cast<S>().template cast<double>();
      for (Eigen::Index c = 0; c < k; ++c) {
        const Eigen::MatrixXd a = latent::standard_normal(d, d, rng);
        Eigen::MatrixXd cov = a * a.transpose() + 0.5 * Eigen::MatrixXd::Identity(d, d);
        if (t == covariance_type::diagonal) cov = Eigen::MatrixXd(cov.diagonal().asDiagonal());
        if (t == covariance_type::spherical) cov = (0.5 + double(c)) * Eigen::MatrixXd::Identity(d, d);
        if (t == covariance_type::tied && c > 0) cov = p.covariances[0];
        p.covariances.push_back(cov.template cast<S>().template cast<double>());
      }
      latent::basic_gaussian_mixture_params<S> ps{p.weights.cast<S>(), p.means.cast<S>(), {}};
      for (const auto& c : p.covariances) ps.covariances.push_back(c.cast<S>());
      p.weights = ps.weights.template cast<double>();
      latent::basic_gaussian_mixture<S> gmm(ps, t);
      // Direct: log pi_k + log N(x_n | mu_k, Sigma_k) by the independent block density, and
      // the E-step's log-joint, which adds the regularization's -eps/2 tr(Sigma_k^{-1}).
      Eigen::MatrixXd lj(k, n), lj_fit(k, n);
      for (Eigen::Index c = 0; c < k; ++c) {
        const latent::cholesky_result ch = latent::regularized_cholesky(p.covariances[std::size_t(c)]);
        REQUIRE(ch.ok);
        lj.row(c) = latent::mvn_log_density(x, p.means.col(c), ch.llt).array() + std::log(p.weights(c));
        const double penalty = -0.5 * gmm.options().reg_covar * ch.llt.solve(Eigen::MatrixXd::Identity(d, d)).trace();
        lj_fit.row(c) = lj.row(c).array() + penalty;
      }
      double ll = 0.0;
      const Eigen::VectorXd center = Eigen::VectorXd::LinSpaced(d, 1.0, 2.0);
      Eigen::VectorXd counts = Eigen::VectorXd::Zero(k);
      Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(d, k);
      std::vector<Eigen::MatrixXd> scatter(std::size_t(k), Eigen::MatrixXd::Zero(d, d));
      for (Eigen::Index i = 0; i < n; ++i) {
        const double lse = latent::log_sum_exp(lj_fit.col(i));
        ll += w(i) * lse;
        const Eigen::VectorXd xc = x.col(i) - center;
        for (Eigen::Index c = 0; c < k; ++c) {
          const double r = w(i) * std::exp(lj_fit(c, i) - lse);
          counts(c) += r;
          sums.col(c) += r * xc;
          scatter[std::size_t(c)] += r * xc * xc.transpose();
        }
      }
      auto s = gmm.zero_stats();
      s.center = center;
      const Eigen::Matrix<S, -1, -1> xs = x.cast<S>();
      const Eigen::Matrix<S, -1, 1> ws = w.cast<S>();
      const double got = gmm.e_step(latent::basic_observations<S>(xs, ws), 0, n, s);
      CHECK(got == Approx(ll).epsilon(tol));
      CHECK_THAT(Eigen::MatrixXd(s.counts), IsApprox(counts, tol));
      CHECK_THAT(s.sums, IsApprox(sums, tol));
      for (Eigen::Index c = 0; c < k; ++c) {
        const Eigen::MatrixXd& sc = scatter[std::size_t(c)];
        if (t == covariance_type::full) CHECK_THAT(Eigen::MatrixXd(s.scatter.middleRows(c * d, d)), IsApprox(sc, tol));
        if (t == covariance_type::diagonal || t == covariance_type::spherical)
          CHECK_THAT(Eigen::MatrixXd(s.diagonal_scatter.col(c)), IsApprox(sc.diagonal(), tol));
      }
      if (t == covariance_type::tied) {
        Eigen::MatrixXd total = Eigen::MatrixXd::Zero(d, d);
        for (const auto& sc : scatter) total += sc;
        CHECK_THAT(s.scatter, IsApprox(total, tol));
      }
      // The responsibilities query runs the same density kernels on the columns, without the
      // penalty: the model's own posterior.
      Eigen::MatrixXd r_direct(k, n);
      for (Eigen::Index i = 0; i < n; ++i) r_direct.col(i) = (lj.col(i).array() - latent::log_sum_exp(lj.col(i))).exp();
      CHECK_THAT(Eigen::MatrixXd(gmm.responsibilities(xs).template cast<double>()), IsApprox(r_direct, tol));
    }
  }
}

TEST_CASE("EM log-likelihood never decreases, all types and many seeds", "[gaussian_mixture][monotone]") {
  for (covariance_type t : all_types) {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      CAPTURE(to_string(t), seed);
      auto rng = make_rng(100 + seed);
      // Overlapping clusters so EM takes many iterations.
      Eigen::MatrixXd x = latent::standard_normal(3, 600, rng);
      x.middleCols(200, 200).array() += 1.5;
      x.rightCols(200).row(1).array() -= 2.0;
      latent::gaussian_mixture gmm(4, t, {.reg_covar = 0.0, .init = seed % 2 ? latent::mixture_init::random_points
                                                                               : latent::mixture_init::kmeans_plus_plus});
      latent::record_trace trace;
      const auto fit = latent::em(gmm, x, rng, {.max_iterations = 200, .tolerance = 1e-12}, trace);
      CHECK(fit.decreases == 0);
      REQUIRE(trace.values.size() == fit.trace.size());
      for (std::size_t i = 1; i < fit.trace.size(); ++i)
        REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-10 * std::abs(fit.trace[i]));
      // Responsibilities are a distribution per column.
      const Eigen::MatrixXd r = gmm.responsibilities(x);
      CHECK(r.allFinite());
      CHECK((r.colwise().sum().array() - 1.0).abs().maxCoeff() < 1e-12);
      CHECK(gmm.log_likelihood(x) == Approx(fit.objective).epsilon(1e-12));
    }
  }
}

TEST_CASE("recovers well-separated clusters within standard errors", "[gaussian_mixture][recovery]") {
  auto rng = make_rng(21);
  const Eigen::Index n_per = 2000;
  const Eigen::MatrixXd x = three_clusters(n_per, rng);
  latent::gaussian_mixture gmm(3, covariance_type::full);
  const auto fit = latent::em(gmm, x, rng, {.restarts = 3});
  REQUIRE(fit.converged());
  // Sort components by (x, y) of the mean: truth is (0,0,0), (10,0,0), (0,10,5).
  std::vector<int> order{0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return fit.params.means(0, a) + 2 * fit.params.means(1, a) < fit.params.means(0, b) + 2 * fit.params.means(1, b);
  });
  const Eigen::Vector3d truth[] = {{0, 0, 0}, {10, 0, 0}, {0, 10, 5}};
  for (int j = 0; j < 3; ++j) {
    const Eigen::Index k = order[static_cast<std::size_t>(j)];
    // Each mean coordinate has standard error sqrt(Sigma_ii / n_per); allow 5 SE.
    const Eigen::VectorXd se = (fit.params.covariances[static_cast<std::size_t>(k)].diagonal() / double(n_per)).cwiseSqrt();
    CHECK(((fit.params.means.col(k) - truth[j]).cwiseAbs().array() <= 5.0 * se.array()).all());
    CHECK(std::abs(fit.params.weights(k) - 1.0 / 3.0) <= 5.0 * std::sqrt(2.0 / 9.0 / (3.0 * n_per)));
  }
  // Hard labels agree with the generating clusters (separation ~ 10 standard deviations).
  const Eigen::VectorXi lab = gmm.labels(x);
  for (int j = 0; j < 3; ++j)
    CHECK((lab.segment(j * n_per, n_per).array() == order[static_cast<std::size_t>(j)]).all());
}

TEST_CASE("results are bit-identical for 1, 2 and 8 threads", "[gaussian_mixture][threads]") {
  auto rng = make_rng(31);
  const Eigen::MatrixXd x = three_clusters(3000, rng);
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    std::vector<latent::fit_result<latent::gaussian_mixture_params>> fits;
    for (int threads : {1, 2, 8}) {
      auto r = make_rng(32);
      latent::gaussian_mixture gmm(3, t);
      fits.push_back(latent::em(gmm, x, r, {.max_iterations = 20, .threads = threads, .block_size = 256}));
    }
    for (std::size_t i = 1; i < fits.size(); ++i) {
      CHECK(fits[i].trace == fits[0].trace);
      CHECK(fits[i].params.means == fits[0].params.means);
      CHECK(fits[i].params.weights == fits[0].params.weights);
      CHECK(fits[i].params.covariances == fits[0].params.covariances);
    }
  }
}

TEST_CASE("statistics merge exactly across reference points", "[gaussian_mixture][stats]") {
  auto rng = make_rng(41);
  const Eigen::MatrixXd x = three_clusters(100, rng);
  for (covariance_type t : all_types) {
    latent::gaussian_mixture a(3, t), b(3, t);
    a.initialize(x, rng);
    b.set_params(a.params());
    auto s_all = a.zero_stats();
    a.e_step(x, 0, x.cols(), s_all);
    // First half about the model's center, second half about a point 3 units away: merging
    // must shift the second half's moments exactly.
    auto s1 = a.zero_stats();
    a.e_step(x, 0, 150, s1);
    auto s2 = b.zero_stats();
    s2.center.array() += 3.0;
    b.e_step(x, 150, x.cols(), s2);
    s1 += s2;
    a.m_step(s_all);
    b.m_step(s1);
    CHECK_THAT(b.params().means, IsApprox(a.params().means, 1e-12));
    for (int k = 0; k < 3; ++k) CHECK_THAT(b.params().covariances[k], IsApprox(a.params().covariances[k], 1e-10));
  }
}

TEST_CASE("queries: sampling, BIC and AIC", "[gaussian_mixture][queries]") {
  auto rng = make_rng(51);
  latent::gaussian_mixture_params p{Eigen::Vector2d(0.3, 0.7), (Eigen::Matrix2d() << -2, 3, 0, 1).finished(),
                                    {(Eigen::Matrix2d() << 1, 0.5, 0.5, 2).finished(), Eigen::Matrix2d::Identity() * 0.5}};
  latent::gaussian_mixture truth(p);
  const Eigen::Index n = 20000;
  const auto [x, comp] = truth.sample_joint(n, rng);
  // Component frequencies: binomial standard error.
  const double frac = (comp.array() == 0).cast<double>().mean();
  CHECK(std::abs(frac - 0.3) <= 5.0 * std::sqrt(0.3 * 0.7 / n));
  // Component-0 sample covariance within 5 SE of the truth (SE of a variance ~ sigma^2 sqrt(2/n)).
  std::vector<Eigen::Index> idx;
  for (Eigen::Index i = 0; i < n; ++i)
    if (comp(i) == 0) idx.push_back(i);
  Eigen::MatrixXd x0(2, static_cast<Eigen::Index>(idx.size()));
  for (std::size_t j = 0; j < idx.size(); ++j) x0.col(static_cast<Eigen::Index>(j)) = x.col(idx[j]);
  const Eigen::Vector2d m0 = x0.rowwise().mean();
  const Eigen::Matrix2d c0 = (x0.colwise() - m0) * (x0.colwise() - m0).transpose() / double(x0.cols());
  CHECK(std::abs(c0(1, 1) - 2.0) <= 5.0 * 2.0 * std::sqrt(2.0 / double(x0.cols())));
  CHECK(std::abs(m0(0) + 2.0) <= 5.0 * std::sqrt(1.0 / double(x0.cols())));

  CHECK(truth.num_free_parameters() == 1 + 4 + 6);
  // sample(n, rng) draws the same observations as sample_joint, without the labels.
  auto r1 = make_rng(52), r2 = make_rng(52);
  CHECK(truth.sample(7, r1) == truth.sample_joint(7, r2).x);
  const double ll = truth.log_likelihood(x);
  CHECK(truth.bic(x) == Approx(-2 * ll + 11 * std::log(double(n))).epsilon(1e-14));
  CHECK(truth.aic(x) == Approx(-2 * ll + 22).epsilon(1e-14));
  // Per-observation log-likelihood is the log of the mixture density, computed directly.
  const Eigen::MatrixXd few = x.leftCols(5);
  const Eigen::RowVectorXd lp = truth.log_likelihood_per_observation(few);
  for (Eigen::Index i = 0; i < 5; ++i) {
    double dens = 0;
    for (int k = 0; k < 2; ++k) {
      latent::cholesky_result ch = latent::regularized_cholesky(p.covariances[k]);
      dens += p.weights(k) * std::exp(latent::mvn_log_density(few.col(i), p.means.col(k), ch.llt)(0));
    }
    CHECK(lp(i) == Approx(std::log(dens)).epsilon(1e-12));
  }
}

TEST_CASE("a vanishing component keeps its parameters instead of producing NaN", "[gaussian_mixture][empty]") {
  auto rng = make_rng(61);
  const Eigen::MatrixXd x = latent::standard_normal(2, 200, rng);
  // Component 1 sits 1e3 standard deviations away: its responsibilities underflow to 0.
  latent::gaussian_mixture_params p{Eigen::Vector2d(0.5, 0.5), (Eigen::Matrix2d() << 0, 1000, 0, 1000).finished(),
                                    {Eigen::Matrix2d::Identity(), Eigen::Matrix2d::Identity()}};
  latent::gaussian_mixture gmm(p);
  const auto fit = latent::em(gmm, x, {.max_iterations = 5});
  CHECK(fit.status != latent::fit_status::numerical_issue);
  CHECK(fit.params.weights(1) == 0.0);
  CHECK(fit.params.means.col(1) == p.means.col(1));
  CHECK(fit.params.covariances[1] == p.covariances[1]);
  CHECK(fit.params.means.allFinite());
  CHECK(std::isfinite(fit.objective));
  CHECK(gmm.responsibilities(x).allFinite());
}

TEST_CASE("duplicate points: the ridge keeps a collapsing component positive definite", "[gaussian_mixture][empty]") {
  Eigen::MatrixXd x(2, 40);
  x.leftCols(20).setZero();  // 20 identical points
  auto rng = make_rng(62);
  x.rightCols(20) = latent::standard_normal(2, 20, rng).array() + 5.0;
  latent::gaussian_mixture gmm(2, covariance_type::full);
  const auto fit = latent::em(gmm, x, rng);
  CHECK(fit.status == latent::fit_status::converged);
  CHECK(fit.params.means.allFinite());
  for (const auto& c : fit.params.covariances) CHECK(c.allFinite());
  // Without the ridge the collapsed covariance is singular: a numerical issue, with the last
  // good parameters kept and finite.
  latent::gaussian_mixture bare(2, covariance_type::full, {.reg_covar = 0.0});
  auto rng2 = make_rng(62);
  const auto fit2 = latent::em(bare, x, rng2);
  REQUIRE(fit2.status == latent::fit_status::numerical_issue);
  CHECK_THAT(fit2.message, Catch::Contains("positive definite"));
  CHECK(bare.params().means.allFinite());
  CHECK(bare.params().weights == fit2.params.weights);
}

TEST_CASE("bad input gives invalid_argument", "[gaussian_mixture][errors]") {
  auto rng = make_rng(71);
  const Eigen::MatrixXd x = latent::standard_normal(2, 10, rng);
  CHECK_THROWS_AS(latent::gaussian_mixture(0), latent::invalid_argument);
  CHECK_THROWS_AS(latent::gaussian_mixture(2, covariance_type::full, {.reg_covar = -1.0}), latent::invalid_argument);
  latent::gaussian_mixture too_many(11);
  CHECK_THROWS_WITH(latent::em(too_many, x, rng), Catch::Contains("N = 10"));
  latent::gaussian_mixture gmm(2);
  CHECK_THROWS_AS(gmm.responsibilities(x), latent::invalid_argument);  // no parameters yet
  gmm.initialize(x, rng);
  Eigen::MatrixXd bad = x;
  bad(1, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(latent::em(gmm, bad), Catch::Contains("'x'") && Catch::Contains("(1, 3)"));
  CHECK_THROWS_AS(latent::em(gmm, Eigen::MatrixXd(x.topRows(1))), latent::invalid_argument);
  Eigen::VectorXd w = Eigen::VectorXd::Ones(10);
  w(2) = -1.0;
  CHECK_THROWS_WITH(latent::observations(x, w), Catch::Contains("weights"));
  CHECK_THROWS_AS(latent::observations(x, Eigen::VectorXd::Ones(9)), latent::invalid_argument);
  CHECK_THROWS_AS(latent::em(gmm, x, {.tolerance = -1.0}), latent::invalid_argument);
  CHECK_THROWS_AS(latent::em(gmm, x, {.max_iterations = 0}), latent::invalid_argument);
  CHECK_THROWS_AS(latent::em(gmm, x, {.restarts = 2}), latent::invalid_argument);
  // set_params: wrong sizes, weights not summing to 1, not positive definite; model unchanged.
  const auto before = gmm.params();
  auto p = before;
  p.weights << 0.5, 0.6;
  CHECK_THROWS_WITH(gmm.set_params(p), Catch::Contains("sum to 1"));
  p = before;
  p.covariances[1] = -Eigen::Matrix2d::Identity();
  CHECK_THROWS_WITH(gmm.set_params(p), Catch::Contains("positive definite"));
  p = before;
  p.means.resize(3, 2);
  p.means.setZero();
  CHECK_THROWS_AS(gmm.set_params(p), latent::invalid_argument);
  CHECK(gmm.params().means == before.means);
  latent::gaussian_mixture diag(2, covariance_type::diagonal);
  p = before;
  p.covariances[0] << 1, 0.1, 0.1, 1;
  CHECK_THROWS_WITH(diag.set_params(p), Catch::Contains("diagonal"));
}

TEST_CASE("the statistics' flat view is additive and scalable", "[gaussian_mixture][stats]") {
  auto rng = make_rng(42);
  const Eigen::MatrixXd x = three_clusters(100, rng);
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture gmm(3, t);
    gmm.initialize(x, rng);
    auto a = gmm.zero_stats(), b = gmm.zero_stats();
    gmm.e_step(x, 0, 120, a);
    gmm.e_step(x, 120, x.cols(), b);
    const std::vector<double> fa = latent::to_flat(a), fb = latent::to_flat(b);
    const std::size_t d = 3, k = 3;
    const std::size_t second = t == covariance_type::full ? k * d * d : t == covariance_type::tied ? d * d : d * k;
    REQUIRE(fa.size() == k + d * k + second);
    auto sum = a;
    sum += b;
    const std::vector<double> fs = latent::to_flat(sum);
    for (std::size_t i = 0; i < fs.size(); ++i) REQUIRE(fs[i] == fa[i] + fb[i]);
    auto scaled = a;
    scaled *= 0.3;
    const std::vector<double> fw = latent::to_flat(scaled);
    for (std::size_t i = 0; i < fw.size(); ++i) REQUIRE(fw[i] == 0.3 * fa[i]);
    // from_flat restores the numbers and keeps the structure (center, type).
    auto back = gmm.zero_stats();
    latent::from_flat(back, fa);
    CHECK(latent::to_flat(back) == fa);
    CHECK(back.center == a.center);
    gmm.m_step(back);
  }
}

TEST_CASE("a float fit reaches the double fit's optimum", "[gaussian_mixture][float]") {
  auto rng = make_rng(81);
  const Eigen::MatrixXd x = three_clusters(1500, rng);
  const Eigen::MatrixXf xf = x.cast<float>();
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    // Random points as starts: EM has work to do (up to ~200 iterations for diagonal).
    latent::gaussian_mixture gd(3, t, {.init = latent::mixture_init::random_points});
    gd.initialize(x, rng);
    // The same start, rounded to float.
    latent::basic_gaussian_mixture_params<float> pf{gd.params().weights.cast<float>(), gd.params().means.cast<float>(), {}};
    for (const auto& c : gd.params().covariances) pf.covariances.push_back(c.cast<float>());
    pf.weights /= pf.weights.sum();
    latent::basic_gaussian_mixture<float> gf(pf, t);
    const auto fd = latent::em(gd, x, {.tolerance = 1e-12, .threads = 1});
    REQUIRE(fd.converged());
    // Float EM ends in a cycle of rounding (log-likelihood changes of ~1e-7 per observation,
    // below what a float log-likelihood resolves): run it for as many iterations and more
    // instead of stopping on a change.
    const auto ff = latent::em(gf, xf, {.max_iterations = fd.iterations + 200, .tolerance = 0.0, .threads = 1});
    REQUIRE(ff.status != latent::fit_status::numerical_issue);
    const double tol = tolerance<float>::fit;
    CHECK(ff.objective == Approx(fd.objective).epsilon(2e-6));
    CHECK_THAT(Eigen::MatrixXd(ff.params.weights.cast<double>()), IsApprox(fd.params.weights, tol));
    CHECK_THAT(Eigen::MatrixXd(ff.params.means.cast<double>()), IsApprox(fd.params.means, tol));
    for (std::size_t k = 0; k < 3; ++k)
      CHECK_THAT(Eigen::MatrixXd(ff.params.covariances[k].cast<double>()), IsApprox(fd.params.covariances[k], tol));
    // The float model's log-likelihood at its optimum, evaluated in double, matches the double
    // model's. (Not fd.objective: with reg_covar > 0 the trace holds the penalized objective.)
    latent::gaussian_mixture_params back{ff.params.weights.cast<double>(), ff.params.means.cast<double>(), {}};
    for (const auto& c : ff.params.covariances) back.covariances.push_back(c.cast<double>());
    back.weights /= back.weights.sum();
    CHECK(latent::gaussian_mixture(back, t).log_likelihood(x) == Approx(gd.log_likelihood(x)).epsilon(1e-8));
  }
}

TEST_CASE("a component collapsing onto d points without reg_covar is a numerical issue", "[gaussian_mixture][empty]") {
  // Statistics of a component that holds exactly 4 points in 4-d (a rank-3 scatter) with
  // reg_covar = 0: its covariance factors, if at all, only by rounding, and its
  // log-likelihood would be finite but meaningless (unbounded in exact arithmetic). The M-step
  // must throw numerical_error, as scikit-learn raises when its Cholesky fails.
  auto rng = make_rng(91);
  const Eigen::MatrixXd x = latent::standard_normal(4, 30, rng);
  latent::gaussian_mixture gmm(2, covariance_type::full, {.reg_covar = 0.0});
  gmm.initialize(x, rng);
  for (int trial = 0; trial < 20; ++trial) {
    CAPTURE(trial);
    const Eigen::MatrixXd four = latent::standard_normal(4, 4, rng);
    auto s = gmm.zero_stats();
    const Eigen::MatrixXd z = four.colwise() - s.center;
    s.counts << 4.0, 26.0;
    s.sums.col(0) = z.rowwise().sum();
    s.scatter.topRows(4) = z * z.transpose();
    // Component 1: the remaining points, an ordinary full-rank scatter.
    const Eigen::MatrixXd rest = x.rightCols(26).colwise() - s.center;
    s.sums.col(1) = rest.rowwise().sum();
    s.scatter.bottomRows(4) = rest * rest.transpose();
    const auto before = gmm.params();
    CHECK_THROWS_AS(gmm.m_step(s), latent::numerical_error);
    CHECK(gmm.params().means == before.means);
    // Five points span all four dimensions: the same M-step succeeds.
    const Eigen::MatrixXd five = latent::standard_normal(4, 5, rng).colwise() + s.center;
    const Eigen::MatrixXd z5 = five.colwise() - s.center;
    s.counts(0) = 5.0;
    s.sums.col(0) = z5.rowwise().sum();
    s.scatter.topRows(4) = z5 * z5.transpose();
    CHECK_NOTHROW(gmm.m_step(s));
  }
  // In EM from random starts, every start either stays away from a collapse or ends with
  // numerical_issue: none converges to an inflated log-likelihood.
  for (int r = 0; r < 10; ++r) {
    latent::gaussian_mixture g3(3, covariance_type::full, {.reg_covar = 0.0});
    try {
      g3.initialize(x, rng);
    } catch (const latent::numerical_error&) {
      continue;  // a start that collapses at once
    }
    const auto fit = latent::em(g3, x);
    if (fit.status == latent::fit_status::numerical_issue) {
      CHECK_THAT(fit.message, Catch::Contains("numerically singular"));
      continue;
    }
    CAPTURE(r, fit.objective);
    for (const auto& c : fit.params.covariances) {
      const Eigen::LLT<Eigen::MatrixXd> llt(c);
      const Eigen::ArrayXd ratio = llt.matrixLLT().diagonal().array().square() / c.diagonal().array();
      CHECK(ratio.minCoeff() > 1e-8);  // every conditional variance a fair share of its marginal one
    }
  }
}

TEST_CASE("e_step and m_step: column ranges and statistics of another mixture are invalid_argument",
          "[gaussian_mixture][errors]") {
  auto rng = make_rng(101);
  const Eigen::MatrixXd x = three_clusters(20, rng);  // 3 x 60
  latent::gaussian_mixture gmm(3, covariance_type::full);
  gmm.initialize(x, rng);
  auto s = gmm.zero_stats();
  CHECK_THROWS_WITH(gmm.e_step(x, 0, 61, s), Catch::Contains("[0, 61)") && Catch::Contains("N = 60"));
  CHECK_THROWS_AS(gmm.e_step(x, -1, 10, s), latent::invalid_argument);
  CHECK_THROWS_AS(gmm.e_step(x, 20, 10, s), latent::invalid_argument);
  CHECK(gmm.e_step(x, 60, 60, s) == 0.0);  // an empty range is fine
  CHECK(s.counts.sum() == 0.0);
  // Statistics of a mixture with another K, d or covariance type.
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture other_k(2, t), other_type(3, t == covariance_type::full ? covariance_type::tied : t);
    latent::gaussian_mixture same(3, t);
    other_k.initialize(x, rng);
    other_type.initialize(x, rng);
    same.initialize(x, rng);
    auto sk = other_k.zero_stats();
    CHECK_THROWS_WITH(same.e_step(x, 0, 60, sk), Catch::Contains("'stats'") && Catch::Contains("K = 2"));
    CHECK_THROWS_WITH(same.m_step(sk), Catch::Contains("'stats'"));
    if (t == covariance_type::full) {
      auto st = other_type.zero_stats();
      CHECK_THROWS_WITH(same.e_step(x, 0, 60, st), Catch::Contains("'stats'") && Catch::Contains("tied"));
      CHECK_THROWS_AS(same.m_step(st), latent::invalid_argument);
    }
    const Eigen::MatrixXd x2 = x.topRows(2);
    latent::gaussian_mixture other_d(3, t);
    other_d.initialize(x2, rng);
    auto sd = other_d.zero_stats();
    CHECK_THROWS_WITH(same.e_step(x, 0, 60, sd), Catch::Contains("d = 2"));
    CHECK_THROWS_AS(same.m_step(sd), latent::invalid_argument);
    // Hand-made statistics with second moments of the wrong shape.
    auto bad = same.zero_stats();
    bad.scatter.resize(0, 0);
    bad.diagonal_scatter.resize(0, 0);
    CHECK_THROWS_WITH(same.m_step(bad), Catch::Contains("second moments"));
    const auto before = same.params();
    CHECK(same.params().means == before.means);
  }
  // A negative int converted to the unsigned option.
  CHECK_THROWS_WITH(latent::gaussian_mixture(2, covariance_type::full, {.kmeans_iterations = static_cast<std::size_t>(-1)}),
                    Catch::Contains("kmeans_iterations"));
}

TEST_CASE("data given as rows: too few observations for the covariance type say so", "[gaussian_mixture][errors]") {
  // 272 observations of 2 variables given as a 272 x 2 matrix (d = 272, N = 2).
  auto rng = make_rng(102);
  const Eigen::MatrixXd rows = latent::standard_normal(272, 2, rng);
  for (covariance_type t : {covariance_type::full, covariance_type::tied}) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture gmm(2, t);
    CHECK_THROWS_WITH(latent::em(gmm, rows, rng), Catch::Contains("N = 2") && Catch::Contains("d = 272") &&
                                                      Catch::Contains("transpose"));
    CHECK_FALSE(gmm.has_params());
  }
  // The transpose fits.
  latent::gaussian_mixture gmm(2, covariance_type::full);
  CHECK(latent::em(gmm, Eigen::MatrixXd(rows.transpose()), rng).status != latent::fit_status::numerical_issue);
  // The bounds are exact: full needs N > d, tied N >= d + K.
  const Eigen::MatrixXd x = latent::standard_normal(3, 5, rng);
  latent::gaussian_mixture full(2, covariance_type::full), tied(2, covariance_type::tied);
  CHECK_NOTHROW(full.initialize(Eigen::MatrixXd(x.leftCols(4)), rng));
  CHECK_THROWS_AS(full.initialize(Eigen::MatrixXd(x.leftCols(3)), rng), latent::invalid_argument);
  CHECK_NOTHROW(tied.initialize(x, rng));
  CHECK_THROWS_AS(tied.initialize(Eigen::MatrixXd(x.leftCols(4)), rng), latent::invalid_argument);
  CHECK_THROWS_AS(latent::em(full, Eigen::MatrixXd(x.leftCols(3))), latent::invalid_argument);  // warm start too
  // Diagonal and spherical covariances are estimable with d >= N (two values per coordinate).
  for (covariance_type t : {covariance_type::diagonal, covariance_type::spherical}) {
    CAPTURE(to_string(t));
    Eigen::MatrixXd wide = latent::standard_normal(50, 20, rng);
    wide.rightCols(10).array() += 3.0;
    latent::gaussian_mixture g(2, t);
    const auto fit = latent::em(g, wide, rng);
    CHECK(fit.status == latent::fit_status::converged);
    CHECK(fit.decreases == 0);
  }
}

TEST_CASE("all-zero weights: invalid_argument on a warm start as on a cold one", "[gaussian_mixture][errors][weights]") {
  auto rng = make_rng(103);
  const Eigen::MatrixXd x = three_clusters(20, rng);
  const Eigen::VectorXd w = Eigen::VectorXd::Zero(60);
  latent::gaussian_mixture cold(3), warm(3);
  CHECK_THROWS_AS(latent::em(cold, latent::observations(x, w), rng), latent::invalid_argument);
  warm.initialize(x, rng);
  const auto before = warm.params();
  CHECK_THROWS_AS(latent::em(warm, latent::observations(x, w)), latent::invalid_argument);
  CHECK(warm.params().means == before.means);
  CHECK_THROWS_WITH(latent::observations(x, Eigen::VectorXd::Constant(60, 1e308)), Catch::Contains("finite sum"));
}

TEST_CASE("a failed initialize leaves the model unchanged; collapsing restarts pass nothing on",
          "[gaussian_mixture][restarts]") {
  // Two pairs of identical points: without reg_covar the start's M-step is singular.
  Eigen::MatrixXd x(2, 4);
  x << 0, 0, 10, 10, 0, 0, 10, 10;
  latent::gaussian_mixture gmm(2, covariance_type::full, {.reg_covar = 0.0});
  auto rng = make_rng(104);
  CHECK_THROWS_AS(gmm.initialize(x, rng), latent::numerical_error);
  CHECK_FALSE(gmm.has_params());  // it used to hold infinite covariances and a stale cache
  const latent::gaussian_mixture_params p{Eigen::Vector2d(0.5, 0.5), (Eigen::Matrix2d() << 0, 10, 0, 10).finished(),
                                          {Eigen::Matrix2d::Identity(), Eigen::Matrix2d::Identity()}};
  gmm.set_params(p);
  CHECK_THROWS_AS(gmm.initialize(x, rng), latent::numerical_error);
  CHECK(gmm.params().means == p.means);
  CHECK(gmm.params().covariances[0] == p.covariances[0]);
  CHECK(std::isfinite(gmm.log_likelihood(Eigen::MatrixXd::Ones(2, 3))));
  // Restarts that all fail to start: no exception, the model keeps its parameters, and the
  // result reports them.
  const auto fit = latent::em(gmm, x, rng, {.restarts = 3});
  CHECK(fit.status == latent::fit_status::numerical_issue);
  CHECK(gmm.params().means == p.means);
  CHECK(fit.params.means == gmm.params().means);
  // Random data where some restarts collapse (reg_covar = 0, K = 3 on 30 points in 4-d):
  // whatever wins, the model holds finite parameters equal to the result's, and fits again.
  auto rng2 = make_rng(91);
  const Eigen::MatrixXd y = latent::standard_normal(4, 30, rng2);
  latent::gaussian_mixture g3(3, covariance_type::full, {.reg_covar = 0.0});
  const auto f3 = latent::em(g3, y, rng2, {.restarts = 10});
  REQUIRE(g3.has_params());
  CHECK(g3.params().means == f3.params.means);
  for (const auto& c : g3.params().covariances) CHECK(c.allFinite());
  CHECK_NOTHROW(latent::em(g3, y, {.max_iterations = 3}));
}

TEST_CASE("extreme data: spreads whose squares overflow are refused naming 'x'; large magnitudes are fine",
          "[gaussian_mixture][errors][extreme]") {
  auto rng = make_rng(105);
  const Eigen::MatrixXd z = three_clusters(30, rng);  // 3 x 90
  for (double scale : {1e160, 1e200, 1e300}) {
    CAPTURE(scale);
    const Eigen::MatrixXd x = scale * z;
    for (covariance_type t : all_types) {
      latent::gaussian_mixture cold(3, t);
      CHECK_THROWS_WITH(latent::em(cold, x, rng, {.restarts = 2}),
                        Catch::Contains("'x'") && Catch::Contains("spreads") && !Catch::Contains("covariances"));
      CHECK_FALSE(cold.has_params());
      latent::gaussian_mixture warm(3, t);
      warm.initialize(z, rng);
      CHECK_THROWS_WITH(latent::em(warm, x), Catch::Contains("'x'") && Catch::Contains("spreads"));
    }
  }
  // Float: the bound is about 1e16 for N = 90.
  const Eigen::MatrixXf zf = (1e20 * z).cast<float>();
  latent::basic_gaussian_mixture<float> gf(3, covariance_type::diagonal);
  CHECK_THROWS_WITH(latent::em(gf, zf, rng), Catch::Contains("'x'") && Catch::Contains("float"));
  // Magnitudes do not matter, spreads do: one component on data at 1e150 with spread 1e140
  // reaches the sample mean and covariance (the closed form), computed here about the minimum.
  const Eigen::MatrixXd far = ((1e140 * z).array() + 1e150).matrix();
  const Eigen::VectorXd lo = far.rowwise().minCoeff();
  const Eigen::VectorXd mean = (far.colwise() - lo).rowwise().mean() + lo;
  const Eigen::MatrixXd dev = far.colwise() - mean;
  const Eigen::MatrixXd cov = dev * dev.transpose() / double(far.cols());
  latent::gaussian_mixture one(1, covariance_type::full, {.reg_covar = 0.0});
  const auto fit = latent::em(one, far, rng, {.tolerance = 1e-12});
  REQUIRE(fit.converged());
  CHECK_THAT(Eigen::MatrixXd(fit.params.means), IsApprox(mean, 1e-14));
  CHECK_THAT(fit.params.covariances[0], IsApprox(cov, 1e-10));
  // A direct e_step on points far beyond every component is a numerical_error, never a NaN.
  latent::gaussian_mixture unit(3, covariance_type::full);
  unit.initialize(z, rng);
  auto s = unit.zero_stats();
  CHECK_THROWS_AS(unit.e_step(Eigen::MatrixXd(1e300 * z), 0, 90, s), latent::numerical_error);
}

TEMPLATE_TEST_CASE("far points: log p(x) is finite or -inf, never NaN; responsibilities sum to 1",
                   "[gaussian_mixture][extreme]", float, double) {
  using S = TestType;
  using mat = latent::matrix_t<S>;
  const S big = std::numeric_limits<S>::max();
  // Far columns: overflowing x - c (max and -max), overflowing squares, and one ordinary point.
  mat x(2, 6);
  x << big, -big, big, S(1e-3) * big, S(0.3) * big, S(0.5), big, big, -big, S(0), S(-0.7) * big, S(-1);
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::basic_gaussian_mixture_params<S> p;
    p.weights = latent::vector_t<S>(3);
    p.weights << S(0.5), S(0.3), S(0.2);
    p.means = mat(2, 3);
    p.means << S(-1), S(2), S(0), S(-1), S(1), S(3);
    mat a(2, 2), b(2, 2), c(2, 2);
    a << S(2), S(1.2), S(1.2), S(1);
    b << S(1), S(-0.4), S(-0.4), S(0.5);
    c << S(4), S(0), S(0), S(0.25);
    p.covariances = {a, b, c};
    if (t == covariance_type::tied) p.covariances = {a, a, a};
    if (t == covariance_type::diagonal)
      for (auto& m : p.covariances) m = mat(m.diagonal().asDiagonal());
    if (t == covariance_type::spherical)
      for (auto& m : p.covariances) m = m.diagonal().mean() * mat::Identity(2, 2);
    const latent::basic_gaussian_mixture<S> gmm(p, t);
    const auto ll = gmm.log_likelihood_per_observation(x);
    const mat r = gmm.responsibilities(x);
    for (Eigen::Index n = 0; n < x.cols(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(std::isnan(ll(n)));
      CHECK(ll(n) < S(0));
      CHECK(r.col(n).allFinite());
      CHECK(std::abs(double(r.col(n).sum()) - 1.0) < 1e-6);
      // Along a far direction v the distances are t^2 v' Sigma_k^{-1} v: the most probable
      // component is the one with the smallest v' Sigma_k^{-1} v (no ties here).
      if (n < 5) {
        const Eigen::VectorXd v = x.col(n).template cast<double>() / double(big);
        Eigen::VectorXd quad(3);
        for (int k = 0; k < 3; ++k) {
          const Eigen::MatrixXd sk = p.covariances[std::size_t(k)].template cast<double>();
          quad(k) = v.dot(sk.llt().solve(v));
        }
        Eigen::Index nearest = 0, label = 0;
        quad.minCoeff(&nearest);
        r.col(n).maxCoeff(&label);
        if (t != covariance_type::tied) CHECK(label == nearest);
        // Tied: q_k - q_j is linear in x, -2 t (mu_k - mu_j)' Sigma^{-1} v: the largest
        // mu_k' Sigma^{-1} v wins.
        if (t == covariance_type::tied) {
          const Eigen::MatrixXd sk = p.covariances[0].template cast<double>();
          const Eigen::VectorXd proj = p.means.template cast<double>().transpose() * sk.llt().solve(v);
          Eigen::Index best = 0;
          proj.maxCoeff(&best);
          CHECK(label == best);
        }
      }
    }
    // The ordinary point is evaluated as before (the fallback is not used).
    CHECK(std::isfinite(ll(5)));
    // The fallback's arithmetic equals the fast path's where both are finite.
    auto rng = make_rng(106);
    const Eigen::MatrixXd near = 3.0 * latent::standard_normal(2, 20, rng);
    const mat nears = near.cast<S>();
    const auto fast = gmm.log_likelihood_per_observation(nears);
    const mat fast_r = gmm.responsibilities(nears);
    const double tol = std::is_same_v<S, float> ? 1e-5 : 1e-12;
    latent::detail::mixture::cache<S> cache;
    REQUIRE(latent::detail::mixture::build_cache(gmm.params(), t, Eigen::MatrixXd(),
                                                 latent::detail::mixture::singular_tolerance<S>(2), 0.0, cache));
    for (Eigen::Index n = 0; n < near.cols(); ++n) {
      Eigen::VectorXd rn;
      const double slow =
          latent::detail::mixture::far_posterior(nears.col(n).template cast<double>(), gmm.params(), t, cache, rn);
      CHECK(slow == Approx(double(fast(n))).epsilon(tol));
      CHECK_THAT(rn, IsApprox(fast_r.col(n).template cast<double>(), tol));
    }
  }
}

TEST_CASE("reg_covar: the trace holds the penalized log-likelihood, which EM never lowers on lattice data",
          "[gaussian_mixture][monotone]") {
  // Integer data (a rounded mixture): components sit on lattice lines, where covariances are
  // the ridge reg_covar alone. Before, the trace held the plain log-likelihood, which the
  // ridged M-step does not maximize: it fell (up to 6e-8 relative) in most of these fits.
  std::size_t fits = 0;
  for (covariance_type t : {covariance_type::full, covariance_type::tied}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      CAPTURE(to_string(t), seed);
      auto rng = make_rng(200 + seed);
      Eigen::MatrixXd x = latent::standard_normal(2, 200, rng);
      x.middleCols(70, 70).array() += 2.0;
      x.rightCols(60).row(1).array() -= 2.5;
      x = (0.7 * x).array().round().matrix();
      latent::gaussian_mixture gmm(6, t);
      const auto fit = latent::em(gmm, x, rng, {.max_iterations = 500, .tolerance = 1e-13});
      REQUIRE(fit.status != latent::fit_status::numerical_issue);
      CHECK(fit.decreases == 0);
      for (std::size_t i = 1; i < fit.trace.size(); ++i)
        REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-12 * std::abs(fit.trace[i]));
      ++fits;
    }
  }
  CHECK(fits == 40);
  // The traced objective, directly: sum_n log sum_k pi_k N(x_n | mu_k, Sigma_k) e^{-eps/2 tr Sigma_k^{-1}};
  // log_likelihood(x) stays the plain log-likelihood (BIC, AIC, comparisons with other tools).
  auto rng = make_rng(250);
  const Eigen::MatrixXd x = three_clusters(100, rng);
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture gmm(3, t, {.reg_covar = 0.05});
    const auto fit = latent::em(gmm, x, rng, {.tolerance = 1e-12});
    REQUIRE(fit.converged());
    CHECK(fit.decreases == 0);
    Eigen::MatrixXd lj(3, x.cols()), lj_pen(3, x.cols());
    for (Eigen::Index k = 0; k < 3; ++k) {
      const latent::cholesky_result ch = latent::regularized_cholesky(fit.params.covariances[std::size_t(k)]);
      REQUIRE(ch.ok);
      lj.row(k) = latent::mvn_log_density(x, fit.params.means.col(k), ch.llt).array() + std::log(fit.params.weights(k));
      lj_pen.row(k) = lj.row(k).array() - 0.5 * 0.05 * ch.llt.solve(Eigen::MatrixXd::Identity(3, 3)).trace();
    }
    double plain = 0.0, penalized = 0.0;
    for (Eigen::Index n = 0; n < x.cols(); ++n) {
      plain += latent::log_sum_exp(lj.col(n));
      penalized += latent::log_sum_exp(lj_pen.col(n));
    }
    CHECK(fit.objective == Approx(penalized).epsilon(1e-12));
    CHECK(gmm.log_likelihood(x) == Approx(plain).epsilon(1e-12));
    CHECK(fit.objective < gmm.log_likelihood(x));
  }
}

// ---- Missing values (NaN, missing at random) ------------------------------------------------

namespace {

const latent::gaussian_mixture_options allow_missing{.missing_values = latent::missing_policy::allow};

/// sum_n log sum_k pi_k N(x_n,o | mu_k,o, Sigma_k,oo), observation by observation.
double observed_log_likelihood(const Eigen::MatrixXd& x, const latent::gaussian_mixture_params& p) {
  double ll = 0.0;
  for (Eigen::Index n = 0; n < x.cols(); ++n) {
    Eigen::VectorXd t(p.weights.size());
    for (Eigen::Index k = 0; k < t.size(); ++k)
      t(k) = std::log(p.weights(k)) +
             latent_test::log_marginal_density(x.col(n), p.means.col(k), p.covariances[static_cast<std::size_t>(k)]);
    ll += t.maxCoeff() + std::log((t.array() - t.maxCoeff()).exp().sum());
  }
  return ll;
}

/// The directions of the free parameters of a mixture of type t (weights: pi_0 up, pi_1 down).
std::vector<latent::gaussian_mixture_params> free_directions(const latent::gaussian_mixture_params& p,
                                                             covariance_type t) {
  const Eigen::Index d = p.means.rows(), k_count = p.weights.size();
  const latent::gaussian_mixture_params zero{
      Eigen::VectorXd::Zero(k_count), Eigen::MatrixXd::Zero(d, k_count),
      std::vector<Eigen::MatrixXd>(static_cast<std::size_t>(k_count), Eigen::MatrixXd::Zero(d, d))};
  std::vector<latent::gaussian_mixture_params> out;
  auto e = zero;
  e.weights(0) = 1.0;
  e.weights(1) = -1.0;
  out.push_back(e);
  for (Eigen::Index i = 0; i < d * k_count; ++i) {
    e = zero;
    e.means(i) = 1.0;
    out.push_back(e);
  }
  for (Eigen::Index k = 0; k < k_count; ++k)
    for (Eigen::Index i = 0; i < d; ++i)
      for (Eigen::Index j = 0; j <= i; ++j) {
        const bool off = i != j;
        if ((off && (t == covariance_type::diagonal || t == covariance_type::spherical)) ||
            (t == covariance_type::spherical && i > 0) || (t == covariance_type::tied && k > 0))
          continue;
        e = zero;
        for (Eigen::Index f = 0; f < k_count; ++f) {
          if (f != k && t != covariance_type::tied) continue;
          Eigen::MatrixXd& c = e.covariances[static_cast<std::size_t>(f)];
          if (t == covariance_type::spherical) c.setIdentity();
          c(i, j) = c(j, i) = 1.0;
        }
        out.push_back(e);
      }
  return out;
}

latent::gaussian_mixture_params moved(const latent::gaussian_mixture_params& p, const latent::gaussian_mixture_params& e,
                                      double h) {
  latent::gaussian_mixture_params q = p;
  q.weights += h * e.weights;
  q.means += h * e.means;
  for (std::size_t k = 0; k < q.covariances.size(); ++k) q.covariances[k] += h * e.covariances[k];
  return q;
}

}  // namespace

TEST_CASE("missing values: with nothing missing, allowing them changes no bit", "[gaussian_mixture][missing]") {
  auto rng = make_rng(901);
  const Eigen::MatrixXd x = three_clusters(200, rng);
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    auto r1 = make_rng(902), r2 = make_rng(902);
    latent::gaussian_mixture plain(3, t), allowing(3, t, allow_missing);
    const auto a = latent::em(plain, x, r1, {.max_iterations = 30, .block_size = 256});
    const auto b = latent::em(allowing, x, r2, {.max_iterations = 30, .block_size = 256});
    CHECK(a.trace == b.trace);
    CHECK(a.params.weights == b.params.weights);
    CHECK(a.params.means == b.params.means);
    CHECK(a.params.covariances == b.params.covariances);
    CHECK(plain.log_likelihood_per_observation(x) == allowing.log_likelihood_per_observation(x));
  }
}

TEST_CASE("missing values: the objective is the observed-data log-likelihood and EM's fixed point maximizes it",
          "[gaussian_mixture][missing]") {
  // Two clusters in d = 3, 30 % of the entries missing completely at random. At the EM fixed
  // point (reg_covar = 0) every directional derivative of the log-likelihood, computed by
  // central differences of the direct per-observation evaluation, vanishes, and steps of 1e-3
  // both ways lower it. The derivative's own error: truncation h^2 f''' ~ 1e-10 N and rounding
  // eps |L| / h ~ 1e-8; EM stopped when the log-likelihood rose by less than 1e-13 relative
  // and no parameter moved by more than 1e-8, which leaves a gradient far below the 1e-5 N
  // allowed.
  auto rng = make_rng(911);
  Eigen::MatrixXd x = latent::standard_normal(3, 160, rng);
  x.rightCols(80).array().colwise() += Eigen::Array3d(3.0, 2.0, -2.0);
  x.row(1) += 0.6 * x.row(0);
  latent_test::mask_completely_at_random(x, 0.3, rng);
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture gmm(2, t, {.reg_covar = 0.0, .missing_values = latent::missing_policy::allow});
    const auto fit = latent::em(gmm, x, rng, {.max_iterations = 20000, .tolerance = 1e-13});
    REQUIRE(fit.converged());
    const latent::gaussian_mixture_params p = gmm.params();
    const double direct = observed_log_likelihood(x, p);
    CHECK(gmm.log_likelihood(x) == Approx(direct).epsilon(1e-12));
    CHECK(fit.objective == Approx(direct).epsilon(1e-12));
    CHECK(gmm.bic(x) == Approx(-2.0 * direct + static_cast<double>(gmm.num_free_parameters()) * std::log(160.0))
                            .epsilon(1e-12));
    const double h = 1e-5;
    for (const auto& e : free_directions(p, t)) {
      const double g =
          (observed_log_likelihood(x, moved(p, e, h)) - observed_log_likelihood(x, moved(p, e, -h))) / (2 * h);
      CAPTURE(g);
      CHECK(std::abs(g) < 1e-5 * 160);
      CHECK(observed_log_likelihood(x, moved(p, e, 1e-3)) < direct);
      CHECK(observed_log_likelihood(x, moved(p, e, -1e-3)) < direct);
    }
  }
}

TEST_CASE("missing values: EM never lowers the objective; any thread count gives the same bits",
          "[gaussian_mixture][missing][monotone][threads]") {
  // Monotone: two seeds per type, one thread. Threads: the first iterations on 1 and 2 threads
  // (blocks of 64 columns, so each block holds a different set of patterns) give the same bits.
  for (covariance_type t : all_types) {
    for (std::uint64_t seed = 1; seed <= 2; ++seed) {
      CAPTURE(to_string(t), seed);
      auto rng = make_rng(920 + seed);
      Eigen::MatrixXd x = latent::standard_normal(3, 600, rng);
      x.middleCols(200, 200).array() += 1.5;
      x.rightCols(200).row(1).array() -= 2.0;
      latent_test::mask_completely_at_random(x, 0.35, rng);
      latent::gaussian_mixture gmm(4, t, allow_missing);
      auto r = make_rng(930 + seed);
      const auto fit = latent::em(gmm, x, r, {.max_iterations = 100, .tolerance = 1e-12, .threads = 1});
      CHECK(fit.decreases == 0);
      for (std::size_t i = 1; i < fit.trace.size(); ++i)
        REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-10 * std::abs(fit.trace[i]));
      if (seed > 1) continue;
      std::vector<latent::fit_result<latent::gaussian_mixture_params>> fits;
      for (int threads : {1, 2}) {
        auto r2 = make_rng(940);
        latent::gaussian_mixture g(4, t, allow_missing);
        fits.push_back(latent::em(g, x, r2, {.max_iterations = 10, .threads = threads, .block_size = 64}));
      }
      CHECK(fits[1].trace == fits[0].trace);
      CHECK(fits[1].params.means == fits[0].params.means);
      CHECK(fits[1].params.covariances == fits[0].params.covariances);
    }
  }
}

TEST_CASE("missing values: estimates under MCAR are consistent within standard errors",
          "[gaussian_mixture][missing][recovery]") {
  // N = 4000 from a known two-component mixture, 25 % of entries missing completely at random.
  // Standard errors from the observations that see a coordinate (N pi_k (1 - p)), and for a
  // covariance entry from those that see both ((1 - p)^2): the observed-data likelihood holds
  // at least the complete cases' information. Tolerance 5 SE per entry.
  auto rng = make_rng(941);
  latent::gaussian_mixture_params truth;
  truth.weights = Eigen::Vector2d(0.4, 0.6);
  truth.means = Eigen::MatrixXd(2, 2);
  truth.means << 0.0, 4.0, 0.0, 1.0;
  Eigen::MatrixXd c0(2, 2), c1(2, 2);
  c0 << 1.0, 0.6, 0.6, 1.5;
  c1 << 0.8, -0.3, -0.3, 0.5;
  truth.covariances = {c0, c1};
  const latent::gaussian_mixture source(truth, covariance_type::full);
  const Eigen::Index n = 4000;
  const double p_missing = 0.25;
  Eigen::MatrixXd x = source.sample(n, rng);
  latent_test::mask_completely_at_random(x, p_missing, rng);
  latent::gaussian_mixture gmm(2, covariance_type::full, allow_missing);
  const auto fit = latent::em(gmm, x, rng, {.restarts = 2});
  REQUIRE(fit.converged());
  latent::gaussian_mixture_params p = gmm.params();
  if (p.means(0, 0) > p.means(0, 1)) {
    std::swap(p.covariances[0], p.covariances[1]);
    p.means.col(0).swap(p.means.col(1));
    std::swap(p.weights(0), p.weights(1));
  }
  CHECK(std::abs(p.weights(0) - 0.4) < 5.0 * std::sqrt(0.24 / static_cast<double>(n)));
  for (Eigen::Index k = 0; k < 2; ++k) {
    const Eigen::MatrixXd& s = truth.covariances[static_cast<std::size_t>(k)];
    const double nk = static_cast<double>(n) * truth.weights(k);
    for (Eigen::Index i = 0; i < 2; ++i) {
      CAPTURE(k, i);
      CHECK(std::abs(p.means(i, k) - truth.means(i, k)) < 5.0 * std::sqrt(s(i, i) / (nk * (1 - p_missing))));
      for (Eigen::Index j = 0; j <= i; ++j) {
        const double se =
            std::sqrt((s(i, i) * s(j, j) + s(i, j) * s(i, j)) / (nk * (1 - p_missing) * (1 - p_missing)));
        CHECK(std::abs(p.covariances[static_cast<std::size_t>(k)](i, j) - s(i, j)) < 5.0 * se);
      }
    }
  }
}

TEST_CASE("missing values: NaN without the option, unobserved coordinates or columns, inf: invalid_argument",
          "[gaussian_mixture][missing][errors]") {
  auto rng = make_rng(951);
  Eigen::MatrixXd x = three_clusters(50, rng);
  x(1, 7) = std::numeric_limits<double>::quiet_NaN();
  {
    latent::gaussian_mixture gmm(3, covariance_type::full);  // default: NaN is invalid
    CHECK_THROWS_AS(gmm.initialize(x, rng), latent::invalid_argument);
    CHECK_THROWS_AS(latent::em(gmm, x, rng), latent::invalid_argument);
    gmm.initialize(three_clusters(50, rng), rng);
    CHECK_THROWS_AS(latent::em(gmm, x), latent::invalid_argument);
    CHECK_THROWS_AS(gmm.log_likelihood(x), latent::invalid_argument);
  }
  for (covariance_type t : all_types) {
    CAPTURE(to_string(t));
    latent::gaussian_mixture gmm(3, t, allow_missing);
    gmm.initialize(x, rng);  // one NaN is fine
    Eigen::MatrixXd no_coordinate = x;
    no_coordinate.row(2).setConstant(std::numeric_limits<double>::quiet_NaN());
    CHECK_THROWS_AS(gmm.initialize(no_coordinate, rng), latent::invalid_argument);
    CHECK_THROWS_AS(latent::em(gmm, no_coordinate), latent::invalid_argument);
    Eigen::MatrixXd no_column = x;
    no_column.col(4).setConstant(std::numeric_limits<double>::quiet_NaN());
    CHECK_THROWS_AS(latent::em(gmm, no_column), latent::invalid_argument);
    CHECK_THROWS_AS(gmm.log_likelihood(no_column), latent::invalid_argument);
    Eigen::MatrixXd infinite = x;
    infinite(0, 3) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(latent::em(gmm, infinite), latent::invalid_argument);
    CHECK_THROWS_AS(gmm.log_likelihood(infinite), latent::invalid_argument);
  }
}
