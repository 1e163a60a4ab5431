#pragma once
/// @file
/// `basic_gaussian_mixture<S>`: a Gaussian mixture with full, diagonal, spherical or tied
/// covariance, fitted by EM; `gaussian_mixture` is the double-precision model.
///
/// Generative model, for observations x_n in R^d (the columns of a d x N matrix):
///
///     c_n ~ Categorical(pi_1..pi_K),     x_n | c_n = k ~ N(mu_k, Sigma_k)
///
/// E-step: r_nk = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j), in log space,
/// and the statistics of stats.hpp (moments about a reference point c).
/// M-step: pi_k = N_k / sum_j N_j, mu_k = c + s_k / N_k,
/// Sigma_k = S_k / N_k - (s_k / N_k)(s_k / N_k)^T + reg_covar I   (restricted by the type).
///
/// Cost per EM iteration: O(N K d^2) for full covariance (K triangular whitenings and K
/// lower-triangle scatters), O(N d^2 + N K d) for tied, O(N K d) for diagonal and spherical.
/// The E-step works on groups of observations held as rows, with everything a group needs in
/// registers or L1 (kernels.hpp); it reads the data once per iteration.
///
/// Precision: data, parameters, densities and responsibilities are in S; the E-step sums a
/// chunk of observations in S and adds every 2048 columns into the double statistics; the
/// M-step computes the parameters in double and rounds them to S; log-likelihoods are double.
///
/// Missing values (option `missing_values = missing_policy::allow`): NaN entries are missing at
/// random. A block of the E-step without NaN runs the path above unchanged (bit for bit); in a
/// block with NaN the complete columns still do, and the others are grouped by missingness
/// pattern and conditioned on their observed coordinates (missing.hpp). The objective is then
/// the observed-data log-likelihood, sum_n w_n log sum_k pi_k N(x_n,o | mu_k,o, Sigma_k,oo).

#include <latent/core/error.hpp>
#include <latent/core/missing.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/density.hpp>
#include <latent/models/gaussian_mixture/estep.hpp>
#include <latent/models/gaussian_mixture/initialization.hpp>
#include <latent/models/gaussian_mixture/kernels.hpp>
#include <latent/models/gaussian_mixture/missing.hpp>
#include <latent/models/gaussian_mixture/mstep.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/models/gaussian_mixture/params.hpp>
#include <latent/models/gaussian_mixture/stats.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <random>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace latent {

/// A draw from a mixture with its latent components (`sample_joint`).
template <Scalar S>
struct basic_gaussian_mixture_sample {
  matrix_t<S> x;           ///< d x n observations
  Eigen::VectorXi labels;  ///< n: the component each column was drawn from
};
using gaussian_mixture_sample = basic_gaussian_mixture_sample<double>;

/// A Gaussian mixture model in scalar type `S`; satisfies `EMModel` (fit it with `latent::em`).
///
/// @code
/// latent::gaussian_mixture gmm(3, latent::covariance_type::full);
/// std::mt19937_64 rng(42);
/// auto fit = latent::em(gmm, x, rng, {.restarts = 5});   // x: d x N, observations are columns
/// Eigen::VectorXi labels = gmm.labels(x);
/// @endcode
template <Scalar S>
class basic_gaussian_mixture {
  using cache_type = detail::mixture::cache<S>;
  using estep_type = detail::mixture::estep<S>;

 public:
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using data_type = basic_observations<S>;
  /// The E-step reads observation weights (`x.weight(n)`), so the solvers accept weighted data.
  static constexpr bool supports_weights = true;
  using params_type = basic_gaussian_mixture_params<S>;
  using stats_type = basic_gaussian_mixture_stats<S>;
  using sample_type = basic_gaussian_mixture_sample<S>;

