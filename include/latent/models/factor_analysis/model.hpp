#pragma once
/// @file
/// `latent::basic_factor_analysis<S>`: factor analysis and probabilistic PCA, an `EMModel`
/// (exact E-step) and a `VariationalEMModel<., mean_field>`. See factor_analysis.hpp for the
/// mathematics.

#include <latent/core/error.hpp>
#include <latent/core/missing.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/factor_analysis/closed_form.hpp>
#include <latent/models/factor_analysis/kernels.hpp>
#include <latent/models/factor_analysis/missing.hpp>
#include <latent/models/factor_analysis/moment_model.hpp>
#include <latent/models/factor_analysis/options.hpp>
#include <latent/models/factor_analysis/params.hpp>
#include <latent/models/factor_analysis/posterior.hpp>
#include <latent/models/factor_analysis/sample_moments.hpp>
#include <latent/models/factor_analysis/stats.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace latent {

/// Factor analysis / probabilistic PCA in scalar type `S` (float or double); satisfies
/// `EMModel` (fit with `latent::em`), `VariationalEMModel<basic_factor_analysis<S>,
/// mean_field>` (fit with `latent::variational_em`) and `RandomlyInitializable`. Its
/// `moment_model()` is an `EMModel` on `basic_sample_moments<S>`.
///
/// Precision: data, parameters and the O(N d k) block kernels are in S; statistics,
/// log-likelihoods and ELBOs in `accumulator_t<S>` (double); the M-step and everything O(d k^2)
/// run in double from the double statistics, and the new parameters are rounded to S.
///
/// @code
/// latent::factor_analysis fa(3);                        // k = 3 factors, diagonal Psi
/// fa.initialize_pca(x);                                 // x: d x N, observations are columns
/// auto fit = latent::em(fa, x, {.tolerance = 1e-8});
/// Eigen::MatrixXd z = fa.posterior_mean(x);             // k x N
/// @endcode
///
/// Cost per EM iteration: O(N d k) (two GEMMs per block) + O(d k^2). From moments: O(d^2 k).
template <Scalar S>
class basic_factor_analysis {
 public:
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using data_type = basic_observations<S>;
  /// The E-step reads observation weights (`x.weight(n)`), so the solvers accept weighted data.
  static constexpr bool supports_weights = true;
  using params_type = basic_factor_analysis_params<S>;
  using stats_type = basic_factor_analysis_stats<S>;
  using moments_type = basic_sample_moments<S>;
  using posterior_type = basic_mean_field_posterior<S>;
  using draw_type = basic_factor_analysis_draw<S>;
  using moment_model_view = basic_factor_analysis_moment_view<S>;

  /// A model with `factors` factors, without parameters yet (call `initialize`,
  /// `initialize_pca` or `set_params`; the dimension d comes from them).
  /// @throws invalid_argument if factors < 1 or an option is out of range.
  explicit basic_factor_analysis(Eigen::Index factors, factor_analysis_options options = {})
      : k_(factors), opts_(options) {
    constexpr std::string_view fn = "factor_analysis";
    detail::require(factors >= 1, fn, "argument 'factors' must be >= 1, got ", factors);
    detail::require(std::isfinite(opts_.uniqueness_floor) && opts_.uniqueness_floor > 0.0 &&
                        opts_.uniqueness_floor < 1.0,
                    fn, "option 'uniqueness_floor' must be in (0, 1), got ", opts_.uniqueness_floor);
  }

  /// A model with the given parameters (validated as by `set_params`); k = loadings.cols().
  explicit basic_factor_analysis(const params_type& params, factor_analysis_options options = {})
      : basic_factor_analysis(params.loadings.cols(), options) {
    set_params(params);
  }

  Eigen::Index factors() const { return k_; }
  Eigen::Index dim() const { return p_.mean.size(); }
  noise_model noise() const { return opts_.noise; }
  const factor_analysis_options& options() const { return opts_; }
  bool has_params() const { return p_.mean.size() > 0; }
  const params_type& params() const { return p_; }

