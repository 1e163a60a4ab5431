// Tests of the dense networks (latent/nn) and the variational autoencoder (latent/models/vae):
// hand-written backward passes against central finite differences in double, the objective's
// scaling and unbiasedness, the importance-weighted bound's ordering, float/double agreement
// and input validation.
#include <latent/core/amortized.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>
#include <latent/models/vae.hpp>
#include <latent/nn.hpp>
#include <latent/nn/activation.hpp>
#include <latent/nn/init.hpp>
#include <latent/nn/mlp.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using latent_test::IsApprox;
using latent_test::make_rng;
using latent_test::numeric_gradient;
namespace nn = latent::nn;
using nn::activation;

const std::vector<activation> all_activations{activation::identity, activation::relu,     activation::tanh,
                                              activation::sigmoid,  activation::softplus, activation::elu};


double reference_activation(activation f, double a) {
  switch (f) {
    case activation::identity: return a;
    case activation::relu: return a > 0 ? a : 0.0;
    case activation::tanh: return std::tanh(a);
    case activation::sigmoid: return 1.0 / (1.0 + std::exp(-a));
    case activation::softplus: return std::log1p(std::exp(a));
    case activation::elu: return a > 0 ? a : std::expm1(a);
  }
  return 0.0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// nn: activations, layout, forward/backward, initialisation
// ---------------------------------------------------------------------------------------------

TEST_CASE("nn: activations match their definitions and their derivatives match finite differences", "[nn]") {
  // Points away from the kinks of relu and elu (|a| >= 0.05), both signs, and large |a| where
  // a naive softplus would overflow.
  Eigen::ArrayXd a(10);
  a << -30.0, -4.0, -1.3, -0.4, -0.05, 0.05, 0.7, 2.5, 8.0, 30.0;
  for (const activation f : all_activations) {
    INFO(nn::name(f));
    Eigen::ArrayXd h = a;
    nn::activate(f, h);
    for (Eigen::Index i = 0; i < a.size(); ++i) CHECK(h(i) == Approx(reference_activation(f, a(i))).epsilon(1e-14).margin(1e-300));
    // f'(a) from h, against central differences of the reference.
    Eigen::ArrayXd d = Eigen::ArrayXd::Ones(a.size());
    nn::multiply_derivative(f, d, h);
    for (Eigen::Index i = 0; i < a.size(); ++i) {
      const double e = 1e-6;
      const double fd = (reference_activation(f, a(i) + e) - reference_activation(f, a(i) - e)) / (2 * e);
      CHECK(d(i) == Approx(fd).epsilon(1e-7).margin(1e-9));
    }
  }
  // Softplus of large arguments stays finite and exact; its derivative from h stays in [0, 1].
  Eigen::ArrayXf big(2);
  big << -200.0f, 200.0f;
  nn::activate(activation::softplus, big);
  CHECK(big(0) >= 0.0f);
  CHECK(big(0) < 1e-30f);
  CHECK(big(1) == 200.0f);
}

TEST_CASE("nn: layout offsets and argument checks", "[nn]") {
  const nn::mlp_layout layout({3, 5, 2}, {activation::tanh, activation::identity});
  CHECK(layout.num_layers() == 2);
  CHECK(layout.num_parameters() == 5 * 3 + 5 + 2 * 5 + 2);
  CHECK(layout.weight_offset(0) == 0);
  CHECK(layout.bias_offset(0) == 15);
  CHECK(layout.weight_offset(1) == 20);
  CHECK(layout.bias_offset(1) == 30);
  Eigen::VectorXd p = Eigen::VectorXd::LinSpaced(32, 0, 31);
  CHECK(layout.weights(p.data(), 1)(1, 0) == 21.0);  // column-major: (1, 0) is the second entry
  CHECK(layout.bias(static_cast<const double*>(p.data()), 1)(1) == 31.0);

  using latent::invalid_argument;
  CHECK_THROWS_AS(nn::mlp_layout({3}, {}), invalid_argument);
  CHECK_THROWS_AS(nn::mlp_layout({3, 0, 2}, {activation::relu, activation::identity}), invalid_argument);
  CHECK_THROWS_AS(nn::mlp_layout({3, 5, 2}, {activation::relu}), invalid_argument);
  CHECK_THROWS_AS(nn::mlp_layout({3, 2}, {static_cast<activation>(17)}), invalid_argument);
  CHECK_THROWS_WITH(nn::mlp_layout({3, 0, 2}, {activation::relu, activation::identity}),
                    Catch::Contains("widths") && Catch::Contains("entry 1"));
}

TEST_CASE("nn: backward pass matches central finite differences for every activation", "[nn]") {
  auto rng = make_rng(11);
  // Every activation appears once in a hidden layer; the input gradient is checked too.
  for (const activation f : all_activations) {
    INFO(nn::name(f));
    const nn::basic_mlp<double> net({4, 6, 5, 3}, {f, activation::tanh, f});
    Eigen::VectorXd p(net.num_parameters());
    nn::initialize(net, p, rng);
    p += 0.1 * latent::standard_normal(p.size(), 1, rng);  // non-zero biases
    const Eigen::MatrixXd x = latent::standard_normal(4, 7, rng);
    const Eigen::MatrixXd g_out = latent::standard_normal(3, 7, rng);  // J = sum(G (.) H_L)

    nn::basic_mlp<double>::workspace ws;
    const auto objective = [&](const Eigen::VectorXd& q, const Eigen::MatrixXd& input) {
      nn::basic_mlp<double>::workspace w;
      return net.forward(q, input, w).cwiseProduct(g_out).sum();
    };
    net.forward(p, x, ws);
    Eigen::MatrixXd d = g_out, dx;
    Eigen::VectorXd grad(net.num_parameters());
    net.backward(p, x, ws, d, grad, nn::gradient_mode::overwrite, &dx);

    const Eigen::VectorXd fd = numeric_gradient([&](const Eigen::VectorXd& q) { return objective(q, x); }, p);
    CHECK_THAT(grad, IsApprox(fd, 1e-7, 1e-8));
    const Eigen::Map<const Eigen::VectorXd> xv(x.data(), x.size());
    const Eigen::VectorXd fdx = numeric_gradient(
        [&](const Eigen::VectorXd& v) { return objective(p, Eigen::Map<const Eigen::MatrixXd>(v.data(), 4, 7)); }, xv);
    CHECK_THAT(Eigen::Map<const Eigen::VectorXd>(dx.data(), dx.size()), IsApprox(fdx, 1e-7, 1e-8));
  }
}

TEST_CASE("nn: accumulate adds into the gradient, one network serves several workspaces", "[nn]") {
  auto rng = make_rng(12);
  const nn::basic_mlp<double> net({5, 8, 2}, {activation::relu, activation::identity});
  Eigen::VectorXd p(net.num_parameters());
  nn::initialize(net, p, rng);
  const Eigen::MatrixXd x1 = latent::standard_normal(5, 9, rng), x2 = latent::standard_normal(5, 4, rng);
  const Eigen::MatrixXd g1 = latent::standard_normal(2, 9, rng), g2 = latent::standard_normal(2, 4, rng);
  nn::basic_mlp<double>::workspace w1, w2;
  net.forward(p, x1, w1);
  net.forward(p, x2, w2);  // a second workspace does not disturb the first
  Eigen::VectorXd a(net.num_parameters()), b(net.num_parameters());
  Eigen::MatrixXd d1 = g1, d2 = g2;
  net.backward(p, x1, w1, d1, a);
  net.backward(p, x2, w2, d2, b);
  // Accumulating the second batch's gradient onto the first's gives their sum, which is also
  // the gradient of the concatenated batch.
  Eigen::VectorXd acc = a;
  d2 = g2;
  net.forward(p, x2, w2);
  net.backward(p, x2, w2, d2, acc, nn::gradient_mode::accumulate);
  CHECK_THAT(acc, IsApprox(a + b, 1e-14));
  Eigen::MatrixXd x(5, 13), g(2, 13);
  x << x1, x2;
  g << g1, g2;
  nn::basic_mlp<double>::workspace w;
  net.forward(p, x, w);
  Eigen::VectorXd whole(net.num_parameters());
  net.backward(p, x, w, g, whole);
  CHECK_THAT(whole, IsApprox(a + b, 1e-12));
  // Gradients into a segment of a longer vector (networks sharing one flat vector).
  Eigen::VectorXd longer = Eigen::VectorXd::Constant(net.num_parameters() + 3, 7.0);
  d1 = g1;
  net.forward(p, x1, w1);
  net.backward(p, x1, w1, d1, longer.segment(3, net.num_parameters()));
  CHECK(longer.head(3) == Eigen::VectorXd::Constant(3, 7.0));
  CHECK_THAT(longer.tail(net.num_parameters()), IsApprox(a, 1e-14));  // unaligned: other rounding

  using latent::invalid_argument;
  CHECK_THROWS_AS(net.forward(p.head(3), x1, w1), invalid_argument);
  CHECK_THROWS_AS(net.forward(p, latent::standard_normal(4, 2, rng), w1), invalid_argument);
  Eigen::MatrixXd wrong(3, 9);
  net.forward(p, x1, w1);
  CHECK_THROWS_AS(net.backward(p, x1, w1, wrong, a), invalid_argument);
  CHECK_THROWS_AS(net.backward(p, x2, w1, d2, a), invalid_argument);  // ws holds another batch size
}

TEST_CASE("nn: Glorot and He initialisation have the stated scales; float and double draw alike", "[nn]") {
  auto rng = make_rng(13);
  const nn::mlp_layout layout({300, 200, 100}, {activation::relu, activation::tanh});
  Eigen::VectorXd p(layout.num_parameters());
  nn::initialize<double>(layout, p, rng);
  // Layer 0 (relu): He normal, variance 2 / 300. The sample variance of n draws has relative
  // standard error sqrt(2 / n); allow 5 of them.
  const Eigen::Map<const Eigen::VectorXd> w0(p.data(), 200 * 300);
  const double var0 = w0.squaredNorm() / static_cast<double>(w0.size());
  CHECK(std::abs(var0 / (2.0 / 300) - 1.0) < 5.0 * std::sqrt(2.0 / static_cast<double>(w0.size())));
  CHECK(w0.mean() == Approx(0.0).margin(5.0 * std::sqrt(var0 / static_cast<double>(w0.size()))));
  // Layer 1 (tanh): Glorot uniform on [-r, r], r = sqrt(6 / 300), variance r^2 / 3 (relative
  // SE of the sample variance sqrt(0.8 / n) for a uniform).
  const auto w1 = layout.weights(static_cast<const double*>(p.data()), 1);
  const double r = std::sqrt(6.0 / 300.0);
  CHECK(w1.cwiseAbs().maxCoeff() <= r);
  const double var1 = w1.squaredNorm() / static_cast<double>(w1.size());
  CHECK(std::abs(var1 / (r * r / 3) - 1.0) < 5.0 * std::sqrt(0.8 / static_cast<double>(w1.size())));
  CHECK(layout.bias(static_cast<const double*>(p.data()), 0).isZero(0.0));
  CHECK(layout.bias(static_cast<const double*>(p.data()), 1).isZero(0.0));

  auto r1 = make_rng(14), r2 = make_rng(14);
  Eigen::VectorXd pd(layout.num_parameters());
  Eigen::VectorXf pf(layout.num_parameters());
  nn::initialize<double>(layout, pd, r1, nn::init_scheme::glorot_uniform);
  nn::initialize<float>(layout, pf, r2, nn::init_scheme::glorot_uniform);
  CHECK(pf == pd.cast<float>());
  CHECK(r1() == r2());
  CHECK_THROWS_AS(nn::initialize<double>(layout, pd.head(5), r1), latent::invalid_argument);
}

TEMPLATE_TEST_CASE("nn: float and double passes agree", "[nn]", float, double) {
  using T = TestType;
  auto rng = make_rng(15);
  const nn::basic_mlp<double> netd({30, 20, 10}, {activation::softplus, activation::sigmoid});
  const nn::basic_mlp<T> net(netd.layout());
  Eigen::VectorXd pd(net.num_parameters());
  nn::initialize(netd, pd, rng);
  const Eigen::MatrixXd x = latent::standard_normal(30, 16, rng), g = latent::standard_normal(10, 16, rng);
  typename nn::basic_mlp<T>::workspace ws;
  nn::basic_mlp<double>::workspace wsd;
  const latent::matrix_t<T> xt = x.cast<T>();
  const latent::vector_t<T> pt = pd.cast<T>();
  const Eigen::MatrixXd out = net.forward(pt, xt, ws).template cast<double>();
  const Eigen::MatrixXd outd = netd.forward(pd, x, wsd);
  latent::matrix_t<T> dt = g.cast<T>();
  Eigen::MatrixXd dd = g;
  latent::vector_t<T> gt(net.num_parameters());
  Eigen::VectorXd gd(net.num_parameters());
  net.backward(pt, xt, ws, dt, gt);
  netd.backward(pd, x, wsd, dd, gd);
  // Rounding of float inputs and parameters (relative 6e-8) amplified by at most the depth and
  // width of the products: 1e-5 relative is ~100 ulps.
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-14;
  CHECK_THAT(out, IsApprox(outd, tol));
  CHECK_THAT(Eigen::MatrixXd(gt.template cast<double>()), IsApprox(gd, tol));
}

// ---------------------------------------------------------------------------------------------
// vae
// ---------------------------------------------------------------------------------------------

namespace {

using latent::vae;
using latent::vae_bound;
using latent::vae_likelihood;
using latent::vae_options;

// d x n data in [0, 1] with some exact 0s and 1s (Bernoulli), or standard normal (Gaussian).
Eigen::MatrixXd make_data(Eigen::Index d, Eigen::Index n, vae_likelihood lik, std::uint64_t seed) {
  auto rng = make_rng(seed);
  if (lik != vae_likelihood::bernoulli) return latent::standard_normal(d, n, rng);
  std::uniform_real_distribution<double> u(-0.2, 1.2);
  Eigen::MatrixXd x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = std::clamp(u(rng), 0.0, 1.0);
  return x;
}

// A small architecture with smooth activations (finite differences need no kinks).
vae_options small_options(vae_likelihood lik, vae_bound bound, Eigen::Index k_iwae = 3) {
  return {.latent_dim = 2,
          .encoder_hidden = {5, 4},
          .decoder_hidden = {4},
          .encoder_activation = activation::tanh,
          .decoder_activation = activation::softplus,
          .likelihood = lik,
          .bound = bound,
          .iwae_samples = k_iwae};
}

// Initial parameters plus noise on every entry (non-zero biases, non-trivial log-variances).
template <class F>
Eigen::VectorXd perturbed_params(const F& f, std::uint64_t seed) {
  auto rng = make_rng(seed);
  Eigen::VectorXd p = f.initial_params(rng).template cast<double>();
  return p + 0.2 * latent::standard_normal(p.size(), 1, rng);
}

const std::vector<vae_likelihood> all_likelihoods{vae_likelihood::bernoulli, vae_likelihood::gaussian,
                                                  vae_likelihood::gaussian_shared};

std::vector<Eigen::Index> all_columns(Eigen::Index n) {
  std::vector<Eigen::Index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), Eigen::Index{0});
  return idx;
}

