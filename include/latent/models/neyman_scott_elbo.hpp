#pragma once
/// @file
/// The Neyman–Scott (one-way random-effects normal) model as an `ElboObjective` for
/// `sgd_elbo`: local latent variables with a FREE (non-amortized) Gaussian q per group, and
/// global parameters, moved together by stochastic gradient ascent.
///
/// Data: a K x N matrix y, one group per COLUMN, K >= 2 replicates per group.
///
///   z_n ~ N(mu, tau^2),     y_kn | z_n ~ N(z_n, theta),     k = 1..K,  n = 1..N
///   q(z_n) = N(m_n, s_n^2)   (one free pair (m_n, log s_n) per group)
///
/// ELBO of group n, with SS_n = sum_k (y_kn - ybar_n)^2 the within-group sum of squares and the
/// reparameterization z = m_n + s_n eps, eps ~ N(0, 1):
///
///   F_n = E_eps[ -K/2 log(2 pi theta) - (SS_n + K (ybar_n - z)^2) / (2 theta)
///                - 1/2 log(2 pi tau^2) - (z - mu)^2 / (2 tau^2) ]  +  1/2 log(2 pi e) + log s_n
///
/// (entropy analytic, the rest by Monte Carlo). `elbo(params)` evaluates the expectations
/// exactly (E(ybar - z)^2 = (ybar - m)^2 + s^2). The family contains the exact posterior, so
/// the maximum of the ELBO is the maximum of the marginal likelihood: SGD aims at the
/// consistent marginal MLE theta_hat = sum_n SS_n / (N (K - 1)), not at the inconsistent joint
/// MLE of (theta, z), which is theta_hat (K - 1) / K.
///
/// Flat parameter layout (P = 3 + 2N, or 1 + 2N with a fixed prior):
///
/// | offset | length | block |
/// |---|---|---|
/// | 0 | 1 | log theta |
/// | 1 | 1 | mu (only if the prior is estimated) |
/// | 2 | 1 | log tau^2 (only if the prior is estimated) |
/// | g | N | m_1..m_N, q means (g = 3, or 1 with a fixed prior) |
/// | g + N | N | log s_1..log s_N, q log standard deviations |
///
/// Minibatches and local parameters: a minibatch B holds group indices, and the estimate is
/// (N / |B|) sum_{n in B} F_n-hat. The local parameters (m_n, log s_n) of a group NOT in the
/// batch get a zero gradient for that step; those in the batch get N / |B| times their own
/// gradient, which keeps the estimate unbiased (group n is in a random batch with probability
/// |B| / N). Adam's per-coordinate scaling absorbs the N / |B| factor; with plain SGD the local
/// steps are N / |B| times larger than the global ones per unit of curvature, so choose
/// `step_size` with the locals in mind. Gradient cost per step: O(|B| S) plus O(N) to zero the
/// gradient vector.

#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <numbers>
#include <optional>
#include <random>
#include <string_view>

namespace latent {

/// A fixed prior z ~ N(mean, variance) for `neyman_scott_elbo` (not estimated).
struct neyman_scott_elbo_fixed_prior {
  double mean = 0.0;
  double variance = 1.0;  ///< tau^2 > 0
};

/// Neyman–Scott SGD-on-ELBO objective with a free Gaussian q per group (see the file comment).
class neyman_scott_elbo {
 public:
  /// The parameters in natural form (log scales as in the flat layout).
  struct params_type {
    double log_theta = 0.0;           ///< log of the within-group variance theta
    double mean = 0.0;                ///< mu, the prior mean of z
    double log_prior_variance = 0.0;  ///< log tau^2
    Eigen::VectorXd q_means;          ///< m_n, N
    Eigen::VectorXd q_log_sds;        ///< log s_n, N
  };

  /// Estimate theta, mu and tau^2 together with the local q's.
  /// @param y  K x N, groups are columns, K >= 2, finite
  /// @throws invalid_argument on bad data
  explicit neyman_scott_elbo(const Eigen::Ref<const Eigen::MatrixXd>& y) { set_data(y); }

