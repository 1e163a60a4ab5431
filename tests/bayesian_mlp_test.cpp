// Tests of the Bayesian MLP (latent/models/bayesian_mlp): hand-written gradients against central
// finite differences with frozen noise, the minibatch scaling against an independent computation,
// the closed-form mean-field optimum of Bayesian linear regression reached by the fit, the two
// gradient estimators' agreement in expectation, predictive-interval coverage, prediction on new
// data, and input validation.
#include <latent/core/random.hpp>
#include <latent/models/bayesian_mlp.hpp>
#include <latent/models/bayesian_mlp/likelihood.hpp>
#include <latent/models/bayesian_mlp/prediction.hpp>
#include <latent/models/bayesian_mlp/prior.hpp>
#include <latent/optim/sgd.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <cmath>
#include <functional>
#include <numbers>
#include <numeric>
#include <random>
#include <vector>

namespace {

using latent::bayesian_mlp;
using latent::bnn_likelihood;
using latent::bnn_options;
using latent_test::IsApprox;
using latent_test::make_rng;
using latent_test::numeric_gradient;


std::vector<Eigen::Index> all_columns(Eigen::Index n) {
  std::vector<Eigen::Index> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), Eigen::Index{0});
  return v;
}

// Inputs d x n ~ N(0, 1) (shifted and scaled so standardization does something) and targets
// for the likelihood: m x n regression targets, or labels 0..k-1.
struct data_set {
  Eigen::MatrixXd x, y;
};
data_set make_data(Eigen::Index d, Eigen::Index n, bnn_likelihood lik, Eigen::Index m, std::uint64_t seed) {
  auto rng = make_rng(seed);
  data_set s;
  s.x = (3.0 * latent::standard_normal(d, n, rng)).array() + 5.0;
  if (lik == bnn_likelihood::categorical) {
    s.y.resize(1, n);
    for (Eigen::Index j = 0; j < n; ++j) s.y(0, j) = static_cast<double>((j * 7 + (s.x(0, j) > 5.0 ? 1 : 0)) % m);
  } else {
    s.y = 10.0 * (0.3 * s.x.topRows(1).replicate(m, 1).array().sin()).matrix() + latent::standard_normal(m, n, rng);
  }
  return s;
}

// A point away from the starting point: means perturbed, scales spread over (0.05, 0.5).
Eigen::VectorXd perturbed_params(const bayesian_mlp& model, std::uint64_t seed) {
  auto rng = make_rng(seed);
  Eigen::VectorXd p = model.initial_params(rng);
  const Eigen::Index w = model.num_weights();
  p.head(w) += 0.3 * latent::standard_normal(w, 1, rng);
  std::uniform_real_distribution<double> u(std::log(std::expm1(0.05)), std::log(std::expm1(0.5)));
  for (Eigen::Index i = 0; i < w; ++i) p(w + i) = u(rng);
  for (Eigen::Index i = 2 * w; i < p.size(); ++i) p(i) = -0.5 + 0.2 * static_cast<double>(i - 2 * w);
  return p;
}

bnn_options small_options(bnn_likelihood lik, bool local, bool mixture) {
  bnn_options o{.hidden = {4, 3}, .activation = latent::nn::activation::tanh, .likelihood = lik, .num_classes = 0};
  o.local_reparameterization = local;
  if (mixture) o.prior = {.scale = 1.5, .mixture_weight = 0.3, .second_scale = 0.2};
  else o.prior.scale = 0.7;
  return o;
}

}  // namespace

TEST_CASE("bayesian_mlp: gradients match central finite differences with frozen noise", "[bayesian_mlp]") {
  for (const bnn_likelihood lik :
       {bnn_likelihood::gaussian, bnn_likelihood::heteroscedastic_gaussian, bnn_likelihood::categorical}) {
    for (const bool local : {false, true}) {
      for (const bool mixture : {false, true}) {
        INFO("likelihood " << static_cast<int>(lik) << ", local " << local << ", mixture prior " << mixture);
        const data_set s = make_data(3, 150, lik, lik == bnn_likelihood::categorical ? 3 : 2, 11);
        bayesian_mlp model(s.x, s.y, small_options(lik, local, mixture));
        const Eigen::VectorXd p = perturbed_params(model, 12);
        // 70 columns: two chunks of the training path (64 + 6).
        std::vector<Eigen::Index> batch(70);
        for (std::size_t j = 0; j < batch.size(); ++j) batch[j] = static_cast<Eigen::Index>((j * 37) % 150);
        const auto rng0 = make_rng(13);
        const std::function<double(const Eigen::VectorXd&)> f = [&](const Eigen::VectorXd& q) {
          auto r = rng0;
          return model.value(q, batch, 2, r);
        };
        Eigen::VectorXd grad;
        auto r = rng0;
        const double v = model.value_and_gradient(p, batch, 2, grad, r);
        CHECK(v == f(p));
        CHECK_THAT(grad, IsApprox(numeric_gradient(f, p), 1e-6, 1e-6));
      }
    }
  }
}

