#pragma once
/// @file
/// Saving fitted models to, and loading them from, versioned human-readable JSON files.
///
/// This header needs nlohmann/json (Debian: nlohmann-json3-dev; CMake:
/// `find_package(nlohmann_json 3)`, target `nlohmann_json::nlohmann_json`). It is an optional
/// header: the umbrella `<latent/latent.hpp>` does not include it, and nothing else in the
/// library depends on it.
///
/// ```text
/// latent::save(model, "model.json");                                     // any model below
/// auto m = latent::load<latent::gaussian_mixture>("model.json");
/// nlohmann::json j = latent::to_json(model);                             // the same, in memory
/// auto m2 = latent::from_json<latent::gaussian_mixture>(j);
/// ```
///
/// Models: `basic_gaussian_mixture` (every covariance type), `basic_factor_analysis`,
/// `basic_neyman_scott`, `basic_discrete_bayes_net`, `basic_fitted_vae` (a VAE's architecture
/// and trained weights; the VAE objective itself only views its training data),
/// `basic_linear_vae_params` (the linear VAE's parameters) and `basic_fitted_bayesian_mlp` (a
/// Bayesian MLP's architecture, standardization and variational parameters: build a model for
/// prediction from it with `basic_bayesian_mlp<S>(fitted)`), each for float and double.
///
/// The file is one JSON object:
///
/// | key | value |
/// |---|---|
/// | `format` | `"latent"` |
/// | `version` | `json_format_version` (1): a file of another version is refused |
/// | `model` | the model's name (`"gaussian_mixture"`, ...): a file of another model is refused |
/// | `scalar` | `"double"` or `"float"`: must be the loading type's scalar (no silent rounding) |
/// | `structure` | sizes and structural choices (K, d, covariance type, the graph, ...) |
/// | `options` | every option of the model, by name |
/// | `parameters` | the parameters; a matrix is an array of rows, a vector an array |
///
/// Numbers are written in the shortest decimal form that reads back to the same double, so a
/// loaded model is bit-identical to the saved one: its predictions and log-likelihoods are the
/// same doubles. A float parameter is written as its (exact) double value.
///
/// Loading validates everything before a model exists: a missing or ill-typed field, a wrong
/// shape, a non-finite number, an unknown enumeration name, and whatever the model's own
/// constructor and `set_params` refuse (weights not summing to 1, a covariance that is not
/// positive definite, a table row not summing to 1, ...) raise `latent::invalid_argument`
/// naming the field (as a path such as `parameters.covariances[1][0][2]`) and the problem.
/// Text that is not JSON, truncated or corrupted, raises `invalid_argument` too, never a
/// crash: arrays are only allocated to the sizes the file actually holds.
///
/// Other models: specialize `latent::json_traits<M>` (see `json_traits` below) after including
/// this header; `save`, `load`, `to_json` and `from_json` then accept M.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/bayesian_mlp/options.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/models/factor_analysis.hpp>
#include <latent/models/factor_analysis/linear_vae_layout.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/models/neyman_scott.hpp>
#include <latent/models/vae/options.hpp>
#include <latent/nn/layout.hpp>

#include <nlohmann/json.hpp>

#include <Eigen/Core>

#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace latent {

/// The version of the file format `save` writes and `load` reads.
inline constexpr int json_format_version = 1;

/// A trained variational autoencoder: what `basic_vae<S>` needs besides data. The objective
/// `basic_vae` views its training data, so it is not itself saved; save this instead, and on
/// new data `x` (d rows) use `basic_vae<S> v(x, fitted.options); v.encode(fitted.params, x)`.
template <Scalar S>
struct basic_fitted_vae {
  using scalar_type = S;
  Eigen::Index dim = 0;  ///< d, the data dimension
  vae_options options;   ///< the architecture and bound
  vector_t<S> params;    ///< the flat parameter vector [encoder | decoder | log_variance]
};
using fitted_vae = basic_fitted_vae<double>;

/// How a model type is written and read: specialize for a new model with
///  - `static constexpr std::string_view name` (the file's `model`),
///  - `static void write(const M&, nlohmann::json& file)` filling `structure`, `options` and
///    `parameters` (throw `invalid_argument` for a model that cannot be saved),
///  - `static M read(const nlohmann::json& file)` (use the `json_field` readers; throw
///    `invalid_argument` naming the field).
/// The scalar type is `typename M::scalar_type`.
template <class M>
struct json_traits;

/// A type `save`/`load` accept: one with a `json_traits` specialization.
template <class M>
concept JsonSerializable = requires(const M& m, nlohmann::json& j, const nlohmann::json& cj) {
  typename M::scalar_type;
  { json_traits<M>::name } -> std::convertible_to<std::string_view>;
  json_traits<M>::write(m, j);
  { json_traits<M>::read(cj) } -> std::same_as<M>;
};

