// Estimators of amortized objectives (importance-weighted log p(x), Monte Carlo ELBOs, the
// optimized local Gaussians q* and the gap decomposition), validated on the linear VAE, where
// everything is Gaussian: log p(x_n) is exact, the posterior is N(mu_n, P^-1) with the same
// precision P = I + Lambda^T Psi^-1 Lambda for every observation, the ELBO of any diagonal
// Gaussian is analytic, and the best diagonal Gaussian has mean mu_n and variances 1 / P_jj.
#include <latent/core/amortized.hpp>
#include <latent/estimators/elbo.hpp>
#include <latent/estimators/gap_decomposition.hpp>
#include <latent/estimators/per_observation.hpp>
#include <latent/estimators/importance_sampling.hpp>
#include <latent/estimators/local_gaussians.hpp>
#include <latent/models/linear_vae.hpp>

#include "support/test_support.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/LU>

#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

using latent::linear_vae;
using latent_test::IsApprox;
using latent_test::make_rng;

static_assert(latent::AmortizedObjective<latent::linear_vae>);
static_assert(latent::AmortizedObjective<latent::basic_linear_vae<float>>);

namespace {

// A linear VAE with data drawn from its own decoder, an encoder that is deliberately off
// (perturbed posterior-mean map, scales wider than the optimal diagonal ones), and the exact
// per-observation quantities.
struct gaussian_case {
  Eigen::MatrixXd x;
  Eigen::Index k = 3;
  Eigen::VectorXd params;
  Eigen::MatrixXd precision;       // P = I + Lambda^T Psi^-1 Lambda
  Eigen::MatrixXd posterior_mean;  // k x N
  Eigen::VectorXd log_p;           // exact log p(x_n)
};

gaussian_case make_case(Eigen::Index n, std::uint64_t seed, double encoder_error = 0.05) {
  gaussian_case c;
  const Eigen::Index d = 6, k = c.k;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  const auto normal = [&](Eigen::Index r, Eigen::Index cc) {
    Eigen::MatrixXd m(r, cc);
    for (Eigen::Index j = 0; j < cc; ++j)
      for (Eigen::Index i = 0; i < r; ++i) m(i, j) = z(rng);
    return m;
  };
  linear_vae::params_type p;
  p.loadings = normal(d, k);
  p.mean = normal(d, 1);
  p.log_uniquenesses = Eigen::VectorXd::LinSpaced(d, std::log(0.3), std::log(1.0));
  const Eigen::MatrixXd weight_error = encoder_error * normal(k, d), bias_error = encoder_error * normal(k, 1);
  // The parameters do not depend on n: the data are drawn last.
  const Eigen::VectorXd psi = p.log_uniquenesses.array().exp();
  c.x = (p.loadings * normal(k, n) + psi.cwiseSqrt().asDiagonal() * normal(d, n)).colwise() + p.mean;
  c.precision = Eigen::MatrixXd::Identity(k, k) + p.loadings.transpose() * psi.cwiseInverse().asDiagonal() * p.loadings;
  const Eigen::MatrixXd gain = c.precision.llt().solve(p.loadings.transpose() * psi.cwiseInverse().asDiagonal());
  c.posterior_mean = gain * (c.x.colwise() - p.mean);
  p.encoder_weights = gain + weight_error;
  p.encoder_bias = -gain * p.mean + bias_error;
  p.encoder_log_scales = (-0.5 * c.precision.diagonal().array().log() + 0.3).matrix();
  c.params = linear_vae(c.x, k).pack(p);
  c.log_p.resize(n);
  for (Eigen::Index j = 0; j < n; ++j) c.log_p(j) = linear_vae(c.x.col(j), k).log_likelihood(c.params);
  return c;
}

// The exact ELBO of N(m, diag e^{2 log_s}) for observation j:
// log p(x) + 1/2 log det P - 1/2 (m - mu)^T P (m - mu) - 1/2 sum_i P_ii s_i^2 + sum_i log s_i + k/2.
double exact_elbo(const gaussian_case& c, Eigen::Index j, const Eigen::VectorXd& m, const Eigen::VectorXd& log_s) {
  const Eigen::VectorXd dm = m - c.posterior_mean.col(j);
  const double log_det = 2.0 * c.precision.llt().matrixL().toDenseMatrix().diagonal().array().log().sum();
  return c.log_p(j) + 0.5 * log_det - 0.5 * dm.dot(c.precision * dm) -
         0.5 * (c.precision.diagonal().array() * (2.0 * log_s.array()).exp()).sum() + log_s.sum() +
         0.5 * static_cast<double>(c.k);
}

// The best diagonal Gaussians: means mu_n, log-scales -1/2 log P_ii.
latent::diagonal_gaussians exact_optimum(const gaussian_case& c) {
  const Eigen::VectorXd log_s = -0.5 * c.precision.diagonal().array().log();
  return {c.posterior_mean, log_s.replicate(1, c.x.cols())};
}

// Importance weights p/q have finite variance iff 2 P - Q is positive definite (Q the
// proposal's precision): the condition under which the delta-method SE is meaningful.
bool finite_weight_variance(const gaussian_case& c, const Eigen::VectorXd& log_s) {
  const Eigen::MatrixXd m = 2.0 * c.precision - Eigen::MatrixXd((-2.0 * log_s.array()).exp().matrix().asDiagonal());
  return Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(m).eigenvalues().minCoeff() > 0.0;
}

std::vector<Eigen::Index> all(Eigen::Index n) {
  std::vector<Eigen::Index> v(static_cast<std::size_t>(n));
  for (Eigen::Index j = 0; j < n; ++j) v[static_cast<std::size_t>(j)] = j;
  return v;
}

}  // namespace