TEST_CASE("bayesian_mlp: the estimate is N/|B| times the batch's log-likelihood at the draw, minus the KL",
          "[bayesian_mlp]") {
  // Independent computation of the weight-draw path: the same draw eps from a copy of the engine,
  // the network's forward pass at w = mu + sigma eps on the standardized data, the Gaussian
  // log-likelihood and the analytic KL written out here.
  const data_set s = make_data(2, 40, bnn_likelihood::gaussian, 1, 21);
  bnn_options o{.hidden = {5}, .activation = latent::nn::activation::tanh};
  o.prior.scale = 0.8;
  bayesian_mlp model(s.x, s.y, o);
  const Eigen::VectorXd p = perturbed_params(model, 22);
  const std::vector<Eigen::Index> batch{3, 17, 5, 39, 0, 22};
  auto rng = make_rng(23);
  auto copy = rng;
  const double v = model.value(p, batch, 1, rng);

  const Eigen::Index w = model.num_weights();
  Eigen::VectorXd eps(w);
  latent::fill_standard_normal(eps, copy);
  const Eigen::ArrayXd mu = p.head(w), sigma = p.segment(w, w).array().exp().log1p();
  const Eigen::VectorXd weights = (mu + sigma * eps.array()).matrix();
  const Eigen::MatrixXd xs = ((s.x.array().colwise() - model.input_shift()).colwise() / model.input_scale()).matrix();
  const Eigen::MatrixXd ys = ((s.y.array().colwise() - model.target_shift()).colwise() / model.target_scale()).matrix();
  latent::nn::basic_mlp<double>::workspace ws;
  const Eigen::MatrixXd out = model.network().forward(weights, xs(Eigen::all, batch), ws);
  const double log_var = p(2 * w);
  double ll = 0.0;
  for (std::size_t j = 0; j < batch.size(); ++j) {
    const double r = ys(0, batch[j]) - out(0, static_cast<Eigen::Index>(j));
    ll += -0.5 * (std::log(2 * M_PI) + log_var + r * r * std::exp(-log_var));
  }
  const double s2 = 0.64;
  const double kl = (std::log(std::sqrt(s2)) - sigma.log() + (sigma.square() + mu.square()) / (2 * s2) - 0.5).sum();
  CHECK(v == Approx(40.0 / 6.0 * ll - kl).epsilon(1e-12));
}

namespace {

// Bayesian linear regression with known noise: y_n = b + w' x_n + e_n, e ~ N(0, noise), prior
// N(0, s^2) on (w, b). The exact posterior is Gaussian with precision L = Phi Phi' / noise + I / s^2
// (Phi = [x; 1]); the mean-field optimum has means L^-1 Phi y' / noise and variances 1 / L_ii.
// The expected log-likelihood under q is analytic, so is the ELBO.
struct linear_problem {
  Eigen::MatrixXd x, y, phi;
  double noise = 0.25, prior_scale = 1.0;
  Eigen::MatrixXd precision;
  Eigen::VectorXd mean, variance;

