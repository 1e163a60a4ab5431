// Tests of the dense networks (latent/nn) and the variational autoencoder (latent/models/vae):
// hand-written backward passes against central finite differences in double, the objective's
// scaling and unbiasedness, the importance-weighted bound's ordering, float/double agreement
// and input validation.
#include <latent/core/random.hpp>
#include <latent/nn.hpp>

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace {

using latent_test::IsApprox;
using latent_test::make_rng;
namespace nn = latent::nn;
using nn::activation;

const std::vector<activation> all_activations{activation::identity, activation::relu,     activation::tanh,
                                              activation::sigmoid,  activation::softplus, activation::elu};

// Central finite differences of a scalar function of a vector, step h.
Eigen::VectorXd numeric_gradient(const std::function<double(const Eigen::VectorXd&)>& f, Eigen::VectorXd p,
                                 double h = 1e-6) {
  Eigen::VectorXd g(p.size());
  for (Eigen::Index i = 0; i < p.size(); ++i) {
    const double p0 = p(i);
    p(i) = p0 + h;
    const double up = f(p);
    p(i) = p0 - h;
    const double down = f(p);
    p(i) = p0;
    g(i) = (up - down) / (2 * h);
  }
  return g;
}

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