// The objective's value as a function of the parameters with the noise frozen (the engine
// re-seeded identically for every evaluation), and value_and_gradient at p with that noise.
struct frozen_noise {
  std::function<double(const Eigen::VectorXd&)> value;
  Eigen::VectorXd grad;
  double value_at_p;
};
frozen_noise freeze_noise(vae& v, const Eigen::VectorXd& p, std::vector<Eigen::Index> batch, std::size_t s,
                          std::uint64_t seed) {
  frozen_noise out;
  out.value = [&v, batch, s, seed](const Eigen::VectorXd& q) {
    auto rng = make_rng(seed);
    return v.value(q, batch, s, rng);
  };
  auto rng = make_rng(seed);
  out.value_at_p = v.value_and_gradient(p, batch, s, out.grad, rng);
  return out;
}

struct sample_stats {
  double mean, se;
};
template <class Draw>
sample_stats mean_and_se(int m, Draw&& draw) {
  double sum = 0, sq = 0;
  for (int i = 0; i < m; ++i) {
    const double v = draw();
    sum += v;
    sq += v * v;
  }
  const double mean = sum / m, var = (sq - m * mean * mean) / (m - 1);
  return {mean, std::sqrt(var / m)};
}

}  // namespace

// The concepts it satisfies are asserted in tests/static/vae_static.cpp.

