// Factor analysis / PPCA: exact EM against closed forms and direct formulas, variational EM
// with mean field, fitting from moments, thread invariance, Heywood cases and bad input; the
// float instantiation against double (kernels, and fits that reach the same optimum); the flat
// view of the statistics.
#include <latent/core/callbacks.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/statistics.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/core/chi_square.hpp>
#include <latent/models/factor_analysis.hpp>
#include <latent/models/factor_analysis/factanal.hpp>
#include <latent/models/factor_analysis/missing.hpp>
#include <latent/models/factor_analysis/rotation.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

#include <support/missing_values.hpp>
#include <support/test_support.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using latent::factor_analysis;
using latent::factor_analysis_options;
using latent::factor_analysis_params;
using latent::noise_model;
using latent_test::IsApprox;

namespace {

/// Relative tolerances per scalar type. `kernel`: one deterministic E-step or log-density of
/// a float model against the double model at the same (float-rounded) parameters and data,
/// where each observation's quadratic form sums d = 5..10 float products (rounding ~1e-6 of
/// log p(x_n)) and blocks are summed in double. `optimum`: a float EM fit's implied covariance
/// against the double fit's, both iterated to their fixed points; float rounding in the
/// E-step moves the fixed point by ~ cond x 1e-6.
template <class T>
struct tolerance;
template <>
struct tolerance<double> {
  static constexpr double kernel = 1e-12;
  static constexpr double optimum = 1e-10;
};
template <>
struct tolerance<float> {
  static constexpr double kernel = 2e-5;
  static constexpr double optimum = 2e-4;
};

/// Parameters with loadings of clearly different strengths (so the factors are well separated)
/// and uniquenesses in [0.3, 1.3].
template <class Rng>
factor_analysis_params make_params(Eigen::Index d, Eigen::Index k, Rng& rng, bool isotropic = false) {
  factor_analysis_params p;
  p.loadings = latent::standard_normal(d, k, rng);
  for (Eigen::Index c = 0; c < k; ++c) p.loadings.col(c) *= 2.0 / static_cast<double>(c + 1);
  p.mean = latent::standard_normal(d, 1, rng).col(0) * 3.0;
  p.uniquenesses = isotropic ? Eigen::VectorXd::Constant(d, 0.5)
                             : Eigen::VectorXd(0.3 + Eigen::VectorXd::LinSpaced(d, 0.0, 1.0).array());
  return p;
}

template <class Rng>
Eigen::MatrixXd simulate(const factor_analysis_params& p, Eigen::Index n, Rng& rng,
                         noise_model noise = noise_model::diagonal) {
  return factor_analysis(p, {.noise = noise}).sample(n, rng);
}

Eigen::MatrixXd implied(const factor_analysis_params& p) {
  Eigen::MatrixXd s = p.loadings * p.loadings.transpose();
  s.diagonal() += p.uniquenesses;
  return s;
}

/// Runs `f` and checks it throws latent::invalid_argument whose message contains `needle`.
template <class F>
void require_invalid(F&& f, const std::string& needle) {
  try {
    f();
    FAIL("no exception; expected invalid_argument mentioning " << needle);
  } catch (const latent::invalid_argument& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("per-observation log-likelihood equals the direct multivariate normal density",
                   "[factor_analysis][float]", float, double) {
  using T = TestType;
  constexpr double tol = tolerance<T>::kernel;
  auto rng = latent_test::make_rng(1);
  // The parameters and data rounded to T; the reference computed in double from them.
  const factor_analysis_params p = make_params(7, 3, rng).template cast<T>().template cast<double>();
  const latent::basic_factor_analysis<T> fa(p.template cast<T>());
  const Eigen::MatrixXd x = simulate(p, 200, rng).template cast<T>().template cast<double>();
  const latent::matrix_t<T> xt = x.template cast<T>();
  const Eigen::LLT<Eigen::MatrixXd> chol(implied(p));
  const Eigen::RowVectorXd direct = latent::mvn_log_density(x, p.mean, chol);
  const Eigen::RowVectorXd woodbury = fa.log_likelihood_per_observation(xt);
  CHECK_THAT(Eigen::MatrixXd(woodbury), IsApprox(Eigen::MatrixXd(direct), tol));
  CHECK_THAT(Eigen::MatrixXd(fa.implied_covariance().template cast<double>()), IsApprox(implied(p), 1e-15 + tol / 10));
  CHECK(fa.log_likelihood(xt) == Approx(direct.sum()).epsilon(tol));

  // Through the E-step (blocks of the solver) and from the sample moments alone.
  auto s = fa.zero_stats();
  const double ll_block = fa.e_step(xt, 0, 120, s) + fa.e_step(xt, 120, 200, s);
  CHECK(ll_block == Approx(direct.sum()).epsilon(tol));
  const auto m = latent::basic_sample_moments<T>::from_data(xt);
  CHECK(fa.log_likelihood(m) == Approx(direct.sum()).epsilon(tol / 10));
  // Weighted: the weights enter as multiplicities.
  latent::vector_t<T> w = latent::vector_t<T>::LinSpaced(200, T(0), T(2));
  const Eigen::VectorXd wd = w.template cast<double>();
  CHECK(fa.log_likelihood(latent::basic_observations<T>(xt, w)) == Approx(direct.dot(wd)).epsilon(tol));
  auto sw = fa.zero_stats();
  CHECK(fa.e_step(latent::basic_observations<T>(xt, w), 0, 200, sw) == Approx(direct.dot(wd)).epsilon(tol));
  CHECK(sw.weight == Approx(wd.sum()).epsilon(1e-15));
}

TEST_CASE("posterior moments match Gaussian conditioning with the full covariance", "[factor_analysis]") {
  auto rng = latent_test::make_rng(2);
  const factor_analysis_params p = make_params(6, 2, rng);
  const factor_analysis fa(p);
  const Eigen::MatrixXd x = simulate(p, 50, rng);
  // z | x ~ N(Lambda^T Sigma^{-1} (x - mu), I - Lambda^T Sigma^{-1} Lambda): no Woodbury.
  const Eigen::LLT<Eigen::MatrixXd> chol(implied(p));
  const Eigen::MatrixXd mean = p.loadings.transpose() * chol.solve(x.colwise() - p.mean);
  const Eigen::MatrixXd cov = Eigen::MatrixXd::Identity(2, 2) - p.loadings.transpose() * chol.solve(p.loadings);
  CHECK_THAT(fa.posterior_mean(x), IsApprox(mean, 1e-12));
  CHECK_THAT(fa.posterior_covariance(), IsApprox(cov, 1e-12));
}

TEST_CASE("EM for PPCA converges to the closed-form MLE on the same sample", "[factor_analysis][ppca]") {
  auto rng = latent_test::make_rng(3);
  const Eigen::Index d = 8, k = 2, n = 2000;
  const factor_analysis_params truth = make_params(d, k, rng, /*isotropic=*/true);
  const Eigen::MatrixXd x = simulate(truth, n, rng, noise_model::isotropic);
  const auto moments = latent::sample_moments::from_data(x);
  const factor_analysis_params mle = factor_analysis::ppca_mle(moments, k);

  factor_analysis ppca(k, {.noise = noise_model::isotropic});
  ppca.initialize(x, rng);  // random loadings: EM has to find the principal subspace itself
  const auto fit = latent::em(ppca, x, {.max_iterations = 5000, .tolerance = 0.0});
  CHECK(fit.decreases == 0);
  INFO("iterations " << fit.iterations << ", status " << latent::to_string(fit.status));

  // EM converges linearly; once the log-likelihood changes by less than its rounding the
  // parameters are still only ~sqrt(eps) accurate (the likelihood is flat to second order at
  // its maximum). Keep iterating the same E- and M-steps to pin the fixed point down.
  for (int i = 0; i < 3000; ++i) {
    auto s = ppca.zero_stats();
    ppca.e_step(x, 0, n, s);
    ppca.m_step(s);
  }
  const factor_analysis at_mle(mle, {.noise = noise_model::isotropic});
  const double ll_mle = at_mle.log_likelihood(x);
  // The MLE is the global maximum: EM reaches it (to rounding) and never exceeds it.
  CHECK(fit.objective <= ll_mle + 1e-10 * std::abs(ll_mle));
  CHECK(fit.objective == Approx(ll_mle).epsilon(1e-12));
  const auto& q = ppca.params();
  CHECK_THAT(Eigen::MatrixXd(q.loadings * q.loadings.transpose()),
             IsApprox(Eigen::MatrixXd(mle.loadings * mle.loadings.transpose()), 1e-10));
  CHECK(q.uniquenesses(0) == Approx(mle.uniquenesses(0)).epsilon(1e-11));
  CHECK_THAT(Eigen::MatrixXd(q.mean), IsApprox(Eigen::MatrixXd(mle.mean), 1e-12));
}

TEST_CASE("the closed-form PPCA MLE is a fixed point of the EM update", "[factor_analysis][ppca]") {
  auto rng = latent_test::make_rng(4);
  const factor_analysis_params truth = make_params(6, 2, rng, true);
  const Eigen::MatrixXd x = simulate(truth, 500, rng, noise_model::isotropic);
  const auto mle = factor_analysis::ppca_mle(latent::sample_moments::from_data(x), 2);
  factor_analysis ppca(mle, {.noise = noise_model::isotropic});
  auto s = ppca.zero_stats();
  ppca.e_step(x, 0, x.cols(), s);
  ppca.m_step(s);
  CHECK_THAT(implied(ppca.params()), IsApprox(implied(mle), 1e-12));
}

TEST_CASE("factor analysis EM never decreases the log-likelihood and reaches a stationary point",
          "[factor_analysis]") {
  auto rng = latent_test::make_rng(5);
  const Eigen::Index d = 10, k = 3, n = 1500;
  const factor_analysis_params truth = make_params(d, k, rng);
  const Eigen::MatrixXd x = simulate(truth, n, rng);
  factor_analysis fa(k);
  fa.initialize(x, rng);
  latent::record_trace trace;
  const auto fit = latent::em(fa, x, {.max_iterations = 3000, .tolerance = 1e-14}, trace);
  CHECK(fit.decreases == 0);
  REQUIRE(trace.values.size() > 10);
  for (std::size_t i = 1; i < trace.values.size(); ++i)
    CHECK(trace.values[i] >= trace.values[i - 1] - 1e-12 * std::abs(trace.values[i]));
  CHECK(fit.converged());
  for (int i = 0; i < 1000; ++i) {  // past rounding in the objective, see the PPCA test
    auto s = fa.zero_stats();
    fa.e_step(x, 0, n, s);
    fa.m_step(s);
  }

  // Stationarity of the likelihood (no uniqueness at its floor): diag(Sigma) = diag(S) and
  // the gradient in Lambda, Sigma^{-1} (Sigma - S) Sigma^{-1} Lambda, vanishes.
  const auto m = latent::sample_moments::from_data(x);
  const Eigen::MatrixXd sigma = fa.implied_covariance();
  CHECK_THAT(Eigen::MatrixXd(sigma.diagonal()), IsApprox(Eigen::MatrixXd(m.covariance.diagonal()), 1e-12));
  const Eigen::LLT<Eigen::MatrixXd> chol(sigma);
  const Eigen::MatrixXd grad = chol.solve((sigma - m.covariance) * chol.solve(fa.params().loadings));
  CHECK(grad.norm() <= 1e-12 * fa.params().loadings.norm());
  CHECK_THAT(Eigen::MatrixXd(fa.params().mean), IsApprox(Eigen::MatrixXd(m.mean), 1e-12));
}

TEST_CASE("fitting from a covariance matrix and a count equals fitting from the data", "[factor_analysis]") {
  auto rng = latent_test::make_rng(6);
  const Eigen::Index d = 9, k = 2, n = 800;
  const factor_analysis_params truth = make_params(d, k, rng);
  const Eigen::MatrixXd x = simulate(truth, n, rng);
  // The moments computed independently: mean, then the ML covariance about it.
  const Eigen::VectorXd mean = x.rowwise().mean();
  const Eigen::MatrixXd xc = x.colwise() - mean;
  const Eigen::MatrixXd cov = xc * xc.transpose() / static_cast<double>(n);
  const auto moments = latent::sample_moments::from_covariance(cov, static_cast<double>(n), mean);
  CHECK_THAT(latent::sample_moments::from_data(x).covariance, IsApprox(cov, 1e-13));

  for (const noise_model noise : {noise_model::diagonal, noise_model::isotropic}) {
    INFO("noise " << latent::to_string(noise));
    factor_analysis from_data(k, {.noise = noise});
    from_data.initialize(x, rng);
    factor_analysis from_moments(from_data.params(), {.noise = noise});
    const latent::em_options opts{.max_iterations = 60, .tolerance = 0.0};
    const auto a = latent::em(from_data, x, opts);
    auto view = from_moments.moment_model();
    const auto b = latent::em(view, moments, opts);
    REQUIRE(a.trace.size() == b.trace.size());
    for (std::size_t i = 0; i < a.trace.size(); ++i) CHECK(b.trace[i] == Approx(a.trace[i]).epsilon(1e-11));
    CHECK(b.decreases == 0);
    CHECK_THAT(implied(from_moments.params()), IsApprox(implied(from_data.params()), 1e-10));
    CHECK_THAT(Eigen::MatrixXd(from_moments.params().mean), IsApprox(Eigen::MatrixXd(from_data.params().mean), 1e-12));
  }

  // Without a mean (factanal's covmat): the same loadings and uniquenesses, mean zero.
  factor_analysis with_mean(k), without_mean(k);
  with_mean.initialize_pca(moments);
  without_mean.initialize_pca(latent::sample_moments::from_covariance(cov, static_cast<double>(n)));
  auto v1 = with_mean.moment_model();
  auto v2 = without_mean.moment_model();
  const auto f1 = latent::em(v1, moments, {.max_iterations = 200, .tolerance = 0.0});
  const auto f2 = latent::em(v2, latent::sample_moments::from_covariance(cov, static_cast<double>(n)),
                             {.max_iterations = 200, .tolerance = 0.0});
  CHECK(f2.objective == Approx(f1.objective).epsilon(1e-11));
  CHECK_THAT(implied(without_mean.params()), IsApprox(implied(with_mean.params()), 1e-10));
  CHECK(without_mean.params().mean.norm() <= 1e-12);
}

TEST_CASE("statistics merge exactly across reference points, and weights act as repetitions", "[factor_analysis]") {
  auto rng = latent_test::make_rng(7);
  const factor_analysis_params p = make_params(5, 2, rng);
  const factor_analysis fa(p);
  const Eigen::MatrixXd x = simulate(p, 100, rng);

  auto whole = fa.zero_stats();
  const double ll_whole = fa.e_step(x, 0, 100, whole);
  auto left = fa.zero_stats();
  auto right = fa.zero_stats();
  right.reference.array() += 10.0;  // another reference point
  const double ll = fa.e_step(x, 0, 40, left) + fa.e_step(x, 40, 100, right);
  left += right;
  CHECK(ll == Approx(ll_whole).epsilon(1e-13));
  CHECK(left.weight == whole.weight);
  CHECK_THAT(Eigen::MatrixXd(left.sum_y), IsApprox(Eigen::MatrixXd(whole.sum_y), 1e-12, 1e-12));
  CHECK_THAT(Eigen::MatrixXd(left.sum_yy), IsApprox(Eigen::MatrixXd(whole.sum_yy), 1e-12));
  CHECK_THAT(left.sum_yz, IsApprox(whole.sum_yz, 1e-12, 1e-12));
  CHECK_THAT(left.sum_zz, IsApprox(whole.sum_zz, 1e-13));

  // Weight 2 on a column = the column twice.
  Eigen::VectorXd w = Eigen::VectorXd::Ones(100);
  w(3) = 2.0;
  Eigen::MatrixXd xdup(5, 101);
  xdup << x, x.col(3);
  auto sw = fa.zero_stats();
  auto sd = fa.zero_stats();
  const double llw = fa.e_step(latent::observations(x, w), 0, 100, sw);
  const double lld = fa.e_step(xdup, 0, 101, sd);
  CHECK(llw == Approx(lld).epsilon(1e-13));
  CHECK(sw.weight == sd.weight);
  CHECK_THAT(sw.sum_yz, IsApprox(sd.sum_yz, 1e-12, 1e-12));
  CHECK_THAT(sw.sum_zz, IsApprox(sd.sum_zz, 1e-12));
  CHECK_THAT(latent::sample_moments::from_data(latent::observations(x, w)).covariance,
             IsApprox(latent::sample_moments::from_data(xdup).covariance, 1e-12));
}

TEST_CASE("mean field: the solver's warm-started q makes one sweep per E-step enough", "[factor_analysis][variational]") {
  static_assert(latent::StatefulVariationalEMModel<factor_analysis, latent::mean_field>);
  auto rng = latent_test::make_rng(81);
  const Eigen::Index d = 10, k = 3, n = 600;
  const Eigen::MatrixXd x = simulate(make_params(d, k, rng), n, rng);
  factor_analysis start(k);
  start.initialize(x, rng);
  // One sweep per E-step: from the previous q (warm) each E-step cannot lower F, so the ELBO
  // never falls; the fit reaches the fixed point of the fully swept E-steps.
  factor_analysis warm = start, full = start;
  const auto fw = latent::variational_em(warm, x, latent::mean_field{.max_sweeps = 1}, {.max_iterations = 3000, .tolerance = 1e-13});
  const auto ff = latent::variational_em(full, x, latent::mean_field{.max_sweeps = 500, .tolerance = 1e-13},
                                         {.max_iterations = 3000, .tolerance = 1e-13});
  CHECK(fw.decreases == 0);
  REQUIRE(fw.converged());
  REQUIRE(ff.converged());
  CHECK(fw.objective == Approx(ff.objective).epsilon(1e-9));
  CHECK_THAT(Eigen::MatrixXd(warm.implied_covariance()), IsApprox(full.implied_covariance(), 1e-6));
  // Without the warm start the state is not read or written.
  {
    auto st = start.make_variational_state(latent::observations(x), latent::mean_field{});
    st.setConstant(7.0);
    auto s1 = start.zero_stats(), s2 = start.zero_stats();
    const double cold = start.e_step(latent::observations(x), 0, n, s1, latent::mean_field{.warm_start = false}, st);
    CHECK(cold == start.e_step(latent::observations(x), 0, n, s2, latent::mean_field{}));
    CHECK((st.array() == 7.0).all());
  }
  // The state belongs to the solver and is k x N.
  auto state = start.make_variational_state(latent::observations(x), latent::mean_field{});
  CHECK(state.rows() == k);
  CHECK(state.cols() == n);
  auto s = start.zero_stats();
  Eigen::MatrixXd wrong(k, n - 1);
  CHECK_THROWS_WITH(start.e_step(latent::observations(x), 0, 10, s, latent::mean_field{}, wrong),
                    Catch::Contains("'state'"));
  CHECK_THROWS_WITH(start.e_step(latent::observations(x), 0, n + 1, s, latent::mean_field{}, state),
                    Catch::Contains("outside"));
}

TEST_CASE("mean field: ELBO never decreases, stays below the log-likelihood, under-estimates variances",
          "[factor_analysis][variational]") {
  auto rng = latent_test::make_rng(8);
  const Eigen::Index d = 10, k = 3, n = 1000;
  const factor_analysis_params truth = make_params(d, k, rng);
  const Eigen::MatrixXd x = simulate(truth, n, rng);
  factor_analysis fa(k);
  fa.initialize(x, rng);
  const latent::mean_field family{.max_sweeps = 500, .tolerance = 1e-12};
  latent::record_trace trace;
  const auto fit = latent::variational_em(fa, x, family, {.max_iterations = 400, .tolerance = 1e-12}, trace);
  CHECK(fit.decreases == 0);
  for (std::size_t i = 1; i < trace.values.size(); ++i)
    CHECK(trace.values[i] >= trace.values[i - 1] - 1e-12 * std::abs(trace.values[i]));

  // At the fitted parameters: ELBO <= log p(x), with the gap the mean-field KL
  // N/2 (sum_j log M_jj - log det M) (the means converge to the exact posterior means).
  const double ll = fa.log_likelihood(x);
  CHECK(fit.objective < ll);
  const Eigen::MatrixXd cov = fa.posterior_covariance();
  const Eigen::MatrixXd mprec = cov.inverse();
  const double kl = 0.5 * (mprec.diagonal().array().log().sum() - std::log(mprec.determinant()));
  CHECK(kl > 0.0);
  CHECK(ll - fit.objective == Approx(static_cast<double>(n) * kl).epsilon(1e-6));

  const auto q = fa.mean_field_posterior_of(x, family);
  CHECK_THAT(q.means, IsApprox(fa.posterior_mean(x), 1e-9));
  for (Eigen::Index j = 0; j < k; ++j) {
    CHECK(q.variances(j) <= cov(j, j));
    CHECK(q.variances(j) == Approx(1.0 / mprec(j, j)).epsilon(1e-10));
  }
  CHECK(q.elbo.sum() == Approx(fit.objective).epsilon(1e-10));
}

TEST_CASE("mean-field ELBO equals log p(x) - KL(q || p(z | x)) for any q the sweeps reach", "[factor_analysis][variational]") {
  auto rng = latent_test::make_rng(9);
  const factor_analysis_params p = make_params(6, 3, rng);
  const factor_analysis fa(p);
  const Eigen::MatrixXd x = simulate(p, 30, rng);
  const Eigen::RowVectorXd ll = fa.log_likelihood_per_observation(x);
  const Eigen::MatrixXd post_mean = fa.posterior_mean(x);
  const Eigen::MatrixXd post_cov = fa.posterior_covariance();
  const Eigen::MatrixXd prec = post_cov.inverse();
  double previous = -std::numeric_limits<double>::infinity();
  for (const std::size_t sweeps : {1u, 2u, 5u, 200u}) {
    INFO("sweeps " << sweeps);
    const auto q = fa.mean_field_posterior_of(x, {.max_sweeps = sweeps, .tolerance = 0.0});
    // KL(N(m, S) || N(mu, C)) = 1/2 [tr(C^{-1} S) + (mu - m)^T C^{-1} (mu - m) - k + log det C - log det S].
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
      const Eigen::VectorXd diff = post_mean.col(i) - q.means.col(i);
      const double kl = 0.5 * ((prec.diagonal().array() * q.variances.array()).sum() + diff.dot(prec * diff) - 3.0 +
                               std::log(post_cov.determinant()) - q.variances.array().log().sum());
      CHECK(q.elbo(i) == Approx(ll(i) - kl).epsilon(1e-11));
    }
    CHECK(q.elbo.sum() >= previous);  // more sweeps, higher ELBO
    previous = q.elbo.sum();
  }
}

TEST_CASE("results do not depend on the thread count, bit for bit", "[factor_analysis][threads]") {
  auto rng = latent_test::make_rng(10);
  const factor_analysis_params truth = make_params(12, 3, rng);
  const Eigen::MatrixXd x = simulate(truth, 3000, rng);
  factor_analysis start(3);
  start.initialize(x, rng);
  for (const bool variational : {false, true}) {
    INFO("variational " << variational);
    latent::fit_result<factor_analysis_params> reference;
    for (const int threads : {1, 2, 8}) {
      factor_analysis fa(start.params());
      const latent::em_options opts{.max_iterations = 15, .tolerance = 0.0, .threads = threads, .block_size = 256};
      const auto fit = variational ? latent::variational_em(fa, x, latent::mean_field{.max_sweeps = 30}, opts)
                                   : latent::em(fa, x, opts);
      if (threads == 1) {
        reference = fit;
        continue;
      }
      INFO("threads " << threads);
      CHECK(fit.trace == reference.trace);
      CHECK(fit.params.loadings == reference.params.loadings);
      CHECK(fit.params.uniquenesses == reference.params.uniquenesses);
      CHECK(fit.params.mean == reference.params.mean);
    }
  }
}

TEST_CASE("Heywood cases and constant variables give no NaN", "[factor_analysis][heywood]") {
  auto rng = latent_test::make_rng(11);
  const Eigen::Index d = 6, k = 2, n = 600;
  const factor_analysis_params truth = make_params(d, k, rng);
  // x = Lambda z + mu + noise, with no noise at all on variable 0 (its unique variance is 0:
  // the likelihood grows without bound as Psi_00 -> 0), and variable 3 constant.
  const Eigen::MatrixXd z = latent::standard_normal(k, n, rng);
  Eigen::MatrixXd noise = latent::standard_normal(d, n, rng);
  noise.array().colwise() *= truth.uniquenesses.array().sqrt();
  noise.row(0).setZero();
  Eigen::MatrixXd x = (truth.loadings * z + noise).colwise() + truth.mean;
  x.row(3).setConstant(4.0);
  factor_analysis fa(k);
  fa.initialize(x, rng);
  const auto fit = latent::em(fa, x, {.max_iterations = 2000, .tolerance = 1e-12});
  INFO("status " << latent::to_string(fit.status) << " " << fit.message);
  CHECK(fit.status != latent::fit_status::numerical_issue);
  CHECK(fit.decreases == 0);
  CHECK(std::isfinite(fit.objective));
  CHECK(fa.params().loadings.allFinite());
  CHECK(fa.params().uniquenesses.allFinite());
  CHECK(fa.log_likelihood_per_observation(x).allFinite());
  const auto m = latent::sample_moments::from_data(x);
  const Eigen::VectorXd floors = fa.uniqueness_floors(m.covariance.diagonal());
  CHECK((fa.params().uniquenesses.array() >= floors.array() * (1.0 - 1e-9)).all());
  // EM creeps towards the boundary Psi_00 = 0 (sub-linearly); the constant variable sits at
  // its positive floor from the first M-step.
  CHECK(fa.params().uniquenesses(0) < 0.02 * m.covariance(0, 0));
  CHECK(floors(3) > 0.0);
  CHECK(fa.params().uniquenesses(3) == Approx(floors(3)).epsilon(1e-6));

  // Started in the Heywood corner (Psi_00 far below the floor): the M-step lands on the floor.
  factor_analysis_params corner = fa.params();
  corner.uniquenesses(0) = 1e-3 * floors(0);
  factor_analysis at_corner(corner);
  auto s = at_corner.zero_stats();
  CHECK(std::isfinite(at_corner.e_step(x, 0, n, s)));
  at_corner.m_step(s);
  CHECK(at_corner.params().uniquenesses(0) == Approx(floors(0)).epsilon(1e-6));
  CHECK(at_corner.params().loadings.allFinite());
  CHECK(at_corner.log_likelihood_per_observation(x).allFinite());

  const auto vfit = latent::variational_em(fa, x, latent::mean_field{}, {.max_iterations = 50});
  CHECK(std::isfinite(vfit.objective));
  CHECK(fa.params().loadings.allFinite());
}

TEST_CASE("sampling reproduces the implied covariance within its standard errors", "[factor_analysis]") {
  auto rng = latent_test::make_rng(12);
  const factor_analysis_params p = make_params(5, 2, rng);
  const factor_analysis fa(p);
  const Eigen::Index n = 20000;
  const Eigen::MatrixXd x = fa.sample(n, rng);
  const auto m = latent::sample_moments::from_data(x);
  const Eigen::MatrixXd sigma = implied(p);
  for (Eigen::Index i = 0; i < 5; ++i) {
    CHECK(std::abs(m.mean(i) - p.mean(i)) <= 5.0 * std::sqrt(sigma(i, i) / static_cast<double>(n)));
    for (Eigen::Index j = 0; j <= i; ++j) {
      // Var of a sample covariance entry of a Gaussian: (S_ii S_jj + S_ij^2) / n.
      const double se = std::sqrt((sigma(i, i) * sigma(j, j) + sigma(i, j) * sigma(i, j)) / static_cast<double>(n));
      CHECK(std::abs(m.covariance(i, j) - sigma(i, j)) <= 5.0 * se);
    }
  }
  // Same engine state, same sample.
  auto r1 = latent_test::make_rng(99);
  auto r2 = latent_test::make_rng(99);
  CHECK(fa.sample(10, r1) == fa.sample(10, r2));
}

TEST_CASE("parameter counts, BIC and AIC", "[factor_analysis]") {
  auto rng = latent_test::make_rng(13);
  const factor_analysis_params p = make_params(10, 3, rng);
  factor_analysis_params pi = p;
  pi.uniquenesses.setConstant(0.7);
  const factor_analysis fa(p);
  const factor_analysis ppca(pi, {.noise = noise_model::isotropic});
  CHECK(fa.num_free_parameters() == 30 - 3 + 10 + 10);
  CHECK(ppca.num_free_parameters() == 30 - 3 + 10 + 1);
  const Eigen::MatrixXd x = simulate(p, 100, rng);
  const double ll = fa.log_likelihood(x);
  CHECK(fa.bic(x) == Approx(-2.0 * ll + 47.0 * std::log(100.0)).epsilon(1e-14));
  CHECK(fa.aic(x) == Approx(-2.0 * ll + 94.0).epsilon(1e-14));
  const auto m = latent::sample_moments::from_data(x);
  CHECK(fa.bic(m) == Approx(fa.bic(x)).epsilon(1e-11));
  CHECK(fa.aic(m) == Approx(fa.aic(x)).epsilon(1e-11));
}

TEST_CASE("bad input is an invalid_argument naming the argument", "[factor_analysis][errors]") {
  auto rng = latent_test::make_rng(14);
  const factor_analysis_params p = make_params(5, 2, rng);
  const Eigen::MatrixXd x = simulate(p, 50, rng);

  require_invalid([] { factor_analysis(0); }, "'factors'");
  require_invalid([] { factor_analysis(2, {.uniqueness_floor = 0.0}); }, "'uniqueness_floor'");
  // k >= d
  require_invalid([&] { factor_analysis fa(5); fa.initialize(x, rng); }, "factors");
  require_invalid([&] { factor_analysis fa(5); fa.initialize_pca(x); }, "factors");
  require_invalid([&] { factor_analysis::ppca_mle(latent::sample_moments::from_data(x), 5); }, "'k'");

  factor_analysis fa(p);
  SECTION("parameters") {
    factor_analysis_params q = p;
    q.mean.resize(4);
    require_invalid([&] { fa.set_params(q); }, "'mean'");
    q = p;
    q.uniquenesses(1) = 0.0;
    require_invalid([&] { fa.set_params(q); }, "'uniquenesses'");
    q = p;
    q.loadings(0, 0) = std::numeric_limits<double>::quiet_NaN();
    require_invalid([&] { fa.set_params(q); }, "'loadings'");
    q = p;
    q.loadings.resize(5, 3);
    q.loadings.setOnes();
    require_invalid([&] { fa.set_params(q); }, "'loadings'");
    factor_analysis ppca(2, {.noise = noise_model::isotropic});
    require_invalid([&] { ppca.set_params(p); }, "'uniquenesses'");  // not all equal
    CHECK(fa.params().mean == p.mean);  // unchanged after failures
  }
  SECTION("data") {
    Eigen::MatrixXd bad = x;
    bad(2, 7) = std::numeric_limits<double>::infinity();
    require_invalid([&] { latent::em(fa, bad); }, "'x'");
    require_invalid([&] { latent::variational_em(fa, bad, latent::mean_field{}); }, "'x'");
    require_invalid([&] { latent::em(fa, Eigen::MatrixXd(x.topRows(4))); }, "'x'");
    require_invalid([&] { fa.log_likelihood_per_observation(bad); }, "'x'");
    require_invalid([&] { fa.posterior_mean(x.topRows(3)); }, "'x'");
    require_invalid([&] { latent::sample_moments::from_data(bad); }, "'x'");
    require_invalid([&] { fa.initialize(bad, rng); }, "'x'");
    require_invalid([&] { latent::variational_em(fa, x, latent::mean_field{.max_sweeps = 0}); }, "'max_sweeps'");
    require_invalid([&] { factor_analysis(2).posterior_covariance(); }, "no parameters");
  }
  SECTION("covariance matrices") {
    const Eigen::MatrixXd s = latent::sample_moments::from_data(x).covariance;
    Eigen::MatrixXd asym = s;
    asym(0, 1) += 0.1;
    require_invalid([&] { latent::sample_moments::from_covariance(asym, 50); }, "symmetric");
    Eigen::MatrixXd indefinite = s;
    indefinite(0, 0) = -1.0;
    require_invalid([&] { latent::sample_moments::from_covariance(indefinite, 50); }, "positive semi-definite");
    require_invalid([&] { latent::sample_moments::from_covariance(s.leftCols(4), 50); }, "'covariance'");
    require_invalid([&] { latent::sample_moments::from_covariance(s, 0.0); }, "'count'");
    require_invalid([&] { latent::sample_moments::from_covariance(s, 10, Eigen::VectorXd::Zero(3)); }, "'mean'");
    Eigen::MatrixXd nan = s;
    nan(1, 1) = std::numeric_limits<double>::quiet_NaN();
    require_invalid([&] { latent::sample_moments::from_covariance(nan, 50); }, "'covariance'");
    // A positive semi-definite but singular covariance is accepted.
    const Eigen::VectorXd v = Eigen::VectorXd::Ones(5);
    CHECK_NOTHROW(latent::sample_moments::from_covariance(v * v.transpose(), 10));
    // ...but a moments view of another dimension is rejected.
    auto view = fa.moment_model();
    const auto m4 = latent::sample_moments::from_covariance(Eigen::MatrixXd::Identity(4, 4), 10);
    require_invalid([&] { latent::em(view, m4); }, "'moments'");
  }
}

TEST_CASE("the flat view of the statistics is additive and scalable", "[factor_analysis][flat]") {
  auto rng = latent_test::make_rng(15);
  const Eigen::Index d = 6, k = 2;
  const factor_analysis fa(make_params(d, k, rng));
  const Eigen::MatrixXd x = simulate(fa.params(), 90, rng);
  auto a = fa.zero_stats();
  auto b = fa.zero_stats();
  fa.e_step(x, 0, 50, a);
  fa.e_step(x, 50, 90, b, latent::mean_field{});
  REQUIRE(latent::flat_size(a) == static_cast<std::size_t>(1 + d + d + d * k + k + k * k));
  const std::vector<double> fa_flat = latent::to_flat(a), fb = latent::to_flat(b);
  CHECK(fa_flat[0] == 50.0);  // the weight comes first
  a += b;
  const std::vector<double> sum = latent::to_flat(a);
  for (std::size_t i = 0; i < sum.size(); ++i) CHECK(sum[i] == fa_flat[i] + fb[i]);
  a *= 0.25;
  const std::vector<double> scaled = latent::to_flat(a);
  for (std::size_t i = 0; i < sum.size(); ++i) CHECK(scaled[i] == 0.25 * sum[i]);
  // Round trip through the view: the reference point is kept, the numbers restored.
  auto c = fa.zero_stats();
  latent::from_flat(c, sum);
  CHECK(latent::to_flat(c) == sum);
  CHECK(c.reference == a.reference);
  a *= 4.0;
  CHECK_THAT(c.sum_yz, IsApprox(a.sum_yz, 1e-15));
}

TEST_CASE("sample_joint returns the factors that generated the sample", "[factor_analysis]") {
  auto rng = latent_test::make_rng(16);
  const factor_analysis_params p = make_params(5, 2, rng);
  const factor_analysis fa(p);
  auto r1 = latent_test::make_rng(3);
  auto r2 = latent_test::make_rng(3);
  const Eigen::Index n = 20000;
  const latent::factor_analysis_draw draw = fa.sample_joint(n, r1);
  CHECK(draw.x == fa.sample(n, r2));  // sample() is sample_joint().x for the same engine state
  REQUIRE(draw.z.rows() == 2);
  REQUIRE(draw.z.cols() == n);
  // The noise x - Lambda z - mu has variances Psi (standard error psi sqrt(2 / n)).
  const Eigen::MatrixXd e = (draw.x - p.loadings * draw.z).colwise() - p.mean;
  for (Eigen::Index i = 0; i < 5; ++i) {
    const double var = e.row(i).squaredNorm() / static_cast<double>(n);
    CHECK(std::abs(var - p.uniquenesses(i)) <= 5.0 * p.uniquenesses(i) * std::sqrt(2.0 / static_cast<double>(n)));
  }
}

TEST_CASE("a float fit reaches the double fit's optimum within float tolerance", "[factor_analysis][float]") {
  auto rng = latent_test::make_rng(17);
  const Eigen::Index d = 10, k = 3, n = 4000;
  const factor_analysis_params truth = make_params(d, k, rng);
  const Eigen::MatrixXf xf = simulate(truth, n, rng).cast<float>();
  const Eigen::MatrixXd x = xf.cast<double>();  // the same numbers in both precisions
  factor_analysis start(k);
  start.initialize(x, rng);
  const factor_analysis_params p0 = start.params().cast<float>().cast<double>();

  // Iterate both to their fixed points (past the stopping rule: see the PPCA test).
  const auto iterate = [](auto& model, const auto& data, int iterations) {
    for (int i = 0; i < iterations; ++i) {
      auto s = model.zero_stats();
      model.e_step(data, 0, data.cols(), s);
      model.m_step(s);
    }
  };
  factor_analysis fd(p0);
  const auto fit_d = latent::em(fd, x, {.max_iterations = 5000, .tolerance = 1e-12});
  iterate(fd, x, 1000);
  latent::basic_factor_analysis<float> ff(p0.cast<float>());
  // A float E-step evaluates each observation's quadratic form y^T Psi^{-1} y - u^T M^{-1} u,
  // whose terms are up to ~10x the result here (strong loadings), with Psi^{-1}, G and M^{-1}
  // rounded to float. Rounding Psi^{-1} and M^{-1} once perturbs every observation's form the
  // same way, so the float log-likelihood carries a bias rather than noise: measured against
  // double at the same parameters (checked below), 1.7e-6 relative (3e-5 per observation) on
  // one machine and 2.0e-6 on another, inside the file's float kernel tolerance. The bias moves
  // only slowly with the parameters, so successive float objectives fall by far less than it:
  // the float fit uses 3e-5 per observation as its decrease tolerance and 1e-5 as its
  // convergence tolerance.
  const auto fit_f = latent::em(ff, xf, {.max_iterations = 5000, .tolerance = 1e-5, .decrease_tolerance = 3e-5});
  INFO("double: " << fit_d.iterations << " iterations, float: " << fit_f.iterations
                  << ", float's largest fall per observation " << fit_f.largest_decrease / static_cast<double>(n));
  const double ll_at_f = factor_analysis(ff.params().cast<double>()).log_likelihood(x);
  CHECK(ff.log_likelihood(xf) == Approx(ll_at_f).epsilon(tolerance<float>::kernel));
  CHECK(fit_d.converged());
  CHECK(fit_f.converged());
  CHECK(fit_f.decreases == 0);
  iterate(ff, xf, 1000);

  const factor_analysis_params pf = ff.params().cast<double>();
  CHECK_THAT(implied(pf), IsApprox(implied(fd.params()), tolerance<float>::optimum));
  CHECK_THAT(Eigen::MatrixXd(pf.mean), IsApprox(Eigen::MatrixXd(fd.params().mean), tolerance<float>::kernel, 1e-6));
  // The same maximum of the likelihood, evaluated in double at both parameter sets.
  const double ll_d = fd.log_likelihood(x), ll_f = factor_analysis(pf).log_likelihood(x);
  CHECK(ll_f <= ll_d + 1e-9 * std::abs(ll_d));
  CHECK(ll_f == Approx(ll_d).epsilon(1e-8));
  // The float model's own log-likelihood of its fit, accumulated in double.
  CHECK(ff.log_likelihood(xf) == Approx(ll_d).epsilon(tolerance<float>::kernel));

  // Mean field in float: the same ELBO as in double, from the same start.
  factor_analysis vd(p0);
  latent::basic_factor_analysis<float> vf(p0.cast<float>());
  const latent::mean_field family{.max_sweeps = 200, .tolerance = 1e-9};
  const auto vfit_d = latent::variational_em(vd, x, family, {.max_iterations = 30, .tolerance = 0.0});
  const auto vfit_f = latent::variational_em(vf, xf, family, {.max_iterations = 30, .tolerance = 0.0});
  CHECK(vfit_f.objective == Approx(vfit_d.objective).epsilon(tolerance<float>::kernel));
  CHECK_THAT(implied(vf.params().cast<double>()), IsApprox(implied(vd.params()), tolerance<float>::optimum));
}

// ---- Issue 10: bad input and degenerate data ------------------------------------------------

namespace {

using long_matrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;

/// The total log-likelihood of `x` under `p` evaluated independently of the library: a
/// Cholesky factor of the implied covariance Lambda Lambda^T + Psi in long double (64-bit
/// mantissa, 2048 times finer than double), the data centred in long double too.
long double exact_log_likelihood(const factor_analysis_params& p, const Eigen::MatrixXd& x) {
  const long_matrix l = p.loadings.cast<long double>();
  long_matrix sigma = l * l.transpose();
  for (Eigen::Index j = 0; j < sigma.rows(); ++j) sigma(j, j) += static_cast<long double>(p.uniquenesses(j));
  const Eigen::LLT<long_matrix> llt(sigma);
  REQUIRE(llt.info() == Eigen::Success);
  const long_matrix y = x.cast<long double>().colwise() - p.mean.cast<long double>();
  const long_matrix w = llt.matrixL().solve(y);
  long double log_det = 0;
  for (Eigen::Index j = 0; j < sigma.rows(); ++j) log_det += 2 * std::log(llt.matrixL()(j, j));
  const long double two_pi = 6.283185307179586476925286766559L;
  return -0.5L * (static_cast<long double>(x.cols()) * (static_cast<long double>(x.rows()) * std::log(two_pi) + log_det) +
                  w.squaredNorm());
}

/// d = 6 variables from k = 2 factors, the last a copy of the first: the ML fit is a Heywood
/// case (both uniquenesses of the pair at their floor, ~1e-6 of the variance).
template <class Rng>
Eigen::MatrixXd duplicated_variable_data(Eigen::Index n, Rng& rng) {
  const Eigen::Index d = 6, k = 2;
  Eigen::MatrixXd x = latent::standard_normal(d, k, rng) * latent::standard_normal(k, n, rng) +
                      latent::standard_normal(d, n, rng);
  x.row(d - 1) = x.row(0);
  return x;
}

}  // namespace

TEST_CASE("issue 10: a Heywood case's log-likelihood is exact, so EM never falls", "[factor_analysis][heywood][issue10]") {
  // The reported log-likelihood used to be off by up to ~5e-3 here (a difference of two sums
  // of squares ~1e6 times larger than itself), and the trace fell thousands of times. Now every
  // fit's trace never falls (the solver's allowance is 1e3 eps relative), and the reported
  // value equals the long-double evaluation to 1e-11 relative (observed: ~2e-14).
  std::size_t decreases = 0, moment_decreases = 0;
  double worst = 0.0, worst_moments = 0.0;
  const Eigen::Index n = 300;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    auto rng = latent_test::make_rng(1000 + seed);
    const Eigen::MatrixXd x = duplicated_variable_data(n, rng);
    factor_analysis fa(2);
    fa.initialize(x, rng);
    const factor_analysis_params start = fa.params();
    const auto fit = latent::em(fa, x, {.max_iterations = 200, .tolerance = 1e-14});
    decreases += fit.decreases;
    const long double exact = exact_log_likelihood(fa.params(), x);
    worst = std::max(worst, static_cast<double>(std::abs((fit.objective - exact) / exact)));
    CHECK(fa.log_likelihood(x) == Approx(fit.objective).epsilon(1e-13));  // summed in another order
    // Fitting from the moments: the same Heywood case, the same honesty.
    factor_analysis fm(start);
    auto view = fm.moment_model();
    const auto m = latent::sample_moments::from_data(x);
    const auto mfit = latent::em(view, m, {.max_iterations = 200, .tolerance = 1e-14});
    moment_decreases += mfit.decreases;
    // The moments themselves are rounded (their duplicated pair's covariance is singular only
    // to ~eps of the variance, which the floor 1e-6 amplifies ~1e6 times): compare the
    // moments' log-likelihood with the exact one of the data at 1e-9.
    const long double exact_m = exact_log_likelihood(fm.params(), x);
    worst_moments = std::max(worst_moments, static_cast<double>(std::abs((mfit.objective - exact_m) / exact_m)));
    if (seed == 0) {
      // A uniqueness reached its floor: this is the Heywood case the test is about.
      const Eigen::VectorXd floors = fa.uniqueness_floors(m.covariance.diagonal());
      CHECK(fa.params().uniquenesses(0) <= floors(0) * (1.0 + 1e-9));
      CHECK(fa.params().uniquenesses(5) <= floors(5) * (1.0 + 1e-9));
    }
  }
  CHECK(decreases == 0);
  CHECK(moment_decreases == 0);
  CHECK(worst <= 1e-11);
  CHECK(worst_moments <= 1e-9);
}

TEST_CASE("issue 10: block-level e_step checks its range, and statistics their structure",
          "[factor_analysis][errors][issue10]") {
  auto rng = latent_test::make_rng(21);
  const Eigen::Index d = 5, n = 40;
  const Eigen::MatrixXd x = simulate(make_params(d, 2, rng), n, rng);
  factor_analysis fa(2);
  fa.initialize(x, rng);
  auto s = fa.zero_stats();
  require_invalid([&] { fa.e_step(x, 0, n + 1, s); }, "outside the 40 columns");
  require_invalid([&] { fa.e_step(x, -1, 3, s); }, "block [-1, 3)");
  require_invalid([&] { fa.e_step(x, 5, 3, s); }, "block [5, 3)");
  require_invalid([&] { fa.e_step(x, 0, n + 1, s, latent::mean_field{}); }, "outside");
  CHECK(fa.e_step(x, n, n, s) == 0.0);  // an empty block at the end is fine
  // Statistics of a model with another k, or with one member of the wrong shape.
  factor_analysis other(3);
  other.initialize(x, rng);
  auto foreign = other.zero_stats();
  require_invalid([&] { fa.e_step(x, 0, n, foreign); }, "argument 's'");
  require_invalid([&] { fa.m_step(foreign); }, "argument 's'");
  auto bent = fa.zero_stats();
  bent.sum_zz.resize(1, 1);
  require_invalid([&] { fa.e_step(x, 0, n, bent); }, "sum_zz 1 x 1");
  bent = fa.zero_stats();
  bent.sum_yz.resize(d, 3);
  require_invalid([&] { fa.m_step(bent); }, "sum_yz 5 x 3");
  require_invalid([&] { fa.e_step(latent::sample_moments::from_data(x), bent); }, "argument 's'");
}

TEST_CASE("issue 10: hand-filled moments are checked like from_covariance's", "[factor_analysis][errors][issue10]") {
  auto rng = latent_test::make_rng(22);
  const Eigen::MatrixXd x = simulate(make_params(5, 2, rng), 200, rng);
  const latent::sample_moments good = latent::sample_moments::from_data(x);
  factor_analysis fa(2);
  fa.initialize_pca(good);
  auto s = fa.zero_stats();
  latent::sample_moments bad = good;
  bad.covariance(1, 2) = std::numeric_limits<double>::quiet_NaN();
  require_invalid([&] { fa.initialize_pca(bad); }, "'moments.covariance'");
  require_invalid([&] { fa.e_step(bad, s); }, "'moments.covariance'");
  require_invalid([&] { factor_analysis::ppca_mle(bad, 2); }, "'moments.covariance'");
  bad = good;
  bad.covariance(1, 2) += 0.1;  // asymmetric
  require_invalid([&] { fa.initialize_pca(bad); }, "symmetric");
  require_invalid([&] { fa.e_step(bad, s); }, "symmetric");
  bad = good;
  bad.mean(0) = std::numeric_limits<double>::infinity();
  require_invalid([&] { fa.initialize_pca(bad); }, "'moments.mean'");
  bad = good;
  bad.count = 0.0;
  require_invalid([&] { fa.initialize_pca(bad); }, "positive finite count");
  require_invalid([&] { fa.e_step(bad, s); }, "positive finite count");
  CHECK(s.weight == 0.0);  // nothing was added by the rejected calls
}

TEST_CASE("issue 10: data as rows, and fewer observations than variables", "[factor_analysis][errors][issue10]") {
  auto rng = latent_test::make_rng(23);
  // 272 observations of 2 variables passed as 2 x 272 the wrong way round: 272 variables, 2
  // observations. k = 1 needs k + 2 = 3 observations: an error suggesting the transpose.
  const Eigen::MatrixXd rows = latent::standard_normal(272, 2, rng);
  require_invalid([&] { factor_analysis fa(1); fa.initialize(rows, rng); }, "pass x.transpose()");
  require_invalid([&] { factor_analysis fa(1); fa.initialize_pca(rows); }, "at least k + 2 = 3");
  // The right way round but d <= k: the message suggests the transpose too.
  require_invalid([&] { factor_analysis fa(2); fa.initialize(Eigen::MatrixXd(rows.transpose()), rng); },
                  "pass x.transpose()");
  // Weighted: columns of weight 0 do not count.
  const Eigen::MatrixXd few = latent::standard_normal(6, 4, rng);
  const Eigen::Vector4d w(1.0, 0.0, 0.0, 2.0);
  require_invalid([&] { factor_analysis fa(1); fa.initialize(latent::observations(few, w), rng); }, "has 2 observations");
  // N < d but N >= k + 2: estimable (the floor keeps Psi > 0, the likelihood bounded), and
  // EM converges monotonically to finite parameters.
  const Eigen::MatrixXd wide = simulate(make_params(20, 2, rng), 8, rng);
  factor_analysis fa(2);
  fa.initialize_pca(wide);
  const auto fit = latent::em(fa, wide, {.max_iterations = 500, .tolerance = 1e-10});
  INFO(latent::to_string(fit.status) << " " << fit.message);
  CHECK(fit.status != latent::fit_status::numerical_issue);
  CHECK(fit.decreases == 0);
  CHECK(std::isfinite(fit.objective));
  CHECK(fa.params().loadings.allFinite());
  CHECK((fa.params().uniquenesses.array() > 0.0).all());
}

TEST_CASE("issue 10: extreme but finite data are fitted exactly or rejected naming 'x'", "[factor_analysis][issue10]") {
  auto rng = latent_test::make_rng(24);
  const Eigen::Index d = 5, k = 2, n = 300;
  const Eigen::MatrixXd x = simulate(make_params(d, k, rng), n, rng);
  // Scaling by a power of two is exact, and factor analysis is scale-equivariant: data near
  // 3e150 give the same iterates times 2^500 (Psi times 2^1000 ~ 1e301) bit for bit.
  const double s = std::ldexp(1.0, 500);
  const Eigen::MatrixXd big = x * s;
  std::mt19937_64 r1(5), r2(5);
  factor_analysis a(k), b(k);
  a.initialize(x, r1);
  b.initialize(big, r2);
  for (int it = 0; it < 30; ++it) {
    auto sa = a.zero_stats(), sb = b.zero_stats();
    const double la = a.e_step(x, 0, n, sa), lb = b.e_step(big, 0, n, sb);
    CHECK(lb == Approx(la - static_cast<double>(n * d) * std::log(s)).epsilon(1e-12));
    a.m_step(sa);
    b.m_step(sb);
  }
  CHECK(b.params().loadings == a.params().loadings * s);
  CHECK(b.params().mean == a.params().mean * s);
  CHECK(b.params().uniquenesses == a.params().uniquenesses * (s * s));
  factor_analysis c(k);
  c.initialize_pca(big);
  CHECK(std::isfinite(latent::em(c, big, {.max_iterations = 20}).objective));
  // Values near 1e300: the variances overflow double. An invalid_argument naming 'x' that
  // says so, not a message about loadings the caller never passed.
  const Eigen::MatrixXd huge = x * 1e300;
  require_invalid([&] { factor_analysis fa(k); fa.initialize(huge, rng); }, "argument 'x' is too large for double");
  require_invalid([&] { factor_analysis fa(k); fa.initialize_pca(huge); }, "rescale the data");
  require_invalid([&] { latent::sample_moments::from_data(huge); }, "argument 'x' is too large");
  // A large constant offset with a small spread is fine (the mean is taken about the mid-range).
  const Eigen::MatrixXd offset = (x.array() + 1e307).matrix();
  CHECK(latent::sample_moments::from_data(offset).mean.allFinite());
  // Float: data near 1e20 overflow float's squares.
  const Eigen::MatrixXf xf = (x * 1e20).cast<float>();
  require_invalid([&] { latent::basic_factor_analysis<float> ff(k); ff.initialize(xf, rng); }, "too large for float");
  // A model set by hand meeting a block whose squares overflow: invalid_argument naming 'x'.
  auto st = a.zero_stats();
  require_invalid([&] { a.e_step(huge, 0, n, st); }, "argument 'x' is too large");

  // A far point's log-density is finite (or -inf), never NaN: y = t e_0 gives -1/2 t^2
  // (Sigma^{-1})_00 plus the constant, which the stable form computes to full precision.
  const Eigen::MatrixXd sigma = a.implied_covariance();
  const Eigen::MatrixXd sigma_inv = sigma.llt().solve(Eigen::MatrixXd::Identity(d, d));
  const double log_const = a.log_likelihood_per_observation(a.params().mean)(0);
  for (const double t : {1e100, 1e150, 1e160, 1e200}) {
    Eigen::MatrixXd far = a.params().mean;
    far(0) += t;
    const double ll = a.log_likelihood_per_observation(far)(0);
    INFO("t = " << t << ", log p = " << ll);
    CHECK_FALSE(std::isnan(ll));
    const double expected = log_const - 0.5 * t * t * sigma_inv(0, 0);  // -inf once t^2 overflows
    if (std::isfinite(expected)) CHECK(ll == Approx(expected).epsilon(1e-12));
    else CHECK(ll == -std::numeric_limits<double>::infinity());
  }
}

// ---- issue 14: rotation, factanal output, standard errors -----------------------------------

namespace {

/// R's `attitude` data set (Chatterjee & Price, 30 departments x 7 ratings: rating, complaints,
/// privileges, learning, raises, critical, advance), as `write.table(attitude)` prints it: one
/// department per row here, one observation per column once transposed.
Eigen::MatrixXd attitude_data() {
  static const double rows[30][7] = {
      {43, 51, 30, 39, 61, 92, 45}, {63, 64, 51, 54, 63, 73, 47}, {71, 70, 68, 69, 76, 86, 48},
      {61, 63, 45, 47, 54, 84, 35}, {81, 78, 56, 66, 71, 83, 47}, {43, 55, 49, 44, 54, 49, 34},
      {58, 67, 42, 56, 66, 68, 35}, {71, 75, 50, 55, 70, 66, 41}, {72, 82, 72, 67, 71, 83, 31},
      {67, 61, 45, 47, 62, 80, 41}, {64, 53, 53, 58, 58, 67, 34}, {67, 60, 47, 39, 59, 74, 41},
      {69, 62, 57, 42, 55, 63, 25}, {68, 83, 83, 45, 59, 77, 35}, {77, 77, 54, 72, 79, 77, 46},
      {81, 90, 50, 72, 60, 54, 36}, {74, 85, 64, 69, 79, 79, 63}, {65, 60, 65, 75, 55, 80, 60},
      {65, 70, 46, 57, 75, 85, 46}, {50, 58, 68, 54, 64, 78, 52}, {50, 40, 33, 34, 43, 64, 33},
      {64, 61, 52, 62, 66, 80, 41}, {53, 66, 52, 50, 63, 80, 37}, {40, 37, 42, 58, 50, 57, 49},
      {63, 54, 42, 48, 66, 75, 33}, {66, 77, 66, 63, 88, 76, 72}, {78, 75, 58, 74, 80, 78, 49},
      {48, 57, 44, 45, 51, 83, 38}, {85, 85, 71, 71, 77, 74, 55}, {82, 82, 39, 59, 64, 78, 39}};
  Eigen::MatrixXd x(7, 30);
  for (int n = 0; n < 30; ++n)
    for (int j = 0; j < 7; ++j) x(j, n) = rows[n][j];
  return x;
}

/// R's `ability.cov$cov` (Smith & Stanley 1983: general, picture, blocks, maze, reading, vocab;
/// n.obs = 112), as R prints it.
Eigen::MatrixXd ability_covariance() {
  Eigen::MatrixXd c(6, 6);
  c << 24.641, 5.991, 33.520, 6.023, 20.755, 29.701,  //
      5.991, 6.700, 18.137, 1.782, 4.936, 7.204,      //
      33.520, 18.137, 149.831, 19.424, 31.430, 50.753,  //
      6.023, 1.782, 19.424, 12.711, 4.757, 9.075,     //
      20.755, 4.936, 31.430, 4.757, 52.604, 66.762,   //
      29.701, 7.204, 50.753, 9.075, 66.762, 135.292;
  return c;
}

/// A factor analysis fitted to `m` by EM from the PCA start, to a relative change of the
/// log-likelihood below 1e-15 per observation (the ML fit to ~1e-7 in the parameters).
factor_analysis fit_to_moments(const latent::sample_moments& m, Eigen::Index k) {
  factor_analysis fa(k);
  fa.initialize_pca(m);
  auto view = fa.moment_model();
  const auto fit = latent::em(view, m, {.max_iterations = 200000, .tolerance = 1e-15, .parameter_tolerance = 1e-12});
  REQUIRE(fit.decreases == 0);
  return fa;
}

/// The raw varimax criterion of loadings `l`: sum_a [sum_j z^4 - (sum_j z^2)^2 / p] with z the
/// rows of `l` scaled to unit length (Kaiser normalization).
double varimax_criterion(const Eigen::MatrixXd& l) {
  const Eigen::MatrixXd z = l.rowwise().norm().cwiseInverse().asDiagonal() * l;
  const Eigen::ArrayXXd z2 = z.array().square();
  return (z2.square().colwise().sum() - z2.colwise().sum().square() / static_cast<double>(l.rows())).sum();
}

/// max |a - b| over the entries (R prints 3 digits: agreement to its rounding is <= 5e-4).
double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return (a - b).cwiseAbs().maxCoeff();
}

}  // namespace