TEMPLATE_TEST_CASE("linear_vae as an AmortizedObjective: encode, log_joint and its gradient", "[estimators][linear_vae]",
                   float, double) {
  using T = TestType;
  using mat = latent::matrix_t<T>;
  const gaussian_case c = make_case(5, 11);
  const mat xt = c.x.cast<T>();
  const latent::basic_linear_vae<T> vae(xt, c.k);
  const latent::vector_t<T> params = c.params.cast<T>();
  const linear_vae::params_type p = linear_vae(c.x, c.k).unpack(c.params);
  const std::vector<Eigen::Index> batch{3, 0, 4};
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-12;

  mat mean, log_scale;
  vae.encode(params, batch, mean, log_scale);
  const Eigen::MatrixXd expected_mean = (p.encoder_weights * c.x(Eigen::all, batch)).colwise() + p.encoder_bias;
  CHECK_THAT(Eigen::MatrixXd(mean.template cast<double>()), IsApprox(expected_mean, tol));
  CHECK_THAT(Eigen::MatrixXd(log_scale.template cast<double>()), IsApprox(p.encoder_log_scales.replicate(1, 3), tol));

  // Two points per observation, column r |B| + j; against the densities written out.
  std::mt19937_64 rng(5);
  const Eigen::MatrixXd z = latent::standard_normal(c.k, 6, rng);
  latent::vector_t<double> values;
  mat dz;
  vae.log_joint(params, batch, z.cast<T>(), values, &dz);
  REQUIRE(values.size() == 6);
  REQUIRE(dz.rows() == c.k);
  REQUIRE(dz.cols() == 6);
  const Eigen::VectorXd psi = p.log_uniquenesses.array().exp();
  for (Eigen::Index col = 0; col < 6; ++col) {
    const Eigen::Index n = batch[static_cast<std::size_t>(col % 3)];
    const Eigen::VectorXd zc = z.col(col).cast<T>().template cast<double>();
    const Eigen::VectorXd r = c.x.col(n) - p.loadings * zc - p.mean;
    const double expected = -0.5 * (r.array().square() / psi.array()).sum() - 0.5 * p.log_uniquenesses.sum() -
                            0.5 * zc.squaredNorm() - 0.5 * static_cast<double>(6 + c.k) * latent::log_two_pi;
    CHECK(values(col) == Approx(expected).epsilon(tol).margin(tol));
    const Eigen::VectorXd grad = p.loadings.transpose() * (r.array() / psi.array()).matrix() - zc;
    CHECK_THAT(Eigen::MatrixXd(dz.col(col).template cast<double>()), IsApprox(grad, std::is_same_v<T, float> ? 1e-5 : 1e-12));
  }
  if constexpr (std::is_same_v<T, double>) {  // the gradient against central differences
    const double h = 1e-6;
    for (Eigen::Index i = 0; i < c.k; ++i) {
      Eigen::MatrixXd zp = z, zm = z;
      zp.row(i).array() += h;
      zm.row(i).array() -= h;
      Eigen::VectorXd vp, vm;
      vae.log_joint(params, batch, zp, vp, nullptr);
      vae.log_joint(params, batch, zm, vm, nullptr);
      CHECK_THAT(Eigen::MatrixXd((vp - vm) / (2 * h)), IsApprox(dz.row(i).transpose(), 1e-8, 1e-8));
    }
  }
  // Bad input names the argument.
  CHECK_THROWS_AS(vae.log_joint(params, batch, mat::Zero(c.k, 4), values, nullptr), latent::invalid_argument);
  CHECK_THROWS_AS(vae.log_joint(params, batch, mat::Zero(c.k + 1, 3), values, nullptr), latent::invalid_argument);
  CHECK_THROWS_AS(vae.log_joint(params, batch, mat::Zero(c.k, 0), values, nullptr), latent::invalid_argument);
  const std::vector<Eigen::Index> out_of_range{0, 5};
  CHECK_THROWS_AS(vae.encode(params, out_of_range, mean, log_scale), latent::invalid_argument);
  CHECK_THROWS_AS(vae.encode(latent::vector_t<T>::Zero(3), batch, mean, log_scale), latent::invalid_argument);
}