/// Checked readers of one JSON value, for `json_traits::read`: each names `path` (e.g.
/// "parameters.weights[2]") in the `invalid_argument` it throws for a missing member, a wrong
/// type, a value out of range or a wrong shape.
namespace json_field {

using json = nlohmann::json;

template <class... Parts>
[[noreturn]] void fail(std::string_view path, const Parts&... parts) {
  throw_invalid("from_json", "field '", path, "' ", parts...);
}

inline std::string_view type_name(const json& j) { return j.type_name(); }

/// Member `key` of the object `j` (at `path`).
inline const json& member(const json& j, std::string_view path, const char* key) {
  if (!j.is_object()) fail(path, "must be an object, got ", type_name(j));
  const auto it = j.find(key);
  if (it == j.end()) fail(path.empty() ? std::string(key) : concat(path, ".", key), "is missing");
  return *it;
}

/// "path.key" (or "key" at the top).
inline std::string sub(std::string_view path, const char* key) {
  return path.empty() ? std::string(key) : concat(path, ".", key);
}
/// "path[i]".
inline std::string item(std::string_view path, std::size_t i) { return concat(path, "[", i, "]"); }

/// A finite number, as a double.
inline double number(const json& j, std::string_view path) {
  if (!j.is_number()) fail(path, "must be a number, got ", type_name(j));
  const double v = j.get<double>();
  if (!std::isfinite(v)) fail(path, "must be finite, got ", v);
  return v;
}

/// A finite number, in S (it must stay finite when rounded to S).
template <Scalar S>
S scalar(const json& j, std::string_view path) {
  const double v = number(j, path);
  const auto s = static_cast<S>(v);
  if (!std::isfinite(s)) fail(path, "is out of the range of float: ", v);
  return s;
}

/// An integer in [lo, hi].
inline std::int64_t integer(const json& j, std::string_view path, std::int64_t lo, std::int64_t hi) {
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) fail(path, "must be in [", lo, ", ", hi, "], got ", u);
    const auto v = static_cast<std::int64_t>(u);
    if (v < lo) fail(path, "must be in [", lo, ", ", hi, "], got ", v);
    return v;
  }
  if (!j.is_number_integer()) fail(path, "must be an integer, got ", type_name(j));
  const auto v = j.get<std::int64_t>();
  if (v < lo || v > hi) fail(path, "must be in [", lo, ", ", hi, "], got ", v);
  return v;
}

/// A boolean (true or false, not a number).
inline bool boolean(const json& j, std::string_view path) {
  if (!j.is_boolean()) fail(path, "must be true or false, got ", type_name(j));
  return j.get<bool>();
}

/// A string.
inline std::string string(const json& j, std::string_view path) {
  if (!j.is_string()) fail(path, "must be a string, got ", type_name(j));
  return j.get<std::string>();
}

/// A JSON array (its length not checked when `size` < 0).
inline const json& array(const json& j, std::string_view path, std::int64_t size = -1) {
  if (!j.is_array()) fail(path, "must be an array, got ", type_name(j));
  if (size >= 0 && j.size() != static_cast<std::size_t>(size))
    fail(path, "must have ", size, " entries, got ", j.size());
  return j;
}

/// An array of integers, each in [lo, hi] (layer widths, ...).
inline std::vector<Eigen::Index> integers(const json& j, std::string_view path, std::int64_t lo, std::int64_t hi) {
  array(j, path);
  std::vector<Eigen::Index> v;
  for (std::size_t i = 0; i < j.size(); ++i) v.push_back(integer(j[i], item(path, i), lo, hi));
  return v;
}

/// One of the names `names` (index i is the enumerator with value i).
template <class E, std::size_t N>
E enumeration(const json& j, std::string_view path, const std::string_view (&names)[N]) {
  const std::string s = string(j, path);
  for (std::size_t i = 0; i < N; ++i)
    if (s == names[i]) return static_cast<E>(i);
  std::string allowed;
  for (std::size_t i = 0; i < N; ++i) allowed += concat(i ? ", '" : "'", names[i], "'");
  fail(path, "must be one of ", allowed, ", got '", s, "'");
}

/// A vector of `size` finite numbers (any length if `size` < 0).
template <Scalar S>
vector_t<S> vector(const json& j, std::string_view path, std::int64_t size = -1) {
  array(j, path, size);
  vector_t<S> v(static_cast<Eigen::Index>(j.size()));
  for (std::size_t i = 0; i < j.size(); ++i) v(static_cast<Eigen::Index>(i)) = scalar<S>(j[i], item(path, i));
  return v;
}

/// A rows x cols matrix given as an array of `rows` rows of `cols` finite numbers.
template <Scalar S>
matrix_t<S> matrix(const json& j, std::string_view path, Eigen::Index rows, Eigen::Index cols) {
  array(j, path, rows);
  for (std::size_t r = 0; r < j.size(); ++r) array(j[r], item(path, r), cols);  // shapes before allocating
  matrix_t<S> m(rows, cols);
  for (std::size_t r = 0; r < j.size(); ++r)
    for (std::size_t c = 0; c < j[r].size(); ++c)
      m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = scalar<S>(j[r][c], item(item(path, r), c));
  return m;
}

/// Run a model's constructor or `set_params` on values read from a file, reporting its
/// `invalid_argument` as a problem of the file (at `path`).
template <class F>
decltype(auto) checked(std::string_view path, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const invalid_argument& e) {
    throw_invalid("from_json", "field '", path, "' is invalid: ", e.what());
  }
}

}  // namespace json_field

namespace detail {

using json = nlohmann::json;

template <Scalar S>
constexpr std::string_view json_scalar_name() {
  return std::is_same_v<S, float> ? "float" : std::is_same_v<S, double> ? "double" : "long double";
}

/// A vector as a JSON array (every entry must be finite: a file holds no NaN or infinity).
template <class Derived>
json json_vector(const Eigen::DenseBase<Derived>& v, std::string_view what) {
  json out = json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    const double x = static_cast<double>(v.derived().coeff(i));
    require(std::isfinite(x), "to_json", "'", what, "' entry ", i, " is ", x, ": only finite parameters can be saved");
    out.push_back(x);
  }
  return out;
}

/// A matrix as a JSON array of rows.
template <class Derived>
json json_matrix(const Eigen::DenseBase<Derived>& m, std::string_view what) {
  json out = json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r) out.push_back(json_vector(m.derived().row(r), what));
  return out;
}

inline constexpr std::string_view covariance_names[] = {"full", "diagonal", "spherical", "tied"};
inline constexpr std::string_view mixture_init_names[] = {"kmeans++", "random_points"};
inline constexpr std::string_view noise_names[] = {"diagonal", "isotropic"};
inline constexpr std::string_view missing_names[] = {"reject", "allow"};
inline constexpr std::string_view prior_names[] = {"estimated", "fixed"};
inline constexpr std::string_view unseen_names[] = {"keep_previous", "uniform"};
inline constexpr std::string_view activation_names[] = {"identity", "relu", "tanh", "sigmoid", "softplus", "elu"};
inline constexpr std::string_view likelihood_names[] = {"bernoulli", "gaussian", "gaussian_shared"};