TEST_CASE("issue 14: varimax and promax reproduce R's stats::varimax and stats::promax", "[factor_analysis][rotation][issue14]") {
  // Input: R 4.2 `unclass(factanal(factors = 3, covmat = ability.cov, rotation = "none")$loadings)`,
  // printed with options(digits = 17); expected: R's `varimax(L)`, `varimax(L, normalize = FALSE)`
  // and `promax(L)` on that matrix, same session.
  Eigen::MatrixXd l(6, 3);
  l << 0.63604904489500280, 0.367443341908963939, 0.139497483429309094,  //
      0.35004073958252302, 0.766177033275158181, -0.271713491807898444,  //
      0.44054762814470771, 0.639024316628708955, 0.262699337437715230,   //
      0.23588539401118333, 0.324712764975653156, 0.508839439915936609,   //
      0.97373265616414573, -0.108921855037680246, -0.020353077280943703,  //
      0.81073656595907728, -0.031696017470823123, 0.074454007720853060;
  Eigen::MatrixXd r_varimax(6, 3), r_rotmat(3, 3), r_raw(6, 3), r_promax(6, 3), r_promax_rot(3, 3);
  r_varimax << 0.49930993686662895, 0.394467158623299619, 0.39257839041659892,  //
      0.13264443653243010, 0.861564102562445089, 0.15328645716111691,          //
      0.22953727630553888, 0.524830134031701978, 0.58592764143316534,          //
      0.11013839067787486, 0.094802153875631387, 0.63156944272133542,          //
      0.96478598026812257, 0.138440457184272753, 0.10225339130231408,          //
      0.78227948529283498, 0.123199705153429165, 0.19157884985668686;
  r_rotmat << 0.958295496161683302, 0.22812297903250850, 0.17213264790146002,  //
      -0.281716485351126422, 0.85528607214136532, 0.43488108338073855,         //
      -0.048016288045233509, -0.46523718815065684, 0.88388279474375298;
  r_raw << 0.51020894821510543, 0.40976958128349411, 0.36167425167430639,  //
      0.14180915478298906, 0.86711315477698692, 0.10671891935678106,       //
      0.24548953734092593, 0.55186512275686384, 0.55373730697653067,       //
      0.12411016573914446, 0.12565212292389533, 0.62354317029763828,       //
      0.96766540184982097, 0.13572272528486221, 0.07507673304167492,       //
      0.78698579449111727, 0.12646228539099186, 0.16882673311770713;
  r_promax << 0.359369872870296703, 0.210290316032956920, 0.321564474456008720,  //
      -0.061457268538243029, 0.935050450890726248, -0.041602018829023917,        //
      -0.047643652072151925, 0.316654234947227553, 0.611945364203097752,         //
      -0.123560244630071911, -0.198984487274355748, 0.810955002578086614,        //
      1.051352905391547354, -0.030525107544499955, -0.112571309726266874,        //
      0.810302811406042101, -0.062479742208086129, 0.053880252934868603;
  r_promax_rot << 1.00157933034885671, 0.044718254959982877, -0.038929882090582214,  //
      -0.64304883094681908, 0.859446395885432701, 0.436335873016555187,              //
      -0.29677734044498250, -0.960236270408054926, 1.333336436107716239;
  // The same iterations in another SVD (LAPACK's vs Eigen's Jacobi): agreement to rounding.
  const latent::rotated_loadings v = latent::varimax(l);
  CHECK_THAT(v.loadings, IsApprox(r_varimax, 1e-10, 1e-12));
  CHECK_THAT(v.rotation, IsApprox(r_rotmat, 1e-10, 1e-12));
  CHECK_THAT(latent::varimax(l, {.normalize = false}).loadings, IsApprox(r_raw, 1e-10, 1e-12));
  const latent::rotated_loadings p = latent::promax(l);
  CHECK_THAT(p.loadings, IsApprox(r_promax, 1e-10, 1e-12));
  CHECK_THAT(p.rotation, IsApprox(r_promax_rot, 1e-10, 1e-12));

  // Orthogonality, invariance of L L^T, and the criterion does not decrease.
  CHECK_THAT(v.rotation.transpose() * v.rotation, IsApprox(Eigen::MatrixXd::Identity(3, 3), 0.0, 1e-14));
  CHECK_THAT(v.loadings * v.loadings.transpose(), IsApprox(l * l.transpose(), 1e-13, 1e-15));
  CHECK(varimax_criterion(v.loadings) >= varimax_criterion(l));
  CHECK_THAT(v.factor_correlation, IsApprox(Eigen::MatrixXd::Identity(3, 3), 0.0, 0.0));
  // Promax: the oblique factors' correlations keep the common part, L* Phi L*^T = L L^T, with a
  // unit diagonal.
  CHECK_THAT(p.loadings * p.factor_correlation * p.loadings.transpose(), IsApprox(l * l.transpose(), 1e-12, 1e-14));
  CHECK_THAT(Eigen::MatrixXd(p.factor_correlation.diagonal()), IsApprox(Eigen::MatrixXd::Ones(3, 1), 1e-13));
  CHECK_THAT(p.loadings, IsApprox(l * p.rotation, 1e-13, 1e-15));

  // Varimax reaches the same optimum from any orthogonal start (up to column order and signs):
  // the criterion is a property of the column space, and the rotated loadings' criterion equals R's.
  auto rng = latent_test::make_rng(14);
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(latent::standard_normal(3, 3, rng));
  const Eigen::MatrixXd q = qr.householderQ();
  // (R's stopping rule leaves the criterion ~1e-7 short of the optimum: iterate to the end here.)
  const latent::rotated_loadings from_q = latent::varimax(l * q, {.tolerance = 1e-14});
  const latent::rotated_loadings tight = latent::varimax(l, {.tolerance = 1e-14});
  CHECK(varimax_criterion(from_q.loadings) == Approx(varimax_criterion(tight.loadings)).epsilon(1e-12));
  CHECK(varimax_criterion(tight.loadings) >= varimax_criterion(r_varimax));
  CHECK(varimax_criterion(l * q) <= varimax_criterion(from_q.loadings));

  // One factor: nothing to rotate (as R).
  const Eigen::MatrixXd one = l.leftCols(1);
  CHECK(latent::varimax(one).loadings == one);
  CHECK(latent::promax(one).rotation == Eigen::MatrixXd::Identity(1, 1));

  // Bad input.
  CHECK_THROWS_AS(latent::varimax(Eigen::MatrixXd(0, 2)), latent::invalid_argument);
  Eigen::MatrixXd bad = l;
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(latent::varimax(bad), Catch::Contains("'loadings'") && Catch::Contains("(2, 1)"));
  CHECK_THROWS_WITH(latent::promax(l, 0.5), Catch::Contains("'power'"));
  CHECK_THROWS_WITH(latent::varimax(l, {.tolerance = -1.0}), Catch::Contains("'tolerance'"));
  CHECK_THROWS_WITH(latent::promax(Eigen::MatrixXd::Ones(6, 2)), Catch::Contains("full column rank"));
}