TEST_CASE("importance sampling: log p^ converges to the exact log-likelihood, errors shrink with K",
          "[estimators][importance]") {
  const gaussian_case c = make_case(8, 10);
  const linear_vae vae(c.x, c.k);
  const linear_vae::params_type p = vae.unpack(c.params);
  REQUIRE(finite_weight_variance(c, p.encoder_log_scales));
  auto rng = make_rng(1);
  const std::vector<Eigen::Index> idx = all(8);
  const latent::log_likelihood_estimate small = latent::estimate_log_likelihood(vae, c.params, idx, rng, {.num_samples = 16});
  const latent::log_likelihood_estimate large = latent::estimate_log_likelihood(vae, c.params, idx, rng, {.num_samples = 4096});
  REQUIRE(large.value.size() == 8);
  CHECK(large.indices == idx);
  CHECK(large.num_samples == 4096);
  for (Eigen::Index j = 0; j < 8; ++j) {
    INFO("observation " << j << ": exact " << c.log_p(j) << ", K = 4096: " << large.value(j) << " +- "
                        << large.standard_error(j) << ", ESS " << large.effective_sample_size(j));
    // Bias ~ -SE^2 / 2 on top of the noise.
    CHECK(std::abs(large.value(j) - c.log_p(j)) <= 5.0 * large.standard_error(j) + large.standard_error(j) * large.standard_error(j));
    CHECK(large.effective_sample_size(j) >= 1.0);
    CHECK(large.effective_sample_size(j) <= 4096.0);
  }
  // 256 times the draws: the error and the SE both shrink (by ~16 in expectation).
  const double err_small = (small.value - c.log_p).norm(), err_large = (large.value - c.log_p).norm();
  INFO("RMS error: K = 16 " << err_small << ", K = 4096 " << err_large);
  CHECK(err_large < 0.25 * err_small);
  CHECK(large.standard_error.mean() < 0.25 * small.standard_error.mean());
  // The sum and the mean.
  CHECK(large.sum == Approx(large.value.sum()).epsilon(1e-14));
  CHECK(large.mean == Approx(large.value.mean()).epsilon(1e-14));
  CHECK(large.sum_standard_error == Approx(large.standard_error.norm()).epsilon(1e-14));
  CHECK(large.mean_standard_error == Approx(large.standard_error.norm() / 8.0).epsilon(1e-14));
  CHECK(std::abs(large.sum - c.log_p.sum()) <= 5.0 * large.sum_standard_error + 0.5 * large.standard_error.squaredNorm());
  CHECK(std::abs(large.sum - vae.log_likelihood(c.params)) <= 5.0 * large.sum_standard_error + 0.5 * large.standard_error.squaredNorm());
}