  explicit linear_problem(std::uint64_t seed) {
    auto rng = make_rng(seed);
    const Eigen::Index d = 2, n = 40;
    x = latent::standard_normal(d, n, rng);
    Eigen::VectorXd truth(d);
    truth << 0.8, -0.5;
    y = (truth.transpose() * x).array() + 0.3 + std::sqrt(noise) * latent::standard_normal(1, n, rng).array();
    phi.resize(d + 1, n);
    phi << x, Eigen::RowVectorXd::Ones(n);
    precision = phi * phi.transpose() / noise + Eigen::MatrixXd::Identity(d + 1, d + 1) / (prior_scale * prior_scale);
    mean = precision.llt().solve(phi * y.transpose() / noise);
    variance = precision.diagonal().cwiseInverse();
  }
  bnn_options options() const {
    bnn_options o{.hidden = {}, .likelihood = bnn_likelihood::gaussian};
    o.prior.scale = prior_scale;
    o.learn_noise = false;
    o.noise_variance = noise;
    o.standardize = false;
    return o;
  }
  // The exact ELBO at (mu, rho), layout [w_1 .. w_d, b].
  double elbo(const Eigen::VectorXd& p) const {
    const Eigen::Index k = phi.rows();
    const Eigen::ArrayXd mu = p.head(k), sigma = p.tail(k).array().exp().log1p();
    const Eigen::ArrayXd r = (y - mu.matrix().transpose() * phi).transpose().array();
    const Eigen::ArrayXd spread = (phi.array().square().colwise() * sigma.square()).colwise().sum().transpose();
    const double ell = (-0.5 * (std::log(2 * M_PI * noise)) - (r.square() + spread) / (2 * noise)).sum();
    const double s2 = prior_scale * prior_scale;
    const double kl = (0.5 * std::log(s2) - sigma.log() + (sigma.square() + mu.square()) / (2 * s2) - 0.5).sum();
    return ell - kl;
  }
  Eigen::VectorXd optimum() const {
    Eigen::VectorXd p(2 * phi.rows());
    p << mean, variance.array().sqrt().expm1().log().matrix();
    return p;
  }
};

}  // namespace

TEST_CASE("bayesian_mlp: Bayesian linear regression, the ELBO's gradient is unbiased and vanishes at the closed form",
          "[bayesian_mlp]") {
  const linear_problem lp(31);
  bayesian_mlp model(lp.x, lp.y, lp.options());
  REQUIRE(model.num_parameters() == 6);
  const Eigen::VectorXd star = lp.optimum();
  const std::function<double(const Eigen::VectorXd&)> exact = [&](const Eigen::VectorXd& q) { return lp.elbo(q); };
  // The closed form is the exact ELBO's stationary point (checks the formulas above).
  CHECK(numeric_gradient(exact, star).norm() < 1e-5);
  // The estimator's mean gradient equals the exact gradient (within 5 standard errors) at the
  // optimum and at a point away from it, where the exact gradient is large.
  const std::vector<Eigen::Index> all = all_columns(40);
  auto rng = make_rng(32);
  for (const double shift : {0.0, 0.2}) {
    const Eigen::VectorXd q = star.array() + shift;
    const int m = 4000;
    Eigen::MatrixXd g(6, m);
    Eigen::VectorXd gi;
    for (int i = 0; i < m; ++i) {
      model.value_and_gradient(q, all, 1, gi, rng);
      g.col(i) = gi;
    }
    const Eigen::VectorXd mean = g.rowwise().mean();
    const Eigen::VectorXd se = ((g.colwise() - mean).rowwise().squaredNorm() / (m - 1.0) / m).cwiseSqrt();
    const Eigen::VectorXd expected = numeric_gradient(exact, q);
    INFO("shift " << shift << "\nmean gradient " << mean.transpose() << "\nexact " << expected.transpose()
                  << "\nse " << se.transpose());
    CHECK(((mean - expected).cwiseAbs().array() <= 5.0 * se.array() + 1e-6).all());
    // Away from the optimum every coordinate of the exact gradient is many standard errors from 0,
    // so the check above distinguishes the two points.
    if (shift > 0) CHECK((expected.cwiseAbs().array() > 8.0 * se.array()).all());
  }
}