  /// A mixture of `components` Gaussians with the given covariance restriction, without
  /// parameters yet (call `initialize`, `set_params`, or `em(model, x, rng)`).
  /// @throws invalid_argument if components == 0 or an option is out of range.
  explicit basic_gaussian_mixture(Eigen::Index components, covariance_type type = covariance_type::full,
                                  gaussian_mixture_options options = {})
      : k_(components), type_(type), opts_(options) {
    constexpr std::string_view fn = "gaussian_mixture";
    detail::require(components > 0, fn, "argument 'components' must be positive, got ", components);
    detail::require(std::isfinite(opts_.reg_covar) && opts_.reg_covar >= 0.0, fn,
                    "option 'reg_covar' must be finite and >= 0, got ", opts_.reg_covar);
    detail::require(std::isfinite(opts_.min_component_weight) && opts_.min_component_weight >= 0.0 &&
                        opts_.min_component_weight < 1.0,
                    fn, "option 'min_component_weight' must be in [0, 1), got ", opts_.min_component_weight);
    detail::require_count(opts_.kmeans_iterations, 0, max_iteration_count, fn, "kmeans_iterations");
  }

  /// Mixture with given parameters (validated as by `set_params`).
  basic_gaussian_mixture(const params_type& params, covariance_type type = covariance_type::full,
                         gaussian_mixture_options options = {})
      : basic_gaussian_mixture(params.weights.size(), type, options) {
    set_params(params);
  }

  Eigen::Index components() const { return k_; }
  Eigen::Index dim() const { return p_.means.rows(); }
  /// The covariance restriction (full, diagonal, spherical, tied).
  covariance_type covariance_kind() const { return type_; }
  [[deprecated("use covariance_kind()")]] covariance_type covariance() const { return type_; }
  const gaussian_mixture_options& options() const { return opts_; }
  bool has_params() const { return p_.means.size() > 0; }
  const params_type& params() const { return p_; }

  /// Set the parameters. They must match K and the covariance type: weights non-negative
  /// summing to 1 (within 1e-8; float: 1e-5), finite means, symmetric positive definite
  /// covariances of the type's structure. On any failure the model is unchanged.
  /// @throws invalid_argument naming the offending part.
  void set_params(const params_type& p) {
    constexpr std::string_view fn = "gaussian_mixture::set_params";
    detail::mixture::check_params(p, k_, type_, fn);
    const Eigen::Index d = p.means.rows();
    cache_type c;
    if (!detail::mixture::build_cache(p, type_, Eigen::MatrixXd(), detail::mixture::singular_tolerance<S>(d),
                                      opts_.reg_covar, c))
      detail::throw_invalid(fn, "'covariances' must be positive definite (Cholesky failed or numerically singular)");
    p_ = p;
    c_ = std::move(c);
  }

  // ---- EMModel ------------------------------------------------------------------------------

  Eigen::Index num_observations(const data_type& x) const { return x.size(); }
  double observation_weight(const data_type& x) const { return static_cast<double>(x.total_weight()); }

  /// Checks data once before a fit: d rows, finite entries, K <= N, enough observations for
  /// the covariance type (full: N > d; tied: N >= d + K), and a spread per coordinate whose
  /// squares the model can sum (see the model's page, "Bad input").
  /// @throws invalid_argument naming the problem.
  /// With `missing_values = allow`, NaN entries are accepted (not inf), but every coordinate
  /// must be observed somewhere and every column somewhere; the other checks apply to the data
  /// with each NaN replaced by its coordinate's observed mean.
  void validate(const data_type& x) const {
    constexpr std::string_view fn = "gaussian_mixture";
    require_params(fn);
    detail::require_rows(x.x(), dim(), fn, "x");
    if (has_missing(x.x())) {
      detail::require_missing_at_random_data(x, fn);
      const matrix_t<S> filled = detail::impute_observed_means(x);
      detail::mixture::check_fit_data(same_weights(x, filled), k_, type_, fn);
      return;
    }
    detail::mixture::check_fit_data(x, k_, type_, fn);
  }

  /// Statistics of no data, taken about the current mixture mean.
  stats_type zero_stats() const {
    require_params("gaussian_mixture::zero_stats");
    return estep_type::empty_stats(type_, k_, dim(), c_.center.template cast<accumulator_type>());
  }