TEST_CASE("importance sampling: the delta-method standard error is calibrated", "[estimators][importance]") {
  // 300 independent observations: z_n = (log p^_n - log p_n) / SE_n should be ~N(0, 1).
  const Eigen::Index n = 300;
  const gaussian_case c = make_case(n, 15);
  const linear_vae vae(c.x, c.k);
  REQUIRE(finite_weight_variance(c, vae.unpack(c.params).encoder_log_scales));
  auto rng = make_rng(2);
  const latent::log_likelihood_estimate e = latent::estimate_log_likelihood(vae, c.params, rng, {.num_samples = 400});
  const Eigen::ArrayXd zs = (e.value - c.log_p).array() / e.standard_error.array();
  INFO("mean z " << zs.mean() << ", mean z^2 " << zs.square().mean());
  CHECK(std::abs(zs.mean()) < 5.0 / std::sqrt(double(n)));
  CHECK(zs.square().sum() < latent_test::chi_square_critical(int(n)));
  CHECK(zs.square().sum() > 0.5 * double(n));  // not grossly overestimated either
}

TEST_CASE("importance sampling: K = 1 is the ELBO, and the bound rises with K towards log p(x)",
          "[estimators][importance]") {
  // E[log p^_K] = L_K, the importance-weighted bound: L_1 = ELBO <= L_4 <= L_16 <= L_64 <= log p.
  // Averages over 2000 observations; consecutive K are compared observation by observation
  // (paired differences, SE from their spread).
  const Eigen::Index n = 2000;
  const gaussian_case c = make_case(n, 11);
  const linear_vae vae(c.x, c.k);
  const linear_vae::params_type p = vae.unpack(c.params);
  auto rng = make_rng(3);
  Eigen::VectorXd exact_q(n);
  for (Eigen::Index j = 0; j < n; ++j)
    exact_q(j) = exact_elbo(c, j, p.encoder_weights * c.x.col(j) + p.encoder_bias, p.encoder_log_scales);
  CHECK(exact_q.sum() == Approx(vae.elbo(c.params)).epsilon(1e-10));
  const auto mean_and_se = [&](const Eigen::ArrayXd& d) {
    return std::pair{d.mean(), std::sqrt((d - d.mean()).square().sum() / double(n - 1) / double(n))};
  };
  Eigen::VectorXd previous;
  for (const std::size_t k : {1, 4, 16, 64}) {
    const latent::log_likelihood_estimate e = latent::estimate_log_likelihood(vae, c.params, rng, {.num_samples = k});
    const auto [below, below_se] = mean_and_se((e.value - c.log_p).array());
    INFO("L_K - log p for K = " << k << ": " << below << " +- " << below_se);
    CHECK(below < 0.0);
    if (k == 1) {
      CHECK(std::isinf(e.standard_error(0)));
      const auto [m, se] = mean_and_se((e.value - exact_q).array());
      INFO("K = 1 minus the exact ELBO: " << m << " +- " << se);
      CHECK(std::abs(m) < 5.0 * se);
    } else {
      const auto [rise, rise_se] = mean_and_se((e.value - previous).array());
      INFO("L_K - L_{K/4}: " << rise << " +- " << rise_se);
      CHECK(rise > 4.0 * rise_se);
    }
    previous = e.value;
  }
}

