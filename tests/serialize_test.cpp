// Saving and loading models as JSON (io/json.hpp): bit-exact round trips of fitted models,
// the errors a wrong, incomplete or invalid file gives, and a seeded fuzz of the loader
// (truncations and byte mutations of valid files) that must only ever raise invalid_argument.
#include <latent/io/json.hpp>
#include <latent/models/bayesian_mlp.hpp>
#include <latent/models/vae.hpp>
#include <latent/solvers/em.hpp>

#include "support/test_support.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

using latent::covariance_type;
using latent_test::make_rng;

namespace {

namespace fs = std::filesystem;

// A file in the temporary directory, removed at the end of the test.
struct temp_file {
  fs::path path;
  explicit temp_file(const std::string& name)
      : path(fs::temp_directory_path() / ("latent_serialize_test_" + std::to_string(::getpid()) + "_" + name)) {}
  ~temp_file() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Exact equality, entry by entry (NaN would fail, as it should: parameters are finite).
template <class A, class B>
bool identical(const Eigen::DenseBase<A>& a, const Eigen::DenseBase<B>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.derived().array() == b.derived().array()).all();
}

// Two well-separated clusters in d = 3 with correlated noise: N x 3 data, observations are columns.
template <class S>
latent::matrix_t<S> cluster_data(Eigen::Index n, std::uint64_t seed) {
  auto rng = make_rng(seed);
  std::normal_distribution<double> z;
  Eigen::MatrixXd x(3, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double shift = (j % 3 == 0) ? 4.0 : -1.0;
    const double a = z(rng), b = z(rng), c = z(rng);
    x.col(j) << shift + a, 0.5 * a + b + shift / 2, 0.3 * b + 0.7 * c;
  }
  return x.cast<S>();
}

template <class S>
latent::basic_gaussian_mixture<S> fitted_mixture(covariance_type type, const latent::matrix_t<S>& x) {
  latent::basic_gaussian_mixture<S> gmm(2, type, {.reg_covar = 1e-5, .kmeans_iterations = 7});
  auto rng = make_rng(11);
  latent::em(gmm, x, rng, {.max_iterations = 30});
  return gmm;
}

latent::factor_analysis fitted_factor_analysis(const Eigen::MatrixXd& x) {
  latent::factor_analysis fa(1, {.uniqueness_floor = 1e-5});
  auto rng = make_rng(12);
  fa.initialize(x, rng);
  latent::em(fa, x, {.max_iterations = 50});
  return fa;
}

std::vector<latent::bn_variable> chain_variables() {
  return {{"rain", 2, {}}, {"sprinkler", 3, {"rain"}}, {"grass", 2, {"rain", "sprinkler"}}};
}

latent::discrete_bayes_net fitted_network(Eigen::MatrixXi& records) {
  latent::discrete_bayes_net truth(chain_variables());
  auto rng = make_rng(13);
  // A non-uniform truth: random rows.
  std::gamma_distribution<double> g(2.0);
  std::vector<Eigen::MatrixXd> tables;
  for (const auto& t : truth.params().tables) {
    Eigen::MatrixXd r(t.rows(), t.cols());
    for (Eigen::Index i = 0; i < r.size(); ++i) r(i) = g(rng);
    tables.push_back(r.array().colwise() / r.rowwise().sum().array());
  }
  truth.set_params({tables});
  records = latent::apply_missing_at_random(truth.sample(300, rng), 0.2, rng);
  latent::discrete_bayes_net net(chain_variables(), latent::discrete_bayes_net_options{.pseudo_count = 0.5});
  latent::em(net, net.make_data(records), {.max_iterations = 40});
  return net;
}

// A Bayesian MLP on cluster data with trained-looking parameters: the initial means, and scales
// spread around their start (rho perturbed), so that every segment holds distinct numbers.
template <class S>
latent::basic_fitted_bayesian_mlp<S> fitted_bnn(const latent::bnn_options& o, std::uint64_t seed) {
  const latent::matrix_t<S> x = cluster_data<S>(40, seed);
  latent::matrix_t<S> y(2, 40);
  y.row(0) = x.row(0) + x.row(1).cwiseAbs2();
  y.row(1) = S(3) * x.row(2);
  if (o.likelihood == latent::bnn_likelihood::categorical)
    y = (x.row(0).array() > S(1.5)).template cast<S>().matrix() + (x.row(2).array() > S(0)).template cast<S>().matrix();
  const latent::basic_bayesian_mlp<S> model(x, y, o);
  auto rng = make_rng(seed);
  latent::vector_t<S> params = model.initial_params(rng);
  params += S(0.1) * latent::vector_t<S>::Random(params.size());
  return model.fitted(params);
}

}  // namespace

