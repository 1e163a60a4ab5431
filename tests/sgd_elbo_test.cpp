// Tests of SGD on the ELBO: the optimizers (Adam, Robbins–Monro SGD) on quadratics with a known
// optimum; the linear VAE and Neyman–Scott objectives (values against a naive per-point
// computation, gradients against central finite differences with frozen noise, unbiasedness
// against the exact ELBO); the exact ELBO's identities; fits that reach the factor-analysis MLE
// and the Neyman–Scott marginal MLE; the solver's bookkeeping; and bad input.
#include <latent/solvers/sgd_elbo.hpp>

#include <latent/core/callbacks.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/random.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/models/neyman_scott_elbo.hpp>
#include <latent/optim/adam.hpp>
#include <latent/optim/sgd.hpp>

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/LU>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace {

using latent::linear_vae;
using latent::neyman_scott_elbo;

// ---------------------------------------------------------------------------------------------
// Helpers

// Simulated factor-analysis data: x = Lambda z + mu + eps, d x n.
Eigen::MatrixXd simulate_fa(Eigen::Index d, Eigen::Index k, Eigen::Index n, std::mt19937_64& rng) {
  const Eigen::MatrixXd lambda = latent::standard_normal(d, k, rng);
  Eigen::VectorXd psi(d);
  for (Eigen::Index i = 0; i < d; ++i) psi(i) = 0.2 + 0.1 * static_cast<double>(i);
  const Eigen::VectorXd mu = latent::standard_normal(d, 1, rng);
  Eigen::MatrixXd x = lambda * latent::standard_normal(k, n, rng) +
                      psi.cwiseSqrt().asDiagonal() * latent::standard_normal(d, n, rng);
  x.colwise() += mu;
  return x;
}

// Random parameters of moderate size for derivative checks.
Eigen::VectorXd random_vae_params(const linear_vae& vae, std::mt19937_64& rng) {
  const Eigen::Index d = vae.dim(), k = vae.latent_dim();
  linear_vae::params_type p;
  p.loadings = latent::standard_normal(d, k, rng);
  p.mean = 0.5 * latent::standard_normal(d, 1, rng);
  p.log_uniquenesses = 0.3 * latent::standard_normal(d, 1, rng);
  p.encoder_weights = 0.3 * latent::standard_normal(k, d, rng);
  p.encoder_bias = 0.3 * latent::standard_normal(k, 1, rng);
  p.encoder_log_scales = 0.3 * latent::standard_normal(k, 1, rng);
  return vae.pack(p);
}

// The estimate as a function of the parameters with the noise frozen: the engine restarts from
// the same state at every call.
template <class F>
double frozen_value(const F& f, const Eigen::VectorXd& p, latent::minibatch batch, std::size_t s,
                    const std::mt19937_64& rng0, Eigen::VectorXd* grad = nullptr) {
  std::mt19937_64 rng = rng0;
  Eigen::VectorXd g;
  const double v = f.value_and_gradient(p, batch, s, g, rng);
  if (grad) *grad = g;
  return v;
}

// Central finite differences of any scalar function of the parameters.
template <class Fn>
Eigen::VectorXd central_differences(Fn&& fn, const Eigen::VectorXd& p, double h) {
  Eigen::VectorXd g(p.size());
  for (Eigen::Index i = 0; i < p.size(); ++i) {
    Eigen::VectorXd a = p, b = p;
    a(i) += h;
    b(i) -= h;
    g(i) = (fn(a) - fn(b)) / (2.0 * h);
  }
  return g;
}

// Factor-analysis MLE by EM on the sample covariance (Ghahramani & Hinton 1996), run to a fixed
// point: an independent reference for the value the linear VAE's ELBO can reach.
struct fa_fit {
  Eigen::MatrixXd lambda;
  Eigen::VectorXd psi, mu;
  double loglik;
  int iterations = -1;
};
fa_fit fa_mle(const Eigen::MatrixXd& x, Eigen::Index k) {
  const Eigen::Index d = x.rows();
  const double n = static_cast<double>(x.cols());
  fa_fit f;
  f.mu = x.rowwise().mean();
  const Eigen::MatrixXd xc = x.colwise() - f.mu;
  const Eigen::MatrixXd s = xc * xc.transpose() / n;
  f.lambda = Eigen::MatrixXd::Zero(d, k);
  for (Eigen::Index j = 0; j < k; ++j) f.lambda(j, j) = std::sqrt(s(j, j)) * 0.5;
  f.lambda(d - 1, 0) = 0.3;
  f.psi = 0.5 * s.diagonal();
  const auto loglik = [&](const Eigen::MatrixXd& l, const Eigen::VectorXd& psi) {
    Eigen::MatrixXd c = l * l.transpose();
    c.diagonal() += psi;
    const Eigen::LLT<Eigen::MatrixXd> llt(c);
    return -0.5 * n * (static_cast<double>(d) * latent::log_two_pi + latent::log_det_from_cholesky(llt) +
                       llt.solve(s).trace());
  };
  double prev = -std::numeric_limits<double>::infinity();
  for (int it = 0; it < 100000; ++it) {
    Eigen::MatrixXd c = f.lambda * f.lambda.transpose();
    c.diagonal() += f.psi;
    const Eigen::MatrixXd beta = Eigen::LLT<Eigen::MatrixXd>(c).solve(f.lambda).transpose();  // k x d
    const Eigen::MatrixXd ezz = Eigen::MatrixXd::Identity(k, k) - beta * f.lambda + beta * s * beta.transpose();
    f.lambda = (s * beta.transpose()) * ezz.inverse();
    f.psi = (s - f.lambda * beta * s).diagonal();
    const double ll = loglik(f.lambda, f.psi);
    if (ll - prev < 1e-13 * std::abs(ll)) {
      f.iterations = it;
      break;
    }
    prev = ll;
  }
  f.loglik = loglik(f.lambda, f.psi);
  return f;
}

// Encoder that makes the ELBO equal the log-likelihood for decoder (lambda, psi, mu): rotate
// lambda so that lambda^T Psi^-1 lambda is diagonal; the posterior covariance is then diagonal
// and the linear encoder W x + b is the exact posterior mean.
linear_vae::params_type exact_posterior_params(const fa_fit& f) {
  const Eigen::VectorXd psi_inv = f.psi.cwiseInverse();
  const Eigen::MatrixXd m = f.lambda.transpose() * psi_inv.asDiagonal() * f.lambda;
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m);
  linear_vae::params_type p;
  p.loadings = f.lambda * es.eigenvectors();
  const Eigen::VectorXd post_var = (1.0 + es.eigenvalues().array()).inverse();
  p.mean = f.mu;
  p.log_uniquenesses = f.psi.array().log();
  p.encoder_weights = post_var.asDiagonal() * p.loadings.transpose() * psi_inv.asDiagonal();
  p.encoder_bias = -p.encoder_weights * f.mu;
  p.encoder_log_scales = 0.5 * post_var.array().log();
  return p;
}

// Sample mean and standard error of each coordinate of M vectors (columns of `draws`).
struct mean_se {
  Eigen::VectorXd mean, se;
};
mean_se summarize(const Eigen::MatrixXd& draws) {
  const double m = static_cast<double>(draws.cols());
  mean_se r;
  r.mean = draws.rowwise().mean();
  r.se = (((draws.colwise() - r.mean).rowwise().squaredNorm() / (m - 1.0)) / m).cwiseSqrt();
  return r;
}

// Neyman–Scott data: K x N, y_kn = z_n + N(0, theta), z_n ~ N(mu, tau2).
Eigen::MatrixXd simulate_ns(Eigen::Index k, Eigen::Index n, double theta, double mu, double tau2,
                            std::mt19937_64& rng) {
  const Eigen::RowVectorXd z = (std::sqrt(tau2) * latent::standard_normal(1, n, rng)).array() + mu;
  return std::sqrt(theta) * latent::standard_normal(k, n, rng) + z.replicate(k, 1);
}