TEST_CASE("bayesian_mlp: sgd_elbo reaches the closed-form mean-field optimum of Bayesian linear regression",
          "[bayesian_mlp][sgd_elbo]") {
  // Constant-step SGD, full batch, S draws per step, iterates averaged over the last T steps
  // (Polyak-Ruppert). Near the optimum the ELBO is quadratic with Hessian H and the gradient
  // estimate is g(theta) + xi, Cov(xi) = Sigma; summing theta_{t+1} = theta_t + a (H (theta_t -
  // theta*) + xi_t) over the window gives exactly
  //   mean(theta) - theta* = H^-1 [ (theta_end - theta_begin) / (a T) - mean(xi) ],
  // whose noise part has standard error sqrt(diag(H^-1 Sigma H^-1) / T). The tolerance is 5 of
  // those plus the (computed) drift term; H comes from finite differences of the exact ELBO and
  // Sigma from gradient draws at the optimum.
  const linear_problem lp(41);
  bayesian_mlp model(lp.x, lp.y, lp.options());
  const Eigen::VectorXd star = lp.optimum();
  const std::size_t draws = 4;
  const std::vector<Eigen::Index> all = all_columns(40);
  auto rng = make_rng(42);

  Eigen::MatrixXd h(6, 6);
  const std::function<double(const Eigen::VectorXd&)> exact = [&](const Eigen::VectorXd& q) { return lp.elbo(q); };
  for (Eigen::Index i = 0; i < 6; ++i) {
    Eigen::VectorXd up = star, down = star;
    up(i) += 1e-4;
    down(i) -= 1e-4;
    h.col(i) = (numeric_gradient(exact, up) - numeric_gradient(exact, down)) / 2e-4;
  }
  h = 0.5 * (h + h.transpose()).eval();
  const Eigen::VectorXd curvature = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(-h).eigenvalues();
  REQUIRE(curvature.minCoeff() > 0.0);
  const int m = 2000;
  Eigen::MatrixXd g(6, m);
  Eigen::VectorXd gi;
  for (int i = 0; i < m; ++i) {
    model.value_and_gradient(star, all, draws, gi, rng);
    g.col(i) = gi;
  }
  const Eigen::MatrixXd centred = g.colwise() - g.rowwise().mean();
  const Eigen::MatrixXd sigma = centred * centred.transpose() / (m - 1.0);
  const Eigen::MatrixXd hinv = h.inverse();

  const double a = 0.5 / curvature.maxCoeff();
  const std::size_t burn_in = static_cast<std::size_t>(10.0 / (a * curvature.minCoeff()));
  const std::size_t window = 20000;
  struct averager {
    std::size_t from;
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(6), first, last;
    std::size_t count = 0;
    void on_step(latent::basic_step_info<double>& i) {
      if (i.step < from) return;
      if (count == 0) first = i.params;
      last = i.params;
      sum += i.params;
      ++count;
    }
  } avg{burn_in, Eigen::VectorXd::Zero(6), Eigen::VectorXd(), Eigen::VectorXd(), 0};
  Eigen::VectorXd start = star;
  start.head(3).setZero();
  start.tail(3).setConstant(std::log(std::expm1(0.3)));
  const auto fit = latent::sgd_elbo(model, start, rng, latent::sgd({.step_size = a, .t0 = 1e15}),
                                    {.max_epochs = burn_in + window, .batch_size = 40, .num_samples = draws}, avg);
  REQUIRE(fit.status == latent::fit_status::max_iterations);
  REQUIRE(avg.count == window);
  const Eigen::VectorXd mean = avg.sum / static_cast<double>(window);
  const Eigen::VectorXd se = ((hinv * sigma * hinv).diagonal() / static_cast<double>(window)).cwiseSqrt();
  const Eigen::VectorXd drift = (hinv * (avg.last - avg.first) / (a * static_cast<double>(window))).cwiseAbs();
  const Eigen::VectorXd tolerance = 5.0 * se + drift;
  INFO("averaged iterate " << mean.transpose() << "\nclosed form " << star.transpose() << "\ntolerance "
                           << tolerance.transpose() << "\nposterior sd " << lp.variance.cwiseSqrt().transpose());
  CHECK(((mean - star).cwiseAbs().array() <= tolerance.array()).all());
  // The tolerance is a small fraction of what is being estimated: the posterior sd for the
  // means, and rho's own posterior-sd scale for the scales.
  CHECK((tolerance.head(3).array() < 0.05 * lp.variance.array().sqrt()).all());
  CHECK((tolerance.tail(3).array() < 0.05).all());
  // The fitted variances, sigma^2 = softplus(rho)^2, against 1 / diag(precision).
  const Eigen::ArrayXd fitted_var = model.weight_scale(mean).array().square();
  CHECK_THAT(Eigen::MatrixXd(fitted_var.matrix()), IsApprox(lp.variance, 0.1));
}