TEMPLATE_TEST_CASE("a fitted Gaussian mixture of every covariance type round-trips bit-exactly", "[json][gaussian_mixture]",
                   double, float) {
  using S = TestType;
  const latent::matrix_t<S> x = cluster_data<S>(120, 1);
  for (const auto type : {covariance_type::full, covariance_type::diagonal, covariance_type::spherical,
                          covariance_type::tied}) {
    INFO("covariance " << latent::to_string(type));
    const auto gmm = fitted_mixture<S>(type, x);
    temp_file f("gmm.json");
    latent::save(gmm, f.path);
    const auto back = latent::load<latent::basic_gaussian_mixture<S>>(f.path);
    CHECK(back.components() == 2);
    CHECK(back.covariance_kind() == type);
    CHECK(back.options().reg_covar == gmm.options().reg_covar);
    CHECK(back.options().kmeans_iterations == 7);
    CHECK(identical(back.params().weights, gmm.params().weights));
    CHECK(identical(back.params().means, gmm.params().means));
    for (std::size_t k = 0; k < 2; ++k) CHECK(identical(back.params().covariances[k], gmm.params().covariances[k]));
    // Predictions and log-likelihoods are the same numbers, not just close.
    CHECK(identical(back.log_likelihood_per_observation(x), gmm.log_likelihood_per_observation(x)));
    CHECK(identical(back.responsibilities(x), gmm.responsibilities(x)));
    CHECK(back.log_likelihood(x) == gmm.log_likelihood(x));
    // The file says what it holds, and saving the loaded model writes the same text.
    const nlohmann::json j = latent::to_json(gmm);
    CHECK(j["model"] == "gaussian_mixture");
    CHECK(j["scalar"] == (std::is_same_v<S, float> ? "float" : "double"));
    CHECK(j["version"] == latent::json_format_version);
    CHECK(latent::to_json(back) == j);
    CHECK(latent::from_json<latent::basic_gaussian_mixture<S>>(j).params().weights == gmm.params().weights);
  }
}

TEST_CASE("factor analysis, Neyman-Scott and a Bayesian network round-trip bit-exactly", "[json]") {
  const Eigen::MatrixXd x = cluster_data<double>(80, 2);
  temp_file f("model.json");

  const auto fa = fitted_factor_analysis(x);
  latent::save(fa, f.path);
  const auto fa2 = latent::load<latent::factor_analysis>(f.path);
  CHECK(identical(fa2.params().loadings, fa.params().loadings));
  CHECK(identical(fa2.params().mean, fa.params().mean));
  CHECK(identical(fa2.params().uniquenesses, fa.params().uniquenesses));
  CHECK(fa2.options().uniqueness_floor == 1e-5);
  CHECK(identical(fa2.log_likelihood_per_observation(x), fa.log_likelihood_per_observation(x)));

  latent::neyman_scott ns(4, {.theta = 2.0, .mu = 0.3, .tau2 = 0.7}, {.prior = latent::neyman_scott_prior::fixed});
  const Eigen::MatrixXd y = cluster_data<double>(50, 3).topRows(3).replicate(2, 1).topRows(4);
  latent::em(ns, y, {.max_iterations = 20});
  latent::save(ns, f.path);
  const auto ns2 = latent::load<latent::neyman_scott>(f.path);
  CHECK(ns2.options().prior == latent::neyman_scott_prior::fixed);
  CHECK(ns2.params().theta == ns.params().theta);
  CHECK(ns2.params().mu == ns.params().mu);
  CHECK(ns2.params().tau2 == ns.params().tau2);
  CHECK(ns2.log_likelihood(y) == ns.log_likelihood(y));

  Eigen::MatrixXi records;
  const auto net = fitted_network(records);
  latent::save(net, f.path);
  const auto net2 = latent::load<latent::discrete_bayes_net>(f.path);
  REQUIRE(net2.num_variables() == 3);
  CHECK(net2.variables()[2].parents == std::vector<std::string>{"rain", "sprinkler"});
  CHECK(net2.options().pseudo_count == 0.5);
  for (Eigen::Index v = 0; v < 3; ++v) CHECK(identical(net2.table(v), net.table(v)));
  CHECK(identical(net2.log_likelihood_per_observation(records), net.log_likelihood_per_observation(records)));
}