TEST_CASE("issue 14: factanal_summary reproduces R's factanal on a covariance matrix and on data", "[factor_analysis][factanal][issue14]") {
  SECTION("ability.cov, n.obs = 112 (R 4.2: factanal(factors = 2, covmat = ability.cov))") {
    const auto m = latent::sample_moments::from_covariance(ability_covariance(), 112.0);
    const factor_analysis fa = fit_to_moments(m, 2);
    const latent::factanal_result r = latent::factanal_summary(fa, m);
    // R with control = list(opt = list(factr = 1, pgtol = 0)) (its optimizer run to the end):
    // uniquenesses 0.45522417233 0.58933216483 0.21817956023 0.76942144482 0.05245175637
    // 0.33358833532, statistic 6.106616499; R prints 6.11 on 4 df, p-value 0.191.
    Eigen::VectorXd r_uniq(6);
    r_uniq << 0.45522417233, 0.58933216483, 0.21817956023, 0.76942144482, 0.05245175637, 0.33358833532;
    CHECK_THAT(Eigen::MatrixXd(r.uniquenesses), IsApprox(Eigen::MatrixXd(r_uniq), 0.0, 2e-5));
    CHECK(r.degrees_of_freedom == 4.0);
    REQUIRE(r.has_test);
    CHECK(r.statistic == Approx(6.106616499).epsilon(1e-6));
    CHECK(r.p_value == Approx(0.1913263142).epsilon(1e-5));  // R: PVAL at its default fit
    // R's printed varimax loadings (3 digits) and SS loadings.
    Eigen::MatrixXd r_load(6, 2);
    r_load << 0.499, 0.543, 0.156, 0.622, 0.206, 0.860, 0.109, 0.468, 0.956, 0.182, 0.785, 0.225;
    CHECK(max_abs_diff(r.loadings, r_load) <= 5.1e-4);
    CHECK(r.ss_loadings(0) == Approx(1.858).margin(5.1e-4));
    CHECK(r.ss_loadings(1) == Approx(1.724).margin(5.1e-4));
    CHECK(r.cumulative_variance(1) == Approx(0.597).margin(5.1e-4));
    // The loadings are a rotation of the canonical ones and keep Lambda Lambda^T.
    CHECK_THAT(r.loadings, IsApprox(r.unrotated_loadings * r.rotation, 1e-12, 1e-14));
    CHECK_THAT(r.loadings * r.loadings.transpose(),
               IsApprox(r.unrotated_loadings * r.unrotated_loadings.transpose(), 1e-12, 1e-14));
    // The standardized fit is the model's: Lambda Lambda^T + Psi on the correlation scale.
    const Eigen::VectorXd sd = ability_covariance().diagonal().cwiseSqrt();
    const Eigen::MatrixXd implied_corr = sd.cwiseInverse().asDiagonal() * fa.implied_covariance() * sd.cwiseInverse().asDiagonal();
    Eigen::MatrixXd ours = r.loadings * r.loadings.transpose();
    ours.diagonal() += r.uniquenesses;
    CHECK_THAT(ours, IsApprox(implied_corr, 0.0, 1e-6));

    // Promax (R: rotation = "promax"): loadings 0.364 0.470 / -0.058 0.671 / -0.091 0.932 /
    // -0.054 0.508 / 1.023 -0.095 / 0.811 0.009 (unclass, 3 digits), factor correlation 0.557.
    const latent::factanal_result p = latent::factanal_summary(fa, m, latent::factor_rotation::promax);
    Eigen::MatrixXd r_promax(6, 2);
    r_promax << 0.364, 0.470, -0.058, 0.671, -0.091, 0.932, -0.054, 0.508, 1.023, -0.095, 0.811, 0.009;
    CHECK(max_abs_diff(p.loadings, r_promax) <= 5.1e-4);
    CHECK(p.factor_correlation(0, 1) == Approx(0.557).margin(5.1e-4));
    CHECK(p.statistic == r.statistic);
    CHECK_THAT(p.loadings * p.factor_correlation * p.loadings.transpose(),
               IsApprox(r.loadings * r.loadings.transpose(), 1e-12, 1e-14));
  }
  SECTION("attitude data, 30 x 7 (R 4.2: factanal(attitude, factors = 2))") {
    const Eigen::MatrixXd x = attitude_data();
    const auto m = latent::sample_moments::from_data(x);
    const factor_analysis fa = fit_to_moments(m, 2);
    const latent::factanal_result r = latent::factanal_summary(fa, m);
    // R with factr = 1, pgtol = 0: uniquenesses 0.20972771503 0.13233551607 0.64101520145
    // 0.39638343533 0.31773961446 0.89685632832 0.03661593832, statistic 5.474201194 on 8 df,
    // p-value 0.7058965799; loadings below (full precision).
    Eigen::VectorXd r_uniq(7);
    r_uniq << 0.20972771503, 0.13233551607, 0.64101520145, 0.39638343533, 0.31773961446, 0.89685632832, 0.03661593832;
    CHECK_THAT(Eigen::MatrixXd(r.uniquenesses), IsApprox(Eigen::MatrixXd(r_uniq), 0.0, 2e-5));
    CHECK(r.n_obs == 30.0);
    CHECK(r.degrees_of_freedom == 8.0);
    CHECK(r.statistic == Approx(5.474201194).epsilon(1e-6));
    CHECK(r.p_value == Approx(0.7058965799).epsilon(1e-6));
    Eigen::MatrixXd r_load(7, 2);
    r_load << 0.88197991587, 0.1112821322, 0.91395703498, 0.1798527793, 0.50491609682, 0.3225593430, 0.58660360307,
        0.5094239663, 0.61282221657, 0.5538134310, 0.15195314189, 0.2829380066, 0.05265615419, 0.9801078467;
    CHECK(max_abs_diff(r.loadings, r_load) <= 5e-5);
    CHECK(r.proportion_variance(0) == Approx(0.373).margin(5.1e-4));
    CHECK(r.proportion_variance(1) == Approx(0.251).margin(5.1e-4));
    // Promax, R's printed loadings 1.023 -0.252 / 1.034 -0.184 / 0.482 0.166 / 0.506 0.354 /
    // 0.520 0.396 / 0.071 0.272 / -0.328 1.151. R prints the factor correlation as -0.62, but
    // from its rotation matrix before the columns were sorted, for which L %*% rotmat is not the
    // printed loadings (max difference 1.48); promax(L) on R's canonical loadings L gives
    // rotmat with L %*% rotmat = the loadings (to 2e-16) and Phi = solve(rotmat) solve(rotmat)^T
    // with off-diagonal +0.6201135, the value these loadings imply (R 4.2, default fit).
    const latent::factanal_result p = latent::factanal_summary(fa, m, latent::factor_rotation::promax);
    Eigen::MatrixXd r_promax(7, 2);
    r_promax << 1.023, -0.252, 1.034, -0.184, 0.482, 0.166, 0.506, 0.354, 0.520, 0.396, 0.071, 0.272, -0.328, 1.151;
    CHECK(max_abs_diff(p.loadings, r_promax) <= 5.1e-4);
    CHECK(p.factor_correlation(0, 1) == Approx(0.6201135).margin(1e-5));
    CHECK_THAT(p.loadings * p.factor_correlation * p.loadings.transpose(),
               IsApprox(r.loadings * r.loadings.transpose(), 1e-12, 1e-14));
    // The same summary from the covariance matrix and n alone (factanal(covmat =, n.obs =)).
    const Eigen::MatrixXd xc = x.colwise() - x.rowwise().mean();
    const auto from_cov = latent::sample_moments::from_covariance(xc * xc.transpose() / 29.0, 30.0);
    const latent::factanal_result c = latent::factanal_summary(fit_to_moments(from_cov, 2), from_cov);
    CHECK(c.statistic == Approx(r.statistic).epsilon(1e-8));
    CHECK_THAT(c.loadings, IsApprox(r.loadings, 1e-6, 1e-7));
  }
  SECTION("bad input") {
    const auto m = latent::sample_moments::from_covariance(ability_covariance(), 112.0);
    factor_analysis unfitted(2);
    CHECK_THROWS_WITH(latent::factanal_summary(unfitted, m), Catch::Contains("no parameters"));
    factor_analysis ppca(2, {.noise = noise_model::isotropic});
    ppca.initialize_pca(m);
    CHECK_THROWS_WITH(latent::factanal_summary(ppca, m), Catch::Contains("diagonal"));
    factor_analysis three(3);
    three.initialize_pca(m);
    CHECK(latent::factanal_summary(three, m).degrees_of_freedom == 0.0);
    CHECK_FALSE(latent::factanal_summary(three, m).has_test);
    factor_analysis four(4);
    four.initialize_pca(m);
    CHECK_THROWS_WITH(latent::factanal_summary(four, m), Catch::Contains("too many"));
    const factor_analysis fa = fit_to_moments(m, 2);
    const auto other = latent::sample_moments::from_covariance(Eigen::MatrixXd::Identity(5, 5), 10.0);
    CHECK_THROWS_WITH(latent::factanal_summary(fa, other), Catch::Contains("'moments'"));
  }
}