  /// Adds the expected statistics of columns [begin, end) into `s` and returns their
  /// (weighted) objective sum_n w_n log sum_k pi_k N(x_n | mu_k, Sigma_k) e^{-eps/2 tr Sigma_k^{-1}}
  /// in double, with eps = reg_covar: the log-likelihood for eps = 0, else the penalized
  /// log-likelihood whose exact M-step is the regularized one (the responsibilities carry the
  /// same factor; see the model's page, "EM updates"). The E-step's scratch (a few chunks of
  /// data and the partial sums) lives only during the call.
  /// @throws invalid_argument if [begin, end) is not within the N columns of x, or `s` is not
  ///         statistics of this mixture (`zero_stats()`): another K, d or covariance type
  /// @throws numerical_error if the result is not finite: an observation so far from every
  ///         component that its density underflows S (the statistics are then unusable)
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    constexpr std::string_view fn = "gaussian_mixture::e_step";
    check_data(x, fn);
    detail::require(0 <= begin && begin <= end && end <= x.size(), fn, "the column range [", begin, ", ", end,
                    ") must lie within the N = ", x.size(), " columns of 'x'");
    detail::mixture::check_stats(s, k_, dim(), type_, fn);
    const double ll = has_missing(x.x().middleCols(begin, end - begin)) ? expectation_with_missing(x, begin, end, s)
                                                                        : expectation(x, begin, end, s);
    if (!std::isfinite(ll))
      throw numerical_error(concat(fn, ": the objective of columns [", begin, ", ", end, ") is ", ll,
                                   ": an observation is so far from every component that its density is not "
                                   "representable (see validate and the model's page, \"Bad input\")"));
    return ll;
  }

  /// M-step, computed in double from the statistics and rounded to S. Leaves the parameters
  /// unchanged and throws `numerical_error` if a covariance is not positive definite even
  /// with `reg_covar`, or is numerically singular (a conditional variance at the rounding
  /// level of the moments it was computed from, as when a component collapses onto d or
  /// fewer points with reg_covar = 0: its log-likelihood would be finite but meaningless), if
  /// the statistics hold no weight, or if they give non-finite parameters (overflow).
  /// @throws invalid_argument if `s` is not statistics of this mixture (see e_step).
  void m_step(const stats_type& s) {
    require_params("gaussian_mixture::m_step");
    detail::mixture::check_stats(s, k_, dim(), type_, "gaussian_mixture::m_step");
    auto [p, c] = maximized(s, p_);
    p_ = std::move(p);
    c_ = std::move(c);
  }

 private:
  /// The E-step proper (e_step without its checks).
  double expectation(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    const vector_t<S> center = s.center.template cast<S>();
    if constexpr (!std::is_same_v<S, accumulator_type>) {
      if (center.template cast<accumulator_type>() != s.center) {
        // A reference point S cannot represent (set by hand): sum about its rounding, then
        // merge, which shifts the moments exactly.
        stats_type t = estep_type::empty_stats(type_, k_, dim(), center.template cast<accumulator_type>());
        const double ll = expectation(x, begin, end, t);
        s += t;
        return ll;
      }
    }
    return estep_type::expectation(x, begin, end, type_, c_, p_, s);
  }

  /// True if missing values are allowed and `x` holds one (a NaN).
  template <class X>
  bool has_missing(const X& x) const {
    return opts_.missing_values == missing_policy::allow && x.hasNaN();
  }

  /// Observations `filled` with the weights of `x`.
  static data_type same_weights(const data_type& x, const matrix_t<S>& filled) {
    return x.weighted() ? data_type(filled, x.weights()) : data_type(filled);
  }

  /// The E-step over columns [begin, end) holding missing values: the complete columns by the
  /// complete-data E-step (gathered), the others by pattern (missing.hpp), in double.
  double expectation_with_missing(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    constexpr std::string_view fn = "gaussian_mixture::e_step";
    detail::mixture::pattern_conditional cond;
    return detail::e_step_by_pattern(
        x, begin, end, fn, [&](const data_type& xc, Eigen::Index n) { return expectation(xc, 0, n, s); },
        [&](const detail::missing_pattern& pat, const auto& xo, const auto& w) {
          if (!detail::mixture::condition_on_pattern(p_, type_, c_.penalty, pat, Eigen::MatrixXd(xo), true, cond))
            throw numerical_error(concat(fn, ": a covariance's observed block does not factor"));
          return detail::mixture::add_pattern_statistics(cond, pat, Eigen::VectorXd(w), s);
        });
  }

  /// The M-step from `s` with `previous` as the fallback of components without weight: the new
  /// parameters and their cache, the model untouched. @throws numerical_error (see m_step)
  std::pair<params_type, cache_type> maximized(const stats_type& s, const params_type& previous) const {
    auto next = detail::mixture::maximize(s, previous, type_, opts_);
    bool finite = next.params.weights.allFinite() && next.params.means.allFinite();
    for (const auto& cov : next.params.covariances) finite = finite && cov.allFinite();
    if (!finite)
      throw numerical_error(
          "gaussian_mixture::m_step: the statistics give non-finite parameters (their moments overflow the "
          "scalar type: the data are too spread out about the mixture's mean)");
    cache_type c;
    if (!detail::mixture::build_cache(next.params, type_, next.scale, detail::mixture::singular_tolerance<S>(dim()),
                                      opts_.reg_covar, c))
      throw numerical_error(
          "gaussian_mixture::m_step: a covariance is not positive definite or is numerically singular "
          "(increase reg_covar)");
    return {std::move(next.params), std::move(c)};
  }

 public:

  /// Draw starting parameters from the data (see `mixture_init`): centers, then one M-step
  /// from the hard assignment of every observation to its nearest center. On any exception the
  /// model is unchanged.
  /// @throws invalid_argument if the data fail the checks of `validate` (K > N, non-finite
  ///         entries, too few observations for the covariance type, a spread whose squares
  ///         overflow) or have no positive weight
  /// @throws numerical_error if the start's M-step fails (see m_step)
  ///
  /// With missing values (option `missing_values = allow`), the start is drawn from the data
  /// with every NaN replaced by its coordinate's observed (weighted) mean; EM then conditions
  /// on the observed coordinates.
  template <std::uniform_random_bit_generator Rng>
  void initialize(const data_type& x, Rng& rng) {
    constexpr std::string_view fn = "gaussian_mixture::initialize";
    if (has_missing(x.x())) {
      detail::require_missing_at_random_data(x, fn);
      const matrix_t<S> filled = detail::impute_observed_means(x);
      initialize(same_weights(x, filled), rng);
      return;
    }
    const Eigen::VectorXd lo = detail::mixture::check_fit_data(x, k_, type_, fn);
    detail::require(x.total_weight() > 0.0, fn, "argument 'weights' must not all be zero");
    const Eigen::Index d = x.dim(), n = x.size();
    const auto& xm = x.x();
    // Everything about the data mean, computed about the lower corner so that no sum of large
    // magnitudes overflows (only the spread is bounded): the centers are drawn and the nearest
    // ones found among centered data.
    const vector_t<S> mean =
        ((xm.template cast<double>().colwise() - lo).rowwise().mean() + lo).template cast<S>();
    const matrix_t<S> xc = xm.colwise() - mean;
    const data_type xcv = x.weighted() ? data_type(xc, x.weights()) : data_type(xc);
    const matrix_t<S> centered = detail::mixture::initial_centers(xcv, k_, opts_, rng, fn);
    const Eigen::VectorXi lab = detail::mixture::nearest(xc, centered);
    const matrix_t<S> centers = centered.colwise() + mean;
    // One M-step from hard assignments to the nearest center, about the data mean.
    stats_type s = estep_type::empty_stats(type_, k_, d, mean.template cast<accumulator_type>());
    estep_type::hard_assignment(x, lab, mean, type_, s);
    // Provisional parameters so that the M-step has a fallback for empty clusters: the centers
    // with the pooled data covariance.
    params_type start;
    start.weights = vector_t<S>::Constant(k_, S(1) / static_cast<S>(k_));
    start.means = centers;
    matrix_t<S> pooled = (xc * xc.transpose()) / static_cast<S>(n);
    pooled.diagonal().array() += static_cast<S>(opts_.reg_covar);
    if (type_ == covariance_type::diagonal || type_ == covariance_type::spherical) {
      vector_t<S> v = pooled.diagonal();
      if (type_ == covariance_type::spherical) v.setConstant(v.mean());
      pooled = v.asDiagonal();
    }
    if (pooled.diagonal().minCoeff() <= S(0)) pooled = matrix_t<S>::Identity(d, d);
    start.covariances.assign(static_cast<std::size_t>(k_), pooled);
    cache_type c;
    const double tolerance = detail::mixture::singular_tolerance<S>(d);
    if (!detail::mixture::build_cache(start, type_, Eigen::MatrixXd(), tolerance, opts_.reg_covar, c)) {
      pooled.diagonal().array() += S(1);  // degenerate data: any positive definite start will do
      start.covariances.assign(static_cast<std::size_t>(k_), pooled);
    }
    // Only the fallback means and covariances of `start` are read; the model is set at the end.
    auto [p, cache] = maximized(s, start);
    p_ = std::move(p);
    c_ = std::move(cache);
  }

  // ---- Queries ------------------------------------------------------------------------------

  /// log p(x_n) for every column (1 x N), in S.
  row_vector_t<S> log_likelihood_per_observation(const Eigen::Ref<const matrix_t<S>>& x) const {
    matrix_t<S> r;
    row_vector_t<S> lse;
    posterior(x, r, lse, "gaussian_mixture::log_likelihood_per_observation");
    return lse;
  }

  /// sum_n w_n log p(x_n), summed in double.
  double log_likelihood(const data_type& x) const {
    const Eigen::RowVectorXd l = log_likelihood_per_observation(x.x()).template cast<double>();
    return x.weighted() ? l.dot(x.weights().template cast<double>().transpose()) : l.sum();
  }

  /// Responsibilities r_nk = p(c_n = k | x_n), K x N; every column sums to 1.
  matrix_t<S> responsibilities(const Eigen::Ref<const matrix_t<S>>& x) const {
    matrix_t<S> r;
    row_vector_t<S> lse;
    posterior(x, r, lse, "gaussian_mixture::responsibilities");
    return r;
  }

  /// Most probable component of every column (ties: the lowest index).
  Eigen::VectorXi labels(const Eigen::Ref<const matrix_t<S>>& x) const {
    const matrix_t<S> r = responsibilities(x);
    Eigen::VectorXi out(r.cols());
    for (Eigen::Index n = 0; n < r.cols(); ++n) r.col(n).maxCoeff(&out(n));
    return out;
  }

  /// Number of free parameters, as BIC and AIC count them: (K - 1) + K d + the covariances'
  /// (K d(d+1)/2 full, K d diagonal, K spherical, d(d+1)/2 tied).
  Eigen::Index num_free_parameters() const {
    require_params("gaussian_mixture::num_free_parameters");
    const Eigen::Index d = dim();
    Eigen::Index cov = 0;
    switch (type_) {
      case covariance_type::full: cov = k_ * d * (d + 1) / 2; break;
      case covariance_type::diagonal: cov = k_ * d; break;
      case covariance_type::spherical: cov = k_; break;
      case covariance_type::tied: cov = d * (d + 1) / 2; break;
    }
    return (k_ - 1) + k_ * d + cov;
  }
  [[deprecated("use num_free_parameters()")]] Eigen::Index num_parameters() const { return num_free_parameters(); }

  /// Bayesian information criterion, -2 log L + p log n (lower is better), with n the total
  /// observation weight (N if unweighted) and p = num_free_parameters().
  double bic(const data_type& x) const {
    return -2.0 * log_likelihood(x) +
           static_cast<double>(num_free_parameters()) * std::log(static_cast<double>(x.total_weight()));
  }
  /// Akaike information criterion, -2 log L + 2 p (lower is better).
  double aic(const data_type& x) const {
    return -2.0 * log_likelihood(x) + 2.0 * static_cast<double>(num_free_parameters());
  }

  /// Draw `n` observations: the d x n sample (the same draws as `sample_joint(n, rng).x`).
  template <std::uniform_random_bit_generator Rng>
  matrix_t<S> sample(Eigen::Index n, Rng& rng) const {
    return sample_joint(n, rng).x;
  }

  /// Draw `n` observations with their components: {x (d x n), labels (n)}.
  template <std::uniform_random_bit_generator Rng>
  sample_type sample_joint(Eigen::Index n, Rng& rng) const {
    require_params("gaussian_mixture::sample");
    detail::require(n >= 0, "gaussian_mixture::sample", "argument 'n' must be >= 0, got ", n);
    Eigen::VectorXi comp(n);
    for (Eigen::Index i = 0; i < n; ++i) comp(i) = static_cast<int>(sample_categorical(p_.weights, rng));
    matrix_t<S> out = standard_normal<S>(dim(), n, rng);
    for (Eigen::Index k = 0; k < k_; ++k) {
      std::vector<Eigen::Index> idx;
      for (Eigen::Index i = 0; i < n; ++i)
        if (comp(i) == k) idx.push_back(i);
      if (idx.empty()) continue;
      const matrix_t<S>& l = c_.chol[static_cast<std::size_t>(type_ == covariance_type::tied ? 0 : k)];
      matrix_t<S> z(dim(), static_cast<Eigen::Index>(idx.size()));
      for (std::size_t j = 0; j < idx.size(); ++j) z.col(static_cast<Eigen::Index>(j)) = out.col(idx[j]);
      z = (l.template triangularView<Eigen::Lower>() * z).colwise() + p_.means.col(k);
      for (std::size_t j = 0; j < idx.size(); ++j) out.col(idx[j]) = z.col(static_cast<Eigen::Index>(j));
    }
    return {std::move(out), std::move(comp)};
  }

 private:

  /// Responsibilities (K x N) and log p(x_n) of the columns of x. Columns whose fast evaluation
  /// is not finite (a squared distance that overflows S: far points, huge data) are evaluated
  /// again in a stable form (`far_posterior`): their responsibilities still sum to 1 and
  /// log p(x_n) is finite or -inf, never NaN.
  void posterior(const Eigen::Ref<const matrix_t<S>>& x, matrix_t<S>& r, row_vector_t<S>& lse,
                 std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x, dim(), fn, "x");
    const bool missing = has_missing(x);
    if (!missing) detail::require_finite(x, fn, "x");
    estep_type::log_joint(x, type_, c_, r);
    if (missing) {
      // Columns with NaN: the log-joint of their observed coordinates (missing.hpp).
      detail::mixture::pattern_conditional cond;
      for (const detail::missing_pattern& pat : detail::split_by_pattern(x, 0, x.cols(), fn).patterns) {
        if (!detail::mixture::condition_on_pattern(p_, type_, Eigen::VectorXd(), pat,
                                                   detail::mixture::observed_block(x, pat), false, cond))
          throw numerical_error(concat(fn, ": a covariance's observed block does not factor"));
        r(Eigen::all, pat.columns) = cond.log_joint.template cast<S>();
      }
    }
    lse.resize(x.cols());
    normalize_columns_log(r, lse);
    if (lse.allFinite()) return;
    Eigen::VectorXd rn;
    for (Eigen::Index n = 0; n < x.cols(); ++n) {
      if (std::isfinite(lse(n)) || (missing && x.col(n).hasNaN())) continue;
      lse(n) = static_cast<S>(detail::mixture::far_posterior(x.col(n).template cast<double>(), p_, type_, c_, rn));
      r.col(n) = rn.template cast<S>();
    }
  }

  void require_params(std::string_view fn) const {
    if (!has_params())
      detail::throw_invalid(fn, "the mixture has no parameters yet: call initialize(x, rng), set_params(p), "
                                "or em(model, x, rng)");
  }

  void check_data(const data_type& x, std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x.x(), dim(), fn, "x");
  }

  Eigen::Index k_;
  covariance_type type_;
  gaussian_mixture_options opts_;
  params_type p_;
  cache_type c_;
};

/// The double-precision Gaussian mixture.
using gaussian_mixture = basic_gaussian_mixture<double>;

}  // namespace latent