TEST_CASE("bayesian_mlp: weight draws and local reparameterization estimate the same gradient",
          "[bayesian_mlp]") {
  const data_set s = make_data(2, 64, bnn_likelihood::gaussian, 1, 51);
  bnn_options o{.hidden = {6}, .activation = latent::nn::activation::tanh};
  bayesian_mlp draws_model(s.x, s.y, o);
  o.local_reparameterization = true;
  bayesian_mlp local_model(s.x, s.y, o);
  const Eigen::VectorXd p = perturbed_params(draws_model, 52);
  const std::vector<Eigen::Index> all = all_columns(64);
  auto rng = make_rng(53);
  const int m = 3000;
  const Eigen::Index n = p.size();
  Eigen::MatrixXd ga(n, m), gb(n, m);
  Eigen::VectorXd gi;
  for (int i = 0; i < m; ++i) {
    draws_model.value_and_gradient(p, all, 1, gi, rng);
    ga.col(i) = gi;
    local_model.value_and_gradient(p, all, 1, gi, rng);
    gb.col(i) = gi;
  }
  const Eigen::VectorXd ma = ga.rowwise().mean(), mb = gb.rowwise().mean();
  const Eigen::ArrayXd va = (ga.colwise() - ma).rowwise().squaredNorm().array() / (m - 1.0);
  const Eigen::ArrayXd vb = (gb.colwise() - mb).rowwise().squaredNorm().array() / (m - 1.0);
  const Eigen::ArrayXd se = ((va + vb) / m).sqrt();
  // Same expectation: every coordinate within 5 standard errors of the difference (a
  // Bonferroni-safe bound for ~30 coordinates).
  CHECK(((ma - mb).array().abs() <= 5.0 * se).all());
  // Lower variance, summed over the first layer's weight means, with local reparameterization.
  const Eigen::Index first_layer = draws_model.network().layout().width(1) * 2;
  CHECK(vb.head(first_layer).sum() < va.head(first_layer).sum());
}

TEST_CASE("bayesian_mlp: predictive intervals cover simulated data at their level", "[bayesian_mlp][sgd_elbo]") {
  // y = 1 + 2 x1 - x2 + N(0, 0.5^2); a network without hidden layer and learned noise, trained
  // on 2000 points; 90 % intervals at 4000 new points. The coverage deviates from 0.9 by the
  // binomial error sqrt(0.9 * 0.1 / 4000) and by the error of the fitted noise sd, whose
  // relative standard error is sqrt(1 / (2 N)); through the interval's ends that moves the
  // coverage by 2 z phi(z) times it (z = 1.645). The check allows 4 of the combined errors.
  auto rng = make_rng(61);
  const auto simulate = [&](Eigen::Index n, Eigen::MatrixXd& x, Eigen::MatrixXd& y) {
    x = latent::standard_normal(2, n, rng);
    y = (1.0 + 2.0 * x.row(0).array() - x.row(1).array() + 0.5 * latent::standard_normal(1, n, rng).array()).matrix();
  };
  Eigen::MatrixXd x, y, xt, yt;
  simulate(2000, x, y);
  simulate(4000, xt, yt);
  bayesian_mlp model(x, y, {.hidden = {}, .noise_variance = 1.0});
  const auto fit = latent::sgd_elbo(model, model.initial_params(rng), rng,
                                    {.max_epochs = 60, .batch_size = 100, .adam = {.learning_rate = 1e-2}});
  REQUIRE(fit.status == latent::fit_status::max_iterations);
  const latent::bnn_regression_prediction pred = model.predict(fit.params, xt, 200, rng);
  const latent::basic_bnn_interval<double> iv = latent::predictive_interval(pred, 0.9);
  const double coverage = ((yt.array() >= iv.lower.array()) && (yt.array() <= iv.upper.array())).cast<double>().mean();
  const double z = 1.6448536269514722, phi = std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi);
  const double binomial = std::sqrt(0.9 * 0.1 / 4000), fit_error = 2 * z * phi * std::sqrt(1.0 / (2 * 2000.0));
  INFO("coverage " << coverage << ", noise sd " << std::sqrt(model.noise_variance(fit.params)(0)));
  CHECK(std::abs(coverage - 0.9) <= 4 * std::hypot(binomial, fit_error));
  // The learned noise sd is 0.5 within 4 standard errors (0.5 sqrt(1 / (2 N)) each), and the
  // epistemic part is small next to it with 2000 points.
  CHECK(std::abs(std::sqrt(model.noise_variance(fit.params)(0)) - 0.5) <= 4 * 0.5 * std::sqrt(1.0 / 4000));
  CHECK(pred.epistemic_variance.maxCoeff() < 0.05 * pred.aleatoric_variance.minCoeff());
  CHECK(latent::standard_normal_quantile(0.95) == Approx(z).epsilon(1e-14));
  CHECK(latent::standard_normal_quantile(0.025) == Approx(-1.959963984540054).epsilon(1e-14));
}