inline constexpr std::string_view bound_names[] = {"elbo", "iwae"};
inline constexpr std::string_view bnn_likelihood_names[] = {"gaussian", "heteroscedastic_gaussian", "categorical"};

/// The `missing_values` option, optional in a file (absent: `reject`, the default).
template <class Options>
void json_read_missing(const nlohmann::json& options, Options& o) {
  if (const auto it = options.find("missing_values"); it != options.end())
    o.missing_values = json_field::enumeration<missing_policy>(*it, "options.missing_values", missing_names);
}

/// names[e], or throw if `e` is not one of the enumerators.
template <class E, std::size_t N>
std::string_view json_enum_name(E e, const std::string_view (&names)[N], std::string_view what) {
  const auto i = static_cast<std::size_t>(e);
  require(i < N, "to_json", "'", what, "' is not a valid enumerator (", i, ")");
  return names[i];
}

/// `j` as indented text with every array of numbers or strings on one line (a matrix is one
/// line per row), for files people read.
inline void json_write_pretty(const json& j, std::string& out, int indent) {
  const auto flat = [](const json& a) {
    for (const auto& e : a)
      if (e.is_structured()) return false;
    return true;
  };
  const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
  if (j.is_object() && !j.empty()) {
    out += "{\n";
    std::size_t i = 0;
    for (auto it = j.begin(); it != j.end(); ++it, ++i) {
      out += pad + json(it.key()).dump() + ": ";
      json_write_pretty(it.value(), out, indent + 2);
      out += i + 1 < j.size() ? ",\n" : "\n";
    }
    out += std::string(static_cast<std::size_t>(indent), ' ') + "}";
  } else if (j.is_array() && !j.empty() && !flat(j)) {
    out += "[\n";
    for (std::size_t i = 0; i < j.size(); ++i) {
      out += pad;
      json_write_pretty(j[i], out, indent + 2);
      out += i + 1 < j.size() ? ",\n" : "\n";
    }
    out += std::string(static_cast<std::size_t>(indent), ' ') + "]";
  } else if (j.is_array()) {
    out += "[";
    for (std::size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + j[i].dump();
    out += "]";
  } else {
    out += j.dump();
  }
}

/// The largest index a file may give a size (dimensions, counts): 2^31 - 1.
inline constexpr std::int64_t json_max_size = std::numeric_limits<int>::max();

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Gaussian mixture
// ---------------------------------------------------------------------------------------------

/// `basic_gaussian_mixture<S>`: structure {components, dim, covariance_type}, options (every
/// member of `gaussian_mixture_options`), parameters {weights (K), means (K arrays of d),
/// covariances (K matrices d x d, full whatever the type)}.
template <Scalar S>
struct json_traits<basic_gaussian_mixture<S>> {
  using model = basic_gaussian_mixture<S>;
  static constexpr std::string_view name = "gaussian_mixture";

  static void write(const model& m, nlohmann::json& f) {
    require(m.has_params(), "to_json", "the gaussian_mixture has no parameters yet: fit or initialize it first");
    const auto& o = m.options();
    const auto& p = m.params();
    f["structure"] = {{"components", m.components()},
                      {"dim", m.dim()},
                      {"covariance_type", detail::json_enum_name(m.covariance_kind(), detail::covariance_names,
                                                                 "covariance_type")}};
    f["options"] = {{"reg_covar", o.reg_covar},
                    {"init", detail::json_enum_name(o.init, detail::mixture_init_names, "init")},
                    {"kmeans_iterations", o.kmeans_iterations},
                    {"min_component_weight", o.min_component_weight},
                    {"missing_values", detail::json_enum_name(o.missing_values, detail::missing_names, "missing_values")}};
    nlohmann::json covs = nlohmann::json::array();
    for (const auto& c : p.covariances) covs.push_back(detail::json_matrix(c, "covariances"));
    f["parameters"] = {{"weights", detail::json_vector(p.weights, "weights")},
                       {"means", detail::json_matrix(p.means.transpose(), "means")},
                       {"covariances", std::move(covs)}};
  }

  static model read(const nlohmann::json& f) {
    namespace jf = json_field;
    const auto& st = jf::member(f, "", "structure");
    const auto K = jf::integer(jf::member(st, "structure", "components"), "structure.components", 1,
                               detail::json_max_size);
    const auto d = jf::integer(jf::member(st, "structure", "dim"), "structure.dim", 1, detail::json_max_size);
    const auto type = jf::enumeration<covariance_type>(jf::member(st, "structure", "covariance_type"),
                                                       "structure.covariance_type", detail::covariance_names);
    const auto& op = jf::member(f, "", "options");
    gaussian_mixture_options o;
    o.reg_covar = jf::number(jf::member(op, "options", "reg_covar"), "options.reg_covar");
    o.init = jf::enumeration<mixture_init>(jf::member(op, "options", "init"), "options.init",
                                           detail::mixture_init_names);
    o.kmeans_iterations = static_cast<std::size_t>(
        jf::integer(jf::member(op, "options", "kmeans_iterations"), "options.kmeans_iterations", 0,
                    static_cast<std::int64_t>(max_iteration_count)));
    o.min_component_weight =
        jf::number(jf::member(op, "options", "min_component_weight"), "options.min_component_weight");
    detail::json_read_missing(op, o);
    const auto& pa = jf::member(f, "", "parameters");
    basic_gaussian_mixture_params<S> p;
    p.weights = jf::vector<S>(jf::member(pa, "parameters", "weights"), "parameters.weights", K);
    p.means = jf::matrix<S>(jf::member(pa, "parameters", "means"), "parameters.means", K, d).transpose();
    const auto& covs = jf::array(jf::member(pa, "parameters", "covariances"), "parameters.covariances", K);
    for (std::size_t k = 0; k < covs.size(); ++k)
      p.covariances.push_back(jf::matrix<S>(covs[k], jf::item("parameters.covariances", k), d, d));
    model m = jf::checked("options", [&] { return model(K, type, o); });
    jf::checked("parameters", [&] { m.set_params(p); });
    return m;
  }
};

// ---------------------------------------------------------------------------------------------
// Factor analysis
// ---------------------------------------------------------------------------------------------

/// `basic_factor_analysis<S>`: structure {factors, dim}, options {noise, uniqueness_floor},
/// parameters {loadings (d rows of k), mean (d), uniquenesses (d)}.
template <Scalar S>
struct json_traits<basic_factor_analysis<S>> {
  using model = basic_factor_analysis<S>;
  static constexpr std::string_view name = "factor_analysis";

  static void write(const model& m, nlohmann::json& f) {
    require(m.has_params(), "to_json", "the factor_analysis has no parameters yet: fit or initialize it first");
    const auto& p = m.params();
    f["structure"] = {{"factors", m.factors()}, {"dim", m.dim()}};
    f["options"] = {{"noise", detail::json_enum_name(m.options().noise, detail::noise_names, "noise")},
                    {"uniqueness_floor", m.options().uniqueness_floor},
                    {"missing_values",
                     detail::json_enum_name(m.options().missing_values, detail::missing_names, "missing_values")}};
    f["parameters"] = {{"loadings", detail::json_matrix(p.loadings, "loadings")},
                       {"mean", detail::json_vector(p.mean, "mean")},
                       {"uniquenesses", detail::json_vector(p.uniquenesses, "uniquenesses")}};
  }

  static model read(const nlohmann::json& f) {
    namespace jf = json_field;
    const auto& st = jf::member(f, "", "structure");
    const auto k = jf::integer(jf::member(st, "structure", "factors"), "structure.factors", 1, detail::json_max_size);
    const auto d = jf::integer(jf::member(st, "structure", "dim"), "structure.dim", 1, detail::json_max_size);
    const auto& op = jf::member(f, "", "options");
    factor_analysis_options o;
    o.noise = jf::enumeration<noise_model>(jf::member(op, "options", "noise"), "options.noise", detail::noise_names);
    o.uniqueness_floor = jf::number(jf::member(op, "options", "uniqueness_floor"), "options.uniqueness_floor");
    detail::json_read_missing(op, o);
    const auto& pa = jf::member(f, "", "parameters");
    basic_factor_analysis_params<S> p;
    p.loadings = jf::matrix<S>(jf::member(pa, "parameters", "loadings"), "parameters.loadings", d, k);
    p.mean = jf::vector<S>(jf::member(pa, "parameters", "mean"), "parameters.mean", d);
    p.uniquenesses = jf::vector<S>(jf::member(pa, "parameters", "uniquenesses"), "parameters.uniquenesses", d);
    model m = jf::checked("options", [&] { return model(k, o); });
    jf::checked("parameters", [&] { m.set_params(p); });
    return m;
  }
};

// ---------------------------------------------------------------------------------------------
// Neyman-Scott / random effects
// ---------------------------------------------------------------------------------------------

/// `basic_neyman_scott<S>`: structure {replicates}, options {prior}, parameters {theta, mu, tau2}.
template <Scalar S>
struct json_traits<basic_neyman_scott<S>> {
  using model = basic_neyman_scott<S>;
  static constexpr std::string_view name = "neyman_scott";

  static void write(const model& m, nlohmann::json& f) {
    const auto& p = m.params();
    f["structure"] = {{"replicates", m.replicates()}};
    f["options"] = {{"prior", detail::json_enum_name(m.options().prior, detail::prior_names, "prior")}};
    for (const auto& [key, v] : {std::pair{"theta", p.theta}, {"mu", p.mu}, {"tau2", p.tau2}})
      require(std::isfinite(v), "to_json", "'", key, "' is ", v, ": only finite parameters can be saved");
    f["parameters"] = {{"theta", static_cast<double>(p.theta)},
                       {"mu", static_cast<double>(p.mu)},
                       {"tau2", static_cast<double>(p.tau2)}};
  }

  static model read(const nlohmann::json& f) {
    namespace jf = json_field;
    const auto& st = jf::member(f, "", "structure");
    const auto K = jf::integer(jf::member(st, "structure", "replicates"), "structure.replicates", 2,
                               detail::json_max_size);
    neyman_scott_options o;
    o.prior = jf::enumeration<neyman_scott_prior>(jf::member(jf::member(f, "", "options"), "options", "prior"),
                                                  "options.prior", detail::prior_names);
    const auto& pa = jf::member(f, "", "parameters");
    basic_neyman_scott_params<S> p;
    p.theta = jf::scalar<S>(jf::member(pa, "parameters", "theta"), "parameters.theta");
    p.mu = jf::scalar<S>(jf::member(pa, "parameters", "mu"), "parameters.mu");
    p.tau2 = jf::scalar<S>(jf::member(pa, "parameters", "tau2"), "parameters.tau2");
    return jf::checked("parameters", [&] { return model(K, p, o); });
  }
};

// ---------------------------------------------------------------------------------------------
// Discrete Bayesian network
// ---------------------------------------------------------------------------------------------

/// `basic_discrete_bayes_net<S>`: structure {variables: [{name, states, parents}]}, options
/// (every member of `discrete_bayes_net_options`), parameters {tables: one P_v x K_v matrix per
/// variable, in variable order}.
template <Scalar S>
struct json_traits<basic_discrete_bayes_net<S>> {
  using model = basic_discrete_bayes_net<S>;
  static constexpr std::string_view name = "discrete_bayes_net";

  static void write(const model& m, nlohmann::json& f) {
    nlohmann::json vars = nlohmann::json::array();
    for (const auto& v : m.variables()) vars.push_back({{"name", v.name}, {"states", v.states}, {"parents", v.parents}});
    f["structure"] = {{"variables", std::move(vars)}};
    const auto& o = m.options();
    f["options"] = {{"pseudo_count", o.pseudo_count},
                    {"unseen", detail::json_enum_name(o.unseen, detail::unseen_names, "unseen")},
                    {"enumeration_limit", o.enumeration_limit},
                    {"table_tolerance", o.table_tolerance}};
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : m.params().tables) tables.push_back(detail::json_matrix(t, "tables"));
    f["parameters"] = {{"tables", std::move(tables)}};
  }

  static model read(const nlohmann::json& f) {
    namespace jf = json_field;
    const auto& vs = jf::array(jf::member(jf::member(f, "", "structure"), "structure", "variables"),
                               "structure.variables");
    std::vector<bn_variable> vars;
    for (std::size_t i = 0; i < vs.size(); ++i) {
      const std::string at = jf::item("structure.variables", i);
      bn_variable v;
      v.name = jf::string(jf::member(vs[i], at, "name"), jf::sub(at, "name"));
      v.states = static_cast<int>(jf::integer(jf::member(vs[i], at, "states"), jf::sub(at, "states"), 1,
                                              detail::json_max_size));
      const auto& ps = jf::array(jf::member(vs[i], at, "parents"), jf::sub(at, "parents"));
      for (std::size_t j = 0; j < ps.size(); ++j) v.parents.push_back(jf::string(ps[j], jf::item(jf::sub(at, "parents"), j)));
      vars.push_back(std::move(v));
    }
    const auto& op = jf::member(f, "", "options");
    discrete_bayes_net_options o;
    o.pseudo_count = jf::number(jf::member(op, "options", "pseudo_count"), "options.pseudo_count");
    o.unseen = jf::enumeration<unseen_parent_policy>(jf::member(op, "options", "unseen"), "options.unseen",
                                                     detail::unseen_names);
    o.enumeration_limit = static_cast<std::size_t>(jf::integer(jf::member(op, "options", "enumeration_limit"),
                                                               "options.enumeration_limit", 1,
                                                               std::numeric_limits<std::int64_t>::max()));
    o.table_tolerance = jf::number(jf::member(op, "options", "table_tolerance"), "options.table_tolerance");
    // The graph first (it computes P_v and refuses tables too large), then the tables.
    const detail::bn_graph g = jf::checked("structure", [&] { return detail::bn_graph(vars); });
    const auto& ts = jf::array(jf::member(jf::member(f, "", "parameters"), "parameters", "tables"),
                               "parameters.tables", static_cast<std::int64_t>(vars.size()));
    std::vector<matrix_t<S>> tables;
    for (std::size_t v = 0; v < ts.size(); ++v)
      tables.push_back(jf::matrix<S>(ts[v], jf::item("parameters.tables", v), g.rows[v], vars[v].states));
    return jf::checked("parameters", [&] { return model(std::move(vars), std::move(tables), o); });
  }
};