TEST_CASE("the missing-values option is saved and loaded; a file without it means reject", "[json][missing]") {
  Eigen::MatrixXd x = cluster_data<double>(80, 4);
  x(0, 3) = std::numeric_limits<double>::quiet_NaN();  // a value missing at random
  x(1, 10) = std::numeric_limits<double>::quiet_NaN();
  latent::gaussian_mixture gmm(2, covariance_type::full, {.missing_values = latent::missing_policy::allow});
  auto rng = make_rng(5);
  latent::em(gmm, x, rng, {.max_iterations = 20});
  nlohmann::json j = latent::to_json(gmm);
  CHECK(j["options"]["missing_values"] == "allow");
  const auto back = latent::from_json<latent::gaussian_mixture>(j);
  CHECK(back.options().missing_values == latent::missing_policy::allow);
  CHECK(back.log_likelihood(x) == gmm.log_likelihood(x));  // observed-data log-likelihood, same bits
  j["options"].erase("missing_values");
  CHECK(latent::from_json<latent::gaussian_mixture>(j).options().missing_values == latent::missing_policy::reject);
  j["options"]["missing_values"] = "sometimes";
  CHECK_THROWS_AS(latent::from_json<latent::gaussian_mixture>(j), latent::invalid_argument);

  latent::factor_analysis fa(1, {.missing_values = latent::missing_policy::allow});
  latent::em(fa, x, rng, {.max_iterations = 20});
  const auto fa2 = latent::from_json<latent::factor_analysis>(latent::to_json(fa));
  CHECK(fa2.options().missing_values == latent::missing_policy::allow);
  CHECK(fa2.log_likelihood(x) == fa.log_likelihood(x));
}