TEMPLATE_TEST_CASE("local Gaussians: the optimizer reaches the closed-form optimal diagonal Gaussian",
                   "[estimators][local]", float, double) {
  using T = TestType;
  const gaussian_case c = make_case(6, 10);
  const latent::matrix_t<T> xt = c.x.cast<T>();
  const latent::basic_linear_vae<T> vae(xt, c.k);
  const latent::vector_t<T> params = c.params.cast<T>();
  auto rng = make_rng(4);
  const std::vector<Eigen::Index> idx{5, 1, 3};
  const latent::local_gaussians_result r = latent::fit_local_gaussians(vae, params, idx, rng);
  const latent::diagonal_gaussians best = exact_optimum(c);
  REQUIRE(r.indices == idx);
  REQUIRE(r.q.mean.rows() == c.k);
  REQUIRE(r.q.mean.cols() == 3);
  // The cubature points make the sample average exact for this quadratic log joint, so the
  // optimizer's target is the exact optimum; in float the objective carries ~1e-7 relative
  // rounding, which bounds how close the iterates can get (and they may stall there).
  const double tol = std::is_same_v<T, float> ? 2e-3 : 1e-6;
  CHECK(r.num_max_evaluations == 0);
  if constexpr (std::is_same_v<T, double>) CHECK(r.num_converged == 3);
  for (Eigen::Index j = 0; j < 3; ++j) {
    const Eigen::Index n = idx[static_cast<std::size_t>(j)];
    INFO("observation " << n << ": " << to_string(r.status[static_cast<std::size_t>(j)]) << " after "
                        << r.evaluations[static_cast<std::size_t>(j)] << " evaluations, gradient "
                        << r.gradient_norm(j));
    CHECK_THAT(Eigen::MatrixXd(r.q.mean.col(j)), IsApprox(best.mean.col(n), 0.0, tol));
    CHECK_THAT(Eigen::MatrixXd(r.q.log_scale.col(j)), IsApprox(best.log_scale.col(n), 0.0, tol));
    const double optimum = exact_elbo(c, n, best.mean.col(n), best.log_scale.col(n));
    CHECK(exact_elbo(c, n, r.q.mean.col(j), r.q.log_scale.col(j)) == Approx(optimum).margin(20 * tol * tol + 1e-10));
    // The objective reported is the cubature average, exact here (to the scalar's rounding).
    CHECK(r.objective(j) == Approx(optimum).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-12));
    CHECK(r.start_objective(j) < r.objective(j));
  }
}

TEST_CASE("ELBO estimates: L[q] matches the exact ELBO of the encoder's q; common random numbers",
          "[estimators][elbo]") {
  const Eigen::Index n = 8;
  const gaussian_case c = make_case(n, 19);
  const linear_vae vae(c.x, c.k);
  const linear_vae::params_type p = vae.unpack(c.params);
  auto rng = make_rng(5);
  const auto state = rng;
  const latent::per_observation_estimate e = latent::estimate_elbo(vae, c.params, rng, {.num_samples = 2000});
  for (Eigen::Index j = 0; j < n; ++j) {
    const double exact = exact_elbo(c, j, p.encoder_weights * c.x.col(j) + p.encoder_bias, p.encoder_log_scales);
    INFO("observation " << j << ": exact " << exact << ", estimate " << e.value(j) << " +- " << e.standard_error(j));
    CHECK(std::abs(e.value(j) - exact) < 5.0 * e.standard_error(j));
  }
  CHECK(std::abs(e.sum - vae.elbo(c.params)) < 5.0 * e.sum_standard_error);
  // Same engine state, same noise: the explicit-q overload with the encoder's q gives the same bits.
  auto again = state;
  const std::vector<Eigen::Index> idx = all(n);
  const latent::diagonal_gaussians q = latent::encoder_gaussians(vae, c.params, idx);
  const latent::per_observation_estimate same = latent::estimate_elbo(vae, c.params, idx, q, again, {.num_samples = 2000});
  CHECK(same.value == e.value);
  CHECK(same.standard_error == e.standard_error);
}