TEST_CASE("issue 14: the chi-square upper tail matches R's pchisq", "[factor_analysis][factanal][issue14]") {
  // R 4.2: pchisq(x, df, lower.tail = FALSE) printed with digits = 17.
  const double cases[][3] = {{6.106616519, 4, 0.19132631415056475},     {5.474201194, 8, 0.70589657986422405},
                             {0.5, 1, 0.47950012218695348},             {3, 0.5, 0.033416444158979097},
                             {150, 10, 3.7274850550625098e-27},         {1000, 30, 5.131435321572533e-191},
                             {20.98840813, 4, 0.00031834936345178174}, {40, 45.5, 0.70225299708438216}};
  for (const auto& c : cases) {
    INFO("x = " << c[0] << ", df = " << c[1]);
    CHECK(latent::chi_square_upper_tail(c[0], c[1]) == Approx(c[2]).epsilon(1e-12));
  }
  CHECK_THROWS_WITH(latent::chi_square_upper_tail(1.0, 0.0), Catch::Contains("'df'"));
  CHECK_THROWS_WITH(latent::chi_square_upper_tail(std::numeric_limits<double>::quiet_NaN(), 2.0), Catch::Contains("'x'"));
  CHECK(latent::chi_square_upper_tail(0.0, 3) == 1.0);
}

