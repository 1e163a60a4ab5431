#pragma once
/// @file
/// Factor analysis as a linear variational autoencoder: an `ElboObjective` for `sgd_elbo`.
///
/// Generative model (decoder), for each observation x_n (a column of the d x N data):
///
///   z_n ~ N(0, I_k),        x_n | z_n ~ N(Lambda z_n + mu, Psi),   Psi = diag(psi), psi = exp(log_psi)
///
/// Amortized encoder (the variational family, shared by all observations):
///
///   q(z_n | x_n) = N(m_n, diag(s^2)),     m_n = W x_n + b,     s = exp(log_s)
///
/// ELBO of one observation, with the KL to the prior in closed form and the expected
/// log-likelihood by the reparameterization z = m_n + s (.) eps, eps ~ N(0, I_k):
///
///   F_n = E_eps[log N(x_n | Lambda z + mu, Psi)] - KL(N(m_n, diag s^2) || N(0, I))
///   KL  = 1/2 sum_j (m_nj^2 + s_j^2 - 1 - 2 log s_j)
///
/// Because the decoder is linear and Gaussian the expectation is also analytic:
///
///   E_q[log p(x_n | z)] = -1/2 sum_i [log 2 pi + log psi_i + ((x_n - Lambda m_n - mu)_i^2
///                                     + sum_j Lambda_ij^2 s_j^2) / psi_i],
///
/// which `elbo(params)` evaluates exactly (for unbiasedness tests and held-out evaluation).
/// Since the true posterior covariance (I + Lambda^T Psi^-1 Lambda)^-1 does not depend on x,
/// and Lambda can be rotated to make it diagonal, the maximum of the ELBO over all parameters
/// equals the maximum factor-analysis log-likelihood (the gap closes at the optimum).
///
/// Flat parameter layout (length P = 2 d k + 2 d + 2 k; matrices column-major):
///
/// | offset | length | block |
/// |---|---|---|
/// | 0 | d k | vec(Lambda), d x k loadings |
/// | d k | d | mu |
/// | d k + d | d | log psi (log uniquenesses) |
/// | d k + 2 d | k d | vec(W), k x d encoder weights |
/// | 2 d k + 2 d | k | b, encoder bias |
/// | 2 d k + 2 d + k | k | log s, encoder log standard deviations |
///
/// Gradients (derived by hand, see docs/solvers/sgd_elbo.md), for the B S columns of a
/// minibatch B with S draws each, residuals R = X - Lambda Z - mu, U = Psi^-1 R, G = Lambda^T U,
/// c = N / (B S), and c_B = N / B:
///
///   dLambda = c U Z^T,   dmu = c U 1,   dlog_psi = c (1/2 (R (.) U) 1 - B S / 2),
///   D_m = c sum_s G_s - c_B M,   dW = D_m X_B^T,   db = D_m 1,
///   dlog_s = c s (.) ((G (.) E) 1) - N (s^2 - 1).
///
/// Every term is a block matrix product over the whole minibatch: one step costs
/// O(B S d k) flops (four d x k x BS products).

#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <random>

namespace latent {

/// The linear VAE (factor analysis with an amortized linear Gaussian encoder) as an
/// `ExactElboObjective` over the columns of a d x N data matrix.
///
/// The data are viewed, not copied: keep the matrix alive while the objective is used.
class linear_vae {
 public:
  /// The parameters as matrices (see the file comment for the flat layout).
  struct params_type {
    Eigen::MatrixXd loadings;            ///< Lambda, d x k
    Eigen::VectorXd mean;                ///< mu, d
    Eigen::VectorXd log_uniquenesses;    ///< log psi, d
    Eigen::MatrixXd encoder_weights;     ///< W, k x d
    Eigen::VectorXd encoder_bias;        ///< b, k
    Eigen::VectorXd encoder_log_scales;  ///< log s, k
  };