TEST_CASE("vae: layout, pack/unpack round trip", "[vae]") {
  const Eigen::MatrixXd x = make_data(6, 10, vae_likelihood::bernoulli, 1);  // in [0, 1]: fits all three
  for (const vae_likelihood lik : all_likelihoods) {
    const vae v(x, small_options(lik, vae_bound::elbo));
    const Eigen::Index pe = (6 * 5 + 5) + (5 * 4 + 4) + (4 * 4 + 4), pd = (2 * 4 + 4) + (4 * 6 + 6);
    const Eigen::Index nlv = lik == vae_likelihood::bernoulli ? 0 : lik == vae_likelihood::gaussian ? 6 : 1;
    CHECK(v.encoder().num_parameters() == pe);
    CHECK(v.decoder().num_parameters() == pd);
    CHECK(v.decoder_offset() == pe);
    CHECK(v.log_variance_offset() == pe + pd);
    CHECK(v.num_parameters() == pe + pd + nlv);
    CHECK(v.encoder().output_dim() == 4);  // means and log-scales
    const Eigen::VectorXd p = perturbed_params(v, 2);
    const vae::params_type u = v.unpack(p);
    CHECK(u.encoder == p.head(pe));
    CHECK(u.log_variance.size() == nlv);
    CHECK(v.pack(u) == p);
    CHECK_THROWS_AS(v.unpack(p.head(3)), latent::invalid_argument);
    vae::params_type bad = u;
    bad.decoder.resize(3);
    CHECK_THROWS_WITH(v.pack(bad), Catch::Contains("decoder"));
  }
  // No hidden layers: affine encoder and decoder.
  const vae affine(x, {.latent_dim = 3, .encoder_hidden = {}, .decoder_hidden = {}, .likelihood = vae_likelihood::gaussian});
  CHECK(affine.encoder().layout().num_layers() == 1);
  CHECK(affine.num_parameters() == (6 * 6 + 6) + (3 * 6 + 6) + 6);
}