// Neyman–Scott ELBO parameters: the given globals, q means m0 + N(0, 1) and q log sds
// l0 + l_sd N(0, 1), drawn from `rng` in that order.
neyman_scott_elbo::params_type ns_params(Eigen::Index n, double log_theta, double mean, double log_prior_variance,
                                         double m0, double l0, double l_sd, std::mt19937_64& rng) {
  neyman_scott_elbo::params_type pt{log_theta, mean, log_prior_variance, {}, {}};
  pt.q_means = m0 + latent::standard_normal(n, 1, rng).array();
  pt.q_log_sds = l0 + l_sd * latent::standard_normal(n, 1, rng).array();
  return pt;
}

// A maximization problem f(x) = -1/2 (x - c)^T A (x - c) with known maximizer c.
struct quadratic {
  Eigen::MatrixXd a;
  Eigen::VectorXd c;
  Eigen::VectorXd gradient(const Eigen::VectorXd& x) const { return -a * (x - c); }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Optimizers

TEST_CASE("adam: the first step is learning_rate * sign(g), then it reaches a quadratic's maximizer",
          "[optim][adam]") {
  const quadratic q{(Eigen::MatrixXd(3, 3) << 4, 1, 0, 1, 3, 0.5, 0, 0.5, 1).finished(),
                    Eigen::Vector3d(1.0, -2.0, 0.5)};
  latent::adam opt({.learning_rate = 0.05}, 3);
  Eigen::VectorXd x = Eigen::VectorXd::Zero(3);
  const Eigen::VectorXd g0 = q.gradient(x);
  opt.step(x, g0);
  // Bias correction makes mhat = g and vhat = g^2 at t = 1: a step of alpha g / (|g| + eps).
  const Eigen::VectorXd expected = 0.05 * (g0.array() / (g0.array().abs() + 1e-8)).matrix();
  REQUIRE_THAT(Eigen::MatrixXd(x), latent_test::IsApprox(expected, 1e-15));
  REQUIRE(opt.steps() == 1);
  for (int t = 1; t < 5000; ++t) opt.step(x, q.gradient(x));
  // Deterministic gradients: Adam's effective step shrinks with |g| near the optimum; after 5000
  // steps the iterate sits at the maximizer to well below the learning rate.
  REQUIRE_THAT(Eigen::MatrixXd(x), latent_test::IsApprox(q.c, 0.0, 1e-6));
  opt.reset(3);
  REQUIRE(opt.steps() == 0);
  REQUIRE(opt.state().m.isZero(0.0));
}

TEST_CASE("sgd: Robbins–Monro schedule, exact steps and convergence on a quadratic", "[optim][sgd]") {
  const latent::sgd_options o{.step_size = 0.2, .t0 = 10.0, .kappa = 0.75};
  REQUIRE(latent::robbins_monro_step(o, 0) == 0.2);
  REQUIRE(latent::robbins_monro_step(o, 30) == Approx(0.2 / std::pow(4.0, 0.75)).epsilon(1e-15));

  const quadratic q{Eigen::Vector2d(2.0, 0.5).asDiagonal(), Eigen::Vector2d(-1.0, 3.0)};
  SECTION("noise-free gradients converge to the maximizer") {
    latent::sgd opt({.step_size = 0.4, .t0 = 1e6, .kappa = 1.0}, 2);
    Eigen::VectorXd x = Eigen::VectorXd::Zero(2);
    const Eigen::VectorXd g0 = q.gradient(x);
    opt.step(x, g0);
    REQUIRE_THAT(Eigen::MatrixXd(x), latent_test::IsApprox(0.4 * g0, 1e-15));
    for (int t = 1; t < 400; ++t) opt.step(x, q.gradient(x));
    // Contraction factor per step at most max|1 - 0.4 lambda| = 0.8: 0.8^400 ~ 1e-39.
    REQUIRE_THAT(Eigen::MatrixXd(x), latent_test::IsApprox(q.c, 0.0, 1e-12));
  }
  SECTION("noisy unbiased gradients converge at the Robbins–Monro rate") {
    // x_{t+1} = x_t + a_t (-lambda (x_t - c) + sigma xi_t). With a_t = a0 / (1 + t/t0) and
    // a0 lambda t0 > 1/2 the error variance tracks a_t sigma^2 / (2 lambda) (the stationary
    // variance of the linearized recursion at step size a_t), so after T steps each
    // coordinate is within 5 of those standard deviations of c (false alarm ~ 1e-6).
    auto rng = latent_test::make_rng(11);
    const double sigma = 2.0;
    latent::sgd opt({.step_size = 0.1, .t0 = 100.0, .kappa = 1.0}, 2);
    Eigen::VectorXd x = Eigen::VectorXd::Zero(2);
    const int steps = 20000;
    for (int t = 0; t < steps; ++t)
      opt.step(x, q.gradient(x) + sigma * latent::standard_normal(2, 1, rng));
    const double a_t = opt.current_step_size();
    for (Eigen::Index i = 0; i < 2; ++i) {
      const double lambda = q.a(i, i);
      const double sd = std::sqrt(a_t * sigma * sigma / (2.0 * lambda));
      INFO("coordinate " << i << ": x = " << x(i) << ", c = " << q.c(i) << ", sd = " << sd);
      REQUIRE(std::abs(x(i) - q.c(i)) <= 5.0 * sd);
    }
    // The same budget at a constant step (t0 huge) would leave sd ~ sqrt(0.1 * 4 / 1) = 0.63;
    // the schedule has shrunk it by sqrt(a_T / a_0).
    REQUIRE(a_t < 0.1 * 0.01);
  }
}

TEST_CASE("optimizers: invalid hyper-parameters name the argument", "[optim][bad-input]") {
  using Catch::Matchers::Contains;
  REQUIRE_THROWS_AS(latent::adam({.learning_rate = 0.0}), latent::invalid_argument);
  REQUIRE_THROWS_WITH(latent::adam({.learning_rate = -1.0}), Contains("learning_rate"));
  REQUIRE_THROWS_WITH(latent::adam({.beta1 = 1.0}), Contains("beta1"));
  REQUIRE_THROWS_WITH(latent::adam({.beta2 = -0.1}), Contains("beta2"));
  REQUIRE_THROWS_WITH(latent::adam({.epsilon = 0.0}), Contains("epsilon"));
  REQUIRE_THROWS_WITH(latent::sgd({.step_size = 0.0}), Contains("step_size"));
  REQUIRE_THROWS_WITH(latent::sgd({.step_size = std::numeric_limits<double>::infinity()}),
                      Contains("step_size"));
  REQUIRE_THROWS_WITH(latent::sgd({.t0 = -1.0}), Contains("t0"));
  REQUIRE_THROWS_WITH(latent::sgd({.kappa = 0.5}), Contains("kappa"));
  REQUIRE_THROWS_WITH(latent::sgd({.kappa = 1.5}), Contains("kappa"));
  latent::adam a({}, 3);
  Eigen::VectorXd x = Eigen::VectorXd::Zero(3);
  REQUIRE_THROWS_WITH(a.step(x, Eigen::VectorXd::Zero(2)), Contains("grad"));
}

// ---------------------------------------------------------------------------------------------
// Linear VAE: values, gradients, exact ELBO

TEST_CASE("linear_vae: layout, pack/unpack round trip", "[linear_vae]") {
  auto rng = latent_test::make_rng(1);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 30, rng);
  const linear_vae vae(x, 2);
  REQUIRE(vae.num_parameters() == 2 * 4 * 2 + 2 * 4 + 2 * 2);
  const Eigen::VectorXd p = random_vae_params(vae, rng);
  const linear_vae::params_type u = vae.unpack(p);
  REQUIRE(u.loadings.rows() == 4);
  REQUIRE(u.loadings.cols() == 2);
  REQUIRE(u.encoder_weights.rows() == 2);
  REQUIRE(u.loadings(1, 0) == p(1));   // column-major vec(Lambda) first
  REQUIRE(u.mean(0) == p(8));
  REQUIRE(u.encoder_log_scales(1) == p(27));
  REQUIRE(vae.pack(u) == p);
}

