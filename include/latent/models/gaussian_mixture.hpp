#pragma once
/// @file
/// Gaussian mixture model with full, diagonal, spherical or tied covariance, fitted by EM.
///
/// Generative model, for observations x_n in R^d (the columns of a d x N matrix):
///
///     c_n ~ Categorical(pi_1..pi_K),     x_n | c_n = k ~ N(mu_k, Sigma_k)
///
/// E-step: r_nk = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j), in log space.
/// Sufficient statistics per component: N_k = sum_n w_n r_nk, s_k = sum_n w_n r_nk (x_n - c),
/// S_k = sum_n w_n r_nk (x_n - c)(x_n - c)^T (or only its diagonal, or only the sum over k for
/// the tied model), taken about a reference point c (the mixture mean when the statistics are
/// created) so that no large numbers cancel.
/// M-step: pi_k = N_k / sum_j N_j, mu_k = c + s_k / N_k,
/// Sigma_k = S_k / N_k - (s_k / N_k)(s_k / N_k)^T + reg_covar I   (restricted by the type).
///
/// Cost per EM iteration: O(N K d^2) for full covariance (one GEMM whitens a block of columns
/// for all components at once, a symmetric rank-B update scatters it), O(N K d) otherwise.

#include <latent/core/error.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// Restriction on the component covariances.
enum class covariance_type {
  full,       ///< each component its own d x d covariance
  diagonal,   ///< each component its own diagonal covariance
  spherical,  ///< each component its own sigma_k^2 I
  tied        ///< one full covariance shared by all components
};

/// A human-readable name for a covariance type.
constexpr std::string_view to_string(covariance_type t) {
  switch (t) {
    case covariance_type::full: return "full";
    case covariance_type::diagonal: return "diagonal";
    case covariance_type::spherical: return "spherical";
    case covariance_type::tied: return "tied";
  }
  return "unknown";
}

/// How `initialize` draws starting parameters.
enum class mixture_init {
  kmeans_plus_plus,  ///< k-means++ seeding, a few Lloyd iterations, then an M-step from hard labels
  random_points      ///< K distinct random observations as means, then an M-step from hard labels
};

/// Options of a Gaussian mixture (everything except K and the covariance type).
///
/// | name | meaning | default |
/// |---|---|---|
/// | `reg_covar` | added to every covariance diagonal after each M-step (data units squared); keeps collapsing components positive definite | 1e-6 |
/// | `init` | how `initialize(x, rng)` draws starting parameters | k-means++ |
/// | `kmeans_iterations` | Lloyd iterations after k-means++ seeding | 10 |
/// | `min_component_weight` | a component whose expected weight falls below this fraction of the total keeps its previous mean and covariance (its weight becomes its tiny share, possibly 0) instead of being re-estimated from almost no data | 1e-10 |
struct gaussian_mixture_options {
  double reg_covar = 1e-6;
  mixture_init init = mixture_init::kmeans_plus_plus;
  std::size_t kmeans_iterations = 10;
  double min_component_weight = 1e-10;
};

/// Parameters of a K-component mixture in d dimensions.
///
/// `covariances` always holds K full d x d matrices, whatever the type: diagonal ones are
/// diagonal, spherical ones a multiple of I, tied ones all equal. Users can read and write
/// them without knowing the internal representation.
struct gaussian_mixture_params {
  Eigen::VectorXd weights;                   ///< K mixing proportions, summing to 1
  Eigen::MatrixXd means;                     ///< d x K, column k is mu_k
  std::vector<Eigen::MatrixXd> covariances;  ///< K matrices, d x d
};

/// Expected sufficient statistics of a Gaussian mixture (additive, scalable).
struct gaussian_mixture_stats {
  covariance_type type = covariance_type::full;
  Eigen::VectorXd center;                  ///< reference point c the moments are taken about
  Eigen::VectorXd counts;                  ///< K: N_k
  Eigen::MatrixXd sums;                    ///< d x K: s_k
  Eigen::MatrixXd scatter;                 ///< full: K d x d blocks stacked (K d x d); tied: d x d
  Eigen::MatrixXd diagonal_scatter;        ///< diagonal/spherical: d x K, diag of S_k

  /// Merge statistics; if the other side was taken about another reference point, its
  /// moments are shifted exactly to this one first.
  gaussian_mixture_stats& operator+=(const gaussian_mixture_stats& o) {
    if (counts.size() == 0) return *this = o;
    if (o.counts.size() == 0) return *this;
    detail::require(o.type == type && o.counts.size() == counts.size() && o.center.size() == center.size(),
                    "gaussian_mixture_stats::operator+=", "statistics of different mixtures (K ",
                    counts.size(), " vs ", o.counts.size(), ", d ", center.size(), " vs ", o.center.size(), ")");
    if (o.center == center) {
      add_moments(o.sums, o.scatter, o.diagonal_scatter);
    } else {
      // x - c = (x - c_o) + delta with delta = c_o - c.
      const Eigen::VectorXd delta = o.center - center;
      const Eigen::MatrixXd sums_shifted = o.sums + delta * o.counts.transpose();
      Eigen::MatrixXd scatter_shifted = o.scatter;
      Eigen::MatrixXd diag_shifted = o.diagonal_scatter;
      const Eigen::Index d = delta.size();
      if (type == covariance_type::full) {
        for (Eigen::Index k = 0; k < o.counts.size(); ++k) {
          const Eigen::VectorXd s = o.sums.col(k);
          scatter_shifted.middleRows(k * d, d) +=
              s * delta.transpose() + delta * s.transpose() + o.counts(k) * delta * delta.transpose();
        }
      } else if (type == covariance_type::tied) {
        const Eigen::VectorXd s = o.sums.rowwise().sum();
        scatter_shifted += s * delta.transpose() + delta * s.transpose() + o.counts.sum() * delta * delta.transpose();
      } else {
        diag_shifted += 2.0 * (o.sums.array().colwise() * delta.array()).matrix() +
                        delta.array().square().matrix() * o.counts.transpose();
      }
      add_moments(sums_shifted, scatter_shifted, diag_shifted);
    }
    counts += o.counts;
    return *this;
  }

  /// Scale every statistic by w (online EM's decay).
  gaussian_mixture_stats& operator*=(double w) {
    counts *= w;
    sums *= w;
    scatter *= w;
    diagonal_scatter *= w;
    return *this;
  }

 private:
  void add_moments(const Eigen::MatrixXd& s, const Eigen::MatrixXd& sc, const Eigen::MatrixXd& dsc) {
    sums += s;
    if (scatter.size() > 0) scatter += sc;
    if (diagonal_scatter.size() > 0) diagonal_scatter += dsc;
  }
};