// ---------------------------------------------------------------------------------------------
// Variational autoencoders
// ---------------------------------------------------------------------------------------------

/// `basic_fitted_vae<S>`: structure {dim}, options (every member of `vae_options`), parameters
/// {encoder, decoder, log_variance}: the three segments of the flat vector (each network's
/// layout is nn/layout.hpp's: per layer vec(W_l) column-major, then b_l).
template <Scalar S>
struct json_traits<basic_fitted_vae<S>> {
  using model = basic_fitted_vae<S>;
  static constexpr std::string_view name = "vae";

  /// The lengths of the three segments for dimension d and options o, or an error naming
  /// what is wrong. Widths are first bounded by `available` (the parameter count in hand):
  /// a layer of width w has w biases, so a valid file has no width above it, and the
  /// products below cannot overflow.
  static std::array<Eigen::Index, 3> segment_sizes(Eigen::Index d, const vae_options& o, std::string_view fn,
                                                   Eigen::Index available) {
    detail::validate_vae_options(o, fn);
    require(d >= 1, fn, "'dim' must be >= 1, got ", d);
    const auto bound = [&](Eigen::Index w, std::string_view what) {
      require(w <= available, fn, "'", what, "' (", w, ") exceeds the ", available,
              " parameters given: the architecture does not match the parameters");
    };
    bound(d, "dim");
    bound(2 * o.latent_dim, "latent_dim");
    for (auto w : o.encoder_hidden) bound(w, "encoder_hidden");
    for (auto w : o.decoder_hidden) bound(w, "decoder_hidden");
    return {detail::vae_encoder_layout(d, o).num_parameters(), detail::vae_decoder_layout(d, o).num_parameters(),
            detail::vae_log_variance_count(d, o.likelihood)};
  }