TEST_CASE("linear_vae: the estimate equals a naive per-observation computation with the same noise",
          "[linear_vae]") {
  auto rng = latent_test::make_rng(2);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 30, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p = random_vae_params(vae, rng);
  const linear_vae::params_type u = vae.unpack(p);
  const std::vector<Eigen::Index> batch{7, 3, 29, 0, 12};
  const std::size_t s = 3;
  const std::mt19937_64 frozen = rng;
  const double value = frozen_value(vae, p, batch, s, frozen);

  // Same draws: a k x (B S) matrix, column r * B + j is draw r of batch entry j.
  std::mt19937_64 r2 = frozen;
  const Eigen::MatrixXd eps = latent::standard_normal(2, 5 * 3, r2);
  const Eigen::VectorXd psi = u.log_uniquenesses.array().exp();
  const Eigen::VectorXd s_vec = u.encoder_log_scales.array().exp();
  double naive = 0.0;
  for (std::size_t j = 0; j < batch.size(); ++j) {
    const Eigen::VectorXd xn = x.col(batch[j]);
    const Eigen::VectorXd m = u.encoder_weights * xn + u.encoder_bias;
    double ll = 0.0;
    for (std::size_t r = 0; r < s; ++r) {
      const Eigen::VectorXd z = m + s_vec.cwiseProduct(eps.col(static_cast<Eigen::Index>(r * 5 + j)));
      ll += latent::mvn_diag_log_density(xn, u.loadings * z + u.mean, psi)(0);
    }
    const double kl = 0.5 * (m.squaredNorm() + s_vec.squaredNorm() - 2.0 - 2.0 * u.encoder_log_scales.sum());
    naive += ll / static_cast<double>(s) - kl;
  }
  naive *= 30.0 / 5.0;
  REQUIRE(value == Approx(naive).epsilon(1e-12));
}

TEST_CASE("linear_vae: gradient matches central finite differences with frozen noise", "[linear_vae]") {
  auto rng = latent_test::make_rng(3);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 30, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p = random_vae_params(vae, rng);
  const std::vector<Eigen::Index> batch{4, 17, 9, 22, 1, 28, 13, 6, 11, 0};
  const std::mt19937_64 frozen = rng;
  for (const std::size_t s : {std::size_t{1}, std::size_t{3}}) {
    Eigen::VectorXd grad;
    frozen_value(vae, p, batch, s, frozen, &grad);
    const Eigen::VectorXd fd = central_differences(
        [&](const Eigen::VectorXd& q) { return frozen_value(vae, q, batch, s, frozen); }, p, 1e-5);
    INFO("num_samples = " << s << "\nanalytic " << grad.transpose() << "\nfinite   " << fd.transpose());
    // Central differences at h = 1e-5 carry O(h^2 f''') ~ 1e-10 relative truncation and
    // ~1e-16 |f| / h ~ 1e-9 rounding error, far below the 1e-6 relative tolerance.
    REQUIRE((grad - fd).norm() <= 1e-6 * grad.norm());
  }
}

TEST_CASE("linear_vae: exact ELBO identities", "[linear_vae]") {
  auto rng = latent_test::make_rng(4);
  const Eigen::MatrixXd x = simulate_fa(5, 2, 200, rng);
  const linear_vae vae(x, 2);
  SECTION("ELBO <= log-likelihood for arbitrary encoders") {
    for (int rep = 0; rep < 5; ++rep) {
      const Eigen::VectorXd p = random_vae_params(vae, rng);
      REQUIRE(vae.elbo(p) <= vae.log_likelihood(p));
    }
  }
  SECTION("with the exact posterior as encoder the ELBO equals the log-likelihood") {
    const fa_fit f = fa_mle(x, 2);
    const Eigen::VectorXd p = vae.pack(exact_posterior_params(f));
    // The reference log-likelihood from the covariance formula and the decoder's own density.
    REQUIRE(vae.log_likelihood(p) == Approx(f.loglik).epsilon(1e-12));
    REQUIRE(vae.elbo(p) == Approx(f.loglik).epsilon(1e-12));
    // Any other encoder scale is strictly worse.
    Eigen::VectorXd q = p;
    q(q.size() - 1) += 0.1;
    REQUIRE(vae.elbo(q) < f.loglik - 1e-3);
  }
}

TEST_CASE("linear_vae: the stochastic gradient is unbiased for the exact ELBO gradient", "[linear_vae]") {
  auto rng = latent_test::make_rng(5);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 40, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p = random_vae_params(vae, rng);
  // The exact ELBO is analytic; its gradient by central differences (h = 1e-5, error ~1e-8)
  // is exact at the scale of the standard errors below.
  const Eigen::VectorXd exact = central_differences([&](const Eigen::VectorXd& q) { return vae.elbo(q); }, p, 1e-5);
  const double exact_value = vae.elbo(p);

  const int m = 4000;
  const std::size_t b = 8;
  std::vector<Eigen::Index> idx(40);
  std::iota(idx.begin(), idx.end(), Eigen::Index{0});
  Eigen::MatrixXd grads(p.size(), m);
  Eigen::MatrixXd values(1, m);
  Eigen::VectorXd g;
  for (int i = 0; i < m; ++i) {
    std::shuffle(idx.begin(), idx.end(), rng);  // a uniformly random minibatch of 8
    values(0, i) = vae.value_and_gradient(p, latent::minibatch(idx.data(), b), 1, g, rng);
    grads.col(i) = g;
  }
  const mean_se gs = summarize(grads), vs = summarize(values);
  // 4.5 standard errors per coordinate: 29 comparisons, false-alarm rate ~ 29 * 7e-6.
  for (Eigen::Index i = 0; i < p.size(); ++i) {
    INFO("coordinate " << i << ": mean " << gs.mean(i) << ", exact " << exact(i) << ", se " << gs.se(i));
    REQUIRE(gs.se(i) > 0.0);
    REQUIRE(std::abs(gs.mean(i) - exact(i)) <= 4.5 * gs.se(i));
  }
  INFO("value: mean " << vs.mean(0) << ", exact " << exact_value << ", se " << vs.se(0));
  REQUIRE(std::abs(vs.mean(0) - exact_value) <= 4.5 * vs.se(0));
}

/// Linear VAE tolerances per scalar type, relative. The float objective computes a minibatch
/// of a few hundred products in float (relative rounding ~ sqrt(terms) x 6e-8 per sum) from
/// parameters rounded to float; the double objective agrees with itself to ~1e-15.
template <class T>
constexpr double vae_tolerance = 1e-12;
template <>
constexpr double vae_tolerance<float> = 2e-5;

TEMPLATE_TEST_CASE("linear_vae: value() equals value_and_gradient() for the same engine state, in float and double",
                   "[linear_vae]", float, double) {
  using T = TestType;
  using vec = latent::vector_t<T>;
  auto rng = latent_test::make_rng(6);
  const Eigen::MatrixXd x = simulate_fa(6, 2, 50, rng);
  const latent::matrix_t<T> xt = x.cast<T>();
  const latent::basic_linear_vae<T> vae(xt, 2);
  const vec p = random_vae_params(linear_vae(x, 2), rng).cast<T>();
  const std::vector<Eigen::Index> batch{3, 41, 8, 19, 0, 27, 33};
  for (const std::size_t s : {std::size_t{1}, std::size_t{4}}) {
    std::mt19937_64 r1 = rng, r2 = rng;
    vec g;
    const double with_grad = vae.value_and_gradient(p, batch, s, g, r1);
    const double value_only = vae.value(p, batch, s, r2);
    CHECK(value_only == with_grad);
    CHECK(r1 == r2);  // the same draws were consumed
    CHECK(latent::estimate_value(vae, p, batch, s, r2) == latent::estimate_value(vae, p, batch, s, r1));

    // Against the double objective at the same (rounded) parameters and the same noise.
    const linear_vae ref(x, 2);
    const Eigen::VectorXd pd = p.template cast<double>();
    std::mt19937_64 r3 = rng;
    Eigen::VectorXd gd;
    const double vd = ref.value_and_gradient(pd, batch, s, gd, r3);
    CHECK(with_grad == Approx(vd).epsilon(vae_tolerance<T>));
    CHECK((g.template cast<double>() - gd).norm() <= vae_tolerance<T> * 10.0 * gd.norm());
    CHECK(vae.elbo(p) == Approx(ref.elbo(pd)).epsilon(vae_tolerance<T>));
    CHECK(vae.log_likelihood(p) == Approx(ref.log_likelihood(pd)).epsilon(vae_tolerance<T>));
  }
  // Float and double starting points consume the engine identically.
  std::mt19937_64 r4 = rng, r5 = rng;
  const vec init = vae.initial_params(r4);
  const Eigen::VectorXd init_d = linear_vae(x, 2).initial_params(r5);
  CHECK(r4 == r5);
  CHECK((init.template cast<double>() - init_d).norm() <= vae_tolerance<T> * init_d.norm());
}