TEST_CASE("vae: ELBO and IWAE gradients match central finite differences with frozen noise", "[vae]") {
  for (const vae_likelihood lik : all_likelihoods) {
    for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
      INFO("likelihood " << static_cast<int>(lik) << ", bound " << static_cast<int>(bound));
      const Eigen::MatrixXd x = make_data(6, 20, lik, 3);
      vae v(x, small_options(lik, bound));
      const Eigen::VectorXd p = perturbed_params(v, 4);
      const frozen_noise f = freeze_noise(v, p, {3, 0, 17, 12, 5}, 2, 5);
      CHECK(f.value_at_p == f.value(p));
      CHECK_THAT(f.grad, IsApprox(numeric_gradient(f.value, p), 1e-6, 1e-6));
    }
  }
  // The affine (no hidden layer) architecture too.
  const Eigen::MatrixXd x = make_data(5, 12, vae_likelihood::bernoulli, 6);
  vae v(x, {.latent_dim = 2, .encoder_hidden = {}, .decoder_hidden = {}, .bound = vae_bound::iwae, .iwae_samples = 4});
  const Eigen::VectorXd p = perturbed_params(v, 7);
  const frozen_noise f = freeze_noise(v, p, all_columns(12), 1, 8);
  CHECK_THAT(f.grad, IsApprox(numeric_gradient(f.value, p), 1e-6, 1e-6));
}