TEST_CASE("a VAE's architecture and weights, and a linear VAE's parameters, round-trip bit-exactly", "[json][vae]") {
  const Eigen::MatrixXd x = cluster_data<double>(40, 4);
  latent::vae_options o{.latent_dim = 2,
                        .encoder_hidden = {5, 4},
                        .decoder_hidden = {6},
                        .encoder_activation = latent::nn::activation::tanh,
                        .decoder_activation = latent::nn::activation::elu,
                        .likelihood = latent::vae_likelihood::gaussian,
                        .bound = latent::vae_bound::iwae,
                        .iwae_samples = 3};
  const latent::vae model(x, o);
  auto rng = make_rng(5);
  const latent::fitted_vae fitted{model.dim(), o, model.initial_params(rng)};
  temp_file f("vae.json");
  latent::save(fitted, f.path);
  const auto back = latent::load<latent::fitted_vae>(f.path);
  CHECK(back.dim == 3);
  CHECK(back.options.encoder_hidden == o.encoder_hidden);
  CHECK(back.options.decoder_hidden == o.decoder_hidden);
  CHECK(back.options.encoder_activation == o.encoder_activation);
  CHECK(back.options.decoder_activation == o.decoder_activation);
  CHECK(back.options.likelihood == o.likelihood);
  CHECK(back.options.bound == o.bound);
  CHECK(back.options.iwae_samples == 3);
  CHECK(identical(back.params, fitted.params));
  const latent::vae again(x, back.options);
  CHECK(identical(again.reconstruct(back.params, x), model.reconstruct(fitted.params, x)));
  const auto e1 = again.encode(back.params, x), e2 = model.encode(fitted.params, x);
  CHECK(identical(e1.mean, e2.mean));
  CHECK(identical(e1.scale, e2.scale));

  // The wrong number of weights for the architecture is refused, naming the segment.
  nlohmann::json j = latent::to_json(fitted);
  j["parameters"]["decoder"].erase(0);
  CHECK_THROWS_WITH(latent::from_json<latent::fitted_vae>(j), Catch::Contains("parameters.decoder") &&
                                                                 Catch::Contains("must have"));
  j = latent::to_json(fitted);
  j["options"]["encoder_hidden"][0] = 1000000;
  CHECK_THROWS_AS(latent::from_json<latent::fitted_vae>(j), latent::invalid_argument);

  latent::linear_vae_params p;
  p.loadings = Eigen::MatrixXd::Random(3, 2);
  p.mean = Eigen::VectorXd::Random(3);
  p.log_uniquenesses = Eigen::VectorXd::Random(3);
  p.encoder_weights = Eigen::MatrixXd::Random(2, 3);
  p.encoder_bias = Eigen::VectorXd::Random(2);
  p.encoder_log_scales = Eigen::VectorXd::Random(2);
  latent::save(p, f.path);
  const auto q = latent::load<latent::linear_vae_params>(f.path);
  CHECK(identical(q.loadings, p.loadings));
  CHECK(identical(q.mean, p.mean));
  CHECK(identical(q.log_uniquenesses, p.log_uniquenesses));
  CHECK(identical(q.encoder_weights, p.encoder_weights));
  CHECK(identical(q.encoder_bias, p.encoder_bias));
  CHECK(identical(q.encoder_log_scales, p.encoder_log_scales));
}

TEMPLATE_TEST_CASE("a Bayesian MLP's architecture, standardization and weights round-trip bit-exactly",
                   "[json][bayesian_mlp]", float, double) {
  using S = TestType;
  using latent::bnn_likelihood;
  const latent::bnn_options options[] = {
      {.hidden = {5, 4},
       .activation = latent::nn::activation::tanh,
       .prior = {.scale = 1.0, .mixture_weight = 0.5, .second_scale = 0.1},
       .noise_variance = 0.2},
      {.hidden = {6}, .likelihood = bnn_likelihood::heteroscedastic_gaussian, .local_reparameterization = true},
      {.hidden = {}, .likelihood = bnn_likelihood::gaussian, .learn_noise = false, .noise_variance = 0.3,
       .standardize = false},
      {.hidden = {7}, .activation = latent::nn::activation::elu, .likelihood = bnn_likelihood::categorical}};
  temp_file f("bnn.json");
  std::uint64_t seed = 30;
  for (const latent::bnn_options& o : options) {
    INFO("likelihood " << static_cast<int>(o.likelihood) << ", " << o.hidden.size() << " hidden layers");
    const auto fitted = fitted_bnn<S>(o, seed++);
    latent::save(fitted, f.path);
    const auto back = latent::load<latent::basic_fitted_bayesian_mlp<S>>(f.path);
    CHECK(back.input_dim == 3);
    CHECK(back.output_dim == (o.likelihood == bnn_likelihood::categorical ? 3 : 2));
    CHECK(back.options.hidden == o.hidden);
    CHECK(back.options.activation == o.activation);
    CHECK(back.options.likelihood == o.likelihood);
    CHECK(back.options.prior.mixture_weight == o.prior.mixture_weight);
    CHECK(back.options.prior.second_scale == o.prior.second_scale);
    CHECK(back.options.learn_noise == o.learn_noise);
    CHECK(back.options.noise_variance == o.noise_variance);
    CHECK(back.options.standardize == o.standardize);
    CHECK(back.options.local_reparameterization == o.local_reparameterization);
    CHECK(identical(back.input_shift, fitted.input_shift));
    CHECK(identical(back.input_scale, fitted.input_scale));
    CHECK(identical(back.target_shift, fitted.target_shift));
    CHECK(identical(back.target_scale, fitted.target_scale));
    CHECK(identical(back.params, fitted.params));
    CHECK(latent::to_json(back) == latent::to_json(fitted));

    // The model rebuilt from the file predicts what the training model predicted, bit for bit.
    const latent::matrix_t<S> x = cluster_data<S>(40, seed - 1);
    const latent::matrix_t<S> xt = cluster_data<S>(9, 99);
    latent::matrix_t<S> y(2, 40);
    y.row(0) = x.row(0) + x.row(1).cwiseAbs2();
    y.row(1) = S(3) * x.row(2);
    if (o.likelihood == bnn_likelihood::categorical)
      y = (x.row(0).array() > S(1.5)).template cast<S>().matrix() + (x.row(2).array() > S(0)).template cast<S>().matrix();
    const latent::basic_bayesian_mlp<S> trained(x, y, o), loaded(back);
    CHECK(loaded.num_parameters() == trained.num_parameters());
    CHECK(identical(loaded.weight_scale(back.params), trained.weight_scale(fitted.params)));
    auto r1 = make_rng(7), r2 = make_rng(7);
    CHECK(identical(loaded.log_likelihood(back.params, x, y, 5, r1), trained.log_likelihood(fitted.params, x, y, 5, r2)));
    if (o.likelihood == bnn_likelihood::categorical) {
      const auto a = loaded.predict_classes(back.params, xt, 4, r1), b = trained.predict_classes(fitted.params, xt, 4, r2);
      CHECK(identical(a.probabilities, b.probabilities));
      CHECK(identical(a.expected_entropy, b.expected_entropy));
    } else {
      const auto a = loaded.predict(back.params, xt, 4, r1), b = trained.predict(fitted.params, xt, 4, r2);
      CHECK(identical(a.mean, b.mean));
      CHECK(identical(a.epistemic_variance, b.epistemic_variance));
      CHECK(identical(a.aleatoric_variance, b.aleatoric_variance));
    }
    // A model made for prediction holds no training data.
    latent::vector_t<S> grad;
    const std::vector<Eigen::Index> batch{0};
    latent::basic_bayesian_mlp<S> predict_only(back);
    CHECK_THROWS_WITH(predict_only.value_and_gradient(back.params, batch, 1, grad, r1),
                      Catch::Contains("no training data"));
  }
}