TEST_CASE("bayesian_mlp: heteroscedastic regression and classification train and predict", "[bayesian_mlp][sgd_elbo]") {
  auto rng = make_rng(71);
  // Noise sd 0.1 for x < 0 and 1 for x > 0: the heteroscedastic network's aleatoric variance
  // follows it.
  const Eigen::Index n = 1000;
  Eigen::MatrixXd x = latent::standard_normal(1, n, rng), y(1, n);
  const Eigen::MatrixXd e = latent::standard_normal(1, n, rng);
  for (Eigen::Index j = 0; j < n; ++j) y(0, j) = x(0, j) + (x(0, j) < 0 ? 0.1 : 1.0) * e(0, j);
  bayesian_mlp het(x, y, {.hidden = {16}, .likelihood = bnn_likelihood::heteroscedastic_gaussian});
  const auto fit = latent::sgd_elbo(het, het.initial_params(rng), rng,
                                    {.max_epochs = 80, .batch_size = 100, .adam = {.learning_rate = 1e-2}});
  REQUIRE(fit.status == latent::fit_status::max_iterations);
  Eigen::MatrixXd probe(1, 2);
  probe << -1.0, 1.0;
  const auto pred = het.predict(fit.params, probe, 100, rng);
  INFO("aleatoric sd at -1 and 1: " << pred.aleatoric_variance.cwiseSqrt());
  CHECK(std::sqrt(pred.aleatoric_variance(0, 0)) < 0.25);
  CHECK(std::sqrt(pred.aleatoric_variance(0, 1)) > 0.7);
  CHECK(std::sqrt(pred.aleatoric_variance(0, 1)) < 1.4);

  // Three separated blobs: high accuracy, probabilities sum to one, entropies ordered.
  Eigen::MatrixXd xc = 0.5 * latent::standard_normal(2, 600, rng), yc(1, 600);
  for (Eigen::Index j = 0; j < 600; ++j) {
    const int k = static_cast<int>(j % 3);
    yc(0, j) = k;
    xc(0, j) += 3.0 * std::cos(2.0 * M_PI * k / 3.0);
    xc(1, j) += 3.0 * std::sin(2.0 * M_PI * k / 3.0);
  }
  bayesian_mlp clf(xc, yc, {.hidden = {8}, .likelihood = bnn_likelihood::categorical});
  const auto cfit = latent::sgd_elbo(clf, clf.initial_params(rng), rng,
                                     {.max_epochs = 40, .batch_size = 100, .adam = {.learning_rate = 1e-2}});
  const auto cp = clf.predict_classes(cfit.params, xc, 50, rng);
  CHECK((cp.probabilities.colwise().sum().array() - 1.0).abs().maxCoeff() < 1e-12);
  CHECK((cp.classes().cast<double>() == yc.array()).cast<double>().mean() > 0.97);
  CHECK((cp.entropy >= cp.expected_entropy - 1e-12).all());  // mutual information >= 0
  const auto ll = clf.log_likelihood(cfit.params, xc, yc, 50, rng);
  CHECK(ll.mean() > -0.2);
  CHECK((ll <= 0.0).all());
}

TEST_CASE("bayesian_mlp: value() equals value_and_gradient()'s value in float", "[bayesian_mlp]") {
  const data_set s = make_data(3, 100, bnn_likelihood::gaussian, 1, 81);
  latent::basic_bayesian_mlp<float> model(s.x.cast<float>(), s.y.cast<float>(), {.hidden = {8}});
  auto rng = make_rng(82);
  const Eigen::VectorXf p = model.initial_params(rng);
  const std::vector<Eigen::Index> batch = all_columns(100);
  auto r1 = rng, r2 = rng;
  Eigen::VectorXf g;
  CHECK(model.value(p, batch, 1, r1) == model.value_and_gradient(p, batch, 1, g, r2));
  CHECK(g.allFinite());
}