// ---------------------------------------------------------------------------------------------
// Neyman–Scott ELBO: values, gradients, exact ELBO

TEST_CASE("neyman_scott_elbo: value against a naive computation, gradient against finite differences",
          "[neyman_scott_elbo]") {
  auto rng = latent_test::make_rng(6);
  const Eigen::MatrixXd y = simulate_ns(3, 25, 1.5, 2.0, 0.8, rng);
  const std::vector<Eigen::Index> batch{3, 11, 24, 0, 7, 19};
  const std::size_t s = 4;
  const neyman_scott_elbo free_prior(y);
  const neyman_scott_elbo fixed(y, latent::neyman_scott_elbo_fixed_prior{.mean = 1.0, .variance = 2.0});
  for (const neyman_scott_elbo* obj : {&free_prior, &fixed}) {
    const neyman_scott_elbo::params_type pt = ns_params(25, 0.2, 1.7, -0.3, 2.0, -0.5, 0.3, rng);
    const Eigen::VectorXd p = obj->pack(pt);
    const neyman_scott_elbo::params_type back = obj->unpack(p);
    const std::mt19937_64 frozen = rng;
    Eigen::VectorXd grad;
    const double value = frozen_value(*obj, p, batch, s, frozen, &grad);

    // Naive: the same B x S draws, per group and draw.
    std::mt19937_64 r2 = frozen;
    const Eigen::MatrixXd eps = latent::standard_normal(6, 4, r2);
    const double theta = std::exp(back.log_theta), tau2 = std::exp(back.log_prior_variance);
    double naive = 0.0;
    for (std::size_t j = 0; j < batch.size(); ++j) {
      const Eigen::Index n = batch[j];
      const double sd = std::exp(back.q_log_sds(n));
      for (Eigen::Index r = 0; r < 4; ++r) {
        const double z = back.q_means(n) + sd * eps(static_cast<Eigen::Index>(j), r);
        naive += (latent::normal_log_density(y.col(n).array(), z, theta).sum() +
                  latent::normal_log_density(Eigen::ArrayXd::Constant(1, z), back.mean, tau2)(0)) / 4.0;
      }
      naive += 0.5 * (latent::log_two_pi + 1.0) + back.q_log_sds(n);
    }
    naive *= 25.0 / 6.0;
    INFO("estimates prior: " << obj->estimates_prior());
    REQUIRE(value == Approx(naive).epsilon(1e-12));

    const Eigen::VectorXd fd = central_differences(
        [&](const Eigen::VectorXd& q) { return frozen_value(*obj, q, batch, s, frozen); }, p, 1e-5);
    REQUIRE((grad - fd).norm() <= 1e-6 * grad.norm());
    // Groups outside the batch get exactly zero local gradient.
    const Eigen::Index g = obj->num_global();
    REQUIRE(grad(g + 1) == 0.0);
    REQUIRE(grad(g + 25 + 1) == 0.0);
    REQUIRE(grad(g + 3) != 0.0);
  }
}

TEST_CASE("neyman_scott_elbo: stochastic gradient is unbiased; ELBO maximum is the marginal MLE",
          "[neyman_scott_elbo]") {
  auto rng = latent_test::make_rng(7);
  const Eigen::Index k = 4, n = 30;
  const Eigen::MatrixXd y = simulate_ns(k, n, 1.0, 2.0, 0.5, rng);
  const neyman_scott_elbo obj(y);
  const neyman_scott_elbo::params_type pt = ns_params(n, 0.1, 1.5, -0.5, 2.0, -0.7, 0.2, rng);
  const Eigen::VectorXd p = obj.pack(pt);

  SECTION("unbiased") {
    const Eigen::VectorXd exact = central_differences([&](const Eigen::VectorXd& q) { return obj.elbo(q); }, p, 1e-5);
    const int m = 4000;
    std::vector<Eigen::Index> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), Eigen::Index{0});
    Eigen::MatrixXd grads(p.size(), m);
    Eigen::VectorXd g;
    for (int i = 0; i < m; ++i) {
      std::shuffle(idx.begin(), idx.end(), rng);
      obj.value_and_gradient(p, latent::minibatch(idx.data(), 10), 1, g, rng);
      grads.col(i) = g;
    }
    const mean_se gs = summarize(grads);
    for (Eigen::Index i = 0; i < p.size(); ++i) {
      INFO("coordinate " << i << ": mean " << gs.mean(i) << ", exact " << exact(i) << ", se " << gs.se(i));
      REQUIRE(std::abs(gs.mean(i) - exact(i)) <= 4.5 * gs.se(i));
    }
  }
  SECTION("at the marginal MLE with exact posteriors, the ELBO is the marginal log-likelihood") {
    // Closed-form marginal MLE (tau^2 interior on this sample).
    const Eigen::VectorXd ybar = y.colwise().mean().transpose();
    const double within = (y.rowwise() - ybar.transpose()).squaredNorm();
    const double theta = within / static_cast<double>(n * (k - 1));
    const double mu = ybar.mean();
    const double between = (ybar.array() - mu).square().mean();
    const double tau2 = between - theta / static_cast<double>(k);
    REQUIRE(tau2 > 0.0);
    // Marginal log-likelihood: within part plus ybar_n ~ N(mu, tau2 + theta / K).
    const double kd = static_cast<double>(k), nd = static_cast<double>(n);
    const double v = tau2 + theta / kd;
    const double loglik = -0.5 * nd * (kd - 1.0) * (latent::log_two_pi + std::log(theta)) - 0.5 * within / theta -
                          0.5 * nd * std::log(kd) -
                          0.5 * nd * (latent::log_two_pi + std::log(v)) - 0.5 * (ybar.array() - mu).square().sum() / v;
    const double post_var = 1.0 / (kd / theta + 1.0 / tau2);
    neyman_scott_elbo::params_type opt{std::log(theta), mu, std::log(tau2),
                                       (post_var * (kd * ybar.array() / theta + mu / tau2)).matrix(),
                                       Eigen::VectorXd::Constant(n, 0.5 * std::log(post_var))};
    const Eigen::VectorXd q = obj.pack(opt);
    REQUIRE(obj.elbo(q) == Approx(loglik).epsilon(1e-12));
    // ... and it is a stationary point of the exact ELBO.
    const Eigen::VectorXd g = central_differences([&](const Eigen::VectorXd& r) { return obj.elbo(r); }, q, 1e-5);
    REQUIRE(g.norm() <= 1e-6 * std::abs(loglik));
  }
}