TEST_CASE("gap decomposition reproduces the exact approximation and amortization gaps", "[estimators][gaps]") {
  const Eigen::Index n = 6;
  const gaussian_case c = make_case(n, 10);
  const linear_vae vae(c.x, c.k);
  const linear_vae::params_type p = vae.unpack(c.params);
  const latent::diagonal_gaussians best = exact_optimum(c);
  REQUIRE(finite_weight_variance(c, best.log_scale.col(0)));
  auto rng = make_rng(6);
  const std::vector<Eigen::Index> idx{4, 0, 2, 5};
  const latent::gap_options opts{.elbo_samples = 2000, .importance_samples = 5000};
  const latent::gap_decomposition_result g = latent::gap_decomposition(vae, c.params, idx, rng, opts);
  CHECK(g.optimization.num_converged == 4);
  // The approximation gap is the same for every observation here: 1/2 (sum log P_jj - log det P).
  const double log_det = 2.0 * std::log(c.precision.llt().matrixL().toDenseMatrix().diagonal().prod());
  const double approximation = 0.5 * (c.precision.diagonal().array().log().sum() - log_det);
  REQUIRE(approximation > 0.05);
  for (Eigen::Index j = 0; j < 4; ++j) {
    const Eigen::Index o = idx[static_cast<std::size_t>(j)];
    const double lq = exact_elbo(c, o, p.encoder_weights * c.x.col(o) + p.encoder_bias, p.encoder_log_scales);
    const double lstar = exact_elbo(c, o, best.mean.col(o), best.log_scale.col(o));
    INFO("observation " << o << ": L[q] " << lq << " L[q*] " << lstar << " log p " << c.log_p(o));
    INFO("estimates: " << g.amortized_elbo.value(j) << " +- " << g.amortized_elbo.standard_error(j) << ", "
                       << g.optimal_elbo.value(j) << " +- " << g.optimal_elbo.standard_error(j) << ", "
                       << g.log_likelihood.value(j) << " +- " << g.log_likelihood.standard_error(j));
    INFO("gaps: approximation " << g.approximation_gap.value(j) << " +- " << g.approximation_gap.standard_error(j)
                                << " (exact " << approximation << "), amortization " << g.amortization_gap.value(j)
                                << " +- " << g.amortization_gap.standard_error(j) << " (exact " << lstar - lq << ")");
    CHECK(std::abs(g.amortized_elbo.value(j) - lq) < 5.0 * g.amortized_elbo.standard_error(j));
    CHECK(std::abs(g.optimal_elbo.value(j) - lstar) < 5.0 * g.optimal_elbo.standard_error(j));
    const double se_lp = g.log_likelihood.standard_error(j);
    CHECK(std::abs(g.log_likelihood.value(j) - c.log_p(o)) < 5.0 * se_lp + se_lp * se_lp);
    CHECK(std::abs(g.approximation_gap.value(j) - approximation) <
          5.0 * g.approximation_gap.standard_error(j) + se_lp * se_lp);
    CHECK(std::abs(g.amortization_gap.value(j) - (lstar - lq)) < 5.0 * g.amortization_gap.standard_error(j));
    // Common random numbers: the paired difference is much more precise than either ELBO.
    CHECK(g.amortization_gap.standard_error(j) < g.amortized_elbo.standard_error(j));
    CHECK(g.amortization_gap.value(j) ==
          Approx(g.optimal_elbo.value(j) - g.amortized_elbo.value(j)).epsilon(1e-12).margin(1e-12));
    CHECK(g.approximation_gap.value(j) ==
          Approx(g.log_likelihood.value(j) - g.optimal_elbo.value(j)).epsilon(1e-12).margin(1e-12));
  }
  CHECK(g.approximation_gap.mean == Approx(g.approximation_gap.value.mean()).epsilon(1e-14));
  CHECK(std::abs(g.approximation_gap.mean - approximation) < 5.0 * g.approximation_gap.mean_standard_error + 0.01);
}

TEST_CASE("estimators: identical results for 1 and 2 threads and for any grouping", "[estimators][threads]") {
  const gaussian_case c = make_case(9, 15);
  const linear_vae vae(c.x, c.k);
  const std::vector<Eigen::Index> idx{8, 1, 2, 7, 3, 0, 4};
  const auto run = [&](int threads, Eigen::Index columns) {
    auto rng = make_rng(7);
    return latent::gap_decomposition(vae, c.params, idx, rng,
                                     {.elbo_samples = 50, .importance_samples = 100, .columns_per_call = columns,
                                      .threads = threads});
  };
  const latent::gap_decomposition_result a = run(1, 256), b = run(2, 256), wide = run(2, 100000);
  CHECK(a.log_likelihood.value == b.log_likelihood.value);
  CHECK(a.log_likelihood.standard_error == b.log_likelihood.standard_error);
  CHECK(a.amortized_elbo.value == b.amortized_elbo.value);
  CHECK(a.optimal_elbo.value == b.optimal_elbo.value);
  CHECK(a.amortization_gap.standard_error == b.amortization_gap.standard_error);
  CHECK(a.optimization.q.mean == b.optimization.q.mean);
  CHECK(a.optimization.q.log_scale == b.optimization.q.log_scale);
  CHECK(a.approximation_gap.sum == b.approximation_gap.sum);
  // Other groupings draw the same numbers; only the objective's rounding may differ.
  CHECK_THAT(Eigen::MatrixXd(wide.log_likelihood.value), IsApprox(a.log_likelihood.value, 1e-12));
  CHECK_THAT(Eigen::MatrixXd(wide.optimal_elbo.value), IsApprox(a.optimal_elbo.value, 1e-12));
  // An observation's numbers do not depend on the rest of the set.
  auto rng = make_rng(7);
  const std::vector<Eigen::Index> one{7};
  const latent::gap_decomposition_result single =
      latent::gap_decomposition(vae, c.params, one, rng, {.elbo_samples = 50, .importance_samples = 100});
  CHECK(single.log_likelihood.value(0) == Approx(a.log_likelihood.value(3)).epsilon(1e-12));
  CHECK(single.amortized_elbo.value(0) == Approx(a.amortized_elbo.value(3)).epsilon(1e-12));
}