TEST_CASE("bayesian_mlp: bad input is invalid_argument naming the argument", "[bayesian_mlp]") {
  using Catch::Matchers::Contains;
  const data_set s = make_data(2, 10, bnn_likelihood::gaussian, 1, 91);
  const auto throws = [](auto&& f, const char* what) { CHECK_THROWS_WITH(f(), Contains(what)); };
  throws([&] { bayesian_mlp(s.x, s.y.leftCols(9)); }, "same number of columns");
  Eigen::MatrixXd bad = s.y;
  bad(0, 3) = std::numeric_limits<double>::quiet_NaN();
  throws([&] { bayesian_mlp(s.x, bad); }, "argument 'y' must be finite");
  Eigen::MatrixXd badx = s.x;
  badx(1, 2) = std::numeric_limits<double>::infinity();
  throws([&] { bayesian_mlp(badx, s.y); }, "argument 'x' must be finite");
  throws([&] { bayesian_mlp(s.x, s.y, {.hidden = {5, 0}}); }, "option 'hidden'");
  for (const double scale : {0.0, -1.0, std::numeric_limits<double>::infinity()}) {
    bnn_options o;
    o.prior.scale = scale;
    throws([&] { bayesian_mlp(s.x, s.y, o); }, "option 'prior.scale'");
  }
  {
    bnn_options o;
    o.prior.mixture_weight = 0.0;
    throws([&] { bayesian_mlp(s.x, s.y, o); }, "option 'prior.mixture_weight'");
    o.prior = {.scale = 1.0, .mixture_weight = 0.5, .second_scale = 0.0};
    throws([&] { bayesian_mlp(s.x, s.y, o); }, "option 'prior.second_scale'");
  }
  throws([&] { bayesian_mlp(s.x, s.y, {.initial_scale = 0.0}); }, "option 'initial_scale'");
  throws([&] { bayesian_mlp(s.x, s.y, {.noise_variance = -1.0}); }, "option 'noise_variance'");
  throws([&] { bayesian_mlp(Eigen::MatrixXd(0, 0), Eigen::MatrixXd(1, 0)); }, "argument 'x'");
  // Labels: not whole numbers, negative, out of range, a matrix of several rows, one class.
  Eigen::MatrixXd labels(1, 10);
  labels << 0, 1, 2, 0, 1, 2, 0, 1, 2, 0;
  const bnn_options cat{.likelihood = bnn_likelihood::categorical};
  bayesian_mlp ok(s.x, labels, cat);
  CHECK(ok.output_dim() == 3);
  Eigen::MatrixXd l2 = labels;
  l2(0, 4) = 1.5;
  throws([&] { bayesian_mlp(s.x, l2, cat); }, "class labels");
  l2(0, 4) = -1.0;
  throws([&] { bayesian_mlp(s.x, l2, cat); }, "class labels");
  throws([&] { bayesian_mlp(s.x, labels, {.likelihood = bnn_likelihood::categorical, .num_classes = 2}); },
         "class labels");
  throws([&] { bayesian_mlp(s.x, Eigen::MatrixXd::Zero(2, 10), cat); }, "1 x N row");
  throws([&] { bayesian_mlp(s.x, Eigen::MatrixXd::Zero(1, 10), cat); }, "at least 2 classes");
  // The objective and prediction.
  bayesian_mlp model(s.x, s.y, {.hidden = {3}});
  auto rng = make_rng(92);
  const Eigen::VectorXd p = model.initial_params(rng);
  Eigen::VectorXd g;
  const std::vector<Eigen::Index> batch{0, 1}, out_of_range{0, 10};
  throws([&] { model.value_and_gradient(p.head(3), batch, 1, g, rng); }, "argument 'params'");
  throws([&] { model.value_and_gradient(p, out_of_range, 1, g, rng); }, "argument 'batch'");
  throws([&] { model.value_and_gradient(p, batch, 0, g, rng); }, "num_samples");
  throws([&] { model.predict(p, Eigen::MatrixXd::Zero(3, 4), 10, rng); }, "argument 'x'");
  throws([&] { model.predict(p, s.x, 0, rng); }, "draws");
  throws([&] { model.predict_classes(p, s.x, 10, rng); }, "use predict");
  throws([&] { model.log_likelihood(p, s.x, s.y.leftCols(4), 10, rng); }, "same number of columns");
  throws([&] { ok.predict(ok.initial_params(rng), s.x, 10, rng); }, "predict_classes");
  throws([&] { ok.noise_variance(ok.initial_params(rng)); }, "gaussian");
  throws([&] { latent::predictive_interval(model.predict(p, s.x, 2, rng), 1.0); }, "argument 'level'");
}