/// A Gaussian mixture model; satisfies `EMModel` (fit it with `latent::em`).
///
/// @code
/// latent::gaussian_mixture gmm(3, latent::covariance_type::full);
/// std::mt19937_64 rng(42);
/// auto fit = latent::em(gmm, x, rng, {.restarts = 5});   // x: d x N, observations are columns
/// Eigen::VectorXi labels = gmm.labels(x);
/// @endcode
class gaussian_mixture {
 public:
  using data_type = observations;
  using params_type = gaussian_mixture_params;
  using stats_type = gaussian_mixture_stats;

  /// A mixture of `components` Gaussians with the given covariance restriction, without
  /// parameters yet (call `initialize`, `set_params`, or `em(model, x, rng)`).
  /// @throws invalid_argument if components == 0 or an option is out of range.
  explicit gaussian_mixture(Eigen::Index components, covariance_type type = covariance_type::full,
                            gaussian_mixture_options options = {})
      : k_(components), type_(type), opts_(options) {
    constexpr std::string_view fn = "gaussian_mixture";
    detail::require(components > 0, fn, "argument 'components' must be positive, got ", components);
    detail::require(std::isfinite(opts_.reg_covar) && opts_.reg_covar >= 0.0, fn,
                    "option 'reg_covar' must be finite and >= 0, got ", opts_.reg_covar);
    detail::require(std::isfinite(opts_.min_component_weight) && opts_.min_component_weight >= 0.0 &&
                        opts_.min_component_weight < 1.0,
                    fn, "option 'min_component_weight' must be in [0, 1), got ", opts_.min_component_weight);
  }

  /// Mixture with given parameters (validated as by `set_params`).
  gaussian_mixture(const params_type& params, covariance_type type = covariance_type::full,
                   gaussian_mixture_options options = {})
      : gaussian_mixture(params.weights.size(), type, options) {
    set_params(params);
  }

  Eigen::Index components() const { return k_; }
  Eigen::Index dim() const { return p_.means.rows(); }
  covariance_type covariance() const { return type_; }
  const gaussian_mixture_options& options() const { return opts_; }
  bool has_params() const { return p_.means.size() > 0; }
  const params_type& params() const { return p_; }

  /// Set the parameters. They must match K and the covariance type: weights non-negative
  /// summing to 1 (within 1e-8), finite means, symmetric positive definite covariances of the
  /// type's structure. On any failure the model is unchanged.
  /// @throws invalid_argument naming the offending part.
  void set_params(const params_type& p) {
    constexpr std::string_view fn = "gaussian_mixture::set_params";
    detail::require(p.weights.size() == k_, fn, "'weights' must have K = ", k_, " entries, got ", p.weights.size());
    detail::require(p.means.cols() == k_ && p.means.rows() > 0, fn, "'means' must be d x K with K = ", k_,
                    " and d > 0, got ", p.means.rows(), " x ", p.means.cols());
    detail::require(static_cast<Eigen::Index>(p.covariances.size()) == k_, fn, "'covariances' must hold K = ", k_,
                    " matrices, got ", p.covariances.size());
    detail::require_finite(p.weights, fn, "weights");
    detail::require_finite(p.means, fn, "means");
    detail::require((p.weights.array() >= 0.0).all() && std::abs(p.weights.sum() - 1.0) <= 1e-8, fn,
                    "'weights' must be non-negative and sum to 1, got sum ", p.weights.sum());
    const Eigen::Index d = p.means.rows();
    for (Eigen::Index k = 0; k < k_; ++k) {
      const Eigen::MatrixXd& s = p.covariances[static_cast<std::size_t>(k)];
      detail::require(s.rows() == d && s.cols() == d, fn, "covariance ", k, " must be ", d, " x ", d, ", got ",
                      s.rows(), " x ", s.cols());
      detail::require_finite(s, fn, "covariances");
      detail::require((s - s.transpose()).cwiseAbs().maxCoeff() <= 1e-10 * std::max(1.0, s.cwiseAbs().maxCoeff()), fn,
                      "covariance ", k, " must be symmetric");
      if (type_ != covariance_type::full && type_ != covariance_type::tied) {
        Eigen::MatrixXd off = s;
        off.diagonal().setZero();
        detail::require(off.cwiseAbs().maxCoeff() == 0.0, fn, "covariance ", k, " must be diagonal for the ",
                        to_string(type_), " type");
      }
      if (type_ == covariance_type::spherical)
        detail::require((s.diagonal().array() == s(0, 0)).all(), fn, "covariance ", k,
                        " must be a multiple of the identity for the spherical type");
      if (type_ == covariance_type::tied)
        detail::require(s == p.covariances[0], fn, "covariance ", k, " must equal covariance 0 for the tied type");
    }
    cache c;
    if (!build_cache(p, c))
      detail::throw_invalid(fn, "'covariances' must be positive definite (Cholesky failed)");
    p_ = p;
    c_ = std::move(c);
  }

  // ---- EMModel ------------------------------------------------------------------------------

  Eigen::Index num_observations(const data_type& x) const { return x.size(); }
  double observation_weight(const data_type& x) const { return x.total_weight(); }

  /// Checks data once before a fit: d rows, finite entries, and K <= N.
  /// @throws invalid_argument naming the problem.
  void validate(const data_type& x) const {
    constexpr std::string_view fn = "gaussian_mixture";
    require_params(fn);
    detail::require_rows(x.x(), dim(), fn, "x");
    detail::require(k_ <= x.size(), fn, "K = ", k_, " components need at least K observations, got N = ", x.size());
    detail::require_finite(x.x(), fn, "x");
  }

  /// Statistics of no data, taken about the current mixture mean.
  stats_type zero_stats() const {
    require_params("gaussian_mixture::zero_stats");
    const Eigen::Index d = dim();
    return empty_stats(d, c_.center);
  }