TEST_CASE("issue 14: the factor analysis observed information equals the finite-difference Hessian",
          "[factor_analysis][standard_errors][issue14]") {
  auto rng = latent_test::make_rng(142);
  const Eigen::Index d = 6, k = 2, n = 400;
  const factor_analysis_params truth = make_params(d, k, rng);
  const auto m = latent::sample_moments::from_data(simulate(truth, n, rng));
  const factor_analysis fitted = fit_to_moments(m, k);
  // theta = (vec Lambda, Psi) -> log L(moments), with the mean at the sample mean.
  const auto log_lik = [&](const Eigen::VectorXd& t) {
    factor_analysis_params p;
    p.loadings = Eigen::Map<const Eigen::MatrixXd>(t.data(), d, k);
    p.uniquenesses = t.tail(d);
    p.mean = m.mean;
    return factor_analysis(p).log_likelihood(m);
  };
  const auto pack = [&](const factor_analysis_params& p) {
    Eigen::VectorXd t(d * k + d);
    t << Eigen::Map<const Eigen::VectorXd>(p.loadings.data(), d * k), p.uniquenesses;
    return t;
  };
  for (const factor_analysis_params& at : {fitted.params(), truth}) {
    const Eigen::VectorXd t = pack(at);
    // Steps h = 1e-4 of each parameter's scale (>= 1e-5): truncation ~1e-8 relative; rounding
    // ~eps |l| / h^2 ~ 2e-16 * 4e3 / 1e-9 ~ 1e-3 per entry, against entries ~1e2..1e3 and a
    // Frobenius norm ~2e3 over 324 entries: ~1e-5 relative in the norm (measured: 2.3e-6).
    const Eigen::VectorXd h = 1e-4 * t.cwiseAbs().cwiseMax(0.1);
    const Eigen::MatrixXd fd = -latent_test::finite_difference_hessian(log_lik, t, h);
    const Eigen::MatrixXd info = latent::factor_analysis_observed_information(at, m);
    CHECK_THAT(info, IsApprox(fd, 2e-5));
  }
  // At the MLE the information is singular in exactly the k(k-1)/2 = 1 rotation direction
  // Lambda -> Lambda A (A skew), and positive definite on the rest.
  const Eigen::MatrixXd info = latent::factor_analysis_observed_information(fitted.params(), m);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(info);
  CHECK(std::abs(es.eigenvalues()(0)) <= 1e-6 * es.eigenvalues()(d * k + d - 1));
  CHECK(es.eigenvalues()(1) >= 1e-4 * es.eigenvalues()(d * k + d - 1));
  Eigen::MatrixXd skew(k, k);
  skew << 0.0, 1.0, -1.0, 0.0;
  factor_analysis_params dir = fitted.params();
  dir.loadings = fitted.params().loadings * skew;
  dir.uniquenesses.setZero();
  const Eigen::VectorXd v = pack(dir);
  CHECK((info * v).norm() <= 1e-6 * es.eigenvalues()(d * k + d - 1) * v.norm());
}

