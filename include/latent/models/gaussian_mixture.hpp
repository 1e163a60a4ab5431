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
/// Cost per EM iteration: O(N K d^2) for full covariance (K triangular whitenings and K
/// lower-triangle scatters), O(N d^2 + N K d) for tied, O(N K d) for diagonal and spherical.
/// The E-step works on groups of 32 observations held as rows, with everything a group needs
/// in registers or L1 (detail/mixture_kernels.hpp); it reads the data once per iteration.

#include <latent/core/error.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/random.hpp>
#include <latent/models/detail/mixture_kernels.hpp>

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
    if (s.center.size() != dim() || s.type != type_)
      detail::throw_invalid("gaussian_mixture::e_step", "statistics belong to a mixture of another type or dimension");
    // One workspace per thread, kept between calls: no allocation per block.
    thread_local workspace ws;
    const density& dn = density_about(s.center, ws.shifted);
    return sweep(ws, x.x(), begin, end, s, [&](Eigen::Index c0, Eigen::Index b, Eigen::Index bp) {
      double ll = 0.0;
      for (Eigen::Index g = 0; g < bp; g += group) {
        auto lj = ws.r.middleRows<group>(g);
        group_log_joint(ws.z.data() + g, chunk, dn, lj, ws.y);
        const group_array w = group_weights(x, c0 + g, std::min(group, b - g));
        ll += group_responsibilities(lj, w);
        ws.w.middleRows<group>(g).array() = w;
      }
      return ll;
    });
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
    sweep(ws, xm, 0, n, s, [&](Eigen::Index c0, Eigen::Index b, Eigen::Index bp) {
      ws.r.topRows(bp).setZero();
      ws.w.topRows(bp).setZero();
      for (Eigen::Index i = 0; i < b; ++i) ws.r(i, lab(c0 + i)) = ws.w(i, 0) = x.weight(c0 + i);
      return 0.0;
    });
    const Eigen::MatrixXd xc = xm.colwise() - s.center;
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
  // The E-step kernels work on groups of observations held as rows (detail/mixture_kernels.hpp).
  static constexpr Eigen::Index group = detail::mixture::group;
  static constexpr Eigen::Index lanes = detail::mixture::lanes;
  using group_array = detail::mixture::group_array;
  using group_block = detail::mixture::group_block;
  using lane_block = detail::mixture::lane_block;

  /// What the log-joint needs, about a reference point c (see group_log_joint).
  struct density {
    Eigen::VectorXd log_const;  ///< K: log pi_k - d/2 log 2 pi - 1/2 log det Sigma_k (+ the mean
                                ///< term about c for diagonal/spherical)
    Eigen::MatrixXd coef;       ///< diagonal/spherical: K x 2d, [(mu_k - c) / v_k, -1 / (2 v_k)]
    Eigen::MatrixXd tri;        ///< full/tied: lower triangles of L_k^{-1} packed by rows (K or 1 columns)
    Eigen::MatrixXd offsets;    ///< full/tied: d x K, L_k^{-1} (mu_k - c)
  };

  /// Quantities derived from the parameters, rebuilt whenever they change.
  struct cache {
    Eigen::VectorXd center;             ///< sum_k pi_k mu_k
    Eigen::MatrixXd whiten;             ///< full: K d x d stacked L_k^{-1}; tied: L^{-1}
    std::vector<Eigen::MatrixXd> chol;  ///< Cholesky factors L_k (tied: one; diagonal: diagonal)
    density dn;                         ///< the log-joint's coefficients about `center`
  };

  /// Columns per chunk of the E-step: a few groups, so that a chunk's data (chunk x d) and one
  /// component's partial sums stay in L1 while the moments are accumulated.
  static constexpr Eigen::Index chunk = 4 * group;

  /// Buffers of the E-step (one per thread, reused across calls).
  struct workspace {
    Eigen::MatrixXd z;     ///< chunk x d: the chunk minus the reference point, observations as rows
    Eigen::MatrixXd r;     ///< chunk x K: log-joint, then weighted responsibilities
    Eigen::MatrixXd w;     ///< chunk x 1: observation weights, 0 on the padding rows
    group_block y;         ///< tied: group x d, a whitened group
    lane_block moments;    ///< lanes x K P partial sums (see detail::mixture::accumulate_moments)
    lane_block pooled;     ///< tied: lanes x P partial sums of the weighted scatter
    density shifted;       ///< coefficients about another reference point (density_about)
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
    if (type_ == covariance_type::full || type_ == covariance_type::tied) {
      const Eigen::Index nf = type_ == covariance_type::full ? k_ : 1;
      const Eigen::ArrayXd log_w = p.weights.array().log();  // log 0 = -inf: a dead component
      const double half_d_log_2pi = 0.5 * static_cast<double>(d) * log_two_pi;
      c.chol.assign(static_cast<std::size_t>(nf), Eigen::MatrixXd());
      c.whiten.resize(nf * d, d);
      c.dn.offsets.resize(d, k_);
      c.dn.log_const.resize(k_);
      Eigen::VectorXd log_det(nf);
      for (Eigen::Index f = 0; f < nf; ++f) {
        const cholesky_result ch = regularized_cholesky(p.covariances[static_cast<std::size_t>(f)]);
        if (!ch.ok) return false;
        c.chol[static_cast<std::size_t>(f)] = ch.llt.matrixL();
        c.whiten.middleRows(f * d, d) = ch.llt.matrixL().solve(Eigen::MatrixXd::Identity(d, d));
        log_det(f) = log_det_from_cholesky(ch.llt);
      }
      if (!c.whiten.allFinite()) return false;
      for (Eigen::Index k = 0; k < k_; ++k) {
        const Eigen::Index f = type_ == covariance_type::full ? k : 0;
        c.dn.offsets.col(k) = c.whiten.middleRows(f * d, d) * (p.means.col(k) - c.center);
        c.dn.log_const(k) = log_w(k) - half_d_log_2pi - 0.5 * log_det(f);
      }
      c.dn.tri = detail::mixture::pack_lower_rows(c.whiten, nf);
    } else {
      c.chol.assign(static_cast<std::size_t>(k_), Eigen::MatrixXd());
      for (Eigen::Index k = 0; k < k_; ++k) {
        const Eigen::VectorXd v = p.covariances[static_cast<std::size_t>(k)].diagonal();
        if (!((v.array() > 0.0).all() && v.allFinite())) return false;
        c.chol[static_cast<std::size_t>(k)] = v.cwiseSqrt().asDiagonal();
      }
      diagonal_coefficients(p, c.center, c.dn.coef, c.dn.log_const);
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

  /// The log-joint's coefficients about `center`: the cached ones if it is this mixture's
  /// center (the usual case), else shifted copies built in `scratch`.
  const density& density_about(const Eigen::VectorXd& center, density& scratch) const {
    if (center == c_.center) return c_.dn;
    scratch = c_.dn;
    if (type_ == covariance_type::diagonal || type_ == covariance_type::spherical) {
      diagonal_coefficients(p_, center, scratch.coef, scratch.log_const);
    } else {
      // L_k^{-1} (mu_k - c') = L_k^{-1} (mu_k - c) + L_k^{-1} (c - c').
      const Eigen::Index d = dim();
      for (Eigen::Index k = 0; k < k_; ++k) {
        const Eigen::Index f = type_ == covariance_type::full ? k : 0;
        scratch.offsets.col(k) += c_.whiten.middleRows(f * d, d) * (c_.center - center);
      }
    }
    return scratch;
  }

  /// lj (group x K) = log pi_k + log N(x_n | mu_k, Sigma_k) for a group of observations: the
  /// x_n - c are the rows of the column-major block at z with leading dimension ld, where c is
  /// the point `dn` was built about. `y` is group x d scratch (tied).
  template <class Out>
  void group_log_joint(const double* z, Eigen::Index ld, const density& dn, Out& lj, group_block& y) const {
    const Eigen::Index d = dim();
    switch (type_) {
      case covariance_type::diagonal:
      case covariance_type::spherical:
        detail::mixture::diagonal_log_joint(z, ld, d, dn.coef, dn.log_const, lj);
        break;
      case covariance_type::full:
        for (Eigen::Index k = 0; k < k_; ++k)
          lj.col(k).array() = dn.log_const(k) - 0.5 * detail::mixture::whitened_norms(z, ld, d, dn.tri.col(k).data(),
                                                                                      dn.offsets.col(k).data());
        break;
      case covariance_type::tied:
        // One whitening shared by all components, then K distances to the whitened means.
        for (Eigen::Index i = 0; i < d; ++i) {
          const double* row = dn.tri.data() + i * (i + 1) / 2;  // row i of the packed triangle
          y.col(i) = detail::mixture::whiten_row(z, ld, i, row, 0.0);
        }
        for (Eigen::Index k = 0; k < k_; ++k) {
          group_array nrm = (y.col(0) - dn.offsets(0, k)).square();
          for (Eigen::Index i = 1; i < d; ++i) nrm += (y.col(i) - dn.offsets(i, k)).square();
          lj.col(k).array() = dn.log_const(k) - 0.5 * nrm;
        }
        break;
    }
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

  detail::mixture::second_moments moment_kind() const {
    switch (type_) {
      case covariance_type::full: return detail::mixture::second_moments::lower_triangle;
      case covariance_type::diagonal:
      case covariance_type::spherical: return detail::mixture::second_moments::diagonal;
      case covariance_type::tied: break;
    }
    return detail::mixture::second_moments::none;  // tied: the scatter is pooled (see sweep)
  }

  /// Runs over columns [begin, end) of x in chunks, with each chunk minus s.center as the rows
  /// of ws.z (zero-padded to whole groups). `fill(c0, b, bp)` sets the chunk's weighted
  /// responsibilities ws.r and weights ws.w on rows [0, bp), zero on the padding rows [b, bp),
  /// and returns the chunk's log-likelihood. The moments of every chunk are accumulated by
  /// lanes and added to s at the end; returns the summed log-likelihood.
  template <class Fill>
  double sweep(workspace& ws, const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::Index begin, Eigen::Index end,
               stats_type& s, Fill&& fill) const {
    using second_moments = detail::mixture::second_moments;
    // (d from x: initialize sweeps before the mixture has parameters.)
    const Eigen::Index d = x.rows(), p = detail::mixture::moment_count(d, moment_kind());
    const bool tied = type_ == covariance_type::tied;
    ws.z.resize(chunk, d);
    ws.r.resize(chunk, k_);
    ws.w.resize(chunk, 1);
    ws.y.resize(group, d);
    ws.moments.setZero(lanes, k_ * p);
    if (tied) ws.pooled.setZero(lanes, detail::mixture::moment_count(d, second_moments::lower_triangle));
    double ll = 0.0;
    for (Eigen::Index c0 = begin; c0 < end; c0 += chunk) {
      const Eigen::Index b = std::min(chunk, end - c0);
      const Eigen::Index bp = (b + group - 1) / group * group;
      detail::mixture::load_rows(x, s.center, c0, b, ws.z.data(), chunk);
      ws.z.middleRows(b, bp - b).setZero();
      ll += fill(c0, b, bp);
      detail::mixture::accumulate_moments(ws.z.data(), chunk, bp, d, ws.r, moment_kind(), ws.moments);
      if (tied)
        detail::mixture::accumulate_moments(ws.z.data(), chunk, bp, d, ws.w, second_moments::lower_triangle, ws.pooled);
    }
    const Eigen::MatrixXd m = ws.moments.colwise().sum().matrix().reshaped(p, k_);
    s.counts += m.row(0).transpose();
    s.sums += m.middleRows(1, d);
    switch (type_) {
      case covariance_type::full:
        for (Eigen::Index k = 0; k < k_; ++k)
          detail::mixture::add_packed_symmetric(m.col(k).tail(p - 1 - d), s.scatter.middleRows(k * d, d));
        break;
      case covariance_type::diagonal:
      case covariance_type::spherical:
        s.diagonal_scatter += m.middleRows(1 + d, d);
        break;
      case covariance_type::tied: {
        const Eigen::VectorXd q = ws.pooled.colwise().sum().transpose().matrix();
        detail::mixture::add_packed_symmetric(q.tail(q.size() - 1 - d), s.scatter);
        break;
      }
    }
    return ll;
  }

  /// out (K x N) = log pi_k + log N(x_n | mu_k, Sigma_k) for the columns of x, by the E-step's
  /// kernels one group of columns at a time.
  void log_joint(const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::MatrixXd& out) const {
    const Eigen::Index d = dim(), n = x.cols();
    out.resize(k_, n);
    group_block xg(group, d), y(group, d);
    Eigen::Matrix<double, group, Eigen::Dynamic> lj(group, k_);
    for (Eigen::Index n0 = 0; n0 < n; n0 += group) {
      const Eigen::Index b = std::min(group, n - n0);
      detail::mixture::load_rows(x, c_.center, n0, b, xg.data(), group);
      xg.bottomRows(group - b).setZero();
      group_log_joint(xg.data(), group, c_.dn, lj, y);
      out.middleCols(n0, b) = lj.topRows(b).transpose();
    }
  }

  void posterior(const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::MatrixXd& r, Eigen::RowVectorXd& lse,
                 std::string_view fn) const {
    require_params(fn);
    detail::require_rows(x, dim(), fn, "x");
    detail::require_finite(x, fn, "x");
    log_joint(x, r);
    lse.resize(x.cols());
    normalize_columns_log(r, lse);
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