  /// Set the parameters: loadings d x k with k < d, mean d, uniquenesses d, all finite, the
  /// uniquenesses positive (and all equal for PPCA). On failure the model is unchanged.
  /// @throws invalid_argument naming the offending member.
  void set_params(const params_type& p) {
    constexpr std::string_view fn = "factor_analysis::set_params";
    const Eigen::Index d = p.loadings.rows();
    detail::require(p.loadings.cols() == k_, fn, "'loadings' must have k = ", k_, " columns, got ", p.loadings.cols());
    detail::require(d > k_, fn, "'loadings' must have more rows (d) than factors (k = ", k_, "), got d = ", d);
    detail::require(p.mean.size() == d, fn, "'mean' must have d = ", d, " entries, got ", p.mean.size());
    detail::require(p.uniquenesses.size() == d, fn, "'uniquenesses' must have d = ", d, " entries, got ",
                    p.uniquenesses.size());
    detail::require_finite(p.loadings, fn, "loadings");
    detail::require_finite(p.mean, fn, "mean");
    detail::require_finite(p.uniquenesses, fn, "uniquenesses");
    detail::require((p.uniquenesses.array() > S(0)).all(), fn, "'uniquenesses' must be positive, got minimum ",
                    p.uniquenesses.minCoeff());
    if (opts_.noise == noise_model::isotropic)
      detail::require((p.uniquenesses.array() == p.uniquenesses(0)).all(), fn,
                      "'uniquenesses' must all be equal (sigma^2) for the isotropic (PPCA) noise model, got range [",
                      p.uniquenesses.minCoeff(), ", ", p.uniquenesses.maxCoeff(), "]");
    detail::fa_cache<S> c;
    if (!detail::build_fa_cache(p, c))
      detail::throw_invalid(fn, "the parameters give a non-finite posterior precision M");
    p_ = p;
    c_ = std::move(c);
  }

  // ---- EMModel ------------------------------------------------------------------------------

  Eigen::Index num_observations(const data_type& x) const { return x.size(); }
  double observation_weight(const data_type& x) const { return static_cast<double>(x.total_weight()); }

  /// Checks data once before a fit: with `missing_values = allow` and NaN in `x`, no infinite
  /// entry, every variable observed in some column and every column in some variable (the
  /// E-step checks everything else block by block).
  /// @throws invalid_argument naming the problem.
  void validate(const data_type& x) const {
    if (has_missing(x.x())) detail::require_missing_at_random_data(x, "factor_analysis");
  }

  /// Statistics of no data, about the current mean.
  stats_type zero_stats() const {
    require_params("factor_analysis::zero_stats");
    const Eigen::Index d = dim();
    using A = accumulator_type;
    stats_type s;
    s.reference = c_.p.mean;
    s.sum_y = vector_t<A>::Zero(d);
    s.sum_yy = vector_t<A>::Zero(d);
    s.sum_yz = matrix_t<A>::Zero(d, k_);
    s.sum_z = vector_t<A>::Zero(k_);
    s.sum_zz = matrix_t<A>::Zero(k_, k_);
    return s;
  }