TEST_CASE("neyman_scott_elbo: value-only and sparse-gradient paths return the dense path's numbers",
          "[neyman_scott_elbo]") {
  auto rng = latent_test::make_rng(10);
  const Eigen::Index n = 40;
  const Eigen::MatrixXd y = simulate_ns(3, n, 1.5, 2.0, 0.8, rng);
  const neyman_scott_elbo free_prior(y);
  const neyman_scott_elbo fixed(y, latent::neyman_scott_elbo_fixed_prior{.mean = 1.0, .variance = 2.0});
  for (const neyman_scott_elbo* obj : {&free_prior, &fixed}) {
    INFO("estimates prior: " << obj->estimates_prior());
    const neyman_scott_elbo::params_type pt = ns_params(n, 0.3, 1.8, -0.2, 2.0, -0.5, 0.3, rng);
    const Eigen::VectorXd p = obj->pack(pt);
    const Eigen::Index g = obj->num_global();
    neyman_scott_elbo::sparse_gradient sparse;  // reused across batches of different sizes
    for (const std::vector<Eigen::Index>& batch :
         {std::vector<Eigen::Index>{5, 39, 0, 17, 22, 8}, std::vector<Eigen::Index>{3}, std::vector<Eigen::Index>{31, 2, 11}}) {
      const std::size_t s = 3;
      std::mt19937_64 r1 = rng, r2 = rng, r3 = rng;
      Eigen::VectorXd dense;
      const double v1 = obj->value_and_gradient(p, batch, s, dense, r1);
      const double v2 = obj->value(p, batch, s, r2);
      const double v3 = obj->value_and_sparse_gradient(p, batch, s, sparse, r3);
      // Bit-identical values, and the same engine consumption.
      REQUIRE(v1 == v2);
      REQUIRE(v1 == v3);
      REQUIRE(r1 == r2);
      REQUIRE(r1 == r3);
      REQUIRE(latent::estimate_value(*obj, p, batch, s, rng) == v1);  // the solver's value-only helper
      // The sparse gradient scattered into zeros is the dense gradient, bit for bit.
      const std::size_t b = batch.size();
      REQUIRE(sparse.global.size() == g);
      REQUIRE(sparse.indices.size() == 2 * b);
      REQUIRE(sparse.values.size() == static_cast<Eigen::Index>(2 * b));
      for (std::size_t j = 0; j < b; ++j) {
        REQUIRE(sparse.indices[j] == g + batch[j]);
        REQUIRE(sparse.indices[b + j] == g + n + batch[j]);
      }
      Eigen::VectorXd scattered = Eigen::VectorXd::Zero(obj->num_parameters());
      scattered.head(g) = sparse.global;
      for (std::size_t i = 0; i < sparse.indices.size(); ++i)
        scattered(sparse.indices[i]) = sparse.values(static_cast<Eigen::Index>(i));
      REQUIRE(scattered == dense);
    }
    // initial_params does not use its engine.
    std::mt19937_64 before = rng;
    const Eigen::VectorXd p0 = obj->initial_params(rng);
    REQUIRE(rng == before);
    REQUIRE(p0 == Eigen::VectorXd::Zero(obj->num_parameters()));
  }
}

TEST_CASE("neyman_scott_elbo in float: the double objective's numbers to float tolerance", "[neyman_scott_elbo]") {
  // Float tolerance: the per-draw arithmetic is in float (relative error ~1e-7 per term, a few
  // hundred terms summed per batch), the sums are rounded to double; 1e-5 relative on values,
  // 1e-4 on the gradient's norm (it subtracts nearly equal terms near the optimum).
  auto rng = latent_test::make_rng(11);
  const Eigen::Index n = 30;
  const Eigen::MatrixXd y = simulate_ns(4, n, 1.0, 2.0, 0.5, rng);
  const neyman_scott_elbo obj(y);
  const latent::basic_neyman_scott_elbo<float> objf(y.cast<float>());
  const neyman_scott_elbo::params_type pt = ns_params(n, 0.1, 1.5, -0.5, 2.0, -0.7, 0.2, rng);
  const Eigen::VectorXf pf = obj.pack(pt).cast<float>();
  const Eigen::VectorXd p = pf.cast<double>();  // the same point in both precisions
  REQUIRE(objf.elbo(pf) == Approx(obj.elbo(p)).epsilon(1e-5).margin(0.0));
  const std::vector<Eigen::Index> batch{4, 9, 28, 0, 13};
  std::mt19937_64 r1 = rng, r2 = rng;
  Eigen::VectorXd g;
  Eigen::VectorXf gf;
  const double v = obj.value_and_gradient(p, batch, 4, g, r1);
  const double vf = objf.value_and_gradient(pf, batch, 4, gf, r2);
  REQUIRE(r1 == r2);  // float draws are the double draws, rounded
  REQUIRE(vf == Approx(v).epsilon(1e-5).margin(0.0));
  REQUIRE((gf.cast<double>() - g).norm() <= 1e-4 * g.norm());
}

// ---------------------------------------------------------------------------------------------
// Fits

TEST_CASE("sgd_elbo: the linear VAE reaches the factor-analysis maximum likelihood", "[sgd_elbo][linear_vae]") {
  auto rng = latent_test::make_rng(8);
  // d = 6, k = 2: on this sample the MLE is interior (every uniqueness well above 0), so EM
  // reaches its fixed point and the log-parameterized VAE can reach it too.
  const Eigen::Index d = 6, k = 2, n = 500;
  const Eigen::MatrixXd x = simulate_fa(d, k, n, rng);
  const linear_vae vae(x, k);
  const fa_fit mle = fa_mle(x, k);
  const Eigen::VectorXd p0 = vae.initial_params(rng);
  // Adam with a 1/t learning-rate decay, so the noisy ascent settles (a constant rate leaves
  // the encoder jittering some 10 nats below the optimum on this problem).
  const auto result = latent::sgd_elbo(
      vae, p0, rng,
      {.max_epochs = 400, .batch_size = 50, .adam = {.learning_rate = 0.02, .decay_t0 = 500.0, .decay_kappa = 1.0}});
  REQUIRE(result.status == latent::fit_status::max_iterations);
  REQUIRE(result.trace.size() == 401);
  REQUIRE(result.steps == 400 * 10);
  const double elbo = vae.elbo(result.params), ll = vae.log_likelihood(result.params);
  REQUIRE(mle.iterations > 0);  // EM stopped at its fixed point, not at the cap
  INFO("start ELBO " << vae.elbo(p0) << ", final ELBO " << elbo << ", decoder log-lik " << ll
                     << ", FA MLE " << mle.loglik << " after " << mle.iterations << " EM iterations");
  // Exact inequalities: ELBO <= log p(x; decoder) <= max log-likelihood (EM run to 1e-13).
  REQUIRE(elbo <= ll);
  REQUIRE(ll <= mle.loglik + 1e-9 * std::abs(mle.loglik));
  // The ELBO's maximum over (theta, phi) IS the FA maximum log-likelihood (rotate Lambda so the
  // posterior covariance is diagonal). Tolerance: p / 2 nats with p = d k + d - k (k - 1) / 2 + d
  // free parameters, the expected log-likelihood-ratio (chi^2_p / 2) between the MLE and the
  // truth, i.e. the SGD answer must be statistically indistinguishable from the MLE.
  const double p_free = static_cast<double>(d * k + d - k * (k - 1) / 2 + d);
  REQUIRE(mle.loglik - elbo <= p_free / 2.0);
  // Not vacuous: the start is far below.
  REQUIRE(mle.loglik - vae.elbo(p0) > 20.0 * p_free);
  // The last epoch's estimate tracks the exact ELBO of the final parameters within its noise
  // (an epoch averages 500 one-draw terms; generous 5% of the total scale of the ELBO change).
  REQUIRE(std::abs(result.trace.back() - elbo) <= 0.05 * (elbo - vae.elbo(p0)));
}