  /// Adds the expected statistics of columns [begin, end) into `s` and returns their
  /// (weighted) log-likelihood sum_n w_n log p(x_n).
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    check_data(x, "gaussian_mixture::e_step");
    if (type_ == covariance_type::full) return e_step_full(x, begin, end, s);
    if (type_ == covariance_type::diagonal || type_ == covariance_type::spherical)
      return e_step_diagonal(x, begin, end, s);
    // Tied: chunks of columns small enough that the whitened block stays in cache between the
    // GEMM that makes it and the reductions that consume it. The chunk size is fixed, so the
    // arithmetic does not depend on how the solver cut the blocks across threads.
    const Eigen::Index chunk = 1024;
    double ll = 0.0;
    // One workspace per thread, kept between calls: buffers of a few hundred kB would
    // otherwise be mapped and unmapped (page faults) for every block.
    thread_local workspace ws;
    for (Eigen::Index c0 = begin; c0 < end; c0 += chunk) {
      const Eigen::Index b = std::min(chunk, end - c0);
      ws.xc = x.x().middleCols(c0, b).colwise() - s.center;
      ws.r.resize(k_, b);
      log_joint(ws, s.center);
      ll += responsibilities_in_place(ws, x, c0);
      accumulate(ws, s);
    }
    return ll;
  }

  /// M-step. Leaves the parameters unchanged and throws `numerical_error` if a covariance is
  /// not positive definite even with `reg_covar`, or if the statistics hold no weight.
  void m_step(const stats_type& s) {
    require_params("gaussian_mixture::m_step");
    const double total = s.counts.sum();
    if (!(total > 0.0) || !std::isfinite(total))
      throw numerical_error("gaussian_mixture::m_step: statistics carry no weight");
    const Eigen::Index d = dim();
    params_type p;
    p.weights = s.counts / total;
    p.means = p_.means;
    p.covariances = p_.covariances;
    const double floor_weight = opts_.min_component_weight * total;
    Eigen::MatrixXd m(d, k_);  // component means relative to the center
    std::vector<bool> live(static_cast<std::size_t>(k_));
    for (Eigen::Index k = 0; k < k_; ++k) {
      live[static_cast<std::size_t>(k)] = s.counts(k) > floor_weight && s.counts(k) > 0.0;
      m.col(k) = live[static_cast<std::size_t>(k)] ? Eigen::VectorXd(s.sums.col(k) / s.counts(k))
                                                   : Eigen::VectorXd(p_.means.col(k) - s.center);
      if (live[static_cast<std::size_t>(k)]) p.means.col(k) = s.center + m.col(k);
    }
    const Eigen::MatrixXd id = Eigen::MatrixXd::Identity(d, d);
    switch (type_) {
      case covariance_type::full:
        for (Eigen::Index k = 0; k < k_; ++k) {
          if (!live[static_cast<std::size_t>(k)]) continue;
          Eigen::MatrixXd c = s.scatter.middleRows(k * d, d) / s.counts(k);
          c -= m.col(k) * m.col(k).transpose();
          c = (0.5 * (c + c.transpose())).eval();  // exact symmetry for the Cholesky
          c += opts_.reg_covar * id;
          p.covariances[static_cast<std::size_t>(k)] = c;
        }
        break;
      case covariance_type::tied: {
        Eigen::MatrixXd c = s.scatter;
        for (Eigen::Index k = 0; k < k_; ++k) c -= s.counts(k) * m.col(k) * m.col(k).transpose();
        c /= total;
        c = (0.5 * (c + c.transpose())).eval();
        c += opts_.reg_covar * id;
        for (auto& ck : p.covariances) ck = c;
        break;
      }
      case covariance_type::diagonal:
      case covariance_type::spherical:
        for (Eigen::Index k = 0; k < k_; ++k) {
          if (!live[static_cast<std::size_t>(k)]) continue;
          Eigen::VectorXd v = s.diagonal_scatter.col(k) / s.counts(k) - m.col(k).array().square().matrix();
          v.array() = v.array().max(0.0);  // rounding can make a tiny variance negative
          if (type_ == covariance_type::spherical) v.setConstant(v.mean());
          v.array() += opts_.reg_covar;
          p.covariances[static_cast<std::size_t>(k)] = v.asDiagonal();
        }
        break;
    }
    cache c;
    if (!p.weights.allFinite() || !p.means.allFinite() || !build_cache(p, c))
      throw numerical_error("gaussian_mixture::m_step: a covariance is not positive definite (increase reg_covar)");
    p_ = std::move(p);
    c_ = std::move(c);
  }

  /// Draw starting parameters from the data (see `mixture_init`).
  /// @throws invalid_argument if K > N, the data are not finite, or have no positive weight.
  template <std::uniform_random_bit_generator Rng>
  void initialize(const data_type& x, Rng& rng) {
    constexpr std::string_view fn = "gaussian_mixture::initialize";
    detail::require(x.size() > 0 && x.dim() > 0, fn, "argument 'x' must have at least one row and column, got ",
                    x.dim(), " x ", x.size());
    detail::require(k_ <= x.size(), fn, "K = ", k_, " components need at least K observations, got N = ", x.size());
    detail::require_finite(x.x(), fn, "x");
    detail::require(x.total_weight() > 0.0, fn, "argument 'weights' must not all be zero");
    const Eigen::Index d = x.dim(), n = x.size();
    const Eigen::MatrixXd& xm = x.x();
    Eigen::MatrixXd centers(d, k_);
    std::vector<Eigen::Index> chosen;
    if (opts_.init == mixture_init::random_points) {
      // K distinct columns with positive weight, drawn proportionally to the weights.
      Eigen::VectorXd w(n);
      for (Eigen::Index i = 0; i < n; ++i) w(i) = x.weight(i);
      detail::require((w.array() > 0.0).count() >= k_, fn, "need at least K observations with positive weight");
      for (Eigen::Index k = 0; k < k_; ++k) {
        const Eigen::Index i = sample_categorical(w, rng);
        centers.col(k) = xm.col(i);
        w(i) = 0.0;
      }
    } else {
      // k-means++: each new center drawn with probability proportional to w_n D(x_n)^2.
      Eigen::VectorXd w(n);
      for (Eigen::Index i = 0; i < n; ++i) w(i) = x.weight(i);
      centers.col(0) = xm.col(sample_categorical(w, rng));
      Eigen::VectorXd d2 = (xm.colwise() - centers.col(0)).colwise().squaredNorm().transpose();
      for (Eigen::Index k = 1; k < k_; ++k) {
        const Eigen::VectorXd p = d2.cwiseProduct(w);
        // All remaining mass on existing centers (duplicated points): fall back to the weights.
        const Eigen::Index i = p.sum() > 0.0 ? sample_categorical(p, rng) : sample_categorical(w, rng);
        centers.col(k) = xm.col(i);
        d2 = d2.cwiseMin((xm.colwise() - centers.col(k)).colwise().squaredNorm().transpose());
      }
      for (std::size_t it = 0; it < opts_.kmeans_iterations; ++it) {
        // Weighted sums per cluster by one pass over the columns (O(N d); a dense K x N
        // one-hot product would cost K times more).
        const Eigen::VectorXi lab = nearest(xm, centers);
        Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(d, k_);
        Eigen::VectorXd cnt = Eigen::VectorXd::Zero(k_);
        for (Eigen::Index i = 0; i < n; ++i) {
          sum.col(lab(i)) += x.weight(i) * xm.col(i);
          cnt(lab(i)) += x.weight(i);
        }
        for (Eigen::Index k = 0; k < k_; ++k)
          if (cnt(k) > 0.0) centers.col(k) = sum.col(k) / cnt(k);  // an empty cluster keeps its center
      }
    }
    // One M-step from hard assignments to the nearest center, about the data mean.
    const Eigen::VectorXi lab = nearest(xm, centers);
    stats_type s = empty_stats(d, xm.rowwise().mean());
    workspace ws;
    const bool stacked = type_ == covariance_type::diagonal || type_ == covariance_type::spherical;
    ws.xc.resize(stacked ? 2 * d : d, n);
    ws.xc.topRows(d) = xm.colwise() - s.center;
    if (stacked) ws.xc.bottomRows(d) = ws.xc.topRows(d).array().square();
    ws.r = hard_assignments(x, lab);
    accumulate(ws, s);
    const Eigen::MatrixXd xc = ws.xc.topRows(d);
    // Provisional parameters so that m_step has a fallback for empty clusters: the centers
    // with the pooled data covariance.
    params_type start;
    start.weights = Eigen::VectorXd::Constant(k_, 1.0 / static_cast<double>(k_));
    start.means = centers;
    Eigen::MatrixXd pooled = (xc * xc.transpose()) / static_cast<double>(n);
    pooled.diagonal().array() += opts_.reg_covar;
    if (type_ == covariance_type::diagonal || type_ == covariance_type::spherical) {
      Eigen::VectorXd v = pooled.diagonal();
      if (type_ == covariance_type::spherical) v.setConstant(v.mean());
      pooled = v.asDiagonal();
    }
    if (pooled.diagonal().minCoeff() <= 0.0) pooled = Eigen::MatrixXd::Identity(d, d);
    start.covariances.assign(static_cast<std::size_t>(k_), pooled);
    cache c;
    if (!build_cache(start, c)) {
      pooled.diagonal().array() += 1.0;  // degenerate data: any positive definite start will do
      start.covariances.assign(static_cast<std::size_t>(k_), pooled);
      build_cache(start, c);
    }
    p_ = start;
    c_ = std::move(c);
    m_step(s);
  }

  // ---- Queries ------------------------------------------------------------------------------

  /// log p(x_n) for every column (1 x N).
  Eigen::RowVectorXd log_likelihood_per_observation(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
    Eigen::MatrixXd r;
    Eigen::RowVectorXd lse;
    posterior(x, r, lse, "gaussian_mixture::log_likelihood_per_observation");
    return lse;
  }

  /// sum_n w_n log p(x_n).
  double log_likelihood(const data_type& x) const {
    const Eigen::RowVectorXd l = log_likelihood_per_observation(x.x());
    return x.weighted() ? l.dot(x.weights().transpose()) : l.sum();
  }

  /// Responsibilities r_nk = p(c_n = k | x_n), K x N; every column sums to 1.
  Eigen::MatrixXd responsibilities(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
    Eigen::MatrixXd r;
    Eigen::RowVectorXd lse;
    posterior(x, r, lse, "gaussian_mixture::responsibilities");
    return r;
  }

  /// Most probable component of every column (ties: the lowest index).
  Eigen::VectorXi labels(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
    const Eigen::MatrixXd r = responsibilities(x);
    Eigen::VectorXi out(r.cols());
    for (Eigen::Index n = 0; n < r.cols(); ++n) r.col(n).maxCoeff(&out(n));
    return out;
  }

  /// Number of free parameters: (K - 1) + K d + covariance parameters.
  Eigen::Index num_parameters() const {
    require_params("gaussian_mixture::num_parameters");
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

  /// Bayesian information criterion, -2 log L + p log N (lower is better). N is the total weight.
  double bic(const data_type& x) const {
    return -2.0 * log_likelihood(x) + static_cast<double>(num_parameters()) * std::log(x.total_weight());
  }
  /// Akaike information criterion, -2 log L + 2 p (lower is better).
  double aic(const data_type& x) const { return -2.0 * log_likelihood(x) + 2.0 * static_cast<double>(num_parameters()); }

  /// Draw `n` observations; returns the d x n sample and the component of each column.
  template <std::uniform_random_bit_generator Rng>
  std::pair<Eigen::MatrixXd, Eigen::VectorXi> sample(Eigen::Index n, Rng& rng) const {
    require_params("gaussian_mixture::sample");
    detail::require(n >= 0, "gaussian_mixture::sample", "argument 'n' must be >= 0, got ", n);
    Eigen::VectorXi comp(n);
    for (Eigen::Index i = 0; i < n; ++i) comp(i) = static_cast<int>(sample_categorical(p_.weights, rng));
    Eigen::MatrixXd out = standard_normal(dim(), n, rng);
    for (Eigen::Index k = 0; k < k_; ++k) {
      std::vector<Eigen::Index> idx;
      for (Eigen::Index i = 0; i < n; ++i)
        if (comp(i) == k) idx.push_back(i);
      if (idx.empty()) continue;
      const Eigen::MatrixXd l = c_.chol[static_cast<std::size_t>(type_ == covariance_type::tied ? 0 : k)];
      Eigen::MatrixXd z(dim(), static_cast<Eigen::Index>(idx.size()));
      for (std::size_t j = 0; j < idx.size(); ++j) z.col(static_cast<Eigen::Index>(j)) = out.col(idx[j]);
      z = (l.triangularView<Eigen::Lower>() * z).colwise() + p_.means.col(k);
      for (std::size_t j = 0; j < idx.size(); ++j) out.col(idx[j]) = z.col(static_cast<Eigen::Index>(j));
    }
    return {std::move(out), std::move(comp)};
  }

 private:
  /// Quantities derived from the parameters, rebuilt whenever they change.
  struct cache {
    Eigen::VectorXd center;             ///< sum_k pi_k mu_k
    Eigen::MatrixXd whiten;             ///< full: K d x d stacked L_k^{-1}; tied: L^{-1}
    Eigen::MatrixXd offsets;            ///< full/tied: d x K, L_k^{-1} (mu_k - c)
    Eigen::MatrixXd coef;               ///< diagonal/spherical: K x 2d, [(mu_k - c) / sigma_k^2, -1 / (2 sigma_k^2)]
    Eigen::VectorXd log_const;          ///< K: log pi_k - d/2 log 2 pi - 1/2 log det Sigma_k (+ the
                                        ///< constant mean term for diagonal/spherical)
    std::vector<Eigen::MatrixXd> chol;  ///< Cholesky factors L_k (tied: one)
  };

  stats_type empty_stats(Eigen::Index d, const Eigen::VectorXd& center) const {
    stats_type s;
    s.type = type_;
    s.center = center;
    s.counts = Eigen::VectorXd::Zero(k_);
    s.sums = Eigen::MatrixXd::Zero(d, k_);
    if (type_ == covariance_type::full) s.scatter = Eigen::MatrixXd::Zero(k_ * d, d);
    if (type_ == covariance_type::tied) s.scatter = Eigen::MatrixXd::Zero(d, d);
    if (type_ == covariance_type::diagonal || type_ == covariance_type::spherical)
      s.diagonal_scatter = Eigen::MatrixXd::Zero(d, k_);
    return s;
  }

  /// K x N one-hot matrix of `labels`, scaled by the observation weights.
  Eigen::MatrixXd hard_assignments(const data_type& x, const Eigen::VectorXi& labels) const {
    Eigen::MatrixXd r = Eigen::MatrixXd::Zero(k_, x.size());
    for (Eigen::Index i = 0; i < x.size(); ++i) r(labels(i), i) = x.weight(i);
    return r;
  }

  static Eigen::VectorXi nearest(const Eigen::MatrixXd& x, const Eigen::MatrixXd& centers) {
    // ||x - m||^2 = ||x||^2 - 2 m^T x + ||m||^2; the first term does not change the argmin.
    const Eigen::MatrixXd score = (-2.0 * centers.transpose() * x).colwise() + centers.colwise().squaredNorm().transpose();
    Eigen::VectorXi lab(x.cols());
    for (Eigen::Index n = 0; n < x.cols(); ++n) score.col(n).minCoeff(&lab(n));
    return lab;
  }

  bool build_cache(const params_type& p, cache& c) const {
    const Eigen::Index d = p.means.rows();
    c.center = p.means * p.weights;
    const Eigen::ArrayXd log_w = p.weights.array().log();  // log 0 = -inf: a dead component
    c.log_const.resize(k_);
    const double half_d_log_2pi = 0.5 * static_cast<double>(d) * log_two_pi;
    if (type_ == covariance_type::full || type_ == covariance_type::tied) {
      const Eigen::Index nf = type_ == covariance_type::full ? k_ : 1;
      c.chol.assign(static_cast<std::size_t>(nf), Eigen::MatrixXd());
      c.whiten.resize(nf * d, d);
      c.offsets.resize(d, k_);
      Eigen::VectorXd log_det(nf);
      for (Eigen::Index f = 0; f < nf; ++f) {
        const cholesky_result ch = regularized_cholesky(p.covariances[static_cast<std::size_t>(f)]);
        if (!ch.ok) return false;
        c.chol[static_cast<std::size_t>(f)] = ch.llt.matrixL();
        c.whiten.middleRows(f * d, d) = ch.llt.matrixL().solve(Eigen::MatrixXd::Identity(d, d));
        log_det(f) = log_det_from_cholesky(ch.llt);
      }
      for (Eigen::Index k = 0; k < k_; ++k) {
        const Eigen::Index f = type_ == covariance_type::full ? k : 0;
        c.offsets.col(k) = c.whiten.middleRows(f * d, d) * (p.means.col(k) - c.center);
        c.log_const(k) = log_w(k) - half_d_log_2pi - 0.5 * log_det(f);
      }
      if (!c.whiten.allFinite()) return false;
    } else {
      c.chol.assign(static_cast<std::size_t>(k_), Eigen::MatrixXd());
      for (Eigen::Index k = 0; k < k_; ++k) {
        const Eigen::VectorXd v = p.covariances[static_cast<std::size_t>(k)].diagonal();
        if (!((v.array() > 0.0).all() && v.allFinite())) return false;
        c.chol[static_cast<std::size_t>(k)] = v.cwiseSqrt().asDiagonal();
      }
      diagonal_coefficients(p, c.center, c.coef, c.log_const);
    }
    return true;
  }

  /// For diagonal covariances v_k, the log-joint about a reference point c is
  ///   log pi_k + log N(x | mu_k, diag v_k) = lc_k + sum_j x'_j (a_kj + b_kj x'_j),   x' = x - c,
  /// with a_kj = (mu_kj - c_j) / v_kj, b_kj = -1 / (2 v_kj) and lc_k = log pi_k - d/2 log 2 pi
  /// - 1/2 sum_j log v_kj - 1/2 sum_j (mu_kj - c_j)^2 / v_kj. Sets coef = [a b] (K x 2d) and lc.
  void diagonal_coefficients(const params_type& p, const Eigen::VectorXd& center, Eigen::MatrixXd& coef,
                             Eigen::VectorXd& lc) const {
    const Eigen::Index d = p.means.rows();
    coef.resize(k_, 2 * d);
    lc.resize(k_);
    for (Eigen::Index k = 0; k < k_; ++k) {
      const Eigen::VectorXd v = p.covariances[static_cast<std::size_t>(k)].diagonal();
      const Eigen::VectorXd inv = v.cwiseInverse();
      const Eigen::VectorXd mc = p.means.col(k) - center;
      coef.row(k).head(d) = mc.cwiseProduct(inv).transpose();
      coef.row(k).tail(d) = -0.5 * inv.transpose();
      lc(k) = std::log(p.weights(k)) - 0.5 * static_cast<double>(d) * log_two_pi -
              0.5 * v.array().log().sum() - 0.5 * mc.dot(mc.cwiseProduct(inv));
    }
  }

  /// The diagonal and spherical kernels work on groups of `group` observations held as the
  /// rows of a group x d block, so that every step is vector arithmetic across observations
  /// with the group's data in registers or L1; statistics are accumulated in `lanes`-wide
  /// partial sums and reduced once per E-step call. Both sizes are fixed, so the arithmetic
  /// does not depend on how the solver cut the data into blocks.
  static constexpr Eigen::Index group = 32;
  static constexpr Eigen::Index lanes = 8;
  using group_array = Eigen::Array<double, group, 1>;
  using group_block = Eigen::Array<double, group, Eigen::Dynamic>;
  using lane_block = Eigen::Array<double, lanes, Eigen::Dynamic>;

  /// lj(:, k) = lc_k + sum_j x_j (a_kj + b_kj x_j) for the group xg (group x d), coef = [a b].
  static void diagonal_log_joint(const group_block& xg, const Eigen::MatrixXd& coef, const Eigen::VectorXd& lc,
                                 group_block& lj) {
    const Eigen::Index d = xg.cols();
    for (Eigen::Index k = 0; k < coef.rows(); ++k) {
      // (The first term initializes acc: a broadcast constant would be stored in halves and
      // reloaded whole, which stalls store forwarding.)
      group_array acc = xg.col(0) * (coef(k, 0) + coef(k, d) * xg.col(0)) + lc(k);
      for (Eigen::Index j = 1; j < d; ++j) acc += xg.col(j) * (coef(k, j) + coef(k, d + j) * xg.col(j));
      lj.col(k) = acc;
    }
  }

  /// The 8 lanes of a group's 32 values summed in a fixed order.
  static Eigen::Array<double, lanes, 1> fold(const group_array& v) {
    static_assert(group == 4 * lanes);
    return (v.segment<lanes>(0) + v.segment<lanes>(lanes)) + (v.segment<lanes>(2 * lanes) + v.segment<lanes>(3 * lanes));
  }

  /// acc (lanes partial sums) += the group's products a .* b folded onto the lanes, written as
  /// one chain so that it compiles to four fused multiply-adds.
  static void add_products(double* acc, const group_array& a, const double* b) {
    using lane_array = Eigen::Array<double, lanes, 1>;
    using lane_map = Eigen::Map<const lane_array>;
    Eigen::Map<lane_array> s(acc);
    s = s + a.segment<lanes>(0) * lane_map(b) + a.segment<lanes>(lanes) * lane_map(b + lanes) +
        a.segment<lanes>(2 * lanes) * lane_map(b + 2 * lanes) + a.segment<lanes>(3 * lanes) * lane_map(b + 3 * lanes);
  }

  /// Buffers of the diagonal kernels (one per thread, reused across calls).
  struct diagonal_workspace {
    group_block xg;          ///< group x d: the group's observations minus the reference point
    group_block lj;          ///< group x K: log-joint, then (weighted) responsibilities
    lane_block counts;       ///< lanes x K partial sums of responsibilities
    lane_block sums;         ///< lanes x K d partial sums of r_nk x_nj (column k d + j)
    lane_block squares;      ///< lanes x K d partial sums of r_nk x_nj^2
    Eigen::MatrixXd coef;    ///< coefficients about another reference point (see e_step_diagonal)
    Eigen::VectorXd lc;
  };

  /// out(i, j) = x(j, n0 + i) - center(j) for i < b, j < d, with out column-major with leading
  /// dimension ld: the columns of x become rows, so that the kernels work across observations.
  static void load_rows(const Eigen::Ref<const Eigen::MatrixXd>& x, const Eigen::VectorXd& center, Eigen::Index n0,
                        Eigen::Index b, double* out, Eigen::Index ld) {
    const Eigen::Index d = x.rows(), stride = x.outerStride();
    const double* const c = center.data();
    for (Eigen::Index i = 0; i < b; ++i) {
      const double* const col = x.data() + (n0 + i) * stride;
      for (Eigen::Index j = 0; j < d; ++j) out[j * ld + i] = col[j] - c[j];
    }
  }

  /// Columns [n0, n0 + b) of x minus `center` as the rows of xg (group x d), zero padded.
  static void load_group(const Eigen::Ref<const Eigen::MatrixXd>& x, const Eigen::VectorXd& center, Eigen::Index n0,
                         Eigen::Index b, group_block& xg) {
    load_rows(x, center, n0, b, xg.data(), group);
    if (b < group) xg.bottomRows(group - b).setZero();
  }

  /// The weights of observations [n0, n0 + b) as a group; 0 on the padding rows.
  static group_array group_weights(const data_type& x, Eigen::Index n0, Eigen::Index b) {
    group_array w = group_array::Zero();
    if (x.weighted())
      w.head(b) = x.weights().segment(n0, b).array();
    else
      w.head(b).setOnes();
    return w;
  }

  /// Turns a group's log-joint (group x K) into responsibilities scaled by the weights w and
  /// returns the group's weighted log-likelihood (the padding rows have finite log p and w = 0).
  template <class Group>
  static double group_responsibilities(Group& lj, const group_array& w) {
    group_array lse;
    normalize_rows_log(lj, lse);
    for (Eigen::Index k = 0; k < lj.cols(); ++k) lj.col(k).array() *= w;
    return (lse * w).sum();
  }

  /// Adds the group's statistics (the weighted responsibilities ws.lj) into the lane
  /// accumulators of ws. Raw pointers: the accumulators are stored to in the inner loop, and
  /// the compiler must know that this does not move the group's data.
  static void accumulate_group(diagonal_workspace& ws) {
    using lane_array = Eigen::Array<double, lanes, 1>;
    const Eigen::Index d = ws.xg.cols(), k_count = ws.lj.cols();
    const double* const xg = ws.xg.data();
    double* const counts = ws.counts.data();
    double* const sums = ws.sums.data();
    double* const squares = ws.squares.data();
    for (Eigen::Index k = 0; k < k_count; ++k) {
      const group_array r = ws.lj.col(k);
      Eigen::Map<lane_array>(counts + k * lanes) += fold(r);
      for (Eigen::Index j = 0; j < d; ++j) {
        const Eigen::Map<const group_array> xj(xg + j * group);
        const group_array t = r * xj;
        Eigen::Map<lane_array>(sums + (k * d + j) * lanes) += fold(t);
        add_products(squares + (k * d + j) * lanes, t, xj.data());
      }
    }
  }

  /// E-step for diagonal and spherical covariances, fused per group of observations:
  /// log-joint, normalization and statistics while the group is in registers or L1.
  double e_step_diagonal(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    const Eigen::Index d = dim();
    if (s.center.size() != d)
      detail::throw_invalid("gaussian_mixture::e_step", "statistics belong to a mixture of another dimension");
    thread_local diagonal_workspace ws;
    // Densities about the statistics' reference point (usually this model's own center).
    const bool own_center = s.center == c_.center;
    if (!own_center) diagonal_coefficients(p_, s.center, ws.coef, ws.lc);
    const Eigen::MatrixXd& coef = own_center ? c_.coef : ws.coef;
    const Eigen::VectorXd& lc = own_center ? c_.log_const : ws.lc;
    ws.xg.resize(group, d);
    ws.lj.resize(group, k_);
    ws.counts.setZero(lanes, k_);
    ws.sums.setZero(lanes, k_ * d);
    ws.squares.setZero(lanes, k_ * d);
    double ll = 0.0;
    for (Eigen::Index n0 = begin; n0 < end; n0 += group) {
      const Eigen::Index b = std::min(group, end - n0);
      load_group(x.x(), s.center, n0, b, ws.xg);
      diagonal_log_joint(ws.xg, coef, lc, ws.lj);
      ll += group_responsibilities(ws.lj, group_weights(x, n0, b));
      accumulate_group(ws);
    }
    s.counts += ws.counts.colwise().sum().transpose().matrix();
    s.sums += ws.sums.colwise().sum().matrix().reshaped(d, k_);
    s.diagonal_scatter += ws.squares.colwise().sum().matrix().reshaped(d, k_);
    return ll;
  }

  /// The lower triangles of the components' whitening L_k^{-1} packed row by row (K rows of
  /// d(d+1)/2), so that the kernel reads its coefficients in order.
  Eigen::MatrixXd packed_whitening() const {
    const Eigen::Index d = dim();
    Eigen::MatrixXd t(d * (d + 1) / 2, k_);
    for (Eigen::Index k = 0; k < k_; ++k) {
      Eigen::Index at = 0;
      for (Eigen::Index i = 0; i < d; ++i)
        for (Eigen::Index j = 0; j <= i; ++j) t(at++, k) = c_.whiten(k * d + i, j);
    }
    return t;
  }

  /// ||L^{-1} (x_n - mu)||^2 for a group of observations: x_n - c are the rows [0, group) of
  /// the column-major block at z with leading dimension ld, `tri` is L^{-1} packed by rows
  /// (see packed_whitening) and o = L^{-1} (mu - c). Only the triangle is touched, half the
  /// flops of a dense product, and the whitened values never leave registers.
  static group_array whitened_norms(const double* z, Eigen::Index ld, Eigen::Index d, const double* tri,
                                    const double* o) {
    using column = Eigen::Map<const group_array>;
    group_array y = column(z) * tri[0] - o[0];
    group_array nrm = y.square();
    for (Eigen::Index i = 1; i < d; ++i) {
      tri += i;  // row i starts after rows 0..i-1 (i(i+1)/2 entries)
      y = column(z) * tri[0] - o[i];
      for (Eigen::Index j = 1; j <= i; ++j) y += column(z + j * ld) * tri[j];
      nrm += y.square();
    }
    return nrm;
  }

  /// Adds the moments of one chunk to the lane accumulators `moments` (lanes x K P, with
  /// P = 1 + d + d(d+1)/2): for component k, column k P holds the partial sums of r_nk, the next
  /// d those of r_nk x_ni, and the rest those of r_nk x_ni x_nj for j <= i, row by row. The
  /// chunk's observations are rows [0, bp) of the column-major z (leading dimension ld), its
  /// weighted responsibilities the columns of t. Looping over components outermost keeps one
  /// component's accumulators in L1 while the chunk streams past them.
  static void accumulate_full(const double* z, Eigen::Index ld, Eigen::Index bp, Eigen::Index d,
                              const Eigen::MatrixXd& t, lane_block& moments) {
    using lane_array = Eigen::Array<double, lanes, 1>;
    using column = Eigen::Map<const group_array>;
    const Eigen::Index p = 1 + d + d * (d + 1) / 2;
    for (Eigen::Index k = 0; k < t.cols(); ++k) {
      double* const acc = moments.data() + k * p * lanes;
      for (Eigen::Index g = 0; g < bp; g += group) {
        const group_array r = column(t.col(k).data() + g);
        Eigen::Map<lane_array>(acc) += fold(r);
        double* pair = acc + (1 + d) * lanes;
        for (Eigen::Index i = 0; i < d; ++i) {
          const group_array ti = r * column(z + i * ld + g);
          Eigen::Map<lane_array>(acc + (1 + i) * lanes) += fold(ti);
          for (Eigen::Index j = 0; j <= i; ++j, pair += lanes) add_products(pair, ti, z + j * ld + g);
        }
      }
    }
  }

  /// E-step of the full-covariance model, in the transposed (observations as rows) layout.
  /// Per chunk of B columns, with c the statistics' reference point and z_n = x_n - c:
  ///   log-joint_nk = log_const_k - ||L_k^{-1}(x_n - mu_k)||^2 / 2 by `whitened_norms`, one
  ///       group of observations at a time, normalized into responsibilities r_nk;
  ///   the moments sum_n r_nk, sum_n r_nk z_n and the lower triangle of sum_n r_nk z_n z_n^T
  ///       by `accumulate_full`, folded onto lanes and reduced once per call.
  double e_step_full(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    const Eigen::Index d = dim(), p = 1 + d + d * (d + 1) / 2;
    if (s.center.size() != d)
      detail::throw_invalid("gaussian_mixture::e_step", "statistics belong to a mixture of another dimension");
    // Fixed chunk size (a multiple of the group): the arithmetic does not depend on how the
    // solver cut the blocks.
    constexpr Eigen::Index chunk = 4 * group;
    thread_local workspace ws;
    // Offsets o_k = L_k^{-1} (mu_k - c) about the statistics' reference point c.
    ws.w = c_.offsets;
    if (s.center != c_.center)
      for (Eigen::Index k = 0; k < k_; ++k) ws.w.col(k) += c_.whiten.middleRows(k * d, d) * (c_.center - s.center);
    const Eigen::MatrixXd tri = packed_whitening();
    ws.moments.setZero(lanes, k_ * p);
    ws.z.resize(chunk, d);
    ws.t.resize(chunk, k_);
    double ll = 0.0;
    for (Eigen::Index c0 = begin; c0 < end; c0 += chunk) {
      const Eigen::Index b = std::min(chunk, end - c0), bp = (b + group - 1) / group * group;
      load_rows(x.x(), s.center, c0, b, ws.z.data(), chunk);
      ws.z.middleRows(b, bp - b).setZero();
      for (Eigen::Index g = 0; g < bp; g += group) {
        auto lj = ws.t.middleRows<group>(g);
        for (Eigen::Index k = 0; k < k_; ++k)
          lj.col(k).array() = c_.log_const(k) - 0.5 * whitened_norms(ws.z.data() + g, chunk, d, tri.col(k).data(),
                                                                       ws.w.col(k).data());
        ll += group_responsibilities(lj, group_weights(x, c0 + g, std::min(group, b - g)));
      }
      accumulate_full(ws.z.data(), chunk, bp, d, ws.t, ws.moments);
    }
    const Eigen::MatrixXd m = ws.moments.colwise().sum().matrix().reshaped(p, k_);
    s.counts += m.row(0).transpose();
    s.sums += m.middleRows(1, d);
    for (Eigen::Index k = 0; k < k_; ++k) {
      auto sk = s.scatter.middleRows(k * d, d);
      Eigen::Index at = 1 + d;
      for (Eigen::Index i = 0; i < d; ++i)
        for (Eigen::Index j = 0; j <= i; ++j) {
          const double v = m(at++, k);
          sk(i, j) += v;
          if (i != j) sk(j, i) += v;
        }
    }
    return ll;
  }

  /// Buffers of one chunk of columns (reused across chunks of an E-step).
  struct workspace {
    Eigen::MatrixXd z;        ///< full e_step: B x d, the chunk minus the reference point as rows
    Eigen::MatrixXd w;        ///< full e_step: d x K offsets L_k^{-1} (mu_k - c) about the statistics' center
    lane_block moments;       ///< full e_step: lanes x K P partial sums (see accumulate_full)
    Eigen::MatrixXd xc;       ///< d x B, the chunk minus the reference point (initialize for the
                              ///< diagonal/spherical types: 2d x B, the chunk over its squares)
    Eigen::MatrixXd y;        ///< tied: d x B whitened chunk
    Eigen::MatrixXd r;        ///< K x B: log-joint, then (weighted) responsibilities
    Eigen::RowVectorXd lse;   ///< 1 x B: log p(x_n)
    Eigen::MatrixXd t;        ///< full e_step: B x K log-joint, then responsibilities; accumulate:
                              ///< responsibility-scaled copies of the data
  };

  /// ws.r (K x B) = log pi_k + log N(x_n | mu_k, Sigma_k) for the chunk ws.xc = x - center.
  /// `center` is the reference point of ws.xc; if it is not this model's center (statistics
  /// created elsewhere), the chunk is shifted for the densities and shifted back afterwards.
  void log_joint(workspace& ws, const Eigen::VectorXd& center) const {
    if (center.size() != c_.center.size())
      detail::throw_invalid("gaussian_mixture::e_step", "statistics belong to a mixture of another dimension");
    const bool shift = center != c_.center;
    const Eigen::Index d = center.size();
    if (shift) ws.xc.topRows(d).colwise() += center - c_.center;
    Eigen::MatrixXd& out = ws.r;
    if (type_ == covariance_type::full) {
      // The kernel of e_step_full, one group of columns at a time.
      const Eigen::MatrixXd tri = packed_whitening();
      group_block xg(group, d);
      for (Eigen::Index n0 = 0; n0 < ws.xc.cols(); n0 += group) {
        const Eigen::Index b = std::min(group, ws.xc.cols() - n0);
        load_group(ws.xc, Eigen::VectorXd::Zero(d), n0, b, xg);
        for (Eigen::Index k = 0; k < k_; ++k)
          out.row(k).segment(n0, b) =
              (c_.log_const(k) - 0.5 * whitened_norms(xg.data(), group, d, tri.col(k).data(), c_.offsets.col(k).data()))
                  .head(b)
                  .transpose()
                  .matrix();
      }
    } else if (type_ == covariance_type::tied) {
      ws.y.noalias() = c_.whiten * ws.xc;
      for (Eigen::Index k = 0; k < k_; ++k)
        out.row(k) = (c_.log_const(k) - 0.5 * (ws.y.colwise() - c_.offsets.col(k)).colwise().squaredNorm().array()).matrix();
    } else {
      // The diagonal kernel, one group of columns at a time (see e_step_diagonal).
      group_block xg(group, d), lj(group, k_);
      for (Eigen::Index n0 = 0; n0 < ws.xc.cols(); n0 += group) {
        const Eigen::Index b = std::min(group, ws.xc.cols() - n0);
        load_group(ws.xc, Eigen::VectorXd::Zero(d), n0, b, xg);
        diagonal_log_joint(xg, c_.coef, c_.log_const, lj);
        out.middleCols(n0, b) = lj.topRows(b).transpose().matrix();
      }
    }
    if (shift) ws.xc.topRows(d).colwise() -= center - c_.center;
  }

  /// Turns the log-joint ws.r (K x B, columns c0.. of x) into responsibilities scaled by the
  /// sample weights, and returns the chunk's weighted log-likelihood.
  static double responsibilities_in_place(workspace& ws, const data_type& x, Eigen::Index c0) {
    const Eigen::Index b = ws.r.cols();
    ws.lse.resize(b);
    normalize_columns_log(ws.r, ws.lse);
    if (!x.weighted()) return ws.lse.sum();
    const auto w = x.weights().segment(c0, b);
    ws.r.array().rowwise() *= w.transpose().array();
    return ws.lse.dot(w.transpose());
  }

  /// s += statistics of the chunk ws.xc with (already weighted) responsibilities ws.r.
  void accumulate(workspace& ws, stats_type& s) const {
    const Eigen::Index d = s.center.size(), b = ws.xc.cols();
    s.counts.noalias() += ws.r.rowwise().sum();
    if (type_ != covariance_type::diagonal && type_ != covariance_type::spherical)
      s.sums.noalias() += ws.xc * ws.r.transpose();
    switch (type_) {
      case covariance_type::full:
        // All K scatter matrices in one GEMM: [r_1 .* x; ...; r_K .* x] x^T.
        ws.t.resize(k_ * d, b);
        for (Eigen::Index k = 0; k < k_; ++k)
          ws.t.middleRows(k * d, d) = ws.xc.array().rowwise() * ws.r.row(k).array();
        s.scatter.noalias() += ws.t * ws.xc.transpose();
        break;
      case covariance_type::tied:
        // sum_k r_nk is the observation's weight w_n.
        ws.t = ws.xc.array().rowwise() * ws.r.colwise().sum().array();
        s.scatter.noalias() += ws.t * ws.xc.transpose();
        break;
      case covariance_type::diagonal:
      case covariance_type::spherical: {
        // Sums and diagonal scatter in one GEMM: [x; x^2] r^T.
        const Eigen::MatrixXd both = ws.xc * ws.r.transpose();
        s.sums += both.topRows(d);
        s.diagonal_scatter += both.bottomRows(d);
        break;
      }
    }
  }

  void posterior(const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::MatrixXd& r, Eigen::RowVectorXd& lse,
                 std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x, dim(), fn, "x");
    detail::require_finite(x, fn, "x");
    workspace ws;
    ws.xc = x.colwise() - c_.center;
    ws.r.resize(k_, x.cols());
    log_joint(ws, c_.center);
    lse.resize(x.cols());
    normalize_columns_log(ws.r, lse);
    r = std::move(ws.r);
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
  cache c_;
};

}  // namespace latent
