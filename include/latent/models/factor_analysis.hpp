#pragma once
/// @file
/// Factor analysis and probabilistic PCA, fitted by exact EM or by mean-field variational EM.
///
/// Generative model, for observations x_n in R^d (the columns of a d x N matrix):
///
///     z_n ~ N(0, I_k),     x_n | z_n ~ N(Lambda z_n + mu, Psi),     so  x_n ~ N(mu, Lambda Lambda^T + Psi)
///
/// with k < d factors, loadings Lambda (d x k) and Psi diagonal (factor analysis, the
/// "uniquenesses") or Psi = sigma^2 I (probabilistic PCA, Tipping & Bishop 1999). The noise
/// structure is a runtime choice, `factor_analysis_options::noise`.
///
/// **E-step (Woodbury).** With M = I_k + Lambda^T Psi^{-1} Lambda (k x k) and y = x - mu,
///
///     p(z | x) = N(M^{-1} Lambda^T Psi^{-1} y,  M^{-1})
///     y^T Sigma^{-1} y = y^T Psi^{-1} y - u^T M^{-1} u,   u = Lambda^T Psi^{-1} y
///     log det Sigma    = log det Psi + log det M           (matrix determinant lemma)
///
/// so no d x d matrix is formed or inverted: a block of B columns costs two GEMMs
/// (U = (Psi^{-1} Lambda)^T Y and the cross moment Y E[Z]^T), O(B d k), plus O(d k^2) per
/// parameter change for M. The posterior covariance M^{-1} is the same for every observation.
///
/// **Sufficient statistics.** About a reference point r (the model mean when the statistics are
/// created, so that nothing large cancels): W = sum w_n, sum y_n, diag(sum y_n y_n^T),
/// sum y_n E[z_n]^T, sum E[z_n], sum E[z_n z_n^T] (with y_n = x_n - r). They depend on the data
/// only through the count, the sum and the second moment, so the model also fits from sample
/// moments alone (`sample_moments`, `factor_analysis::moment_model`), at a cost independent of N.
///
/// **M-step.** With the augmented latent z~ = (z, 1) and loadings Lambda~ = (Lambda, mu - r):
///
///     Lambda~ = (sum y E[z~]^T) (sum E[z~ z~^T])^{-1}
///     Psi_jj  = (sum y_j^2 - sum_c Lambda~_jc (sum y E[z~]^T)_jc) / W         (factor analysis)
///     sigma^2 = mean_j Psi_jj                                                (PPCA)
///
/// **Uniqueness floor (Heywood cases).** An unconstrained Psi_jj can reach 0 (a Heywood case),
/// after which Psi^{-1} is infinite. After every M-step Psi_jj >= f_j with
///
///     f_j = uniqueness_floor * max(v_j, 1e-3 * vbar),
///
/// v_j the sample variance of variable j and vbar their mean (PPCA: sigma^2 >= uniqueness_floor
/// * vbar). The floor is the constrained maximizer of the M-step objective (it is unimodal in
/// each Psi_jj), so EM stays monotone; constant variables get a positive floor too. The
/// default 1e-6 keeps Psi^{-1} within 1e6 / v_j, which bounds the cancellation in the
/// Woodbury quadratic form to about six of the sixteen digits.
///
/// **Mean-field variational E-step.** q(z_n) = prod_j N(m_nj, s_j^2), coordinate ascent on
/// the ELBO: s_j^2 = 1 / M_jj and m_nj = (u_nj - sum_{l != j} M_jl m_nl) / M_jj (Gauss-Seidel on
/// M m = u). The means converge to the exact posterior means; the variances 1 / M_jj are at
/// most the exact (M^{-1})_jj, so mean field under-estimates posterior variance, and the
/// ELBO stays below log p(x) by KL(q || p(z | x)) = 1/2 (sum_j log M_jj - log det M) at the
/// fixed point (Hadamard's inequality makes it >= 0).
///
/// References: Rubin & Thayer (1982), EM algorithms for ML factor analysis; Tipping & Bishop
/// (1999), Probabilistic principal component analysis, JRSS B 61(3).

#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>
#include <latent/core/variational_families.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string_view>
#include <utility>

namespace latent {

/// The noise covariance Psi of factor analysis.
enum class noise_model {
  diagonal,   ///< Psi = diag(psi_1..psi_d): factor analysis
  isotropic   ///< Psi = sigma^2 I: probabilistic PCA
};

/// A human-readable name for a noise model.
constexpr std::string_view to_string(noise_model n) {
  switch (n) {
    case noise_model::diagonal: return "diagonal";
    case noise_model::isotropic: return "isotropic";
  }
  return "unknown";
}

/// Options of a factor analysis model (everything except k).
///
/// | name | meaning | default |
/// |---|---|---|
/// | `noise` | `diagonal` (factor analysis) or `isotropic` (probabilistic PCA) | diagonal |
/// | `uniqueness_floor` | after each M-step Psi_jj >= uniqueness_floor * max(v_j, 1e-3 vbar) (PPCA: sigma^2 >= uniqueness_floor * vbar), v_j the sample variances, vbar their mean; must be in (0, 1) | 1e-6 |
struct factor_analysis_options {
  noise_model noise = noise_model::diagonal;
  double uniqueness_floor = 1e-6;
};

/// Parameters of factor analysis in d dimensions with k factors.
struct factor_analysis_params {
  Eigen::MatrixXd loadings;      ///< Lambda, d x k
  Eigen::VectorXd mean;          ///< mu, d
  Eigen::VectorXd uniquenesses;  ///< diagonal of Psi, d (all equal to sigma^2 for PPCA)
};

/// Count, mean and covariance of a (weighted) sample: everything factor analysis needs from
/// the data. `covariance` is the maximum-likelihood one, sum_n w_n (x_n - mean)(x_n - mean)^T / count.
struct sample_moments {
  double count = 0.0;          ///< total observation weight N (> 0)
  Eigen::VectorXd mean;        ///< d
  Eigen::MatrixXd covariance;  ///< d x d, symmetric positive semi-definite