TEST_CASE("a wrong Bayesian MLP file or fitted record gives invalid_argument naming the problem",
          "[json][bayesian_mlp][errors]") {
  using Catch::Contains;
  const latent::fitted_bayesian_mlp fitted = fitted_bnn<double>({.hidden = {4}}, 40);
  const nlohmann::json good = latent::to_json(fitted);
  const auto throws = [](const nlohmann::json& j, const std::string& what) {
    CHECK_THROWS_WITH(latent::from_json<latent::fitted_bayesian_mlp>(j), Contains(what));
  };
  nlohmann::json j = good;
  j["parameters"]["weight_rho"].erase(0);
  throws(j, "parameters.weight_rho");
  j = good;
  j["options"]["hidden"][0] = 1000000;
  throws(j, "does not match the parameters");
  j = good;
  j["parameters"]["input_scale"][1] = 0.0;
  throws(j, "parameters.input_scale[1]");
  j = good;
  j["options"]["learn_noise"] = 1;
  throws(j, "must be true or false");
  j = good;
  j["options"]["likelihood"] = "poisson";
  throws(j, "options.likelihood");
  j = good;
  j["options"]["prior"].erase("scale");
  throws(j, "options.prior.scale");
  j = good;
  j["options"]["prior"]["mixture_weight"] = 1.5;
  throws(j, "mixture_weight");
  j = good;
  j["parameters"]["log_noise_variance"].push_back(0.0);  // learned noise: m = 2 entries
  throws(j, "parameters.log_noise_variance");
  j = good;
  j["structure"]["output_dim"] = 3;  // the targets' standardization has 2 entries
  throws(j, "parameters");
  CHECK_THROWS_WITH(latent::from_json<latent::basic_fitted_bayesian_mlp<float>>(good), Contains("'double'"));

  // The same checks guard a record built in code.
  auto bad = fitted;
  bad.params.conservativeResize(bad.params.size() - 1);
  CHECK_THROWS_WITH(latent::bayesian_mlp{bad}, Contains("num_parameters()"));
  bad = fitted;
  bad.input_scale(0) = -1.0;
  CHECK_THROWS_WITH(latent::bayesian_mlp{bad}, Contains("input_scale"));
  bad = fitted;
  bad.params(3) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(latent::bayesian_mlp{bad}, Contains("params"));
  CHECK_THROWS_WITH(latent::save(bad, "unused.json"), Contains("only finite parameters"));
  bad = fitted_bnn<double>({.hidden = {3}, .likelihood = latent::bnn_likelihood::categorical}, 41);
  bad.output_dim = 1;
  CHECK_THROWS_WITH(latent::bayesian_mlp{bad}, Contains("output_dim"));
  bad.output_dim = 3;
  bad.options.num_classes = 4;
  CHECK_THROWS_WITH(latent::bayesian_mlp{bad}, Contains("num_classes"));
  bad = fitted;
  bad.target_shift.resize(1);
  CHECK_THROWS_WITH(latent::bayesian_mlp{bad}, Contains("target_shift"));
}