TEST_CASE("estimators: float and double agree (same noise)", "[estimators][float]") {
  const gaussian_case c = make_case(5, 11);
  const linear_vae vae(c.x, c.k);
  const Eigen::MatrixXf xf = c.x.cast<float>();
  const latent::basic_linear_vae<float> vaef(xf, c.k);
  auto r1 = make_rng(8), r2 = make_rng(8);
  const latent::log_likelihood_estimate d = latent::estimate_log_likelihood(vae, c.params, r1, {.num_samples = 500});
  const latent::log_likelihood_estimate f =
      latent::estimate_log_likelihood(vaef, Eigen::VectorXf(c.params.cast<float>()), r2, {.num_samples = 500});
  CHECK_THAT(Eigen::MatrixXd(f.value), IsApprox(d.value, 1e-5));
  CHECK_THAT(Eigen::MatrixXd(f.standard_error), IsApprox(d.standard_error, 1e-2));
}

TEST_CASE("estimators: bad input is invalid_argument", "[estimators][bad-input]") {
  const gaussian_case c = make_case(4, 11);
  const linear_vae vae(c.x, c.k);
  auto rng = make_rng(9);
  const std::vector<Eigen::Index> idx{0, 2}, bad{0, 4}, negative{-1}, none, twice{2, 0, 2};
  const latent::diagonal_gaussians q = latent::encoder_gaussians(vae, c.params, idx);
  using latent::invalid_argument;
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, idx, rng, {.num_samples = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, bad, rng), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, negative, rng), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, none, rng), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, twice, rng), invalid_argument);
  CHECK_THROWS_AS(latent::gap_decomposition(vae, c.params, twice, rng), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, idx, rng, {.columns_per_call = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, idx, rng, {.threads = -1}), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, Eigen::VectorXd::Zero(5), idx, rng), invalid_argument);
  // Proposals of the wrong shape or not finite.
  latent::diagonal_gaussians wrong = q;
  wrong.mean.conservativeResize(c.k, 3);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, idx, wrong, rng), invalid_argument);
  wrong = q;
  wrong.log_scale.conservativeResize(c.k + 1, 2);
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, idx, wrong, rng), invalid_argument);
  wrong = q;
  wrong.log_scale(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(latent::estimate_log_likelihood(vae, c.params, idx, wrong, rng), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_elbo(vae, c.params, idx, wrong, rng), invalid_argument);
  CHECK_THROWS_AS(latent::fit_local_gaussians(vae, c.params, idx, wrong, rng), invalid_argument);
  CHECK_THROWS_AS(latent::estimate_elbo(vae, c.params, idx, rng, {.num_samples = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::fit_local_gaussians(vae, c.params, idx, rng, {.num_samples = 7}), invalid_argument);
  CHECK_THROWS_AS(latent::fit_local_gaussians(vae, c.params, idx, rng, {.max_evaluations = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::fit_local_gaussians(vae, c.params, idx, rng, {.gradient_tolerance = -1.0}), invalid_argument);
  CHECK_THROWS_AS(latent::gap_decomposition(vae, c.params, idx, rng, {.elbo_samples = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::gap_decomposition(vae, c.params, idx, rng, {.importance_samples = 0}), invalid_argument);
  CHECK_THROWS_AS(latent::gap_decomposition(vae, c.params, bad, rng), invalid_argument);
  try {
    latent::estimate_log_likelihood(vae, c.params, bad, rng);
  } catch (const invalid_argument& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("indices") && Catch::Contains("4"));
  }
}