  /// Exact E-step over columns [begin, end): adds E[T] under p(z | x) into `s` and returns
  /// sum_n w_n log p(x_n). O((end - begin) d k), in S; the block's sums are added in double.
  /// With `missing_values = allow`, a block holding NaN conditions its incomplete columns on
  /// their observed coordinates (missing.hpp; the complete ones take the path above unchanged)
  /// and returns their observed-data log-likelihood.
  /// @throws invalid_argument if `x` does not have d rows or the block is not finite (or NaN,
  ///         when missing values are allowed; a column with every entry NaN is an error).
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    constexpr std::string_view fn = "factor_analysis::e_step";
    const Eigen::Index b = end - begin;
    check_data(x, begin, end, s, fn);
    if (b <= 0) return 0.0;
    if (has_missing(x.x().middleCols(begin, b))) return e_step_with_missing(x, begin, end, s);
    return complete_e_step(x, begin, end, s);
  }

 private:
  /// The exact E-step of complete columns [begin, end) (non-empty), after the checks.
  double complete_e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    constexpr std::string_view fn = "factor_analysis::e_step";
    const Eigen::Index b = end - begin;
    const matrix_t<S> y = x.x().middleCols(begin, b).colwise() - p_.mean;
    matrix_t<S> ut, ezt;
    vector_t<S> quad;
    detail::fa_woodbury_block(c_, y, ut, ezt, quad);
    const double total = static_cast<double>(c_.log_const * static_cast<accumulator_type>(weight_of(x, begin, b)) -
                                             accumulator_type(0.5) * detail::fa_weighted_sum(x, begin, quad));
    detail::fa_check_block(x, begin, b, total, fn);
    detail::fa_accumulate(c_, x, begin, y, ezt, c_.m_inv, /*exact=*/true, s, fn);
    return total;
  }

  /// True if missing values are allowed and `x` holds one (a NaN).
  template <class X>
  bool has_missing(const X& x) const {
    return opts_.missing_values == missing_policy::allow && x.hasNaN();
  }

  /// The exact E-step of columns [begin, end) holding missing values: the complete columns by
  /// `complete_e_step` (gathered), the others by pattern (missing.hpp), in double.
  double e_step_with_missing(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    using A = accumulator_type;
    constexpr std::string_view fn = "factor_analysis::e_step";
    vector_t<A> logp;
    const double total = detail::e_step_by_pattern(
        x, begin, end, fn, [&](const data_type& xc, Eigen::Index n) { return complete_e_step(xc, 0, n, s); },
        [&](const detail::missing_pattern& pat, const matrix_t<A>& xo, const vector_t<A>& w) {
          if (!detail::fa_missing_pattern(c_, pat, xo, w, logp, &s))
            throw numerical_error(concat(fn, ": the posterior precision of a missingness pattern does not factor"));
          return static_cast<double>(logp.dot(w));
        });
    if (!std::isfinite(total))
      throw numerical_error(concat(fn, ": non-finite objective ", total, " on data with missing values"));
    return total;
  }

 public:

  /// Mean-field variational E-step over columns [begin, end): coordinate ascent on
  /// q(z_n) = prod_j N(m_nj, s_j^2) from m = 0 until no mean moves by more than
  /// `family.tolerance` (z is in prior standard deviations; at least 16 eps of S) or
  /// `family.max_sweeps` sweeps; adds E_q[T] into `s` and returns the block's ELBO,
  /// sum_n w_n F_n. This form keeps no q between E-steps; `variational_em` uses the one
  /// below, whose q the solver keeps.
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s,
                const mean_field& family) const {
    matrix_t<S> mt;
    return mean_field_e_step(x, begin, end, s, family, mt);
  }

  /// The solver-owned mean-field state (`StatefulVariationalEMModel`): the k x N means m_n of
  /// q(z_n), one column per observation, starting at 0. The variances s_j^2 = 1 / M_jj
  /// follow from the parameters and are not state.
  matrix_t<S> make_variational_state(const data_type& x, const mean_field&) const {
    return matrix_t<S>::Zero(factors(), x.size());
  }

  /// Mean-field E-step over [begin, end) with the solver's state: with `family.warm_start`
  /// the sweeps start from the means the previous E-step left in columns [begin, end) of
  /// `state` (so the ELBO never falls from one iteration to the next, however few sweeps)
  /// and leave the new means there; without, they start from 0 and `state` is not touched.
  /// @throws invalid_argument if `state` is not k x N.
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s, const mean_field& family,
                matrix_t<S>& state) const {
    detail::require(state.rows() == factors() && state.cols() == x.size(), "factor_analysis::e_step",
                    "argument 'state' must be ", factors(), " x ", x.size(), " (make_variational_state), got ",
                    state.rows(), " x ", state.cols());
    check_block(x, begin, end, "factor_analysis::e_step");
    if (!family.warm_start) {
      matrix_t<S> mt;
      return mean_field_e_step(x, begin, end, s, family, mt);
    }
    matrix_t<S> mt = state.middleCols(begin, std::max<Eigen::Index>(end - begin, 0)).transpose();
    const double elbo = mean_field_e_step(x, begin, end, s, family, mt);
    if (end > begin) state.middleCols(begin, end - begin) = mt.transpose();
    return elbo;
  }

 private:
  /// The mean-field E-step from the means in `mt` (B x k, or empty for m = 0).
  double mean_field_e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s,
                           const mean_field& family, matrix_t<S>& mt) const {
    constexpr std::string_view fn = "factor_analysis::e_step";
    latent::validate(family, fn);
    const Eigen::Index b = end - begin;
    check_data(x, begin, end, s, fn);
    if (b <= 0) return 0.0;
    const matrix_t<S> y = x.x().middleCols(begin, b).colwise() - p_.mean;
    row_vector_t<accumulator_type> elbo;
    detail::fa_mean_field_block(c_, y, family, mt, elbo);
    const double total = static_cast<double>(
        x.weighted() ? elbo.dot(x.weights().segment(begin, b).transpose().template cast<accumulator_type>())
                     : elbo.sum());
    detail::fa_check_block(x, begin, b, total, fn);
    const matrix_t<accumulator_type> s2 = c_.m.diagonal().cwiseInverse().asDiagonal();
    detail::fa_accumulate(c_, x, begin, y, mt, s2, /*exact=*/false, s, fn);
    return total;
  }

 public:
  /// M-step, in double: Lambda, mu, Psi from the statistics (see the file comment), with the
  /// uniqueness floor, rounded to S. Leaves the parameters unchanged and throws
  /// `numerical_error` if the statistics carry no weight, the data have no variance, or the
  /// result is not finite.
  void m_step(const stats_type& s);

  // ---- Initialization -----------------------------------------------------------------------

  /// Random start from the data: mu = the sample mean, Psi_jj = v_j / 2 (PPCA: vbar / 2, both
  /// floored), Lambda_jc ~ N(0, v_j / (2k)) from `rng` (drawn in double: float and double
  /// models consume the engine identically), so the implied variances match the data's on
  /// average. O(N d).
  /// @throws invalid_argument if x is empty, not finite, has k >= d, or has zero weight.
  template <std::uniform_random_bit_generator Rng>
  void initialize(const data_type& x, Rng& rng);

  /// Deterministic start from the closed-form PPCA fit of the sample moments (`ppca_mle`):
  /// Lambda = U_k (L_k - sigma^2 I)^{1/2}; for factor analysis Psi_jj = S_jj - (Lambda
  /// Lambda^T)_jj, floored. O(d^3) after the moments, in double.
  /// @throws invalid_argument if k >= d; numerical_error if the data span at most k dimensions.
  void initialize_pca(const moments_type& m);

  /// `initialize_pca(sample_moments::from_data(x))`. O(N d^2 + d^3).
  /// With missing values (option `missing_values = allow`): the moments of the data with every
  /// NaN replaced by its variable's observed mean.
  void initialize_pca(const data_type& x) {
    if (has_missing(x.x())) {
      detail::require_missing_at_random_data(x, "factor_analysis::initialize_pca");
      const matrix_t<S> filled = detail::impute_observed_means(x);
      initialize_pca(x.weighted() ? data_type(filled, x.weights()) : data_type(filled));
      return;
    }
    check_initial_data(x, "factor_analysis::initialize_pca");
    initialize_pca(moments_type::from_data(x));
  }

  // ---- Fitting from moments -----------------------------------------------------------------

  /// Exact E-step from sample moments alone, in double: adds to `s` exactly the statistics the
  /// data would give, and returns their total log-likelihood. O(d^2 k), independent of N.
  double e_step(const moments_type& m, stats_type& s) const;

  /// An `EMModel` view whose data are `sample_moments` and whose parameters are this
  /// model's: `auto v = fa.moment_model(); latent::em(v, moments, opts);` fits from a
  /// covariance matrix and a count, at O(d^2 k) per iteration. The view refers to this model,
  /// which must outlive it.
  moment_model_view moment_model() { return moment_model_view(*this); }

  // ---- Queries ------------------------------------------------------------------------------

  /// log p(x_n) for every column of `x` (d x N), by Woodbury and the determinant lemma: 1 x N,
  /// in double (`accumulator_t<S>`; the quadratic forms are computed in S).
  /// With `missing_values = allow`, a column holding NaN gets the log-density of its observed
  /// coordinates, log p(x_n,o).
  row_vector_t<accumulator_type> log_likelihood_per_observation(const Eigen::Ref<const matrix_t<S>>& x) const {
    constexpr std::string_view fn = "factor_analysis::log_likelihood_per_observation";
    if (has_missing(x)) {
      using A = accumulator_type;
      require_params(fn);
      detail::require_rows(x, dim(), fn, "x");
      const detail::missing_split split = detail::split_by_pattern(x, 0, x.cols(), fn);
      row_vector_t<A> out(x.cols());
      if (!split.complete.empty()) {
        const matrix_t<S> xc = x(Eigen::all, split.complete);
        out(split.complete) = log_likelihood_per_observation(xc);
      }
      vector_t<A> logp;
      for (const detail::missing_pattern& pat : split.patterns) {
        const matrix_t<A> xo = x(pat.observed, pat.columns).template cast<A>();
        const vector_t<A> w = vector_t<A>::Ones(xo.cols());
        if (!detail::fa_missing_pattern(c_, pat, xo, w, logp, static_cast<stats_type*>(nullptr)))
          throw numerical_error(concat(fn, ": the posterior precision of a missingness pattern does not factor"));
        out(pat.columns) = logp.transpose();
      }
      return out;
    }
    check_matrix(x, fn);
    const matrix_t<S> y = x.colwise() - p_.mean;
    matrix_t<S> ut, ezt;
    vector_t<S> quad;
    detail::fa_woodbury_block(c_, y, ut, ezt, quad);
    return (c_.log_const - accumulator_type(0.5) * quad.template cast<accumulator_type>().array()).matrix().transpose();
  }

  /// sum_n w_n log p(x_n), in double.
  double log_likelihood(const data_type& x) const {
    const row_vector_t<accumulator_type> l = log_likelihood_per_observation(x.x());
    return static_cast<double>(x.weighted() ? l.dot(x.weights().transpose().template cast<accumulator_type>())
                                            : l.sum());
  }

  /// The total log-likelihood of a sample given only its moments (exact). O(d^2 k).
  double log_likelihood(const moments_type& m) const {
    stats_type s = zero_stats();
    return e_step(m, s);
  }

  /// Posterior means E[z_n | x_n] = M^{-1} Lambda^T Psi^{-1} (x_n - mu), k x N.
  matrix_t<S> posterior_mean(const Eigen::Ref<const matrix_t<S>>& x) const {
    check_matrix(x, "factor_analysis::posterior_mean");
    const matrix_t<S> y = x.colwise() - p_.mean;
    return c_.m_inv_s * (c_.g_s.transpose() * y);
  }

  /// Posterior covariance Cov[z_n | x_n] = M^{-1} (k x k), the same for every observation.
  matrix_t<S> posterior_covariance() const {
    require_params("factor_analysis::posterior_covariance");
    return c_.m_inv_s;
  }

  /// The mean-field posterior of the columns of `x` by coordinate ascent (see `e_step`),
  /// with every observation's ELBO.
  posterior_type mean_field_posterior_of(const Eigen::Ref<const matrix_t<S>>& x, const mean_field& family = {}) const {
    constexpr std::string_view fn = "factor_analysis::mean_field_posterior_of";
    latent::validate(family, fn);
    check_matrix(x, fn);
    const matrix_t<S> y = x.colwise() - p_.mean;
    posterior_type out;
    matrix_t<S> mt;
    out.sweeps = detail::fa_mean_field_block(c_, y, family, mt, out.elbo);
    out.means = mt.transpose();
    out.variances = c_.m.diagonal().cwiseInverse().template cast<S>();
    return out;
  }

  /// The implied covariance of x, Lambda Lambda^T + Psi (d x d).
  matrix_t<S> implied_covariance() const {
    require_params("factor_analysis::implied_covariance");
    matrix_t<S> s = p_.loadings * p_.loadings.transpose();
    s.diagonal() += p_.uniquenesses;
    return s;
  }

  /// Draw `n` observations with their factors: z ~ N(0, I_k) (k x n, drawn first), then
  /// x = Lambda z + mu + Psi^{1/2} e (d x n), from the caller's engine (draws in double, so
  /// float and double models consume the engine identically).
  template <std::uniform_random_bit_generator Rng>
  draw_type sample_joint(Eigen::Index n, Rng& rng) const {
    constexpr std::string_view fn = "factor_analysis::sample";
    require_params(fn);
    detail::require(n >= 0, fn, "argument 'n' must be >= 0, got ", n);
    draw_type out;
    out.z = standard_normal<S>(k_, n, rng);
    out.x = standard_normal<S>(dim(), n, rng);
    out.x.array().colwise() *= p_.uniquenesses.array().sqrt();
    out.x.noalias() += p_.loadings * out.z;
    out.x.colwise() += p_.mean;
    return out;
  }

  /// Draw `n` observations (d x n): the `x` of `sample_joint(n, rng)`.
  template <std::uniform_random_bit_generator Rng>
  matrix_t<S> sample(Eigen::Index n, Rng& rng) const {
    return std::move(sample_joint(n, rng).x);
  }

  /// Free parameters (for BIC and AIC): d k - k (k - 1) / 2 (loadings up to rotation) + d
  /// (mean) + d (factor analysis) or 1 (PPCA).
  Eigen::Index num_free_parameters() const {
    require_params("factor_analysis::num_free_parameters");
    const Eigen::Index d = dim();
    return d * k_ - k_ * (k_ - 1) / 2 + d + (opts_.noise == noise_model::diagonal ? d : 1);
  }
  [[deprecated("use num_free_parameters")]] Eigen::Index num_parameters() const { return num_free_parameters(); }

  /// Bayesian information criterion, -2 log L + p log n (lower is better), n the total
  /// observation weight.
  double bic(const data_type& x) const { return criterion(log_likelihood(x), std::log(observation_weight(x))); }
  /// BIC from moments (n = the count).
  double bic(const moments_type& m) const {
    return criterion(log_likelihood(m), std::log(static_cast<double>(m.count)));
  }
  /// Akaike information criterion, -2 log L + 2 p (lower is better).
  double aic(const data_type& x) const { return criterion(log_likelihood(x), 2.0); }
  /// AIC from moments.
  double aic(const moments_type& m) const { return criterion(log_likelihood(m), 2.0); }

  /// The floor Psi_jj >= f_j for sample variances `var` (see the file comment), in double.
  vector_t<accumulator_type> uniqueness_floors(const Eigen::Ref<const vector_t<accumulator_type>>& var) const {
    const accumulator_type vbar = var.mean();
    return (static_cast<accumulator_type>(opts_.uniqueness_floor) * var.array().max(accumulator_type(1e-3) * vbar))
        .matrix();
  }

  /// Closed-form PPCA MLE (Tipping & Bishop 1999) of k factors from sample moments, computed
  /// in double and rounded to S (see closed_form.hpp). O(d^3).
  /// @throws invalid_argument if k < 1 or k >= d; numerical_error if sigma^2 <= 0 (the data
  ///         span at most k dimensions, and the MLE does not exist).
  static params_type ppca_mle(const moments_type& m, Eigen::Index k) {
    constexpr std::string_view fn = "factor_analysis::ppca_mle";
    const Eigen::Index d = m.mean.size();
    detail::require(k >= 1 && k < d, fn, "argument 'k' must be in [1, d) with d = ", d, ", got ", k);
    check_moment_shape(m, d, fn);
    return detail::ppca_closed_form(m.mean, m.covariance, k, fn).template cast<S>();
  }

 private:
  double criterion(double ll, double per_parameter) const {
    return -2.0 * ll + static_cast<double>(num_free_parameters()) * per_parameter;
  }

  static accumulator_type weight_of(const data_type& x, Eigen::Index begin, Eigen::Index b) {
    return x.weighted() ? x.weights().segment(begin, b).template cast<accumulator_type>().sum()
                        : static_cast<accumulator_type>(b);
  }

  void require_params(std::string_view fn) const {
    if (!has_params())
      detail::throw_invalid(fn, "the model has no parameters yet: call initialize, initialize_pca or set_params");
  }

  /// Every member of `s` must have this model's shape (d, k): O(1), once per call.
  void check_stats(const stats_type& s, std::string_view fn) const {
    const Eigen::Index d = dim();
    detail::require(s.reference.size() == d && s.sum_y.size() == d && s.sum_yy.size() == d &&
                        s.sum_yz.rows() == d && s.sum_yz.cols() == k_ && s.sum_z.size() == k_ &&
                        s.sum_zz.rows() == k_ && s.sum_zz.cols() == k_,
                    fn, "argument 's' must be statistics of a model with d = ", d, " and k = ", k_,
                    " (from zero_stats), got reference ", s.reference.size(), ", sum_y ", s.sum_y.size(), ", sum_yy ",
                    s.sum_yy.size(), ", sum_yz ", s.sum_yz.rows(), " x ", s.sum_yz.cols(), ", sum_z ", s.sum_z.size(),
                    ", sum_zz ", s.sum_zz.rows(), " x ", s.sum_zz.cols());
  }

  static void check_block(const data_type& x, Eigen::Index begin, Eigen::Index end, std::string_view fn) {
    detail::require(0 <= begin && begin <= end && end <= x.size(), fn, "block [", begin, ", ", end,
                    ") is outside the ", x.size(), " columns of 'x'");
  }

  void check_data(const data_type& x, Eigen::Index begin, Eigen::Index end, const stats_type& s,
                  std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x.x(), dim(), fn, "x");
    check_block(x, begin, end, fn);
    check_stats(s, fn);
  }

  void check_matrix(const Eigen::Ref<const matrix_t<S>>& x, std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x, dim(), fn, "x");
    detail::require_finite(x, fn, "x");
  }

  /// Moments filled by hand must be what `sample_moments` guarantees: the shape of d, a
  /// positive finite count, a finite mean, a finite symmetric covariance (to 1e-10 relative).
  /// O(d^2), once per call.
  static void check_moment_shape(const moments_type& m, Eigen::Index d, std::string_view fn) {
    using A = accumulator_type;
    detail::require(m.mean.size() == d && m.covariance.rows() == d && m.covariance.cols() == d, fn,
                    "argument 'moments' must have d = ", d, " (mean ", m.mean.size(), ", covariance ",
                    m.covariance.rows(), " x ", m.covariance.cols(), ")");
    detail::require(std::isfinite(m.count) && m.count > A(0), fn,
                    "argument 'moments' must have a positive finite count, got ", m.count);
    detail::require_finite(m.mean, fn, "moments.mean");
    detail::require_finite_symmetric(m.covariance, fn, "moments.covariance");
  }

  /// The data a start is computed from. Factor analysis needs N >= k + 2 observations with
  /// positive weight (the sample covariance has rank <= N - 1, which must exceed k for the
  /// noise to be estimable); N < d is allowed otherwise: the uniquenesses' floor keeps the
  /// likelihood bounded, and EM converges (typically with uniquenesses at the floor).
  void check_initial_data(const data_type& x, std::string_view fn) const {
    detail::require(x.size() > 0, fn, "argument 'x' must have at least one column");
    detail::require(x.dim() > k_, fn, "argument 'x' must have more rows (d) than factors (k = ", k_, "), got d = ",
                    x.dim(), x.size() > x.dim() ? concat(" (observations are columns; if yours are the ", x.dim(),
                                                         " rows, pass x.transpose())")
                                                : std::string());
    detail::require_finite(x.x(), fn, "x");
    detail::require(x.total_weight() > 0.0, fn, "argument 'x' must have positive total weight, got ",
                    x.total_weight());
    const Eigen::Index used = x.weighted() ? static_cast<Eigen::Index>((x.weights().array() > S(0)).count()) : x.size();
    detail::require(used >= k_ + 2, fn, "argument 'x' has ", used, " observations (columns with positive weight) of d = ",
                    x.dim(), " variables, but k = ", k_, " factors need at least k + 2 = ", k_ + 2,
                    x.dim() > x.size() ? concat("; observations are columns: if yours are the ", x.dim(),
                                                " rows, pass x.transpose()")
                                       : std::string());
    detail::require_representable_spread(x, fn);
  }

  Eigen::Index k_;
  factor_analysis_options opts_;
  params_type p_;
  detail::fa_cache<S> c_;
};

using factor_analysis = basic_factor_analysis<double>;

}  // namespace latent

#include <latent/models/factor_analysis/initialization.hpp>
#include <latent/models/factor_analysis/m_step.hpp>