TEST_CASE("sgd_elbo: Neyman–Scott local/global fit reaches the marginal MLE of theta",
          "[sgd_elbo][neyman_scott_elbo]") {
  auto rng = latent_test::make_rng(9);
  const Eigen::Index k = 4, n = 200;
  const Eigen::MatrixXd y = simulate_ns(k, n, 1.0, 2.0, 0.5, rng);
  const Eigen::VectorXd ybar = y.colwise().mean().transpose();
  const double theta_hat = (y.rowwise() - ybar.transpose()).squaredNorm() / static_cast<double>(n * (k - 1));
  const double mu_hat = ybar.mean();
  const double tau2_hat = (ybar.array() - mu_hat).square().mean() - theta_hat / static_cast<double>(k);
  REQUIRE(tau2_hat > 0.0);
  const neyman_scott_elbo obj(y);

  // Replicate fits from the same start with independent noise streams: their spread measures
  // the Monte Carlo error of the SGD answer, and their mean must sit on the closed form.
  const int reps = 8;
  std::vector<double> thetas;
  for (int r = 0; r < reps; ++r) {
    auto rr = latent_test::make_rng(100 + static_cast<std::uint64_t>(r));
    const auto res = latent::sgd_elbo(obj, obj.initial_params(rr), rr,
                                      {.max_epochs = 300, .batch_size = 20, .num_samples = 4,
                                       .adam = {.learning_rate = 0.05, .decay_t0 = 500.0, .decay_kappa = 1.0}});
    thetas.push_back(std::exp(res.params(0)));
  }
  const double mean = std::accumulate(thetas.begin(), thetas.end(), 0.0) / reps;
  double var = 0.0;
  for (const double t : thetas) var += (t - mean) * (t - mean);
  const double sd = std::sqrt(var / (reps - 1));
  // Statistical error of theta_hat itself: theta sqrt(2 / (N (K - 1))).
  const double se_stat = theta_hat * std::sqrt(2.0 / static_cast<double>(n * (k - 1)));
  INFO("theta_hat " << theta_hat << ", SGD mean " << mean << ", MC sd " << sd << ", se(theta_hat) " << se_stat);
  REQUIRE(std::abs(mean - theta_hat) <= 5.0 * std::max(sd, 1e-3 * se_stat) / std::sqrt(static_cast<double>(reps)));
  // Meaningful precision: the Monte Carlo error is a small fraction of the statistical error.
  REQUIRE(sd <= 0.2 * se_stat);
  // And far from the inconsistent joint MLE theta_hat (K - 1) / K.
  REQUIRE(std::abs(mean - theta_hat * (k - 1.0) / k) > 10.0 * se_stat / 4.0);
}

// ---------------------------------------------------------------------------------------------
// The solver's bookkeeping

namespace {
// Stops the fit after `stop_at` epochs.
struct stop_after {
  std::size_t stop_at;
  std::vector<double> seen;
  bool on_iteration(const latent::iteration_info& i) {
    seen.push_back(i.objective);
    return i.iteration >= stop_at;
  }
};
// Wraps an objective and returns NaN from the `bad_call`-th evaluation on.
struct nan_after {
  const linear_vae* inner;
  std::size_t bad_call;
  std::size_t calls = 0;
  Eigen::Index num_parameters() const { return inner->num_parameters(); }
  Eigen::Index num_observations() const { return inner->num_observations(); }
  template <class Rng>
  double value_and_gradient(const Eigen::VectorXd& p, latent::minibatch b, std::size_t s,
                            Eigen::VectorXd& g, Rng& rng) {
    const double v = inner->value_and_gradient(p, b, s, g, rng);
    return ++calls >= bad_call ? std::numeric_limits<double>::quiet_NaN() : v;
  }
};
}  // namespace

TEST_CASE("sgd_elbo: reproducible, callbacks, held-out early stopping, numerical issues", "[sgd_elbo]") {
  auto rng = latent_test::make_rng(10);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 130, rng);
  const Eigen::MatrixXd train = x.leftCols(100), test = x.rightCols(30);
  const linear_vae vae(train, 2), held(test, 2);
  const Eigen::VectorXd p0 = vae.initial_params(rng);
  const latent::sgd_elbo_options opts{.max_epochs = 20, .batch_size = 32, .adam = {.learning_rate = 0.02}};

  SECTION("same seed, same result; callbacks see every epoch") {
    auto r1 = latent_test::make_rng(42), r2 = latent_test::make_rng(42);
    latent::record_trace rec;
    const auto a = latent::sgd_elbo(vae, p0, r1, opts, rec);
    const auto b = latent::sgd_elbo(vae, p0, r2, opts);
    REQUIRE(a.trace == b.trace);
    REQUIRE(a.params == b.params);
    REQUIRE(rec.values == a.trace);
    REQUIRE(a.iterations == 20);
    REQUIRE(a.steps == 20 * 4);  // ceil(100 / 32) = 4 steps per epoch, the last of 4 columns
    REQUIRE(a.objective == a.trace.back());
    REQUIRE(a.held_out_trace.empty());
  }
  SECTION("a callback stops the fit") {
    stop_after cb{5, {}};
    const auto r = latent::sgd_elbo(vae, p0, rng, opts, cb);
    REQUIRE(r.status == latent::fit_status::stopped_by_callback);
    REQUIRE(r.trace.size() == 6);
    REQUIRE(cb.seen == r.trace);
  }
  SECTION("held-out ELBO each epoch, patience, restore best") {
    latent::sgd_elbo_options o = opts;
    o.max_epochs = 400;
    o.patience = 3;
    o.min_improvement = 0.5;
    const auto r = latent::sgd_elbo(vae, held, p0, rng, o);
    REQUIRE(r.status == latent::fit_status::converged);
    REQUIRE(r.iterations < 400);
    REQUIRE(r.held_out_trace.size() == r.trace.size());
    // Stopped because the last 3 epochs did not beat the earlier best by more than 0.5.
    const double earlier = *std::max_element(r.held_out_trace.begin(), r.held_out_trace.end() - 3);
    REQUIRE(*std::max_element(r.held_out_trace.end() - 3, r.held_out_trace.end()) <= earlier + 0.5);
    // The returned parameters are those of the best held-out epoch, evaluated exactly.
    REQUIRE(held.elbo(r.params) == r.held_out_trace[r.best_epoch]);
    REQUIRE(r.held_out_trace[r.best_epoch] ==
            *std::max_element(r.held_out_trace.begin(), r.held_out_trace.end()));
    REQUIRE(r.objective == r.trace[r.best_epoch]);
  }
  SECTION("a NaN estimate stops with numerical_issue at the last good parameters") {
    nan_after bad{&vae, 4 + 4 * 3 + 2};  // start pass, 3 good epochs, fails in epoch 4
    const auto r = latent::sgd_elbo(bad, p0, rng, opts);
    REQUIRE(r.status == latent::fit_status::numerical_issue);
    REQUIRE(r.trace.size() == 4);
    REQUIRE(r.params.allFinite());
    REQUIRE(r.objective == r.trace.back());
    REQUIRE(r.message.find("epoch 4") != std::string::npos);
  }
  SECTION("SGD optimizer runs and improves the ELBO") {
    const latent::sgd optimizer({.step_size = 2e-4, .t0 = 100.0, .kappa = 1.0});
    const auto r = latent::sgd_elbo(vae, p0, rng, optimizer, opts);
    REQUIRE(r.status == latent::fit_status::max_iterations);
    REQUIRE(vae.elbo(r.params) > vae.elbo(p0) + 50.0);
  }
}

TEST_CASE("sgd_elbo and objectives: bad input is invalid_argument naming the argument", "[bad-input]") {
  using Catch::Matchers::Contains;
  auto rng = latent_test::make_rng(12);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 50, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p0 = vae.initial_params(rng);
  const auto fit = [&](const latent::sgd_elbo_options& o) { return latent::sgd_elbo(vae, p0, rng, o); };
  REQUIRE_THROWS_AS(fit({.batch_size = 0}), latent::invalid_argument);
  REQUIRE_THROWS_WITH(fit({.batch_size = 0}), Contains("batch_size"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 51}), Contains("batch_size"));
  REQUIRE_THROWS_WITH(fit({.max_epochs = 0, .batch_size = 10}), Contains("max_epochs"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .num_samples = 0}), Contains("num_samples"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .adam = {.learning_rate = 0.0}}), Contains("learning_rate"));
  REQUIRE_THROWS_WITH(latent::sgd_elbo(vae, p0, rng, latent::sgd({.step_size = -1.0}), {.batch_size = 10}),
                      Contains("step_size"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .min_improvement = -1.0}), Contains("min_improvement"));
  REQUIRE_THROWS_WITH(latent::sgd_elbo(vae, Eigen::VectorXd::Zero(3), rng, {.batch_size = 10}), Contains("params0"));
  Eigen::VectorXd nan_p = p0;
  nan_p(0) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(latent::sgd_elbo(vae, nan_p, rng, {.batch_size = 10}), Contains("params0"));
  const linear_vae other(x, 1);
  REQUIRE_THROWS_WITH(latent::sgd_elbo(vae, other, p0, rng, {.batch_size = 10}), Contains("held_out"));

  REQUIRE_THROWS_WITH(linear_vae(x, 4), Contains("'k'"));
  REQUIRE_THROWS_WITH(linear_vae(x, 0), Contains("'k'"));
  Eigen::MatrixXd bad = x;
  bad(1, 3) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(linear_vae(bad, 2), Contains("'x'"));
  Eigen::VectorXd g;
  const std::vector<Eigen::Index> out_of_range{0, 50};
  REQUIRE_THROWS_WITH(vae.value_and_gradient(p0, out_of_range, 1, g, rng), Contains("batch"));
  REQUIRE_THROWS_WITH(vae.value_and_gradient(p0, {}, 1, g, rng), Contains("batch"));
  const std::vector<Eigen::Index> ok{0, 1};
  REQUIRE_THROWS_WITH(vae.value_and_gradient(p0, ok, 0, g, rng), Contains("num_samples"));
  REQUIRE_THROWS_WITH(vae.value_and_gradient(Eigen::VectorXd::Zero(2), ok, 1, g, rng), Contains("params"));

  REQUIRE_THROWS_WITH(neyman_scott_elbo(Eigen::MatrixXd::Ones(1, 10)), Contains("'y'"));
  REQUIRE_THROWS_WITH(neyman_scott_elbo(Eigen::MatrixXd::Ones(3, 10), {.mean = 0.0, .variance = 0.0}),
                      Contains("prior.variance"));
}