TEST_CASE("issue 14: factor analysis standard errors are rotation invariant and match the sampling spread",
          "[factor_analysis][standard_errors][issue14]") {
  auto rng = latent_test::make_rng(143);
  const Eigen::Index d = 6, k = 2, n = 500, reps = 300;
  factor_analysis_params truth;
  truth.loadings.resize(d, k);
  truth.loadings << 0.9, 0.0, 0.8, 0.3, 0.7, 0.2, 0.2, 0.8, 0.3, 0.9, 0.1, 0.6;
  truth.mean = Eigen::VectorXd::LinSpaced(d, -1.0, 1.0);
  truth.uniquenesses = Eigen::VectorXd::LinSpaced(d, 0.3, 0.6);

  // Invariance: the same fit with its loadings rotated gives the same standard errors.
  const auto m0 = latent::sample_moments::from_data(simulate(truth, n, rng));
  const factor_analysis fitted = fit_to_moments(m0, k);
  const latent::factor_analysis_standard_errors se = latent::standard_errors(fitted, m0);
  const double angle = 0.7;
  Eigen::MatrixXd q(2, 2);
  q << std::cos(angle), -std::sin(angle), std::sin(angle), std::cos(angle);
  factor_analysis_params turned = fitted.params();
  turned.loadings = turned.loadings * q;
  const latent::factor_analysis_standard_errors se2 = latent::standard_errors(factor_analysis(turned), m0);
  CHECK_THAT(se2.loadings, IsApprox(se.loadings, 1e-10));
  CHECK_THAT(se2.loadings_se, IsApprox(se.loadings_se, 1e-7));
  CHECK_THAT(Eigen::MatrixXd(se2.uniquenesses_se), IsApprox(Eigen::MatrixXd(se.uniquenesses_se), 1e-7));
  CHECK_THAT(Eigen::MatrixXd(se2.communalities_se), IsApprox(Eigen::MatrixXd(se.communalities_se), 1e-7));
  CHECK(se.loadings(0, 1) == 0.0);
  CHECK(se.loadings_se(0, 1) == 0.0);
  CHECK(se.loadings(0, 0) > 0.0);
  CHECK_THAT(se.loadings * se.loadings.transpose(),
             IsApprox(fitted.params().loadings * fitted.params().loadings.transpose(), 1e-12));

  // Monte Carlo: `reps` data sets from `truth`; for the uniquenesses, the communalities and the
  // identified loadings, the empirical SD of the estimates over their mean SE must be 1 within
  // 5 Monte Carlo standard errors of a sample SD, sqrt((2 + excess kurtosis) / (4 reps)).
  const Eigen::Index nq = d + d + d * k;
  Eigen::MatrixXd est(nq, reps), ses(nq, reps);
  for (Eigen::Index r = 0; r < reps; ++r) {
    const auto m = latent::sample_moments::from_data(simulate(truth, n, rng));
    factor_analysis fa(truth);
    auto view = fa.moment_model();
    const auto fit = latent::em(view, m, {.max_iterations = 20000, .tolerance = 1e-13, .parameter_tolerance = 1e-10});
    REQUIRE(fit.converged());
    const latent::factor_analysis_standard_errors s = latent::standard_errors(fa, m);
    est.col(r) << fa.params().uniquenesses, s.loadings.rowwise().squaredNorm(),
        Eigen::Map<const Eigen::VectorXd>(s.loadings.data(), d * k);
    ses.col(r) << s.uniquenesses_se, s.communalities_se, Eigen::Map<const Eigen::VectorXd>(s.loadings_se.data(), d * k);
  }
  for (Eigen::Index i = 0; i < nq; ++i) {
    if (i >= 2 * d && (i - 2 * d) == d) continue;  // Lambda_01 is fixed at 0 by the identification
    const Eigen::ArrayXd e = est.row(i).transpose().array() - est.row(i).mean();
    const double var = e.square().mean(), kurt = e.pow(4).mean() / (var * var) - 3.0;
    const double ratio = std::sqrt(var * static_cast<double>(reps) / static_cast<double>(reps - 1)) / ses.row(i).mean();
    const double mc = std::sqrt((2.0 + kurt) / (4.0 * static_cast<double>(reps)));
    INFO("quantity " << i << ": SD / SE = " << ratio << ", MC standard error " << mc);
    CHECK(std::abs(ratio - 1.0) <= 5.0 * mc);
  }
}