  /// Moments of the columns of `x` (observations are columns), in two passes (the mean, then
  /// the second moment about it), so no large numbers cancel. O(N d^2).
  /// @throws invalid_argument if `x` is empty, not finite, or its weights sum to 0.
  static sample_moments from_data(const observations& x) {
    constexpr std::string_view fn = "sample_moments::from_data";
    detail::require(x.size() > 0 && x.dim() > 0, fn, "argument 'x' must have at least one row and column, got ",
                    x.dim(), " x ", x.size());
    detail::require_finite(x.x(), fn, "x");
    sample_moments m;
    m.count = x.total_weight();
    detail::require(m.count > 0.0, fn, "argument 'x' must have positive total weight, got ", m.count);
    const Eigen::Index d = x.dim(), n = x.size();
    m.mean = x.weighted() ? Eigen::VectorXd(x.x() * x.weights() / m.count)
                          : Eigen::VectorXd(x.x().rowwise().sum() / m.count);
    m.covariance = Eigen::MatrixXd::Zero(d, d);
    constexpr Eigen::Index chunk = 2048;  // bounds the centred copy
    for (Eigen::Index b = 0; b < n; b += chunk) {
      const Eigen::Index len = std::min(chunk, n - b);
      Eigen::MatrixXd yc = x.x().middleCols(b, len).colwise() - m.mean;
      if (x.weighted()) yc = yc * x.weights().segment(b, len).cwiseSqrt().asDiagonal();
      m.covariance.selfadjointView<Eigen::Lower>().rankUpdate(yc);
    }
    m.covariance.triangularView<Eigen::StrictlyUpper>() = m.covariance.transpose();
    m.covariance /= m.count;  // exactly symmetric: the upper triangle is a copy
    return m;
  }

  /// Moments from a covariance matrix and a count alone (as R's `factanal(covmat = , n.obs = )`).
  /// `mean` may be empty (then zero). `covariance` must be the maximum-likelihood (divide by
  /// N) covariance for likelihoods to be exact; a divide-by-(N-1) one changes them by O(1/N).
  /// @throws invalid_argument if `covariance` is not square, finite, symmetric (to 1e-10
  ///         relative) and positive semi-definite (smallest eigenvalue >= -100 d eps times the
  ///         largest), if `count` is not positive and finite, or `mean` has the wrong size.
  static sample_moments from_covariance(const Eigen::Ref<const Eigen::MatrixXd>& covariance, double count,
                                        const Eigen::Ref<const Eigen::VectorXd>& mean = Eigen::VectorXd()) {
    constexpr std::string_view fn = "sample_moments::from_covariance";
    const Eigen::Index d = covariance.rows();
    detail::require(d > 0 && covariance.cols() == d, fn, "argument 'covariance' must be square and non-empty, got ",
                    covariance.rows(), " x ", covariance.cols());
    detail::require_finite(covariance, fn, "covariance");
    detail::require(std::isfinite(count) && count > 0.0, fn, "argument 'count' must be positive and finite, got ",
                    count);
    detail::require(mean.size() == 0 || mean.size() == d, fn, "argument 'mean' must be empty or have ", d,
                    " entries, got ", mean.size());
    if (mean.size() > 0) detail::require_finite(mean, fn, "mean");
    const double scale = covariance.cwiseAbs().maxCoeff();
    const double asym = (covariance - covariance.transpose()).cwiseAbs().maxCoeff();
    detail::require(asym <= 1e-10 * scale, fn, "argument 'covariance' must be symmetric, but max |C - C^T| = ",
                    asym, " (max |C| = ", scale, ")");
    sample_moments m;
    m.count = count;
    m.mean = mean.size() > 0 ? Eigen::VectorXd(mean) : Eigen::VectorXd::Zero(d);
    m.covariance = 0.5 * (covariance + covariance.transpose());
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m.covariance, Eigen::EigenvaluesOnly);
    const double lo = es.eigenvalues()(0), hi = es.eigenvalues()(d - 1);
    detail::require(lo >= -100.0 * static_cast<double>(d) * std::numeric_limits<double>::epsilon() * std::max(hi, 0.0),
                    fn, "argument 'covariance' must be positive semi-definite, but its smallest eigenvalue is ",
                    lo, " (largest ", hi, ")");
    return m;
  }
};

/// Expected sufficient statistics of factor analysis (additive, scalable), taken about
/// `reference` (y = x - reference).
struct factor_analysis_stats {
  Eigen::VectorXd reference;  ///< r, d: the point the moments are taken about
  double weight = 0.0;        ///< W = sum w_n
  Eigen::VectorXd sum_y;      ///< d: sum w_n y_n
  Eigen::VectorXd sum_yy;     ///< d: sum w_n y_n^2 (elementwise; the diagonal of the second moment)
  Eigen::MatrixXd sum_yz;     ///< d x k: sum w_n y_n E[z_n]^T
  Eigen::VectorXd sum_z;      ///< k: sum w_n E[z_n]
  Eigen::MatrixXd sum_zz;     ///< k x k: sum w_n E[z_n z_n^T] (posterior covariance included)

  /// Merge statistics; moments about another reference point are shifted exactly first.
  factor_analysis_stats& operator+=(const factor_analysis_stats& o) {
    if (reference.size() == 0) return *this = o;
    if (o.reference.size() == 0) return *this;
    detail::require(o.reference.size() == reference.size() && o.sum_z.size() == sum_z.size(),
                    "factor_analysis_stats::operator+=", "statistics of different models (d ", reference.size(),
                    " vs ", o.reference.size(), ", k ", sum_z.size(), " vs ", o.sum_z.size(), ")");
    if (o.reference == reference) {
      sum_y += o.sum_y;
      sum_yy += o.sum_yy;
      sum_yz += o.sum_yz;
    } else {
      // x - r = (x - r_o) + delta, delta = r_o - r.
      const Eigen::VectorXd delta = o.reference - reference;
      sum_y += o.sum_y + o.weight * delta;
      sum_yy += o.sum_yy + (2.0 * delta.array() * o.sum_y.array() + o.weight * delta.array().square()).matrix();
      sum_yz += o.sum_yz + delta * o.sum_z.transpose();
    }
    weight += o.weight;
    sum_z += o.sum_z;
    sum_zz += o.sum_zz;
    return *this;
  }