TEST_CASE("doubles are written so that they read back to the same bits", "[json]") {
  // Hard cases for decimal conversion: subnormals, extremes, values one ulp apart, -0.
  latent::linear_vae_params p;
  p.loadings.resize(4, 1);
  p.loadings << 0.1, std::nextafter(0.1, 1.0), 5e-324, -std::numeric_limits<double>::max();
  p.mean.resize(4);
  p.mean << -0.0, std::numeric_limits<double>::min(), 1.0 / 3.0, 123456789.123456789;
  p.log_uniquenesses = Eigen::VectorXd::Constant(4, std::numeric_limits<double>::epsilon());
  p.encoder_weights = Eigen::MatrixXd::Constant(1, 4, 2.0 / 3.0);
  p.encoder_bias = Eigen::VectorXd::Constant(1, 1e300);
  p.encoder_log_scales = Eigen::VectorXd::Constant(1, -1e-300);
  const std::string text = latent::to_json(p).dump();
  const auto q = latent::from_json<latent::linear_vae_params>(nlohmann::json::parse(text));
  CHECK(identical(q.loadings, p.loadings));
  CHECK(identical(q.mean, p.mean));
  CHECK(std::signbit(q.mean(0)));
  CHECK(identical(q.encoder_weights, p.encoder_weights));
  CHECK(q.encoder_bias(0) == 1e300);
  CHECK(q.encoder_log_scales(0) == -1e-300);
}