  /// Estimate theta and the q's with the prior of z fixed at `prior`.
  /// @throws invalid_argument on bad data or a non-positive prior variance
  neyman_scott_elbo(const Eigen::Ref<const Eigen::MatrixXd>& y, const neyman_scott_elbo_fixed_prior& prior)
      : prior_(prior) {
    detail::require(std::isfinite(prior.mean), "neyman_scott_elbo",
                    "argument 'prior.mean' must be finite, got ", prior.mean);
    detail::require(std::isfinite(prior.variance) && prior.variance > 0.0, "neyman_scott_elbo",
                    "argument 'prior.variance' must be finite and positive, got ", prior.variance);
    set_data(y);
  }

  Eigen::Index replicates() const { return k_; }
  Eigen::Index num_observations() const { return ybar_.size(); }
  bool estimates_prior() const { return !prior_.has_value(); }
  Eigen::Index num_global() const { return estimates_prior() ? 3 : 1; }
  Eigen::Index num_parameters() const { return num_global() + 2 * num_observations(); }
  /// Group means ybar_n and within-group sums of squares SS_n.
  const Eigen::VectorXd& group_means() const { return ybar_; }
  const Eigen::VectorXd& within_ss() const { return ss_; }

  /// Flatten `p` (its mean and log_prior_variance are ignored for a fixed prior).
  /// @throws invalid_argument if q_means or q_log_sds are not of length N
  Eigen::VectorXd pack(const params_type& p) const {
    const Eigen::Index n = num_observations(), g = num_global();
    detail::require_shape(p.q_means, n, 1, "neyman_scott_elbo::pack", "q_means");
    detail::require_shape(p.q_log_sds, n, 1, "neyman_scott_elbo::pack", "q_log_sds");
    Eigen::VectorXd v(num_parameters());
    v(0) = p.log_theta;
    if (estimates_prior()) {
      v(1) = p.mean;
      v(2) = p.log_prior_variance;
    }
    v.segment(g, n) = p.q_means;
    v.segment(g + n, n) = p.q_log_sds;
    return v;
  }

  /// The natural parameters of a flat vector (a fixed prior is reported as given).
  /// @throws invalid_argument on a wrong length
  params_type unpack(const Eigen::Ref<const Eigen::VectorXd>& v) const {
    check_params(v, "neyman_scott_elbo::unpack");
    const globals gl = read_globals(v);
    const Eigen::Index n = num_observations(), g = num_global();
    return {std::log(gl.theta), gl.mu, std::log(gl.tau2), v.segment(g, n), v.segment(g + n, n)};
  }

  /// A starting point that ignores the data's structure: theta = 1, mu = 0, tau^2 = 1, every
  /// q = N(0, 1).
  Eigen::VectorXd default_params() const {
    params_type p;
    p.q_means = Eigen::VectorXd::Zero(num_observations());
    p.q_log_sds = Eigen::VectorXd::Zero(num_observations());
    return pack(p);
  }

  /// Unbiased estimate of the full-data ELBO over the groups in `batch` (sum over the batch
  /// times N / |B|) with `num_samples` draws per group, and its gradient in `grad` (resized to
  /// P; zero for the local parameters of groups outside the batch).
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or num_samples = 0
  template <std::uniform_random_bit_generator Rng>
  double value_and_gradient(const Eigen::VectorXd& params, minibatch batch, std::size_t num_samples,
                            Eigen::VectorXd& grad, Rng& rng) const {
    constexpr std::string_view fn = "neyman_scott_elbo::value_and_gradient";
    check_params(params, fn);
    const Eigen::Index n = num_observations(), g = num_global();
    detail::require_minibatch(batch, n, num_samples, fn);
    const Eigen::Index b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index sc = static_cast<Eigen::Index>(num_samples);
    const double nd = static_cast<double>(n), kd = static_cast<double>(k_);
    const double c = nd / static_cast<double>(b * sc), cb = nd / static_cast<double>(b);
    const globals gl = read_globals(params);

    // B x S blocks: row = group in the batch, column = draw.
    const Eigen::ArrayXd ybar = ybar_(batch).array(), ss = ss_(batch).array();
    const Eigen::ArrayXd m = params.segment(g, n)(batch).array();
    const Eigen::ArrayXd log_s = params.segment(g + n, n)(batch).array();
    const Eigen::ArrayXd s = log_s.exp();
    const Eigen::ArrayXXd eps = standard_normal(b, sc, rng).array();
    const Eigen::ArrayXXd z = (eps.colwise() * s).colwise() + m;
    const Eigen::ArrayXXd dev = (-z).colwise() + ybar;  // ybar_n - z
    const Eigen::ArrayXXd dz0 = z - gl.mu;              // z - mu
    const Eigen::ArrayXXd resid_ss = (kd * dev.square()).colwise() + ss;

    const double sum_resid = resid_ss.sum(), sum_prior = dz0.square().sum();
    const double bs = static_cast<double>(b * sc);
    const double value =
        c * (-0.5 * bs * kd * (log_two_pi + gl.log_theta) - 0.5 * sum_resid / gl.theta -
             0.5 * bs * (log_two_pi + gl.log_tau2) - 0.5 * sum_prior / gl.tau2) +
        cb * (0.5 * static_cast<double>(b) * (log_two_pi + 1.0) + log_s.sum());

    grad.setZero(num_parameters());
    grad(0) = c * (-0.5 * bs * kd + 0.5 * sum_resid / gl.theta);
    if (estimates_prior()) {
      grad(1) = c * dz0.sum() / gl.tau2;
      grad(2) = c * (-0.5 * bs + 0.5 * sum_prior / gl.tau2);
    }
    const Eigen::ArrayXXd dz = kd * dev / gl.theta - dz0 / gl.tau2;  // d F-hat / dz per draw
    const Eigen::ArrayXd dm = c * dz.rowwise().sum();
    const Eigen::ArrayXd dlog_s = c * s * (dz * eps).rowwise().sum() + cb;
    for (Eigen::Index j = 0; j < b; ++j) {
      grad(g + batch[static_cast<std::size_t>(j)]) = dm(j);
      grad(g + n + batch[static_cast<std::size_t>(j)]) = dlog_s(j);
    }
    return value;
  }