  /// Scale every statistic by w (online EM's decay); the reference point is unchanged.
  factor_analysis_stats& operator*=(double w) {
    weight *= w;
    sum_y *= w;
    sum_yy *= w;
    sum_yz *= w;
    sum_z *= w;
    sum_zz *= w;
    return *this;
  }
};

/// Mean-field posterior of the factors: q(z_n) = prod_j N(means(j, n), variances(j)).
struct mean_field_posterior {
  Eigen::MatrixXd means;      ///< k x N
  Eigen::VectorXd variances;  ///< k: s_j^2 = 1 / M_jj, the same for every observation
  Eigen::RowVectorXd elbo;    ///< 1 x N: the ELBO of each observation at q
  std::size_t sweeps = 0;     ///< coordinate-ascent sweeps taken (the most over blocks)
};

/// Factor analysis / probabilistic PCA; satisfies `EMModel` (fit with `latent::em`),
/// `VariationalEMModel<factor_analysis, mean_field>` (fit with `latent::variational_em`) and
/// `RandomlyInitializable`. Its `moment_model()` is an `EMModel` on `sample_moments`.
///
/// @code
/// latent::factor_analysis fa(3);                        // k = 3 factors, diagonal Psi
/// fa.initialize_pca(x);                                 // x: d x N, observations are columns
/// auto fit = latent::em(fa, x, {.tolerance = 1e-8});
/// Eigen::MatrixXd z = fa.posterior_mean(x);             // k x N
/// @endcode
///
/// Cost per EM iteration: O(N d k) (two GEMMs per block) + O(d k^2). From moments: O(d^2 k).
class factor_analysis {
 public:
  using data_type = observations;
  using params_type = factor_analysis_params;
  using stats_type = factor_analysis_stats;

  /// A model with `factors` factors, without parameters yet (call `initialize`,
  /// `initialize_pca` or `set_params`; the dimension d comes from them).
  /// @throws invalid_argument if factors < 1 or an option is out of range.
  explicit factor_analysis(Eigen::Index factors, factor_analysis_options options = {})
      : k_(factors), opts_(options) {
    constexpr std::string_view fn = "factor_analysis";
    detail::require(factors >= 1, fn, "argument 'factors' must be >= 1, got ", factors);
    detail::require(std::isfinite(opts_.uniqueness_floor) && opts_.uniqueness_floor > 0.0 &&
                        opts_.uniqueness_floor < 1.0,
                    fn, "option 'uniqueness_floor' must be in (0, 1), got ", opts_.uniqueness_floor);
  }

  /// A model with the given parameters (validated as by `set_params`); k = loadings.cols().
  explicit factor_analysis(const params_type& params, factor_analysis_options options = {})
      : factor_analysis(params.loadings.cols(), options) {
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
    detail::require((p.uniquenesses.array() > 0.0).all(), fn, "'uniquenesses' must be positive, got minimum ",
                    p.uniquenesses.minCoeff());
    if (opts_.noise == noise_model::isotropic)
      detail::require((p.uniquenesses.array() == p.uniquenesses(0)).all(), fn,
                      "'uniquenesses' must all be equal (sigma^2) for the isotropic (PPCA) noise model, got range [",
                      p.uniquenesses.minCoeff(), ", ", p.uniquenesses.maxCoeff(), "]");
    cache c;
    if (!build_cache(p, c)) detail::throw_invalid(fn, "the parameters give a non-finite posterior precision M");
    p_ = p;
    c_ = std::move(c);
  }

  // ---- EMModel ------------------------------------------------------------------------------

  Eigen::Index num_observations(const data_type& x) const { return x.size(); }
  double observation_weight(const data_type& x) const { return x.total_weight(); }

  /// Statistics of no data, about the current mean.
  stats_type zero_stats() const {
    require_params("factor_analysis::zero_stats");
    return zero_stats_about(p_.mean);
  }