// ---- Missing values (NaN, missing at random) ------------------------------------------------

namespace {

const factor_analysis_options allow_missing{.missing_values = latent::missing_policy::allow};

/// sum_n log N(x_n,o | mu_o, (Lambda Lambda^T + Psi)_oo), observation by observation.
double observed_log_likelihood(const Eigen::MatrixXd& x, const factor_analysis_params& p) {
  const Eigen::MatrixXd sigma = implied(p);
  double ll = 0.0;
  for (Eigen::Index n = 0; n < x.cols(); ++n) ll += latent_test::log_marginal_density(x.col(n), p.mean, sigma);
  return ll;
}

}  // namespace

TEST_CASE("missing values: with nothing missing, allowing them changes no bit", "[factor_analysis][missing]") {
  auto rng = latent_test::make_rng(1901);
  const factor_analysis_params truth = make_params(6, 2, rng);
  const Eigen::MatrixXd x = simulate(truth, 700, rng);
  for (noise_model noise : {noise_model::diagonal, noise_model::isotropic}) {
    factor_analysis plain(2, {.noise = noise});
    factor_analysis allowing(2, {.noise = noise, .missing_values = latent::missing_policy::allow});
    plain.initialize_pca(x);
    allowing.initialize_pca(x);
    const auto a = latent::em(plain, x, {.max_iterations = 40, .block_size = 256});
    const auto b = latent::em(allowing, x, {.max_iterations = 40, .block_size = 256});
    CHECK(a.trace == b.trace);
    CHECK(a.params.loadings == b.params.loadings);
    CHECK(a.params.mean == b.params.mean);
    CHECK(a.params.uniquenesses == b.params.uniquenesses);
    CHECK(plain.log_likelihood_per_observation(x) == allowing.log_likelihood_per_observation(x));
  }
}