// ---------------------------------------------------------------------------------------------
// The second edition's solver contract: the caller's optimizer, per-step hooks, the value-only
// path, parameter groups and sparse steps.
namespace {
// A user's optimizer: steps of a fixed length along the sign of the gradient.
struct sign_ascent {
  double length = 1e-3;
  std::size_t steps = 0, resets = 0;
  void reset(Eigen::Index) {
    ++resets;
    steps = 0;
  }
  void step(Eigen::Ref<Eigen::VectorXd> p, const Eigen::Ref<const Eigen::VectorXd>& g) {
    ++steps;
    p += length * g.array().sign().matrix();
  }
};
static_assert(latent::Optimizer<sign_ascent>);
static_assert(!latent::SparseOptimizer<sign_ascent>);

// Counts how the solver asks a wrapped objective: value-only or with a gradient. Its `value`
// is the wrapped objective's own estimate with the gradient thrown away, so both paths
// consume the engine identically.
struct counting_objective {
  const linear_vae* inner;
  std::size_t value_calls = 0, gradient_calls = 0;
  Eigen::Index num_parameters() const { return inner->num_parameters(); }
  Eigen::Index num_observations() const { return inner->num_observations(); }
  template <class Rng>
  double value_and_gradient(const Eigen::VectorXd& p, latent::minibatch b, std::size_t s, Eigen::VectorXd& g, Rng& rng) {
    ++gradient_calls;
    return inner->value_and_gradient(p, b, s, g, rng);
  }
  template <class Rng>
  double value(const Eigen::VectorXd& p, latent::minibatch b, std::size_t s, Rng& rng) {
    ++value_calls;
    Eigen::VectorXd g;
    return inner->value_and_gradient(p, b, s, g, rng);
  }
};
static_assert(latent::ElboValueObjective<counting_objective>);

// Zeroes every gradient it sees (so Adam takes zero steps) and stops after `stop_at` steps.
struct zero_gradient_hook {
  std::size_t stop_at = 1000000;
  std::vector<std::size_t> steps_seen;
  Eigen::Index params_size = 0;
  bool on_step(latent::step_info& s) {
    steps_seen.push_back(s.step);
    params_size = s.params.size();
    s.gradient.setZero();
    return steps_seen.size() >= stop_at;
  }
};
static_assert(latent::Callback<zero_gradient_hook>);
}  // namespace

TEST_CASE("sgd_elbo: the caller's optimizer, per-step hooks and the value-only path", "[sgd_elbo]") {
  auto rng = latent_test::make_rng(21);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 100, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p0 = vae.initial_params(rng);
  const latent::sgd_elbo_options opts{.max_epochs = 5, .batch_size = 25};

  SECTION("a user's optimizer type is copied, reset once and used for every step") {
    const sign_ascent mine{};
    const auto r = latent::sgd_elbo(vae, p0, rng, mine, opts);
    CHECK(mine.steps == 0);  // the caller's object is not modified
    CHECK(r.steps == 5 * 4);
    // Every step moved every coordinate by exactly +-the step length: the net moves are whole
    // multiples of it with the parity of the step count (20: even).
    const Eigen::ArrayXd moves = (r.params - p0).array() / 1e-3;
    CHECK((moves - moves.round()).abs().maxCoeff() < 1e-6);
    CHECK(((moves / 2.0).round() * 2.0 - moves).abs().maxCoeff() < 1e-6);
    CHECK(moves.abs().maxCoeff() > 0.5);
    CHECK(moves.abs().maxCoeff() < 20.5);
  }
  SECTION("on_step sees the parameters and the gradient, may change them, and may stop") {
    zero_gradient_hook hook;
    const auto r = latent::sgd_elbo(vae, p0, rng, opts, hook);
    CHECK(r.params == p0);  // Adam with zero gradients takes zero steps
    CHECK(hook.params_size == vae.num_parameters());
    REQUIRE(hook.steps_seen.size() == 20);
    for (std::size_t i = 0; i < hook.steps_seen.size(); ++i) CHECK(hook.steps_seen[i] == i);
    zero_gradient_hook stopper;
    stopper.stop_at = 6;
    const auto s = latent::sgd_elbo(vae, p0, rng, opts, stopper);
    CHECK(s.status == latent::fit_status::stopped_by_callback);
    CHECK(s.steps == 6);
    CHECK(s.iterations == 2);  // stopped during the second epoch
  }
  SECTION("epoch 0 and the held-out pass compute values only") {
    counting_objective obj{&vae}, held{&vae};
    const auto r = latent::sgd_elbo(obj, held, p0, rng, opts);
    CHECK(obj.value_calls == 4);                 // the starting point's pass
    CHECK(obj.gradient_calls == r.steps);        // one gradient per step, none wasted
    CHECK(held.gradient_calls == 0);             // held-out estimates are values only
    CHECK(held.value_calls == 6 * 4);            // 6 passes over 100 held-out columns in batches of 25
    // The same seed gives the same fit whichever path is used for values.
    auto r1 = latent_test::make_rng(5), r2 = latent_test::make_rng(5);
    counting_objective again{&vae};
    CHECK(latent::sgd_elbo(again, p0, r1, opts).params == latent::sgd_elbo(vae, p0, r2, opts).params);
  }
  SECTION("a step that leaves non-finite parameters ends the fit at the last good ones") {
    struct blow_up {  // an optimizer whose third step overflows
      int t = 0;
      void reset(Eigen::Index) { t = 0; }
      void step(Eigen::Ref<Eigen::VectorXd> p, const Eigen::Ref<const Eigen::VectorXd>& g) {
        p += 1e-3 * g;
        if (++t == 3) p(0) = std::numeric_limits<double>::infinity();
      }
    };
    const auto r = latent::sgd_elbo(vae, p0, rng, blow_up{}, opts);
    CHECK(r.status == latent::fit_status::numerical_issue);
    CHECK(r.params.allFinite());
    CHECK(r.params == p0);  // no epoch completed
    CHECK(r.steps == 3);
    CHECK_THAT(r.message, Catch::Contains("epoch 1, step 3") && Catch::Contains("non-finite parameters"));
  }
}