  static nlohmann::json options_json(const vae_options& o) {
    return {{"latent_dim", o.latent_dim},
            {"encoder_hidden", o.encoder_hidden},
            {"decoder_hidden", o.decoder_hidden},
            {"encoder_activation", detail::json_enum_name(o.encoder_activation, detail::activation_names,
                                                          "encoder_activation")},
            {"decoder_activation", detail::json_enum_name(o.decoder_activation, detail::activation_names,
                                                          "decoder_activation")},
            {"likelihood", detail::json_enum_name(o.likelihood, detail::likelihood_names, "likelihood")},
            {"bound", detail::json_enum_name(o.bound, detail::bound_names, "bound")},
            {"iwae_samples", o.iwae_samples}};
  }

  static void write(const model& m, nlohmann::json& f) {
    const auto n = segment_sizes(m.dim, m.options, "to_json", m.params.size());
    require(m.params.size() == n[0] + n[1] + n[2], "to_json", "the vae's 'params' must have ", n[0] + n[1] + n[2],
            " entries for its dimension and options, got ", m.params.size());
    f["structure"] = {{"dim", m.dim}};
    f["options"] = options_json(m.options);
    f["parameters"] = {{"encoder", detail::json_vector(m.params.head(n[0]), "encoder")},
                       {"decoder", detail::json_vector(m.params.segment(n[0], n[1]), "decoder")},
                       {"log_variance", detail::json_vector(m.params.tail(n[2]), "log_variance")}};
  }