TEMPLATE_TEST_CASE("vae: value() equals value_and_gradient()'s value for the same engine state", "[vae]", float,
                   double) {
  using T = TestType;
  const latent::matrix_t<T> x = make_data(8, 30, vae_likelihood::bernoulli, 9).cast<T>();
  for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
    latent::basic_vae<T> v(x, small_options(vae_likelihood::bernoulli, bound));
    auto init = make_rng(10);
    const latent::vector_t<T> p = v.initial_params(init);
    const std::vector<Eigen::Index> batch{1, 4, 9, 29};
    auto r1 = make_rng(11), r2 = make_rng(11);
    latent::vector_t<T> grad;
    const double a = v.value_and_gradient(p, batch, 3, grad, r1);
    const double b = v.value(p, batch, 3, r2);
    CHECK(a == b);
    CHECK(r1() == r2());  // the same number of draws
    CHECK(grad.size() == v.num_parameters());
    CHECK(grad.allFinite());
  }
}

TEST_CASE("vae: encode and log_joint reproduce the objective's estimate for the same noise", "[vae]") {
  // A small batch (one chunk) and one of 150 observations (three chunks of at most 64, run on
  // Eigen::nbThreads() threads): the same formula either way.
  for (const Eigen::Index nb : {4, 150}) {
    for (const vae_likelihood lik : all_likelihoods) {
      INFO("likelihood " << static_cast<int>(lik) << ", batch " << nb);
      const Eigen::MatrixXd x = make_data(6, 160, lik, 12);
      std::vector<Eigen::Index> batch = all_columns(160);
      auto shuffle = make_rng(35);
      std::shuffle(batch.begin(), batch.end(), shuffle);
      batch.resize(static_cast<std::size_t>(nb));
      const double n = 160, b = static_cast<double>(nb);
      const Eigen::Index k = 2;
      for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
        vae v(x, small_options(lik, bound, 3));
        const Eigen::VectorXd p = perturbed_params(v, 13);
        const Eigen::Index s_count = 2, kk = v.iwae_samples(), reps = s_count * kk, cols = nb * reps;
        auto rng = make_rng(14);
        const double estimate = v.value(p, batch, static_cast<std::size_t>(s_count), rng);

        Eigen::MatrixXd m, log_s;
        v.encode(p, batch, m, log_s);
        auto replay = make_rng(14);
        const Eigen::MatrixXd eps = latent::standard_normal(k, cols, replay);  // the objective's draws
        Eigen::MatrixXd z(k, cols);
        for (Eigen::Index r = 0; r < reps; ++r)
          z.middleCols(r * nb, nb) = m + log_s.array().exp().matrix().cwiseProduct(eps.middleCols(r * nb, nb));
        Eigen::VectorXd lj;
        v.log_joint(p, batch, z, lj, nullptr);
        // log q(z | x) = sum_j (-eps_j^2 / 2 - log s_j - log(2 pi) / 2).
        Eigen::VectorXd log_q(cols);
        for (Eigen::Index c = 0; c < cols; ++c)
          log_q(c) = -0.5 * eps.col(c).squaredNorm() - log_s.col(c % nb).sum() - 0.5 * k * latent::log_two_pi;
        double expected = 0;
        if (bound == vae_bound::elbo) {
          // log p(x | z) = log_joint - log p(z), and the KL in closed form.
          for (Eigen::Index c = 0; c < cols; ++c)
            expected += (lj(c) + 0.5 * z.col(c).squaredNorm() + 0.5 * k * latent::log_two_pi) * n / (b * s_count);
          const Eigen::ArrayXXd s2 = (2 * log_s.array()).exp();
          expected -= n / b * 0.5 * (m.array().square() + s2 - 1 - 2 * log_s.array()).sum();
        } else {
          // column c = (kappa S + s) |B| + j
          for (Eigen::Index s = 0; s < s_count; ++s)
            for (Eigen::Index j = 0; j < nb; ++j) {
              Eigen::VectorXd log_w(kk);
              for (Eigen::Index kappa = 0; kappa < kk; ++kappa) {
                const Eigen::Index c = (kappa * s_count + s) * nb + j;
                log_w(kappa) = lj(c) - log_q(c);
              }
              expected += (latent::log_sum_exp(log_w) - std::log(double(kk))) * n / (b * s_count);
            }
        }
        CHECK(estimate == Approx(expected).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("vae: the gradient of a batch of several chunks matches directional finite differences", "[vae]") {
  for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
    INFO("bound " << static_cast<int>(bound));
    const Eigen::MatrixXd x = make_data(6, 200, vae_likelihood::gaussian, 36);
    vae v(x, small_options(vae_likelihood::gaussian, bound));
    const Eigen::VectorXd p = perturbed_params(v, 37);
    std::vector<Eigen::Index> batch = all_columns(200);
    batch.resize(150);  // chunks of 64, 64 and 22 observations
    const frozen_noise f = freeze_noise(v, p, batch, 2, 38);
    auto directions = make_rng(39);
    for (int t = 0; t < 4; ++t) {
      const Eigen::VectorXd u = latent::standard_normal(p.size(), 1, directions).normalized();
      const double h = 1e-5, fd = (f.value(p + h * u) - f.value(p - h * u)) / (2 * h);
      CHECK(f.grad.dot(u) == Approx(fd).epsilon(1e-6).margin(1e-6 * f.grad.norm()));
    }
  }
}

TEST_CASE("vae: log_joint's dz matches finite differences; encode/log_joint are thread-safe", "[vae]") {
  for (const vae_likelihood lik : all_likelihoods) {
    const Eigen::MatrixXd x = make_data(6, 10, lik, 15);
    const vae v(x, small_options(lik, vae_bound::elbo));
    const Eigen::VectorXd p = perturbed_params(v, 16);
    const std::vector<Eigen::Index> batch{4, 1, 8};
    auto rng = make_rng(17);
    const Eigen::MatrixXd z = latent::standard_normal(2, 6, rng);  // R = 2 points per observation
    Eigen::VectorXd values;
    Eigen::MatrixXd dz;
    v.log_joint(p, batch, z, values, &dz);
    const Eigen::Map<const Eigen::VectorXd> zv(z.data(), z.size());
    const Eigen::VectorXd fd = numeric_gradient(
        [&](const Eigen::VectorXd& q) {
          Eigen::VectorXd val;
          v.log_joint(p, batch, Eigen::Map<const Eigen::MatrixXd>(q.data(), 2, 6), val, nullptr);
          return val.sum();  // each column's value depends only on its own z
        },
        zv);
    CHECK_THAT(Eigen::Map<const Eigen::VectorXd>(dz.data(), dz.size()), IsApprox(fd, 1e-7, 1e-8));

    // The same calls from two threads on one const object give the same numbers.
    Eigen::VectorXd v1, v2;
    Eigen::MatrixXd m1, s1, m2, s2;
    std::thread t1([&] { for (int i = 0; i < 20; ++i) { v.log_joint(p, batch, z, v1, nullptr); v.encode(p, batch, m1, s1); } });
    std::thread t2([&] { for (int i = 0; i < 20; ++i) { v.log_joint(p, batch, z, v2, nullptr); v.encode(p, batch, m2, s2); } });
    t1.join();
    t2.join();
    CHECK(v1 == values);
    CHECK(v2 == values);
    CHECK(m1 == m2);
    CHECK(s1 == s2);
  }
}

TEST_CASE("vae: the minibatch estimate is unbiased for the full-data bound", "[vae]") {
  // E over random minibatches and noise of the minibatch estimate equals E over noise of the
  // full-batch estimate; both means are compared within 4.5 combined standard errors.
  for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
    INFO("bound " << static_cast<int>(bound));
    const Eigen::MatrixXd x = make_data(6, 40, vae_likelihood::bernoulli, 18);
    vae v(x, small_options(vae_likelihood::bernoulli, bound, 3));
    const Eigen::VectorXd p = perturbed_params(v, 19);
    auto rng = make_rng(20);
    std::vector<Eigen::Index> order = all_columns(40);
    const sample_stats mini = mean_and_se(6000, [&] {
      std::shuffle(order.begin(), order.end(), rng);
      return v.value(p, latent::minibatch(order.data(), 5), 2, rng);
    });
    const std::vector<Eigen::Index> all = all_columns(40);
    const sample_stats full = mean_and_se(1500, [&] { return v.value(p, all, 1, rng); });
    INFO("minibatch " << mini.mean << " +- " << mini.se << ", full " << full.mean << " +- " << full.se);
    CHECK(std::abs(mini.mean - full.mean) < 4.5 * std::hypot(mini.se, full.se));
    // A wrong N/|B| factor would be off by a multiple of the value itself.
    CHECK(std::hypot(mini.se, full.se) < 0.01 * std::abs(full.mean));
  }
}

TEST_CASE("vae: IWAE is at least the ELBO and non-decreasing in K, in expectation", "[vae]") {
  const Eigen::MatrixXd x = make_data(6, 30, vae_likelihood::bernoulli, 21);
  const std::vector<Eigen::Index> all = all_columns(30);
  vae elbo(x, small_options(vae_likelihood::bernoulli, vae_bound::elbo));
  const Eigen::VectorXd p = perturbed_params(elbo, 22);
  auto rng = make_rng(23);
  const int m = 1500;
  const sample_stats e = mean_and_se(m, [&] { return elbo.value(p, all, 1, rng); });
  std::vector<sample_stats> iw;
  for (const Eigen::Index k : {1, 2, 5, 20}) {
    vae v(x, small_options(vae_likelihood::bernoulli, vae_bound::iwae, k));
    iw.push_back(mean_and_se(m, [&] { return v.value(p, all, 1, rng); }));
    INFO("K = " << k << ": " << iw.back().mean << " +- " << iw.back().se << " (ELBO " << e.mean << " +- " << e.se << ")");
    if (k == 1) {
      // L_1 is the ELBO (with a Monte Carlo KL): the same expectation.
      CHECK(std::abs(iw.back().mean - e.mean) < 4.5 * std::hypot(iw.back().se, e.se));
    } else {
      const sample_stats& prev = iw[iw.size() - 2];
      CHECK(iw.back().mean - prev.mean > -4.5 * std::hypot(iw.back().se, prev.se));
      CHECK(iw.back().mean - e.mean > -4.5 * std::hypot(iw.back().se, e.se));
    }
  }
  // Between K = 1 and K = 20 the bound must rise clearly (not merely not fall).
  CHECK(iw.back().mean - iw.front().mean > 4.5 * std::hypot(iw.back().se, iw.front().se));
}

TEST_CASE("vae: float and double agree", "[vae]") {
  for (const vae_likelihood lik : all_likelihoods) {
    for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
      INFO("likelihood " << static_cast<int>(lik) << ", bound " << static_cast<int>(bound));
      const Eigen::MatrixXd x = make_data(10, 50, lik, 24);
      const Eigen::MatrixXf xf = x.cast<float>();
      vae vd(x, small_options(lik, bound));
      latent::basic_vae<float> vf(xf, small_options(lik, bound));
      const Eigen::VectorXd p = perturbed_params(vd, 25);
      const std::vector<Eigen::Index> batch{0, 10, 20, 30, 40, 49};
      auto r1 = make_rng(26), r2 = make_rng(26);
      Eigen::VectorXd gd;
      Eigen::VectorXf gf;
      const double a = vd.value_and_gradient(p, batch, 2, gd, r1);
      const double b = vf.value_and_gradient(p.cast<float>(), batch, 2, gf, r2);
      // Float rounding of data, parameters and noise (relative 6e-8) through two small
      // networks and sums of at most a few hundred terms: 1e-5 relative is ~100 ulps.
      CHECK(b == Approx(a).epsilon(1e-5));
      CHECK_THAT(Eigen::VectorXd(gf.cast<double>()), IsApprox(gd, 1e-4));
    }
  }
}

TEST_CASE("vae: encode, decode, reconstruct, sample and interpolate on new data", "[vae]") {
  const Eigen::MatrixXd x = make_data(6, 20, vae_likelihood::bernoulli, 27);
  const vae v(x, small_options(vae_likelihood::bernoulli, vae_bound::elbo));
  const Eigen::VectorXd p = perturbed_params(v, 28);
  const std::vector<Eigen::Index> batch{3, 4, 5};
  Eigen::MatrixXd m, log_s;
  v.encode(p, batch, m, log_s);
  const latent::basic_vae_encoding<double> e = v.encode(p, x.middleCols(3, 3));
  CHECK_THAT(e.mean, IsApprox(m, 1e-15));
  CHECK_THAT(e.scale, IsApprox(log_s.array().exp().matrix(), 1e-15));
  const Eigen::MatrixXd r = v.reconstruct(p, x.middleCols(3, 3));
  CHECK_THAT(r, IsApprox(v.decode(p, m), 1e-15));
  CHECK((r.array() > 0).all());
  CHECK((r.array() < 1).all());
  const Eigen::MatrixXd path = v.interpolate(p, x.col(3), x.col(5), 7);
  CHECK(path.cols() == 7);
  CHECK_THAT(Eigen::MatrixXd(path.col(0)), IsApprox(r.col(0), 1e-12));
  CHECK_THAT(Eigen::MatrixXd(path.col(6)), IsApprox(r.col(2), 1e-12));
  auto rng = make_rng(29);
  const latent::basic_vae_sample<double> s = v.sample(p, 50, rng);
  CHECK(s.z.rows() == 2);
  CHECK(s.x.cols() == 50);
  CHECK(((s.x.array() == 0) || (s.x.array() == 1)).all());
  CHECK_THAT(s.mean, IsApprox(v.decode(p, s.z), 1e-15));

  // Gaussian draws: x - mean has the learned variance (chi-square-free check on 4000 draws of
  // one coordinate: the sample variance's relative SE is sqrt(2 / n)).
  const Eigen::MatrixXd xg = make_data(3, 20, vae_likelihood::gaussian, 30);
  const vae g(xg, small_options(vae_likelihood::gaussian_shared, vae_bound::elbo));
  const Eigen::VectorXd pg = perturbed_params(g, 31);
  const latent::basic_vae_sample<double> sg = g.sample(pg, 4000, rng);
  const double var = (sg.x - sg.mean).squaredNorm() / static_cast<double>(sg.x.size());
  CHECK(std::abs(var / std::exp(pg(g.log_variance_offset())) - 1) < 4.5 * std::sqrt(2.0 / static_cast<double>(sg.x.size())));
}

TEST_CASE("vae: bad input is invalid_argument naming the argument", "[vae]") {
  using latent::invalid_argument;
  Eigen::MatrixXd x = make_data(4, 6, vae_likelihood::bernoulli, 32);
  const auto opts = small_options(vae_likelihood::bernoulli, vae_bound::elbo);
  x(2, 3) = 1.5;
  CHECK_THROWS_WITH(vae(x, opts), Catch::Contains("'x'") && Catch::Contains("[0, 1]") && Catch::Contains("(2, 3)"));
  x(2, 3) = -0.1;
  CHECK_THROWS_AS(vae(x, opts), invalid_argument);
  x(2, 3) = std::nan("");
  CHECK_THROWS_WITH(vae(x, opts), Catch::Contains("'x'") && Catch::Contains("finite"));
  x(2, 3) = 0.5;
  // Gaussian data may lie anywhere.
  CHECK_NOTHROW(vae(Eigen::MatrixXd::Constant(4, 6, 7.0), small_options(vae_likelihood::gaussian, vae_bound::elbo)));
  CHECK_THROWS_AS(vae(Eigen::MatrixXd(4, 0), opts), invalid_argument);
  auto o = opts;
  o.latent_dim = 0;
  CHECK_THROWS_WITH(vae(x, o), Catch::Contains("latent_dim"));
  o = opts;
  o.encoder_hidden = {5, 0};
  CHECK_THROWS_WITH(vae(x, o), Catch::Contains("encoder_hidden") && Catch::Contains("empty layer"));
  o = opts;
  o.decoder_hidden = {0};
  CHECK_THROWS_WITH(vae(x, o), Catch::Contains("decoder_hidden"));
  o = opts;
  o.iwae_samples = 0;
  CHECK_THROWS_WITH(vae(x, o), Catch::Contains("iwae_samples"));
  o = opts;
  o.encoder_activation = static_cast<activation>(9);
  CHECK_THROWS_WITH(vae(x, o), Catch::Contains("encoder_activation"));
  o = opts;
  o.likelihood = static_cast<vae_likelihood>(7);
  CHECK_THROWS_WITH(vae(x, o), Catch::Contains("likelihood"));

  vae v(x, opts);
  auto rng = make_rng(33);
  const Eigen::VectorXd p = v.initial_params(rng);
  const Eigen::VectorXd short_p = p.head(p.size() - 1);
  Eigen::VectorXd grad, values;
  Eigen::MatrixXd m, ls;
  const std::vector<Eigen::Index> batch{0, 1}, outside{0, 6}, none{};
  CHECK_THROWS_WITH(v.value_and_gradient(short_p, batch, 1, grad, rng), Catch::Contains("params"));
  CHECK_THROWS_WITH(v.value(p, outside, 1, rng), Catch::Contains("batch"));
  CHECK_THROWS_WITH(v.value(p, none, 1, rng), Catch::Contains("batch"));
  CHECK_THROWS_WITH(v.value(p, batch, 0, rng), Catch::Contains("num_samples"));
  CHECK_THROWS_WITH(v.encode(short_p, batch, m, ls), Catch::Contains("params"));
  CHECK_THROWS_WITH(v.log_joint(p, batch, Eigen::MatrixXd::Zero(2, 3), values, nullptr), Catch::Contains("'z'"));
  CHECK_THROWS_WITH(v.log_joint(p, batch, Eigen::MatrixXd::Zero(3, 2), values, nullptr), Catch::Contains("'z'"));
  CHECK_THROWS_WITH(v.encode(p, Eigen::MatrixXd::Zero(3, 2)), Catch::Contains("'x'"));
  CHECK_THROWS_WITH(v.decode(p, Eigen::MatrixXd::Zero(3, 2)), Catch::Contains("'z'"));
  CHECK_THROWS_WITH(v.decode(p, Eigen::MatrixXd::Constant(2, 2, std::nan(""))), Catch::Contains("finite"));
  CHECK_THROWS_WITH(v.interpolate(p, x.col(0), x.col(1), 1), Catch::Contains("steps"));
  CHECK_THROWS_WITH(v.interpolate(p, x.col(0), Eigen::VectorXd::Zero(3), 3), Catch::Contains("'to'"));
  CHECK_THROWS_WITH(v.sample(p, 0, rng), Catch::Contains("'n'"));
}

TEMPLATE_TEST_CASE("vae: sgd_elbo trains the ELBO and the IWAE bound up", "[vae][sgd_elbo]", float, double) {
  using T = TestType;
  // Data from a 2-factor nonlinear model squashed into [0, 1].
  auto rng = make_rng(34);
  const Eigen::MatrixXd z = latent::standard_normal(2, 400, rng);
  const Eigen::MatrixXd a = latent::standard_normal(12, 2, rng);
  const latent::matrix_t<T> x = (1.0 / (1.0 + (-(2.0 * a * z)).array().exp())).matrix().cast<T>();
  for (const vae_bound bound : {vae_bound::elbo, vae_bound::iwae}) {
    latent::basic_vae<T> v(x, {.latent_dim = 2, .encoder_hidden = {16}, .decoder_hidden = {16}, .bound = bound});
    const latent::vector_t<T> p0 = v.initial_params(rng);
    const auto fit = latent::sgd_elbo(v, p0, rng, {.max_epochs = 30, .batch_size = 40, .adam = {.learning_rate = 1e-2}});
    INFO("bound " << static_cast<int>(bound) << ": start " << fit.trace.front() << ", end " << fit.trace.back());
    CHECK(fit.status == latent::fit_status::max_iterations);
    // From about -d log 2 per observation at the start to a clearly better bound.
    CHECK(fit.trace.back() > fit.trace.front() + 0.1 * std::abs(fit.trace.front()));
  }
}