TEST_CASE("a wrong, incomplete or invalid file gives invalid_argument naming the problem", "[json][errors]") {
  using Catch::Contains;
  using gmm_t = latent::gaussian_mixture;
  const Eigen::MatrixXd x = cluster_data<double>(60, 6);
  const nlohmann::json good = latent::to_json(fitted_mixture<double>(covariance_type::full, x));
  const auto throws = [](const nlohmann::json& j, const std::string& what) {
    INFO(what);
    CHECK_THROWS_AS(latent::from_json<gmm_t>(j), latent::invalid_argument);
    CHECK_THROWS_WITH(latent::from_json<gmm_t>(j), Contains(what));
  };

  throws(latent::to_json(fitted_factor_analysis(x)), "holds a 'factor_analysis' model, not a 'gaussian_mixture'");
  CHECK_THROWS_WITH(latent::from_json<latent::basic_gaussian_mixture<float>>(good), Contains("scalar type 'double'"));
  auto j = good;
  j["version"] = 2;
  throws(j, "format version 2");
  j = good;
  j["format"] = "other";
  throws(j, "field 'format' must be 'latent'");
  j = good;
  j.erase("parameters");
  throws(j, "field 'parameters' is missing");
  j = good;
  j["options"].erase("reg_covar");
  throws(j, "field 'options.reg_covar' is missing");
  j = good;
  j["structure"]["components"] = "two";
  throws(j, "field 'structure.components' must be an integer, got string");
  j = good;
  j["structure"]["components"] = -2;
  throws(j, "field 'structure.components' must be in [1, ");
  j = good;
  j["structure"]["covariance_type"] = "banded";
  throws(j, "must be one of 'full', 'diagonal', 'spherical', 'tied', got 'banded'");
  j = good;
  j["parameters"]["means"][1].push_back(0.0);
  throws(j, "field 'parameters.means[1]' must have 3 entries, got 4");
  j = good;
  j["parameters"]["weights"] = {0.5, 0.5, 0.0};
  throws(j, "field 'parameters.weights' must have 2 entries, got 3");
  j = good;
  j["parameters"]["covariances"][0][1][2] = std::numeric_limits<double>::quiet_NaN();
  throws(j, "field 'parameters.covariances[0][1][2]' must be finite");
  j = good;
  j["parameters"]["covariances"][0][1][2] = nullptr;
  throws(j, "field 'parameters.covariances[0][1][2]' must be a number, got null");
  j = good;
  j["parameters"]["weights"] = {0.7, 0.7};
  throws(j, "field 'parameters' is invalid: gaussian_mixture::set_params");
  j = good;
  j["parameters"]["covariances"][1] = {{1.0, 2.0, 0.0}, {2.0, 1.0, 0.0}, {0.0, 0.0, 1.0}};  // indefinite
  throws(j, "positive definite");
  j = good;
  j["options"]["reg_covar"] = -1.0;
  throws(j, "field 'options' is invalid: gaussian_mixture: option 'reg_covar'");
  throws(nlohmann::json::array({1, 2}), "must hold a JSON object, got array");

  // Files: missing, not JSON, truncated.
  temp_file f("bad.json");
  CHECK_THROWS_WITH(latent::load<gmm_t>(f.path), Contains("cannot open"));
  latent::save(fitted_mixture<double>(covariance_type::tied, x), f.path);
  const std::string text = read_text(f.path);
  std::ofstream(f.path, std::ios::binary) << text.substr(0, text.size() / 2);
  CHECK_THROWS_WITH(latent::load<gmm_t>(f.path), Contains("is not valid JSON") && Contains(f.path.string()));

  // Invalid parameters of the other models.
  nlohmann::json fa = latent::to_json(fitted_factor_analysis(x));
  fa["parameters"]["uniquenesses"][1] = -0.5;
  CHECK_THROWS_WITH(latent::from_json<latent::factor_analysis>(fa), Contains("'uniquenesses' must be positive"));
  Eigen::MatrixXi records;
  nlohmann::json bn = latent::to_json(fitted_network(records));
  bn["parameters"]["tables"][1][0][0] = 0.9;
  CHECK_THROWS_WITH(latent::from_json<latent::discrete_bayes_net>(bn), Contains("sprinkler"));
  bn = latent::to_json(fitted_network(records));
  bn["structure"]["variables"][0]["parents"] = {"grass"};
  CHECK_THROWS_WITH(latent::from_json<latent::discrete_bayes_net>(bn), Contains("cycle"));
  bn = latent::to_json(fitted_network(records));
  bn["parameters"]["tables"][2] = {{0.5, 0.5}};
  CHECK_THROWS_WITH(latent::from_json<latent::discrete_bayes_net>(bn), Contains("parameters.tables[2]' must have 6"));
  nlohmann::json ns = latent::to_json(latent::neyman_scott(3));
  ns["parameters"]["theta"] = 0.0;
  CHECK_THROWS_WITH(latent::from_json<latent::neyman_scott>(ns), Contains("theta"));

  // A model that cannot be saved.
  CHECK_THROWS_WITH(latent::to_json(gmm_t(2)), Contains("no parameters yet"));
}