  static model read(const nlohmann::json& f) {
    namespace jf = json_field;
    model m;
    m.dim = jf::integer(jf::member(jf::member(f, "", "structure"), "structure", "dim"), "structure.dim", 1,
                        detail::json_max_size);
    const auto& op = jf::member(f, "", "options");
    auto& o = m.options;
    o.latent_dim = jf::integer(jf::member(op, "options", "latent_dim"), "options.latent_dim", 1, detail::json_max_size);
    o.encoder_hidden = jf::integers(jf::member(op, "options", "encoder_hidden"), "options.encoder_hidden", 1,
                                    detail::json_max_size);
    o.decoder_hidden = jf::integers(jf::member(op, "options", "decoder_hidden"), "options.decoder_hidden", 1,
                                    detail::json_max_size);
    o.encoder_activation = jf::enumeration<nn::activation>(jf::member(op, "options", "encoder_activation"),
                                                           "options.encoder_activation", detail::activation_names);
    o.decoder_activation = jf::enumeration<nn::activation>(jf::member(op, "options", "decoder_activation"),
                                                           "options.decoder_activation", detail::activation_names);
    o.likelihood = jf::enumeration<vae_likelihood>(jf::member(op, "options", "likelihood"), "options.likelihood",
                                                   detail::likelihood_names);
    o.bound = jf::enumeration<vae_bound>(jf::member(op, "options", "bound"), "options.bound", detail::bound_names);
    o.iwae_samples = jf::integer(jf::member(op, "options", "iwae_samples"), "options.iwae_samples", 1,
                                 static_cast<std::int64_t>(max_sample_count));
    const auto& pa = jf::member(f, "", "parameters");
    const auto& enc = jf::array(jf::member(pa, "parameters", "encoder"), "parameters.encoder");
    const auto& dec = jf::array(jf::member(pa, "parameters", "decoder"), "parameters.decoder");
    const auto& lv = jf::array(jf::member(pa, "parameters", "log_variance"), "parameters.log_variance");
    const auto given = static_cast<Eigen::Index>(enc.size() + dec.size() + lv.size());
    const auto n = jf::checked("options", [&] { return segment_sizes(m.dim, o, "vae", given); });
    const vector_t<S> e = jf::vector<S>(enc, "parameters.encoder", n[0]);
    const vector_t<S> g = jf::vector<S>(dec, "parameters.decoder", n[1]);
    const vector_t<S> l = jf::vector<S>(lv, "parameters.log_variance", n[2]);
    m.params.resize(given);
    m.params << e, g, l;
    return m;
  }
};

/// `basic_linear_vae_params<S>` (the linear VAE's trained parameters; d and k are their
/// shapes): structure {dim, latent_dim}, no options, parameters {loadings (d rows of k), mean,
/// log_uniquenesses, encoder_weights (k rows of d), encoder_bias, encoder_log_scales}. Use them
/// on data with `basic_linear_vae<S>(x, k).pack(params)`.
template <Scalar S>
struct json_traits<basic_linear_vae_params<S>> {
  using model = basic_linear_vae_params<S>;
  static constexpr std::string_view name = "linear_vae";

  static void write(const model& p, nlohmann::json& f) {
    const Eigen::Index d = p.loadings.rows(), k = p.loadings.cols();
    require(d >= 2 && k >= 1 && k < d, "to_json", "the linear_vae's 'loadings' must be d x k with 1 <= k < d, got ", d,
            " x ", k);
    require_shape(p.mean, d, 1, "to_json", "mean");
    require_shape(p.log_uniquenesses, d, 1, "to_json", "log_uniquenesses");
    require_shape(p.encoder_weights, k, d, "to_json", "encoder_weights");
    require_shape(p.encoder_bias, k, 1, "to_json", "encoder_bias");
    require_shape(p.encoder_log_scales, k, 1, "to_json", "encoder_log_scales");
    f["structure"] = {{"dim", d}, {"latent_dim", k}};
    f["options"] = nlohmann::json::object();
    f["parameters"] = {{"loadings", detail::json_matrix(p.loadings, "loadings")},
                       {"mean", detail::json_vector(p.mean, "mean")},
                       {"log_uniquenesses", detail::json_vector(p.log_uniquenesses, "log_uniquenesses")},
                       {"encoder_weights", detail::json_matrix(p.encoder_weights, "encoder_weights")},
                       {"encoder_bias", detail::json_vector(p.encoder_bias, "encoder_bias")},
                       {"encoder_log_scales", detail::json_vector(p.encoder_log_scales, "encoder_log_scales")}};
  }

  static model read(const nlohmann::json& f) {
    namespace jf = json_field;
    const auto& st = jf::member(f, "", "structure");
    const auto d = jf::integer(jf::member(st, "structure", "dim"), "structure.dim", 2, detail::json_max_size);
    const auto k = jf::integer(jf::member(st, "structure", "latent_dim"), "structure.latent_dim", 1, d - 1);
    const auto& pa = jf::member(f, "", "parameters");
    model p;
    p.loadings = jf::matrix<S>(jf::member(pa, "parameters", "loadings"), "parameters.loadings", d, k);
    p.mean = jf::vector<S>(jf::member(pa, "parameters", "mean"), "parameters.mean", d);
    p.log_uniquenesses = jf::vector<S>(jf::member(pa, "parameters", "log_uniquenesses"),
                                       "parameters.log_uniquenesses", d);
    p.encoder_weights = jf::matrix<S>(jf::member(pa, "parameters", "encoder_weights"), "parameters.encoder_weights",
                                      k, d);
    p.encoder_bias = jf::vector<S>(jf::member(pa, "parameters", "encoder_bias"), "parameters.encoder_bias", k);
    p.encoder_log_scales = jf::vector<S>(jf::member(pa, "parameters", "encoder_log_scales"),
                                         "parameters.encoder_log_scales", k);
    return p;
  }
};

// ---------------------------------------------------------------------------------------------
// Bayesian MLP
// ---------------------------------------------------------------------------------------------