  /// @param x  data, d x N, observations are columns, finite
  /// @param k  latent dimension, 1 <= k < d
  /// @throws invalid_argument for an empty or non-finite x or k out of range
  linear_vae(const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::Index k) : x_(x), k_(k) {
    detail::require(x_.cols() > 0 && x_.rows() > 1, "linear_vae",
                    "argument 'x' must have at least 2 rows and 1 column, got ", x_.rows(), " x ",
                    x_.cols());
    detail::require(k >= 1 && k < x_.rows(), "linear_vae", "argument 'k' must be in [1, d) with d = ",
                    x_.rows(), ", got ", k);
    detail::require_finite(x_, "linear_vae", "x");
  }

  Eigen::Index dim() const { return x_.rows(); }
  Eigen::Index latent_dim() const { return k_; }
  Eigen::Index num_observations() const { return x_.cols(); }
  Eigen::Index num_parameters() const { return parameter_count(dim(), k_); }
  /// P = 2 d k + 2 d + 2 k.
  static Eigen::Index parameter_count(Eigen::Index d, Eigen::Index k) { return 2 * d * k + 2 * d + 2 * k; }
  /// The viewed data.
  const Eigen::Ref<const Eigen::MatrixXd>& data() const { return x_; }

  /// Flatten `p` into the documented layout. @throws invalid_argument on wrong shapes.
  Eigen::VectorXd pack(const params_type& p) const {
    const Eigen::Index d = dim(), k = k_;
    detail::require_shape(p.loadings, d, k, "linear_vae::pack", "loadings");
    detail::require_shape(p.mean, d, 1, "linear_vae::pack", "mean");
    detail::require_shape(p.log_uniquenesses, d, 1, "linear_vae::pack", "log_uniquenesses");
    detail::require_shape(p.encoder_weights, k, d, "linear_vae::pack", "encoder_weights");
    detail::require_shape(p.encoder_bias, k, 1, "linear_vae::pack", "encoder_bias");
    detail::require_shape(p.encoder_log_scales, k, 1, "linear_vae::pack", "encoder_log_scales");
    Eigen::VectorXd v(num_parameters());
    Eigen::Index o = 0;
    const auto put = [&](const auto& m) {
      v.segment(o, m.size()) = Eigen::Map<const Eigen::VectorXd>(m.data(), m.size());
      o += m.size();
    };
    put(p.loadings); put(p.mean); put(p.log_uniquenesses);
    put(p.encoder_weights); put(p.encoder_bias); put(p.encoder_log_scales);
    return v;
  }

  /// The matrices of a flat vector. @throws invalid_argument on a wrong length.
  params_type unpack(const Eigen::Ref<const Eigen::VectorXd>& v) const {
    check_params(v, "linear_vae::unpack");
    const view w(v, dim(), k_);
    return {w.L, w.mu, w.log_psi, w.W, w.b, w.log_s};
  }

  /// A starting point: mu = the data mean, psi = half the per-coordinate variance, Lambda with
  /// independent N(0, 0.01 var_i) entries from `rng`, W = 0, b = 0, s = 1 (q = the prior).
  template <std::uniform_random_bit_generator Rng>
  Eigen::VectorXd initial_params(Rng& rng) const {
    const Eigen::Index d = dim();
    const Eigen::VectorXd mean = x_.rowwise().mean();
    // Floor the variance so a constant coordinate still gives a finite log psi.
    const Eigen::VectorXd var =
        ((x_.colwise() - mean).rowwise().squaredNorm() / static_cast<double>(x_.cols()))
            .cwiseMax(1e-6);
    params_type p;
    p.loadings = (0.1 * var.cwiseSqrt()).asDiagonal() * standard_normal(d, k_, rng);
    p.mean = mean;
    p.log_uniquenesses = (0.5 * var).array().log();
    p.encoder_weights = Eigen::MatrixXd::Zero(k_, d);
    p.encoder_bias = Eigen::VectorXd::Zero(k_);
    p.encoder_log_scales = Eigen::VectorXd::Zero(k_);
    return pack(p);
  }