TEST_CASE("fuzz: truncated and mutated files give a model or invalid_argument, never a crash", "[json][fuzz]") {
  const Eigen::MatrixXd x = cluster_data<double>(60, 7);
  Eigen::MatrixXi records;
  latent::vae_options o{.latent_dim = 1, .encoder_hidden = {2}, .decoder_hidden = {}};
  const Eigen::MatrixXd unit = (x.array() > 0).cast<double>();
  const latent::vae v(unit, o);
  auto init_rng = make_rng(8);
  const std::string texts[] = {latent::to_json(fitted_mixture<double>(covariance_type::full, x)).dump(1),
                               latent::to_json(fitted_mixture<double>(covariance_type::diagonal, x)).dump(),
                               latent::to_json(fitted_factor_analysis(x)).dump(1),
                               latent::to_json(fitted_network(records)).dump(1),
                               latent::to_json(latent::neyman_scott(3)).dump(),
                               latent::to_json(latent::fitted_vae{3, o, v.initial_params(init_rng)}).dump(1),
                               latent::to_json(fitted_bnn<double>({.hidden = {2}}, 9)).dump(1)};
  const std::string alphabet = "{}[]:,\"-+.0123456789eE \nabcdefghijklmnopqrstuvwxyz\\\x01\xff";
  auto rng = make_rng(2024);
  std::size_t loaded = 0, refused = 0;
  for (int it = 0; it < 3000; ++it) {
    const std::size_t which = static_cast<std::size_t>(it) % std::size(texts);
    std::string t = texts[which];
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !t.empty(); ++m) {
      const std::size_t at = rng() % t.size();
      switch (rng() % 6) {
        case 0: t.resize(at); break;                                          // truncate
        case 1: t[at] = alphabet[rng() % alphabet.size()]; break;             // replace a byte
        case 2: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;    // insert a byte
        case 3: t.erase(at, 1 + rng() % 16); break;                           // delete a run
        case 4: t.insert(at, t.substr(rng() % t.size(), 1 + rng() % 32)); break;  // duplicate a run
        case 5: t[at] = static_cast<char>(rng() % 256); break;                // any byte
      }
    }
    std::istringstream in(t);
    bool ok = false;
    try {
      switch (which) {
        case 0:
        case 1: {
          const auto g = latent::detail::load_json<latent::gaussian_mixture>(in, "fuzz");
          if (g.dim() == 3) (void)g.log_likelihood(x);  // a loaded model is usable
          break;
        }
        case 2: (void)latent::detail::load_json<latent::factor_analysis>(in, "fuzz"); break;
        case 3: (void)latent::detail::load_json<latent::discrete_bayes_net>(in, "fuzz"); break;
        case 4: (void)latent::detail::load_json<latent::neyman_scott>(in, "fuzz"); break;
        case 5: (void)latent::detail::load_json<latent::fitted_vae>(in, "fuzz"); break;
        default: {
          const auto b = latent::detail::load_json<latent::fitted_bayesian_mlp>(in, "fuzz");
          if (b.input_dim == 3) {  // a loaded record makes a usable model
            auto r = make_rng(1);
            (void)latent::bayesian_mlp(b).predict(b.params, x, 2, r);
          }
          break;
        }
      }
      ok = true;
    } catch (const latent::invalid_argument&) {
    } catch (const latent::numerical_error&) {  // a mutated but valid model far from the data
      ok = true;
    }
    (ok ? loaded : refused) += 1;
  }
  // Deep nesting and huge claimed sizes: refused without recursion or allocation to match.
  for (const std::string& t : {std::string(200000, '[') + std::string(200000, ']'), std::string(200000, '['),
                               std::string("{\"format\":\"latent\",\"version\":1,\"model\":\"vae\",\"scalar\":\"double\","
                                           "\"structure\":{\"dim\":2000000000},\"options\":{\"latent_dim\":2000000000,"
                                           "\"encoder_hidden\":[],\"decoder_hidden\":[],\"encoder_activation\":\"relu\","
                                           "\"decoder_activation\":\"relu\",\"likelihood\":\"bernoulli\",\"bound\":\"elbo\","
                                           "\"iwae_samples\":1},\"parameters\":{\"encoder\":[1],\"decoder\":[],"
                                           "\"log_variance\":[]}}")}) {
    std::istringstream in(t);
    CHECK_THROWS_AS(latent::detail::load_json<latent::fitted_vae>(in, "deep"), latent::invalid_argument);
  }
  INFO("loaded " << loaded << ", refused " << refused);
  CHECK(refused > 2000);  // most mutations break the file; all were handled
  CHECK(loaded > 0);      // and some (in a number's digits) leave a valid model
}