  /// Exact E-step over columns [begin, end): adds E[T] under p(z | x) into `s` and returns
  /// sum_n w_n log p(x_n). O((end - begin) d k).
  /// @throws invalid_argument if `x` does not have d rows or the block is not finite.
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    constexpr std::string_view fn = "factor_analysis::e_step";
    const Eigen::Index b = end - begin;
    check_data(x, s, fn);
    if (b <= 0) return 0.0;
    const Eigen::MatrixXd y = x.x().middleCols(begin, b).colwise() - p_.mean;
    // Transposed layout (B x k): the GEMMs then have B rows, which suits the kernels.
    Eigen::MatrixXd ut(b, k_), ezt(b, k_);
    ut.noalias() = y.transpose() * c_.psi_inv_loadings;  // u_n = Lambda^T Psi^{-1} y_n
    ezt.noalias() = ut * c_.m_inv;                       // E[z_n] = M^{-1} u_n
    // Woodbury: y^T Sigma^{-1} y = y^T Psi^{-1} y - u^T M^{-1} u.
    Eigen::VectorXd quad(b);
    quad.noalias() = y.cwiseAbs2().transpose() * c_.psi_inv;
    quad -= (ut.array() * ezt.array()).rowwise().sum().matrix();
    const Eigen::RowVectorXd ll = (c_.log_const - 0.5 * quad.array()).matrix().transpose();
    return accumulate(x, begin, y, ezt, c_.m_inv, /*exact=*/true, ll, s, fn);
  }

  /// Mean-field variational E-step over columns [begin, end): coordinate ascent on
  /// q(z_n) = prod_j N(m_nj, s_j^2) from m = 0 until no mean moves by more than
  /// `family.tolerance` (z is in prior standard deviations) or `family.max_sweeps` sweeps;
  /// adds E_q[T] into `s` and returns the block's ELBO, sum_n w_n F_n.
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s,
                const mean_field& family) const {
    constexpr std::string_view fn = "factor_analysis::e_step";
    check_family(family, fn);
    const Eigen::Index b = end - begin;
    check_data(x, s, fn);
    if (b <= 0) return 0.0;
    const Eigen::MatrixXd y = x.x().middleCols(begin, b).colwise() - p_.mean;
    Eigen::MatrixXd mt;
    Eigen::RowVectorXd elbo;
    mean_field_block(y, family, mt, elbo);
    const Eigen::MatrixXd s2 = c_.m.diagonal().cwiseInverse().asDiagonal();
    return accumulate(x, begin, y, mt, s2, /*exact=*/false, elbo, s, fn);
  }

  /// M-step: Lambda, mu, Psi from the statistics (see the file comment), with the uniqueness
  /// floor. Leaves the parameters unchanged and throws `numerical_error` if the statistics
  /// carry no weight, the data have no variance, or the result is not finite.
  void m_step(const stats_type& s) {
    constexpr std::string_view fn = "factor_analysis::m_step";
    require_params(fn);
    const Eigen::Index d = dim();
    detail::require(s.reference.size() == d && s.sum_z.size() == k_, fn,
                    "argument 's' must be statistics of a model with d = ", d, " and k = ", k_);
    const double w = s.weight;
    if (!(w > 0.0) || !std::isfinite(w)) throw numerical_error("factor_analysis::m_step: statistics carry no weight");
    // A = sum E[z~ z~^T], (k+1) x (k+1); C = sum y E[z~]^T, d x (k+1).
    Eigen::MatrixXd a(k_ + 1, k_ + 1);
    a.topLeftCorner(k_, k_) = 0.5 * (s.sum_zz + s.sum_zz.transpose());
    a.topRightCorner(k_, 1) = s.sum_z;
    a.bottomLeftCorner(1, k_) = s.sum_z.transpose();
    a(k_, k_) = w;
    Eigen::MatrixXd c(d, k_ + 1);
    c.leftCols(k_) = s.sum_yz;
    c.col(k_) = s.sum_y;
    const Eigen::LLT<Eigen::MatrixXd> llt(a);
    if (llt.info() != Eigen::Success)
      throw numerical_error("factor_analysis::m_step: the factors' second moment is not positive definite");
    const Eigen::MatrixXd lt = llt.solve(c.transpose());  // (k+1) x d = Lambda~^T
    params_type p;
    p.loadings = lt.topRows(k_).transpose();
    p.mean = s.reference + lt.row(k_).transpose();
    Eigen::VectorXd psi = (s.sum_yy - (lt.transpose().array() * c.array()).rowwise().sum().matrix()) / w;
    const Eigen::VectorXd mean_y = s.sum_y / w;
    const Eigen::VectorXd var = (s.sum_yy / w - mean_y.cwiseAbs2()).cwiseMax(0.0);
    const double vbar = var.mean();
    if (!(vbar > 0.0) || !std::isfinite(vbar))
      throw numerical_error(detail::concat(fn, ": the data have no variance (mean sample variance ", vbar, ")"));
    if (opts_.noise == noise_model::diagonal) {
      psi = psi.cwiseMax(uniqueness_floors(var));
    } else {
      psi.setConstant(std::max(psi.mean(), opts_.uniqueness_floor * vbar));
    }
    p.uniquenesses = psi;
    cache cc;
    if (!p.loadings.allFinite() || !p.mean.allFinite() || !p.uniquenesses.allFinite() || !build_cache(p, cc))
      throw numerical_error(detail::concat(fn, ": the new parameters are not finite"));
    p_ = std::move(p);
    c_ = std::move(cc);
  }

  // ---- Initialization -----------------------------------------------------------------------

  /// Random start from the data: mu = the sample mean, Psi_jj = v_j / 2 (PPCA: vbar / 2, both
  /// floored), Lambda_jc ~ N(0, v_j / (2k)) from `rng`, so the implied variances match the
  /// data's on average. O(N d).
  /// @throws invalid_argument if x is empty, not finite, has k >= d, or has zero weight.
  template <std::uniform_random_bit_generator Rng>
  void initialize(const data_type& x, Rng& rng) {
    constexpr std::string_view fn = "factor_analysis::initialize";
    check_initial_data(x, fn);
    const Eigen::Index d = x.dim();
    const double w = x.total_weight();
    const Eigen::VectorXd mean = x.weighted() ? Eigen::VectorXd(x.x() * x.weights() / w)
                                              : Eigen::VectorXd(x.x().rowwise().sum() / w);
    const Eigen::MatrixXd sq = (x.x().colwise() - mean).cwiseAbs2();
    const Eigen::VectorXd var = x.weighted() ? Eigen::VectorXd(sq * x.weights() / w)
                                             : Eigen::VectorXd(sq.rowwise().sum() / w);
    const double vbar = var.mean();
    detail::require(vbar > 0.0, fn, "argument 'x' must not be constant (every variable has zero variance)");
    params_type p;
    p.mean = mean;
    p.loadings = standard_normal(d, k_, rng);
    p.loadings.array().colwise() *= (var.array().max(1e-3 * vbar) / (2.0 * static_cast<double>(k_))).sqrt();
    if (opts_.noise == noise_model::diagonal)
      p.uniquenesses = (0.5 * var).cwiseMax(uniqueness_floors(var));
    else
      p.uniquenesses = Eigen::VectorXd::Constant(d, std::max(0.5 * vbar, opts_.uniqueness_floor * vbar));
    set_params(p);
  }

  /// Deterministic start from the closed-form PPCA fit of the sample moments (`ppca_mle`):
  /// Lambda = U_k (L_k - sigma^2 I)^{1/2}; for factor analysis Psi_jj = S_jj - (Lambda
  /// Lambda^T)_jj, floored. O(d^3) after the moments.
  /// @throws invalid_argument if k >= d; numerical_error if the data span at most k dimensions.
  void initialize_pca(const sample_moments& m) {
    constexpr std::string_view fn = "factor_analysis::initialize_pca";
    const Eigen::Index d = m.mean.size();
    detail::require(d > k_, fn, "the data must have more variables (d) than factors (k = ", k_, "), got d = ", d);
    detail::require(m.covariance.rows() == d && m.covariance.cols() == d, fn, "argument 'moments' has a ",
                    m.covariance.rows(), " x ", m.covariance.cols(), " covariance for d = ", d);
    params_type p = ppca_fit(m, k_, fn);
    const Eigen::VectorXd var = m.covariance.diagonal().cwiseMax(0.0);
    if (opts_.noise == noise_model::diagonal) {
      p.uniquenesses = (var - p.loadings.rowwise().squaredNorm()).cwiseMax(uniqueness_floors(var));
    } else {
      p.uniquenesses.setConstant(std::max(p.uniquenesses(0), opts_.uniqueness_floor * var.mean()));
    }
    set_params(p);
  }

  /// `initialize_pca(sample_moments::from_data(x))`. O(N d^2 + d^3).
  void initialize_pca(const data_type& x) {
    check_initial_data(x, "factor_analysis::initialize_pca");
    initialize_pca(sample_moments::from_data(x));
  }

  // ---- Fitting from moments -----------------------------------------------------------------

  /// Exact E-step from sample moments alone: adds to `s` exactly the statistics the data
  /// would give, and returns their total log-likelihood. O(d^2 k), independent of N.
  double e_step(const sample_moments& m, stats_type& s) const {
    constexpr std::string_view fn = "factor_analysis::e_step";
    require_params(fn);
    check_moments(m, fn);
    detail::require(s.reference.size() == dim() && s.sum_z.size() == k_, fn,
                    "argument 's' must be statistics of a model with d = ", dim(), " and k = ", k_);
    const double w = m.count;
    // Moments about the model mean first (that is where E[z] = B (x - mu) is linear):
    // sum (x - mu)(x - mu)^T = W (S + a a^T), a = mean - mu.
    const Eigen::VectorXd a = m.mean - p_.mean;
    Eigen::MatrixXd smu = w * m.covariance;
    smu.noalias() += w * a * a.transpose();
    const Eigen::MatrixXd bt = c_.psi_inv_loadings * c_.m_inv;  // d x k: B^T, E[z] = B (x - mu)
    Eigen::MatrixXd smu_bt(dim(), k_);
    smu_bt.noalias() = smu * bt;
    const Eigen::VectorXd sz = bt.transpose() * (w * a);
    Eigen::MatrixXd zz(k_, k_);
    zz.noalias() = bt.transpose() * smu_bt;
    // Then about the statistics' reference r: y = (x - mu) + e, e = mu - r.
    const Eigen::VectorXd e = p_.mean - s.reference;
    const Eigen::VectorXd delta = m.mean - s.reference;
    s.weight += w;
    s.sum_y += w * delta;
    s.sum_yy += (w * (m.covariance.diagonal().array() + delta.array().square())).matrix();
    s.sum_yz += smu_bt + e * sz.transpose();
    s.sum_z += sz;
    s.sum_zz += 0.5 * (zz + zz.transpose()) + w * c_.m_inv;
    // sum_n (x - mu)^T Sigma^{-1} (x - mu) = tr(Psi^{-1} Smu) - tr(G^T Smu G M^{-1}), G = Psi^{-1} Lambda.
    const double quad = smu.diagonal().dot(c_.psi_inv) - (c_.psi_inv_loadings.transpose() * smu_bt).trace();
    return w * c_.log_const - 0.5 * quad;
  }

  /// An `EMModel` view whose data are `sample_moments` and whose parameters are this
  /// model's: `auto v = fa.moment_model(); latent::em(v, moments, opts);` fits from a
  /// covariance matrix and a count, at O(d^2 k) per iteration. The view refers to this model,
  /// which must outlive it.
  class moment_model_view {
   public:
    using data_type = sample_moments;
    using params_type = factor_analysis_params;
    using stats_type = factor_analysis_stats;

    explicit moment_model_view(factor_analysis& model) : m_(&model) {}
    const params_type& params() const { return m_->params(); }
    void set_params(const params_type& p) { m_->set_params(p); }
    /// One "observation": the moments form a single block.
    Eigen::Index num_observations(const data_type&) const { return 1; }
    double observation_weight(const data_type& m) const { return m.count; }
    stats_type zero_stats() const { return m_->zero_stats(); }
    double e_step(const data_type& m, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
      return end > begin ? m_->e_step(m, s) : 0.0;
    }
    void m_step(const stats_type& s) { m_->m_step(s); }
    factor_analysis& model() const { return *m_; }

   private:
    factor_analysis* m_;
  };

  /// The moments view of this model (see `moment_model_view`).
  moment_model_view moment_model() { return moment_model_view(*this); }

  // ---- Queries ------------------------------------------------------------------------------

  /// log p(x_n) for every column of `x` (d x N), by Woodbury and the determinant lemma. 1 x N.
  Eigen::RowVectorXd log_likelihood_per_observation(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
    constexpr std::string_view fn = "factor_analysis::log_likelihood_per_observation";
    check_matrix(x, fn);
    const Eigen::MatrixXd y = x.colwise() - p_.mean;
    const Eigen::MatrixXd u = c_.psi_inv_loadings.transpose() * y;
    const Eigen::MatrixXd ez = c_.m_inv * u;
    const Eigen::RowVectorXd quad = (y.array().square().colwise() * c_.psi_inv.array()).colwise().sum().matrix() -
                                    (u.array() * ez.array()).colwise().sum().matrix();
    return (c_.log_const - 0.5 * quad.array()).matrix();
  }

  /// sum_n w_n log p(x_n).
  double log_likelihood(const data_type& x) const {
    const Eigen::RowVectorXd l = log_likelihood_per_observation(x.x());
    return x.weighted() ? l.dot(x.weights().transpose()) : l.sum();
  }

  /// The total log-likelihood of a sample given only its moments (exact). O(d^2 k).
  double log_likelihood(const sample_moments& m) const {
    stats_type s = zero_stats();
    return e_step(m, s);
  }

  /// Posterior means E[z_n | x_n] = M^{-1} Lambda^T Psi^{-1} (x_n - mu), k x N.
  Eigen::MatrixXd posterior_mean(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
    check_matrix(x, "factor_analysis::posterior_mean");
    const Eigen::MatrixXd y = x.colwise() - p_.mean;
    return c_.m_inv * (c_.psi_inv_loadings.transpose() * y);
  }

  /// Posterior covariance Cov[z_n | x_n] = M^{-1} (k x k), the same for every observation.
  Eigen::MatrixXd posterior_covariance() const {
    require_params("factor_analysis::posterior_covariance");
    return c_.m_inv;
  }

  /// The mean-field posterior of the columns of `x` by coordinate ascent (see `e_step`),
  /// with every observation's ELBO.
  mean_field_posterior mean_field_posterior_of(const Eigen::Ref<const Eigen::MatrixXd>& x,
                                               const mean_field& family = {}) const {
    constexpr std::string_view fn = "factor_analysis::mean_field_posterior_of";
    check_family(family, fn);
    check_matrix(x, fn);
    const Eigen::MatrixXd y = x.colwise() - p_.mean;
    mean_field_posterior out;
    Eigen::MatrixXd mt;
    out.sweeps = mean_field_block(y, family, mt, out.elbo);
    out.means = mt.transpose();
    out.variances = c_.m.diagonal().cwiseInverse();
    return out;
  }

  /// The implied covariance of x, Lambda Lambda^T + Psi (d x d).
  Eigen::MatrixXd implied_covariance() const {
    require_params("factor_analysis::implied_covariance");
    Eigen::MatrixXd s = p_.loadings * p_.loadings.transpose();
    s.diagonal() += p_.uniquenesses;
    return s;
  }

  /// Draw `n` observations x = Lambda z + mu + Psi^{1/2} e (d x n) from the caller's engine.
  template <std::uniform_random_bit_generator Rng>
  Eigen::MatrixXd sample(Eigen::Index n, Rng& rng) const {
    constexpr std::string_view fn = "factor_analysis::sample";
    require_params(fn);
    detail::require(n >= 0, fn, "argument 'n' must be >= 0, got ", n);
    const Eigen::MatrixXd z = standard_normal(k_, n, rng);
    Eigen::MatrixXd x = standard_normal(dim(), n, rng);
    x.array().colwise() *= p_.uniquenesses.array().sqrt();
    x.noalias() += p_.loadings * z;
    x.colwise() += p_.mean;
    return x;
  }

  /// Free parameters: d k - k (k - 1) / 2 (loadings up to rotation) + d (mean) + d (factor
  /// analysis) or 1 (PPCA).
  Eigen::Index num_parameters() const {
    require_params("factor_analysis::num_parameters");
    const Eigen::Index d = dim();
    return d * k_ - k_ * (k_ - 1) / 2 + d + (opts_.noise == noise_model::diagonal ? d : 1);
  }

  /// Bayesian information criterion, -2 log L + p log N (lower is better); N the total weight.
  double bic(const data_type& x) const {
    return -2.0 * log_likelihood(x) + static_cast<double>(num_parameters()) * std::log(x.total_weight());
  }
  /// BIC from moments.
  double bic(const sample_moments& m) const {
    return -2.0 * log_likelihood(m) + static_cast<double>(num_parameters()) * std::log(m.count);
  }
  /// Akaike information criterion, -2 log L + 2 p (lower is better).
  double aic(const data_type& x) const { return -2.0 * log_likelihood(x) + 2.0 * static_cast<double>(num_parameters()); }
  /// AIC from moments.
  double aic(const sample_moments& m) const {
    return -2.0 * log_likelihood(m) + 2.0 * static_cast<double>(num_parameters());
  }

  /// The floor Psi_jj >= f_j for sample variances `var` (see the file comment).
  Eigen::VectorXd uniqueness_floors(const Eigen::Ref<const Eigen::VectorXd>& var) const {
    const double vbar = var.mean();
    return (opts_.uniqueness_floor * var.array().max(1e-3 * vbar)).matrix();
  }

  /// Closed-form PPCA MLE (Tipping & Bishop 1999) of k factors from sample moments:
  /// with S = U diag(l_1 >= ... >= l_d) U^T, sigma^2 = mean(l_{k+1..d}),
  /// Lambda = U_k (diag(l_1..l_k) - sigma^2 I)^{1/2} (the rotation R = I), mu = the mean.
  /// O(d^3).
  /// @throws invalid_argument if k < 1 or k >= d; numerical_error if sigma^2 <= 0 (the data
  ///         span at most k dimensions, and the MLE does not exist).
  static params_type ppca_mle(const sample_moments& m, Eigen::Index k) {
    constexpr std::string_view fn = "factor_analysis::ppca_mle";
    const Eigen::Index d = m.mean.size();
    detail::require(k >= 1 && k < d, fn, "argument 'k' must be in [1, d) with d = ", d, ", got ", k);
    detail::require(m.covariance.rows() == d && m.covariance.cols() == d, fn, "argument 'moments' has a ",
                    m.covariance.rows(), " x ", m.covariance.cols(), " covariance for d = ", d);
    return ppca_fit(m, k, fn);
  }

 private:
  /// Quantities derived from the parameters, rebuilt whenever they change.
  struct cache {
    Eigen::VectorXd psi_inv;           ///< d: 1 / Psi_jj
    Eigen::MatrixXd psi_inv_loadings;  ///< d x k: G = Psi^{-1} Lambda
    Eigen::MatrixXd m;                 ///< k x k: M = I + Lambda^T Psi^{-1} Lambda
    Eigen::MatrixXd m_inv;             ///< k x k: M^{-1}, the posterior covariance
    Eigen::MatrixXd post_map;          ///< k x d: M^{-1} Lambda^T Psi^{-1}, E[z | x] = post_map (x - mu)
    double log_const = 0.0;            ///< -1/2 (d log 2 pi + log det Psi + log det M)
  };

  static bool build_cache(const params_type& p, cache& c) {
    const Eigen::Index d = p.loadings.rows(), k = p.loadings.cols();
    c.psi_inv = p.uniquenesses.cwiseInverse();
    c.psi_inv_loadings = c.psi_inv.asDiagonal() * p.loadings;
    // M = I + (Psi^{-1/2} Lambda)^T (Psi^{-1/2} Lambda): exactly symmetric.
    const Eigen::MatrixXd ls = p.uniquenesses.cwiseSqrt().cwiseInverse().asDiagonal() * p.loadings;
    c.m = Eigen::MatrixXd::Identity(k, k);
    c.m.selfadjointView<Eigen::Lower>().rankUpdate(ls.transpose());
    c.m.triangularView<Eigen::StrictlyUpper>() = c.m.transpose();
    const Eigen::LLT<Eigen::MatrixXd> llt(c.m);
    if (llt.info() != Eigen::Success || !c.m.allFinite()) return false;
    c.m_inv = llt.solve(Eigen::MatrixXd::Identity(k, k));
    c.m_inv = (0.5 * (c.m_inv + c.m_inv.transpose())).eval();  // eval: no aliasing
    c.post_map = c.m_inv * c.psi_inv_loadings.transpose();
    c.log_const = -0.5 * (static_cast<double>(d) * log_two_pi + p.uniquenesses.array().log().sum() +
                          log_det_from_cholesky(llt));
    return c.psi_inv.allFinite() && c.psi_inv_loadings.allFinite() && c.m_inv.allFinite() && std::isfinite(c.log_const);
  }

  static params_type ppca_fit(const sample_moments& m, Eigen::Index k, std::string_view fn) {
    const Eigen::Index d = m.mean.size();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m.covariance);
    if (es.info() != Eigen::Success) throw numerical_error(detail::concat(fn, ": eigen-decomposition failed"));
    const Eigen::VectorXd& l = es.eigenvalues();  // ascending
    const double sigma2 = l.head(d - k).mean();
    if (!(sigma2 > 0.0))
      throw numerical_error(detail::concat(fn, ": the data span at most k = ", k,
                                           " dimensions (mean discarded eigenvalue ", sigma2, "); no MLE exists"));
    params_type p;
    p.mean = m.mean;
    p.loadings.resize(d, k);
    for (Eigen::Index c = 0; c < k; ++c)  // largest eigenvalue first
      p.loadings.col(c) = es.eigenvectors().col(d - 1 - c) * std::sqrt(std::max(l(d - 1 - c) - sigma2, 0.0));
    p.uniquenesses = Eigen::VectorXd::Constant(d, sigma2);
    return p;
  }

  stats_type zero_stats_about(const Eigen::VectorXd& reference) const {
    const Eigen::Index d = reference.size();
    stats_type s;
    s.reference = reference;
    s.sum_y = Eigen::VectorXd::Zero(d);
    s.sum_yy = Eigen::VectorXd::Zero(d);
    s.sum_yz = Eigen::MatrixXd::Zero(d, k_);
    s.sum_z = Eigen::VectorXd::Zero(k_);
    s.sum_zz = Eigen::MatrixXd::Zero(k_, k_);
    return s;
  }

  /// Adds the statistics of a block: y = x - mu (d x B), the means of q transposed (B x k),
  /// the shared covariance of q (k x k) and per-column objective values `obj`; returns
  /// sum_n w_n obj_n. With `exact`, E[z] = B y for the fixed matrix B = M^{-1} Lambda^T Psi^{-1},
  /// so sum E[z] E[z]^T = B (sum y E[z]^T) costs O(d k^2) instead of a GEMM over the block.
  /// A non-finite result is traced to the data (invalid_argument naming the entry) or reported
  /// as numerical_error.
  double accumulate(const data_type& x, Eigen::Index begin, const Eigen::MatrixXd& y, const Eigen::MatrixXd& ezt,
                    const Eigen::MatrixXd& cov, bool exact, const Eigen::RowVectorXd& obj, stats_type& s,
                    std::string_view fn) const {
    const Eigen::Index b = y.cols(), d = y.rows();
    double wsum, total;
    Eigen::VectorXd sy, syy, sz;
    Eigen::MatrixXd syz(d, k_), szz(k_, k_);
    // One GEMM gives sum y E[z]^T and sum y together: y [E[z]^T, 1] (weighted: y W [E[z]^T, 1]).
    Eigen::MatrixXd ez1(b, k_ + 1);
    ez1.leftCols(k_) = ezt;
    ez1.col(k_).setOnes();
    if (x.weighted()) {
      const auto w = x.weights().segment(begin, b);
      ez1 = w.asDiagonal() * ez1;
      wsum = w.sum();
      syy.noalias() = y.cwiseAbs2() * w;
      total = obj.dot(w.transpose());
    } else {
      wsum = static_cast<double>(b);
      syy = y.cwiseAbs2().rowwise().sum();
      total = obj.sum();
    }
    Eigen::MatrixXd syz1(d, k_ + 1);
    syz1.noalias() = y * ez1;
    syz = syz1.leftCols(k_);
    sy = syz1.col(k_);
    sz = ez1.leftCols(k_).colwise().sum().transpose();
    if (exact) szz.noalias() = c_.post_map * syz;
    else szz.noalias() = ez1.leftCols(k_).transpose() * ezt;
    if (!std::isfinite(total)) {
      detail::require_finite(x.x().middleCols(begin, b), fn, "x");
      throw numerical_error(detail::concat(fn, ": non-finite objective ", total, " on finite data"));
    }
    // The block's moments are about mu; the statistics' reference r is mu when the solver
    // created them (zero_stats), otherwise shift exactly: y_r = y + e, e = mu - r.
    if (s.reference != p_.mean) {
      const Eigen::VectorXd e = p_.mean - s.reference;
      syy += (2.0 * e.array() * sy.array() + wsum * e.array().square()).matrix();
      sy += wsum * e;
      syz += e * sz.transpose();
    }
    s.weight += wsum;
    s.sum_y += sy;
    s.sum_yy += syy;
    s.sum_yz += syz;
    s.sum_z += sz;
    s.sum_zz += szz;
    s.sum_zz += wsum * cov;
    return total;
  }

  /// Coordinate ascent for the mean-field q over a block y = x - mu (d x B). Writes the means
  /// (k x B) and each column's ELBO; returns the sweeps taken.
  std::size_t mean_field_block(const Eigen::MatrixXd& y, const mean_field& family, Eigen::MatrixXd& mt,
                               Eigen::RowVectorXd& elbo) const {
    const Eigen::Index b = y.cols();
    // Work on transposes (B x k) so that one factor's means are a contiguous column.
    Eigen::MatrixXd ut(b, k_);
    ut.noalias() = y.transpose() * c_.psi_inv_loadings;  // u_n^T = (Lambda^T Psi^{-1} y_n)^T
    mt = Eigen::MatrixXd::Zero(b, k_);
    const Eigen::VectorXd md = c_.m.diagonal();
    Eigen::VectorXd col(b);
    std::size_t sweeps = 0;
    while (sweeps < family.max_sweeps) {
      ++sweeps;
      double moved = 0.0;
      for (Eigen::Index j = 0; j < k_; ++j) {
        // m_j = (u_j - sum_{l != j} M_jl m_l) / M_jj, the exact maximizer of F in m_j.
        col.noalias() = mt * c_.m.col(j);
        col = (ut.col(j) - col + md(j) * mt.col(j)) / md(j);
        moved = std::max(moved, (col - mt.col(j)).cwiseAbs().maxCoeff());
        mt.col(j) = col;
      }
      if (moved <= family.tolerance) break;
    }
    // F_n = -1/2 [d log 2pi + log det Psi + y^T Psi^{-1} y - 2 m^T u + m^T M m
    //             + sum_j M_jj s_j^2 - k - sum_j log s_j^2],   s_j^2 = 1 / M_jj.
    const Eigen::MatrixXd mm = mt * c_.m;  // B x k
    const Eigen::ArrayXd quad = (y.array().square().colwise() * c_.psi_inv.array()).colwise().sum().transpose() -
                                2.0 * (mt.array() * ut.array()).rowwise().sum() +
                                (mt.array() * mm.array()).rowwise().sum();
    const double log_det_psi = -c_.psi_inv.array().log().sum();
    const double constant = static_cast<double>(dim()) * log_two_pi + log_det_psi + md.array().log().sum();
    elbo = (-0.5 * (constant + quad)).matrix().transpose();
    return sweeps;
  }

  void require_params(std::string_view fn) const {
    if (!has_params())
      detail::throw_invalid(fn, "the model has no parameters yet: call initialize, initialize_pca or set_params");
  }

  void check_data(const data_type& x, const stats_type& s, std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x.x(), dim(), fn, "x");
    detail::require(s.reference.size() == dim() && s.sum_z.size() == k_, fn,
                    "argument 's' must be statistics of a model with d = ", dim(), " and k = ", k_,
                    " (from zero_stats), got d = ", s.reference.size(), ", k = ", s.sum_z.size());
  }

  void check_matrix(const Eigen::Ref<const Eigen::MatrixXd>& x, std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x, dim(), fn, "x");
    detail::require_finite(x, fn, "x");
  }

  void check_moments(const sample_moments& m, std::string_view fn) const {
    detail::require(m.mean.size() == dim() && m.covariance.rows() == dim() && m.covariance.cols() == dim(), fn,
                    "argument 'moments' must have d = ", dim(), " (mean ", m.mean.size(), ", covariance ",
                    m.covariance.rows(), " x ", m.covariance.cols(), ")");
    detail::require(std::isfinite(m.count) && m.count > 0.0, fn, "argument 'moments' must have a positive count, got ",
                    m.count);
  }

  void check_initial_data(const data_type& x, std::string_view fn) const {
    detail::require(x.size() > 0, fn, "argument 'x' must have at least one column");
    detail::require(x.dim() > k_, fn, "argument 'x' must have more rows (d) than factors (k = ", k_, "), got d = ",
                    x.dim());
    detail::require_finite(x.x(), fn, "x");
    detail::require(x.total_weight() > 0.0, fn, "argument 'x' must have positive total weight, got ",
                    x.total_weight());
  }

  static void check_family(const mean_field& f, std::string_view fn) {
    detail::require(f.max_sweeps >= 1, fn, "option 'max_sweeps' of mean_field must be >= 1, got ", f.max_sweeps);
    detail::require(std::isfinite(f.tolerance) && f.tolerance >= 0.0, fn,
                    "option 'tolerance' of mean_field must be finite and >= 0, got ", f.tolerance);
  }

  Eigen::Index k_;
  factor_analysis_options opts_;
  params_type p_;
  cache c_;
};

}  // namespace latent