TEST_CASE("bayesian_mlp: the prior's KL, its gradient and the scale mixture's log-density, term by term",
          "[bayesian_mlp][prior]") {
  const Eigen::ArrayXd mu = (Eigen::ArrayXd(3) << 0.3, -1.2, 0.0).finished();
  const Eigen::ArrayXd sigma = (Eigen::ArrayXd(3) << 0.5, 0.1, 2.0).finished();
  const double s = 1.7;
  // KL(N(m, v) || N(0, s^2)) = log(s / sd) + (v + m^2) / (2 s^2) - 1/2, one weight at a time.
  double expected = 0.0;
  for (Eigen::Index i = 0; i < 3; ++i)
    expected += std::log(s / sigma(i)) + (sigma(i) * sigma(i) + mu(i) * mu(i)) / (2 * s * s) - 0.5;
  CHECK(latent::detail::gaussian_prior_kl<double>(mu, sigma, s) == Approx(expected).epsilon(1e-14));
  Eigen::ArrayXd g_mu = Eigen::ArrayXd::Zero(3), g_sigma = Eigen::ArrayXd::Zero(3);
  latent::detail::subtract_gaussian_prior_kl_gradient<double>(mu, sigma, s, g_mu, g_sigma);
  const double h = 1e-6;
  for (Eigen::Index i = 0; i < 3; ++i) {
    Eigen::ArrayXd up = mu, down = mu;
    up(i) += h;
    down(i) -= h;
    const double d_mu = (latent::detail::gaussian_prior_kl<double>(up, sigma, s) -
                         latent::detail::gaussian_prior_kl<double>(down, sigma, s)) / (2 * h);
    CHECK(-g_mu(i) == Approx(d_mu).epsilon(1e-7).margin(1e-9));
    up = sigma;
    down = sigma;
    up(i) += h;
    down(i) -= h;
    const double d_sigma = (latent::detail::gaussian_prior_kl<double>(mu, up, s) -
                            latent::detail::gaussian_prior_kl<double>(mu, down, s)) / (2 * h);
    CHECK(-g_sigma(i) == Approx(d_sigma).epsilon(1e-7).margin(1e-9));
  }
  const latent::bnn_prior mixture{.scale = 1.0, .mixture_weight = 0.25, .second_scale = 0.01};
  const Eigen::ArrayXd w = (Eigen::ArrayXd(3) << 0.004, -0.5, 2.0).finished();
  Eigen::ArrayXd dlogp;
  const double logp = latent::detail::mixture_log_prior<double>(w, mixture, dlogp);
  const auto density = [&](double x) {
    const auto normal = [](double v, double sd) { return std::exp(-0.5 * v * v / (sd * sd)) / (sd * std::sqrt(2 * std::numbers::pi)); };
    return 0.25 * normal(x, 1.0) + 0.75 * normal(x, 0.01);
  };
  CHECK(logp == Approx(std::log(density(0.004)) + std::log(density(-0.5)) + std::log(density(2.0))).epsilon(1e-13));
  for (Eigen::Index i = 0; i < 3; ++i) {
    const double hw = 1e-7;
    CHECK(dlogp(i) == Approx((std::log(density(w(i) + hw)) - std::log(density(w(i) - hw))) / (2 * hw)).epsilon(1e-6));
  }
}

TEST_CASE("bayesian_mlp: the standard normal quantile behind the predictive intervals", "[bayesian_mlp][prediction]") {
  CHECK(latent::standard_normal_quantile(0.5) == 0.0);
  CHECK(latent::standard_normal_quantile(0.975) == Approx(1.959963984540054).epsilon(1e-14));
  CHECK(latent::standard_normal_quantile(0.75) == Approx(0.6744897501960817).epsilon(1e-14));
  CHECK(latent::standard_normal_quantile(1e-10) == Approx(-6.361340902404056).epsilon(1e-13));
  CHECK_THROWS_AS(latent::standard_normal_quantile(1.0), latent::invalid_argument);
  CHECK_THROWS_AS(latent::standard_normal_quantile(0.0), latent::invalid_argument);
}