/// `basic_fitted_bayesian_mlp<S>`: structure {input_dim, output_dim}, options (every member of
/// `bnn_options`, the prior as an object {scale, mixture_weight, second_scale}), parameters
/// {input_shift, input_scale, target_shift, target_scale (empty for categorical), weight_mean
/// and weight_rho (P each, in nn/layout.hpp's order), log_noise_variance (m for a gaussian
/// likelihood with learned noise, else empty)}.
template <Scalar S>
struct json_traits<basic_fitted_bayesian_mlp<S>> {
  using model = basic_fitted_bayesian_mlp<S>;
  static constexpr std::string_view name = "bayesian_mlp";

  /// {P, the number of log noise variances} for dimensions d, m and options o, or an error
  /// naming what is wrong. Widths are first bounded by `available` (the parameter count in
  /// hand): a layer of width w has w biases, so a valid file has no width above it.
  static std::array<Eigen::Index, 2> sizes(Eigen::Index d, Eigen::Index m, const bnn_options& o, std::string_view fn,
                                           Eigen::Index available) {
    detail::validate_bnn_options(o, fn);
    const bool categorical = o.likelihood == bnn_likelihood::categorical;
    require(d >= 1, fn, "'input_dim' must be >= 1, got ", d);
    require(m >= (categorical ? 2 : 1), fn, "'output_dim' must be >= ", categorical ? 2 : 1, ", got ", m);
    require(!categorical || o.num_classes == 0 || o.num_classes == m, fn, "option 'num_classes' (", o.num_classes,
            ") differs from 'output_dim' (", m, ")");
    const auto bound = [&](Eigen::Index w, std::string_view what) {
      require(w <= available, fn, "'", what, "' (", w, ") exceeds the ", available,
              " weights given: the architecture does not match the parameters");
    };
    bound(d, "input_dim");
    bound(m, "output_dim");
    for (auto w : o.hidden) bound(w, "hidden");
    const Eigen::Index outputs = o.likelihood == bnn_likelihood::heteroscedastic_gaussian ? 2 * m : m;
    const Eigen::Index noise = o.likelihood == bnn_likelihood::gaussian && o.learn_noise ? m : 0;
    return {detail::bnn_layout(d, outputs, o).num_parameters(), noise};
  }

  static nlohmann::json options_json(const bnn_options& o) {
    return {{"hidden", o.hidden},
            {"activation", detail::json_enum_name(o.activation, detail::activation_names, "activation")},
            {"likelihood", detail::json_enum_name(o.likelihood, detail::bnn_likelihood_names, "likelihood")},
            {"num_classes", o.num_classes},
            {"prior", {{"scale", o.prior.scale},
                       {"mixture_weight", o.prior.mixture_weight},
                       {"second_scale", o.prior.second_scale}}},
            {"initial_scale", o.initial_scale},
            {"learn_noise", o.learn_noise},
            {"noise_variance", o.noise_variance},
            {"standardize", o.standardize},
            {"local_reparameterization", o.local_reparameterization}};
  }

  static void write(const model& f, nlohmann::json& j) {
    const auto n = sizes(f.input_dim, f.output_dim, f.options, "to_json", f.params.size());
    require(f.params.size() == 2 * n[0] + n[1], "to_json", "the bayesian_mlp's 'params' must have ", 2 * n[0] + n[1],
            " entries for its dimensions and options, got ", f.params.size());
    const Eigen::Index ym = f.options.likelihood == bnn_likelihood::categorical ? 0 : f.output_dim;
    require_shape(f.input_shift, f.input_dim, 1, "to_json", "input_shift");
    require_shape(f.input_scale, f.input_dim, 1, "to_json", "input_scale");
    require_shape(f.target_shift, ym, 1, "to_json", "target_shift");
    require_shape(f.target_scale, ym, 1, "to_json", "target_scale");
    j["structure"] = {{"input_dim", f.input_dim}, {"output_dim", f.output_dim}};
    j["options"] = options_json(f.options);
    j["parameters"] = {{"input_shift", detail::json_vector(f.input_shift, "input_shift")},
                       {"input_scale", detail::json_vector(f.input_scale, "input_scale")},
                       {"target_shift", detail::json_vector(f.target_shift, "target_shift")},
                       {"target_scale", detail::json_vector(f.target_scale, "target_scale")},
                       {"weight_mean", detail::json_vector(f.params.head(n[0]), "weight_mean")},
                       {"weight_rho", detail::json_vector(f.params.segment(n[0], n[0]), "weight_rho")},
                       {"log_noise_variance", detail::json_vector(f.params.tail(n[1]), "log_noise_variance")}};
  }

  static bnn_options read_options(const nlohmann::json& op) {
    namespace jf = json_field;
    const auto get = [&](const char* key) -> const nlohmann::json& { return jf::member(op, "options", key); };
    bnn_options o;
    o.hidden = jf::integers(get("hidden"), "options.hidden", 1, detail::json_max_size);
    o.activation = jf::enumeration<nn::activation>(get("activation"), "options.activation", detail::activation_names);
    o.likelihood =
        jf::enumeration<bnn_likelihood>(get("likelihood"), "options.likelihood", detail::bnn_likelihood_names);
    o.num_classes = jf::integer(get("num_classes"), "options.num_classes", 0, detail::json_max_size);
    const auto& pr = get("prior");
    o.prior.scale = jf::number(jf::member(pr, "options.prior", "scale"), "options.prior.scale");
    o.prior.mixture_weight =
        jf::number(jf::member(pr, "options.prior", "mixture_weight"), "options.prior.mixture_weight");
    o.prior.second_scale = jf::number(jf::member(pr, "options.prior", "second_scale"), "options.prior.second_scale");
    o.initial_scale = jf::number(get("initial_scale"), "options.initial_scale");
    o.learn_noise = jf::boolean(get("learn_noise"), "options.learn_noise");
    o.noise_variance = jf::number(get("noise_variance"), "options.noise_variance");
    o.standardize = jf::boolean(get("standardize"), "options.standardize");
    o.local_reparameterization = jf::boolean(get("local_reparameterization"), "options.local_reparameterization");
    return o;
  }