  /// Unbiased estimate of the full-data ELBO over the minibatch `batch` (sum over the batch
  /// times N / |B|), with `num_samples` reparameterized draws per observation from `rng`, and
  /// its gradient in `grad` (resized to P). See the file comment for the formulas.
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or num_samples = 0
  template <std::uniform_random_bit_generator Rng>
  double value_and_gradient(const Eigen::VectorXd& params, minibatch batch, std::size_t num_samples,
                            Eigen::VectorXd& grad, Rng& rng) const {
    constexpr std::string_view fn = "linear_vae::value_and_gradient";
    check_params(params, fn);
    detail::require_minibatch(batch, num_observations(), num_samples, fn);
    const Eigen::Index d = dim(), k = k_, b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index s_count = static_cast<Eigen::Index>(num_samples), bs = b * s_count;
    const double n = static_cast<double>(num_observations());
    const double c = n / static_cast<double>(bs), cb = n / static_cast<double>(b);
    const view w(params, d, k);

    const Eigen::MatrixXd xb = x_(Eigen::all, batch);
    const Eigen::ArrayXd psi_inv = (-w.log_psi.array()).exp();
    const Eigen::ArrayXd s = w.log_s.array().exp();
    const Eigen::MatrixXd m = (w.W * xb).colwise() + w.b;  // k x B encoder means

    // Column j = s_idx * B + n holds draw s_idx of observation n.
    const Eigen::MatrixXd eps = standard_normal(k, bs, rng);
    Eigen::MatrixXd z = s.matrix().asDiagonal() * eps;
    for (Eigen::Index r = 0; r < s_count; ++r) z.middleCols(r * b, b) += m;
    Eigen::MatrixXd resid = -w.L * z;  // d x BS
    for (Eigen::Index r = 0; r < s_count; ++r) resid.middleCols(r * b, b) += xb;
    resid.colwise() -= w.mu;
    const Eigen::MatrixXd u = psi_inv.matrix().asDiagonal() * resid;
    const Eigen::VectorXd weighted_ss = (resid.array() * u.array()).rowwise().sum();

    const double loglik = -0.5 * static_cast<double>(bs) *
                              (static_cast<double>(d) * log_two_pi + w.log_psi.sum()) -
                          0.5 * weighted_ss.sum();
    const double kl = 0.5 * (m.squaredNorm() + static_cast<double>(b) *
                                                   (s.square().sum() - static_cast<double>(k) -
                                                    2.0 * w.log_s.sum()));
    const double value = c * loglik - cb * kl;

    grad.resize(num_parameters());
    grad_view g(grad, d, k);
    g.L.noalias() = c * u * z.transpose();
    g.mu = c * u.rowwise().sum();
    g.log_psi = c * (0.5 * weighted_ss.array() - 0.5 * static_cast<double>(bs)).matrix();
    const Eigen::MatrixXd gz = w.L.transpose() * u;  // k x BS: d loglik / dz
    Eigen::MatrixXd dm = gz.leftCols(b);
    for (Eigen::Index r = 1; r < s_count; ++r) dm += gz.middleCols(r * b, b);
    dm = c * dm - cb * m;
    g.W.noalias() = dm * xb.transpose();
    g.b = dm.rowwise().sum();
    g.log_s = (c * s * (gz.array() * eps.array()).rowwise().sum() - n * (s.square() - 1.0)).matrix();
    return value;
  }