TEST_CASE("missing values: the objective is the observed-data log-likelihood and EM's fixed point maximizes it",
          "[factor_analysis][missing]") {
  // d = 5, k = 1, N = 200, 25 % missing completely at random. At the EM fixed point every
  // partial derivative of the direct per-observation log-likelihood (central differences, h =
  // 1e-5: truncation ~1e-10 N, rounding ~1e-8) vanishes, to 1e-5 N, and steps of 1e-3 both
  // ways lower it. (The loading's sign is a symmetry, not a direction: every partial derivative
  // still vanishes.)
  auto rng = latent_test::make_rng(1911);
  factor_analysis_params truth;
  truth.loadings = Eigen::VectorXd::LinSpaced(5, 1.0, 0.6);
  truth.mean = Eigen::VectorXd::LinSpaced(5, -1.0, 1.0);
  truth.uniquenesses = Eigen::VectorXd::Constant(5, 0.5);
  Eigen::MatrixXd x = simulate(truth, 200, rng);
  latent_test::mask_completely_at_random(x, 0.25, rng);
  for (noise_model noise : {noise_model::diagonal, noise_model::isotropic}) {
    CAPTURE(latent::to_string(noise));
    factor_analysis fa(1, {.noise = noise, .missing_values = latent::missing_policy::allow});
    fa.initialize_pca(x);
    const auto fit = latent::em(fa, x, {.max_iterations = 50000, .tolerance = 1e-14});
    REQUIRE(fit.converged());
    const factor_analysis_params p = fa.params();
    const double direct = observed_log_likelihood(x, p);
    CHECK(fa.log_likelihood(x) == Approx(direct).epsilon(1e-12));
    CHECK(fit.objective == Approx(direct).epsilon(1e-12));
    std::vector<factor_analysis_params> directions;
    const factor_analysis_params zero{Eigen::MatrixXd::Zero(5, 1), Eigen::VectorXd::Zero(5), Eigen::VectorXd::Zero(5)};
    for (Eigen::Index j = 0; j < 5; ++j) {
      auto e = zero;
      e.loadings(j, 0) = 1.0;
      directions.push_back(e);
      e = zero;
      e.mean(j) = 1.0;
      directions.push_back(e);
      e = zero;
      if (noise == noise_model::diagonal) e.uniquenesses(j) = 1.0;
      else e.uniquenesses.setOnes();
      directions.push_back(e);
    }
    const auto moved = [&](const factor_analysis_params& e, double h) {
      return factor_analysis_params{p.loadings + h * e.loadings, p.mean + h * e.mean, p.uniquenesses + h * e.uniquenesses};
    };
    const double h = 1e-5;
    for (const auto& e : directions) {
      const double g = (observed_log_likelihood(x, moved(e, h)) - observed_log_likelihood(x, moved(e, -h))) / (2 * h);
      CAPTURE(g);
      CHECK(std::abs(g) < 1e-5 * 200);
      CHECK(observed_log_likelihood(x, moved(e, 1e-3)) < direct);
      CHECK(observed_log_likelihood(x, moved(e, -1e-3)) < direct);
    }
  }
}

TEST_CASE("missing values: EM never lowers the log-likelihood; any thread count gives the same bits",
          "[factor_analysis][missing][threads]") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    auto rng = latent_test::make_rng(1920 + seed);
    const factor_analysis_params truth = make_params(8, 2, rng);
    Eigen::MatrixXd x = simulate(truth, 500, rng);
    latent_test::mask_completely_at_random(x, 0.4, rng);
    std::vector<latent::fit_result<factor_analysis_params>> fits;
    for (int threads : {1, 2}) {
      auto r = latent_test::make_rng(1930 + seed);
      factor_analysis fa(2, allow_missing);
      fa.initialize(x, r);
      fits.push_back(latent::em(fa, x, {.max_iterations = 200, .tolerance = 1e-12, .threads = threads, .block_size = 64}));
    }
    const auto& fit = fits[0];
    CHECK(fit.decreases == 0);
    for (std::size_t i = 1; i < fit.trace.size(); ++i)
      REQUIRE(fit.trace[i] >= fit.trace[i - 1] - 1e-10 * std::abs(fit.trace[i]));
    CHECK(fits[1].trace == fit.trace);
    CHECK(fits[1].params.loadings == fit.params.loadings);
    CHECK(fits[1].params.uniquenesses == fit.params.uniquenesses);
  }
}

TEST_CASE("missing values: the implied covariance under MCAR is consistent within standard errors",
          "[factor_analysis][missing]") {
  // N = 4000, 30 % missing completely at random. Sigma_ij's standard error from the pairs that
  // see both coordinates: sqrt((S_ii S_jj + S_ij^2) / (N (1 - p)^2)); tolerance 5 SE per entry.
  auto rng = latent_test::make_rng(1941);
  const factor_analysis_params truth = make_params(5, 2, rng);
  const Eigen::Index n = 4000;
  const double p_missing = 0.3;
  Eigen::MatrixXd x = simulate(truth, n, rng);
  latent_test::mask_completely_at_random(x, p_missing, rng);
  factor_analysis fa(2, allow_missing);
  fa.initialize_pca(x);
  const auto fit = latent::em(fa, x, {.max_iterations = 5000, .tolerance = 1e-10});
  REQUIRE(fit.converged());
  const Eigen::MatrixXd s = implied(truth), got = fa.implied_covariance();
  for (Eigen::Index i = 0; i < 5; ++i) {
    CHECK(std::abs(fa.params().mean(i) - truth.mean(i)) < 5.0 * std::sqrt(s(i, i) / (n * (1 - p_missing))));
    for (Eigen::Index j = 0; j <= i; ++j) {
      CAPTURE(i, j);
      const double se = std::sqrt((s(i, i) * s(j, j) + s(i, j) * s(i, j)) / (n * (1 - p_missing) * (1 - p_missing)));
      CHECK(std::abs(got(i, j) - s(i, j)) < 5.0 * se);
    }
  }
}

TEST_CASE("missing values: NaN without the option, unobserved variables or columns, inf: invalid_argument",
          "[factor_analysis][missing][errors]") {
  auto rng = latent_test::make_rng(1951);
  const factor_analysis_params truth = make_params(5, 1, rng);
  Eigen::MatrixXd x = simulate(truth, 100, rng);
  x(2, 9) = std::numeric_limits<double>::quiet_NaN();
  {
    factor_analysis fa(1);  // default: NaN is invalid
    CHECK_THROWS_AS(fa.initialize_pca(x), latent::invalid_argument);
    CHECK_THROWS_AS(fa.initialize(x, rng), latent::invalid_argument);
    fa.set_params(truth);
    CHECK_THROWS_AS(latent::em(fa, x), latent::invalid_argument);
    CHECK_THROWS_AS(fa.log_likelihood(x), latent::invalid_argument);
  }
  factor_analysis fa(1, allow_missing);
  fa.initialize_pca(x);  // one NaN is fine
  Eigen::MatrixXd no_variable = x;
  no_variable.row(3).setConstant(std::numeric_limits<double>::quiet_NaN());
  CHECK_THROWS_AS(fa.initialize_pca(no_variable), latent::invalid_argument);
  CHECK_THROWS_AS(fa.initialize(no_variable, rng), latent::invalid_argument);
  CHECK_THROWS_AS(latent::em(fa, no_variable), latent::invalid_argument);
  Eigen::MatrixXd no_column = x;
  no_column.col(4).setConstant(std::numeric_limits<double>::quiet_NaN());
  CHECK_THROWS_AS(latent::em(fa, no_column), latent::invalid_argument);
  CHECK_THROWS_AS(fa.log_likelihood(no_column), latent::invalid_argument);
  Eigen::MatrixXd infinite = x;
  infinite(0, 3) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(latent::em(fa, infinite), latent::invalid_argument);
  CHECK_THROWS_AS(fa.log_likelihood(infinite), latent::invalid_argument);
}