  static model read(const nlohmann::json& file) {
    namespace jf = json_field;
    model f;
    const auto& st = jf::member(file, "", "structure");
    f.input_dim = jf::integer(jf::member(st, "structure", "input_dim"), "structure.input_dim", 1, detail::json_max_size);
    f.output_dim =
        jf::integer(jf::member(st, "structure", "output_dim"), "structure.output_dim", 1, detail::json_max_size);
    f.options = read_options(jf::member(file, "", "options"));
    const auto& pa = jf::member(file, "", "parameters");
    const auto get = [&](const char* key) -> const nlohmann::json& { return jf::member(pa, "parameters", key); };
    const auto& mean = jf::array(get("weight_mean"), "parameters.weight_mean");
    const auto n = jf::checked("options", [&] {
      return sizes(f.input_dim, f.output_dim, f.options, "bayesian_mlp", static_cast<Eigen::Index>(mean.size()));
    });
    const Eigen::Index ym = f.options.likelihood == bnn_likelihood::categorical ? 0 : f.output_dim;
    const auto scale = [&](const char* key, Eigen::Index size) {
      const std::string path = jf::sub("parameters", key);
      array_t<S> a = jf::vector<S>(get(key), path, size).array();
      for (Eigen::Index i = 0; i < a.size(); ++i)
        if (!(a(i) > S(0))) jf::fail(jf::item(path, static_cast<std::size_t>(i)), "must be positive, got ", a(i));
      return a;
    };
    f.input_shift = jf::vector<S>(get("input_shift"), "parameters.input_shift", f.input_dim).array();
    f.input_scale = scale("input_scale", f.input_dim);
    f.target_shift = jf::vector<S>(get("target_shift"), "parameters.target_shift", ym).array();
    f.target_scale = scale("target_scale", ym);
    const vector_t<S> mu = jf::vector<S>(mean, "parameters.weight_mean", n[0]);
    const vector_t<S> rho = jf::vector<S>(get("weight_rho"), "parameters.weight_rho", n[0]);
    const vector_t<S> noise = jf::vector<S>(get("log_noise_variance"), "parameters.log_noise_variance", n[1]);
    f.params.resize(2 * n[0] + n[1]);
    f.params << mu, rho, noise;
    return f;
  }
};

// ---------------------------------------------------------------------------------------------
// The entry points
// ---------------------------------------------------------------------------------------------

/// The model as a JSON document (see the file comment for its layout).
/// @throws invalid_argument if the model cannot be saved (no parameters yet, a non-finite
///         parameter)
template <JsonSerializable M>
nlohmann::json to_json(const M& model) {
  nlohmann::json f = nlohmann::json::object();
  f["format"] = "latent";
  f["version"] = json_format_version;
  f["model"] = json_traits<M>::name;
  f["scalar"] = detail::json_scalar_name<typename M::scalar_type>();
  json_traits<M>::write(model, f);
  return f;
}

/// The model a JSON document describes, validated (see the file comment).
/// @throws invalid_argument naming the field: not a latent file, another format version,
///         another model or scalar type, a missing or ill-typed field, a wrong shape, or
///         parameters the model refuses
template <JsonSerializable M>
M from_json(const nlohmann::json& file) {
  namespace jf = json_field;
  using S = typename M::scalar_type;
  if (!file.is_object()) throw_invalid("from_json", "a latent model file must hold a JSON object, got ", file.type_name());
  const std::string format = jf::string(jf::member(file, "", "format"), "format");
  require(format == "latent", "from_json", "field 'format' must be 'latent', got '", format,
          "': not a model file of this library");
  const auto version = jf::integer(jf::member(file, "", "version"), "version", std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max());
  require(version == json_format_version, "from_json", "the file has format version ", version,
          "; this library reads version ", json_format_version);
  const std::string model = jf::string(jf::member(file, "", "model"), "model");
  require(model == json_traits<M>::name, "from_json", "the file holds a '", model, "' model, not a '",
          json_traits<M>::name, "'");
  const std::string scalar = jf::string(jf::member(file, "", "scalar"), "scalar");
  require(scalar == detail::json_scalar_name<S>(), "from_json", "the file holds a model of scalar type '", scalar,
          "', not '", detail::json_scalar_name<S>(), "'");
  try {
    return json_traits<M>::read(file);
  } catch (const nlohmann::json::exception& e) {  // not expected: the readers check types first
    throw_invalid("from_json", "malformed model file: ", e.what());
  }
}

/// Write the model to `path` as indented JSON (replacing the file), a vector or a matrix row
/// on one line.
/// @throws invalid_argument if the model cannot be saved or the file cannot be written
template <JsonSerializable M>
void save(const M& model, const std::filesystem::path& path) {
  std::string text;
  detail::json_write_pretty(to_json(model), text, 0);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  require(static_cast<bool>(out), "save", "cannot open '", path.string(), "' for writing");
  out << text << '\n';
  out.flush();
  require(static_cast<bool>(out), "save", "writing '", path.string(), "' failed");
}

namespace detail {
/// `load` from a stream; `source` names it in messages.
template <JsonSerializable M>
M load_json(std::istream& in, std::string_view source) {
  nlohmann::json file;
  try {
    file = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_invalid("load", "'", source, "' is not valid JSON: ", e.what());
  }
  try {
    return from_json<M>(file);
  } catch (const invalid_argument& e) {
    throw_invalid("load", "'", source, "': ", e.what());
  }
}
}  // namespace detail

/// Read a model saved by `save` (or written by hand in the same layout).
/// @throws invalid_argument naming the file and the problem: it cannot be opened, is not
///         JSON (truncated, corrupted), or fails `from_json`
template <JsonSerializable M>
M load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "load", "cannot open '", path.string(), "'");
  return detail::load_json<M>(in, path.string());
}

}  // namespace latent