  /// The exact full-data ELBO sum_n F_n (no Monte Carlo), in column blocks. O(N d k).
  double elbo(const Eigen::VectorXd& params) const {
    check_params(params, "linear_vae::elbo");
    const Eigen::Index d = dim(), k = k_, n = num_observations();
    const view w(params, d, k);
    const Eigen::ArrayXd psi_inv = (-w.log_psi.array()).exp();
    const Eigen::ArrayXd s2 = (2.0 * w.log_s.array()).exp();
    // Per-coordinate variance of Lambda z under q: sum_j Lambda_ij^2 s_j^2.
    const Eigen::ArrayXd extra = (w.L.array().square().matrix() * s2.matrix()).array();
    double sq = 0.0, msq = 0.0;
    for (Eigen::Index b0 = 0; b0 < n; b0 += block_columns) {
      const Eigen::Index len = std::min(block_columns, n - b0);
      const Eigen::MatrixXd m = (w.W * x_.middleCols(b0, len)).colwise() + w.b;
      Eigen::MatrixXd r = x_.middleCols(b0, len) - w.L * m;
      r.colwise() -= w.mu;
      sq += (r.array().square().colwise() * psi_inv).sum();
      msq += m.squaredNorm();
    }
    const double nd = static_cast<double>(n);
    const double loglik = -0.5 * nd * (static_cast<double>(d) * log_two_pi + w.log_psi.sum()) -
                          0.5 * (sq + nd * (extra * psi_inv).sum());
    const double kl = 0.5 * (msq + nd * (s2.sum() - static_cast<double>(k) - 2.0 * w.log_s.sum()));
    return loglik - kl;
  }

  /// The exact log-likelihood of the decoder, sum_n log N(x_n | mu, Lambda Lambda^T + Psi):
  /// the bound `elbo(params)` can reach (it is >= the ELBO for every encoder). O(d^3 + N d^2).
  /// @throws numerical_error if the implied covariance does not factor
  double log_likelihood(const Eigen::VectorXd& params) const {
    check_params(params, "linear_vae::log_likelihood");
    const view w(params, dim(), k_);
    Eigen::MatrixXd cov = w.L * w.L.transpose();
    cov.diagonal() += w.log_psi.array().exp().matrix();
    const cholesky_result chol = regularized_cholesky(cov);
    if (!chol.ok)
      throw numerical_error("linear_vae::log_likelihood: Lambda Lambda^T + Psi is not positive definite");
    double total = 0.0;
    for (Eigen::Index b0 = 0; b0 < num_observations(); b0 += block_columns) {
      const Eigen::Index len = std::min(block_columns, num_observations() - b0);
      total += mvn_log_density(x_.middleCols(b0, len), w.mu, chol.llt).sum();
    }
    return total;
  }

 private:
  static constexpr Eigen::Index block_columns = 4096;  // bounds the memory of exact evaluations

  using cmap = Eigen::Map<const Eigen::MatrixXd>;
  using cvmap = Eigen::Map<const Eigen::VectorXd>;
  using mmap = Eigen::Map<Eigen::MatrixXd>;
  using mvmap = Eigen::Map<Eigen::VectorXd>;

  /// Read-only views of the blocks of a flat parameter vector.
  struct view {
    cmap L; cvmap mu, log_psi; cmap W; cvmap b, log_s;
    view(const Eigen::Ref<const Eigen::VectorXd>& v, Eigen::Index d, Eigen::Index k)
        : L(v.data(), d, k), mu(v.data() + d * k, d), log_psi(v.data() + d * k + d, d),
          W(v.data() + d * k + 2 * d, k, d), b(v.data() + 2 * d * k + 2 * d, k),
          log_s(v.data() + 2 * d * k + 2 * d + k, k) {}
  };
  /// Writable views of the blocks of a flat gradient vector.
  struct grad_view {
    mmap L; mvmap mu, log_psi; mmap W; mvmap b, log_s;
    grad_view(Eigen::VectorXd& v, Eigen::Index d, Eigen::Index k)
        : L(v.data(), d, k), mu(v.data() + d * k, d), log_psi(v.data() + d * k + d, d),
          W(v.data() + d * k + 2 * d, k, d), b(v.data() + 2 * d * k + 2 * d, k),
          log_s(v.data() + 2 * d * k + 2 * d + k, k) {}
  };

  void check_params(const Eigen::Ref<const Eigen::VectorXd>& v, std::string_view fn) const {
    detail::require(v.size() == num_parameters(), fn, "argument 'params' must have ",
                    num_parameters(), " entries (2dk + 2d + 2k), got ", v.size());
  }
  Eigen::Ref<const Eigen::MatrixXd> x_;
  Eigen::Index k_;
};

}  // namespace latent