TEST_CASE("optimizers: parameter groups, float, and sparse steps equal dense ones", "[optim]") {
  const Eigen::Vector4d g(1.0, -2.0, 0.5, 3.0);
  SECTION("groups scale the step of their coordinates only") {
    latent::adam plain({.learning_rate = 0.1}, 4);
    latent::adam grouped({.learning_rate = 0.1, .groups = {{.begin = 2, .size = 2, .learning_rate = 0.01}}}, 4);
    Eigen::VectorXd a = Eigen::VectorXd::Zero(4), b = a;
    for (int t = 0; t < 3; ++t) {
      plain.step(a, g);
      grouped.step(b, g);
    }
    CHECK(b.head(2) == a.head(2));
    CHECK_THAT(Eigen::MatrixXd(b.tail(2)), latent_test::IsApprox(0.1 * a.tail(2), 1e-15));
    using Catch::Matchers::Contains;
    CHECK_THROWS_WITH(latent::adam({.groups = {{.begin = 3, .size = 2}}}, 4), Contains("groups"));
    CHECK_THROWS_WITH(latent::adam({.groups = {{.begin = 0, .size = 2}, {.begin = 1, .size = 1}}}, 4),
                      Contains("overlaps"));
    CHECK_THROWS_WITH(latent::sgd({.groups = {{.begin = 0, .size = 1, .learning_rate = 0.0}}}), Contains("groups"));
  }
  SECTION("sparse steps touching every coordinate are the dense steps") {
    const std::vector<Eigen::Index> all{0, 1, 2, 3};
    latent::adam dense({.learning_rate = 0.1}, 4), sparse({.learning_rate = 0.1}, 4);
    latent::sgd sdense({.step_size = 0.1}, 4), ssparse({.step_size = 0.1}, 4);
    Eigen::VectorXd a = Eigen::VectorXd::Zero(4), b = a, c = a, d = a;
    for (int t = 0; t < 4; ++t) {
      const Eigen::Vector4d gt = g * (1.0 + t);
      dense.step(a, gt);
      sparse.step_sparse(b, all, gt);
      sdense.step(c, gt);
      ssparse.step_sparse(d, all, gt);
    }
    CHECK(a == b);
    CHECK(c == d);
    // Untouched coordinates do not move, and their moments stay zero.
    const std::vector<Eigen::Index> one{2};
    latent::adam lazy({.learning_rate = 0.1}, 4);
    Eigen::VectorXd e = Eigen::VectorXd::Zero(4);
    lazy.step_sparse(e, one, Eigen::VectorXd::Constant(1, -1.0));
    CHECK(e == Eigen::Vector4d(0.0, 0.0, -0.1 / (1.0 + 1e-8), 0.0));
    CHECK(lazy.state().m(0) == 0.0);
    const std::vector<Eigen::Index> bad{4};
    CHECK_THROWS_WITH(lazy.step_sparse(e, bad, Eigen::VectorXd::Zero(1)), Catch::Contains("indices"));
  }
  SECTION("float Adam takes the double steps to float precision") {
    latent::adam d({.learning_rate = 0.05}, 4);
    latent::basic_adam<float> f({.learning_rate = 0.05}, 4);
    Eigen::VectorXd xd = Eigen::VectorXd::Zero(4);
    Eigen::VectorXf xf = Eigen::VectorXf::Zero(4);
    for (int t = 0; t < 50; ++t) {
      const Eigen::Vector4d gt = g - 0.5 * xd;
      d.step(xd, gt);
      f.step(xf, (g.cast<float>() - 0.5f * xf).eval());
    }
    CHECK_THAT(Eigen::MatrixXd(xf.cast<double>()), latent_test::IsApprox(xd, 1e-5));
  }
}

TEST_CASE("sgd_elbo: sparse steps for local variational parameters", "[sgd_elbo][neyman_scott_elbo]") {
  static_assert(latent::ElboSparseObjective<neyman_scott_elbo>);
  static_assert(!latent::ElboSparseObjective<linear_vae>);
  auto rng = latent_test::make_rng(31);
  const Eigen::MatrixXd y = simulate_ns(4, 300, 1.0, 2.0, 0.5, rng);
  const neyman_scott_elbo obj(y);
  const Eigen::VectorXd p0 = obj.initial_params(rng);
  latent::sgd_elbo_options o{.max_epochs = 5, .batch_size = 30, .num_samples = 2};
  SECTION("with SGD the sparse path is the dense path, bit for bit") {
    const latent::sgd optimizer({.step_size = 1e-4, .t0 = 100.0});
    auto r1 = latent_test::make_rng(3), r2 = latent_test::make_rng(3);
    const auto sparse = latent::sgd_elbo(obj, p0, r1, optimizer, o);
    o.sparse_updates = false;
    const auto dense = latent::sgd_elbo(obj, p0, r2, optimizer, o);
    CHECK(sparse.trace == dense.trace);
    CHECK(sparse.params == dense.params);
  }
  SECTION("a step hook sees the sparse gradient: the globals and the batch's locals") {
    struct sparse_probe {
      std::size_t steps = 0, dense_steps = 0;
      bool ok = true;
      void on_step(latent::step_info& s) {
        ++steps;
        if (s.indices.empty()) ++dense_steps;
        ok = ok && s.gradient.size() == static_cast<Eigen::Index>(s.indices.size()) &&
             s.indices.size() == std::size_t(3 + 2 * s.batch_size);
      }
    } probe;
    const auto r = latent::sgd_elbo(obj, p0, rng, o, probe);
    CHECK(probe.steps == r.steps);
    CHECK(probe.dense_steps == 0);
    CHECK(probe.ok);
  }
}

TEST_CASE("sgd_elbo: counts from negative ints are invalid_argument, not a full batch or a hang", "[sgd_elbo][bad-input]") {
  using Catch::Matchers::Contains;
  auto rng = latent_test::make_rng(31);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 50, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p0 = vae.initial_params(rng);
  const auto minus_one = static_cast<std::size_t>(-1);
  const auto fit = [&](const latent::sgd_elbo_options& o) { return latent::sgd_elbo(vae, p0, rng, o); };
  // batch_size = -1 used to pass as a signed -1 <= N and run full batches.
  REQUIRE_THROWS_WITH(fit({.batch_size = minus_one}), Contains("batch_size") && Contains("negative"));
  REQUIRE_THROWS_WITH(fit({.max_epochs = minus_one, .batch_size = 10}), Contains("max_epochs"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .num_samples = minus_one}), Contains("num_samples"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .num_samples = latent::max_sample_count + 1}), Contains("num_samples"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .held_out_samples = minus_one}), Contains("held_out_samples"));
  REQUIRE_THROWS_WITH(fit({.batch_size = 10, .patience = minus_one}), Contains("patience"));
  REQUIRE(fit({.max_epochs = 1, .batch_size = 50, .patience = 0}).steps == 1);  // N itself is a valid batch
}

TEST_CASE("sgd_elbo: a huge step ends in numerical_issue with the last finite parameters", "[sgd_elbo]") {
  auto rng = latent_test::make_rng(32);
  const Eigen::MatrixXd x = simulate_fa(4, 2, 100, rng);
  const linear_vae vae(x, 2);
  const Eigen::VectorXd p0 = vae.initial_params(rng);
  const latent::sgd_elbo_options opts{.max_epochs = 50, .batch_size = 25};
  const auto check = [&](const latent::sgd_elbo_result& r) {
    CHECK(r.status == latent::fit_status::numerical_issue);
    CHECK(r.params.allFinite());
    CHECK(!r.message.empty());
    // The parameters are those of the last epoch whose estimate was finite, and its entry.
    REQUIRE(!r.trace.empty());
    CHECK(std::isfinite(r.objective));
    CHECK(r.objective == r.trace.back());
  };
  SECTION("SGD with step 1e300") {
    const auto r = latent::sgd_elbo(vae, p0, rng, latent::sgd({.step_size = 1e300}), opts);
    check(r);
    CHECK(r.iterations < 50);
  }
  SECTION("Adam with learning rate 1e300") {
    const auto r = latent::sgd_elbo(vae, p0, rng, latent::adam({.learning_rate = 1e300}), opts);
    check(r);
    CHECK(r.iterations < 50);
  }
  SECTION("in float, with a step that overflows float but not double") {
    const Eigen::MatrixXf xf = x.cast<float>();
    const latent::basic_linear_vae<float> vf(xf, 2);
    const Eigen::VectorXf q0 = p0.cast<float>();
    const auto r = latent::sgd_elbo(vf, q0, rng, latent::basic_sgd<float>({.step_size = 1e36}), opts);
    CHECK(r.status == latent::fit_status::numerical_issue);
    CHECK(r.params.allFinite());
    CHECK(std::isfinite(r.objective));
  }
}