  /// The exact full-data ELBO sum_n F_n (all expectations in closed form). O(N).
  double elbo(const Eigen::VectorXd& params) const {
    check_params(params, "neyman_scott_elbo::elbo");
    const Eigen::Index n = num_observations(), g = num_global();
    const double nd = static_cast<double>(n), kd = static_cast<double>(k_);
    const globals gl = read_globals(params);
    const Eigen::ArrayXd m = params.segment(g, n).array();
    const Eigen::ArrayXd log_s = params.segment(g + n, n).array();
    const Eigen::ArrayXd s2 = (2.0 * log_s).exp();
    const double resid = (ss_.array() + kd * ((ybar_.array() - m).square() + s2)).sum();
    const double prior = ((m - gl.mu).square() + s2).sum();
    return -0.5 * nd * kd * (log_two_pi + gl.log_theta) - 0.5 * resid / gl.theta -
           0.5 * nd * (log_two_pi + gl.log_tau2) - 0.5 * prior / gl.tau2 +
           0.5 * nd * (log_two_pi + 1.0) + log_s.sum();
  }

 private:
  struct globals {
    double log_theta, theta, mu, log_tau2, tau2;
  };
  globals read_globals(const Eigen::Ref<const Eigen::VectorXd>& v) const {
    globals gl{};
    gl.log_theta = v(0);
    gl.theta = std::exp(v(0));
    if (estimates_prior()) {
      gl.mu = v(1);
      gl.log_tau2 = v(2);
      gl.tau2 = std::exp(v(2));
    } else {
      gl.mu = prior_->mean;
      gl.tau2 = prior_->variance;
      gl.log_tau2 = std::log(prior_->variance);
    }
    return gl;
  }

  void set_data(const Eigen::Ref<const Eigen::MatrixXd>& y) {
    detail::require(y.rows() >= 2 && y.cols() >= 1, "neyman_scott_elbo",
                    "argument 'y' must be K x N with K >= 2 replicates and N >= 1 groups, got ",
                    y.rows(), " x ", y.cols());
    detail::require_finite(y, "neyman_scott_elbo", "y");
    k_ = y.rows();
    // The ELBO depends on the data only through ybar_n and SS_n, so those are all we keep.
    ybar_ = y.colwise().mean().transpose();
    ss_ = (y.rowwise() - ybar_.transpose()).colwise().squaredNorm().transpose();
  }

  void check_params(const Eigen::Ref<const Eigen::VectorXd>& v, std::string_view fn) const {
    detail::require(v.size() == num_parameters(), fn, "argument 'params' must have ",
                    num_parameters(), " entries, got ", v.size());
  }

  std::optional<neyman_scott_elbo_fixed_prior> prior_;
  Eigen::Index k_ = 0;
  Eigen::VectorXd ybar_, ss_;
};

}  // namespace latent
