#pragma once
/// @file
/// `latent::basic_linear_vae<S>`: factor analysis with an amortized linear Gaussian encoder,
/// as an `ExactElboObjective` (with a value-only path) for `sgd_elbo` and an
/// `AmortizedObjective` for the estimators (`encode`, `log_joint`). See
/// models/linear_vae.hpp for the mathematics.

#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/linear_vae_layout.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <string_view>

namespace latent {

/// The linear VAE (factor analysis with an amortized linear Gaussian encoder) as an
/// `ExactElboObjective` over the columns of a d x N data matrix, in scalar type `S`: data,
/// parameters, gradients and the minibatch arithmetic are in S; returned values (estimates,
/// exact ELBO, log-likelihood) are double, and the exact evaluations add their blocks in
/// double.
///
/// The data are viewed, not copied: keep the matrix alive while the objective is used.
template <Scalar S>
class basic_linear_vae {
 public:
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using vector_type = vector_t<S>;
  /// The parameters as matrices (see the file comment for the flat layout).
  using params_type = basic_linear_vae_params<S>;

  /// @param x  data, d x N, observations are columns, finite
  /// @param k  latent dimension, 1 <= k < d
  /// @throws invalid_argument for an empty or non-finite x or k out of range
  basic_linear_vae(const Eigen::Ref<const matrix_t<S>>& x, Eigen::Index k) : x_(x), k_(k) {
    detail::require(x_.cols() > 0 && x_.rows() > 1, "linear_vae",
                    "argument 'x' must have at least 2 rows and 1 column, got ", x_.rows(), " x ", x_.cols());
    detail::require(k >= 1 && k < x_.rows(), "linear_vae", "argument 'k' must be in [1, d) with d = ", x_.rows(),
                    ", got ", k);
    detail::require_finite(x_, "linear_vae", "x");
  }

  Eigen::Index dim() const { return x_.rows(); }
  Eigen::Index latent_dim() const { return k_; }
  Eigen::Index num_observations() const { return x_.cols(); }
  /// P, the length of the flat parameter vector.
  Eigen::Index num_parameters() const { return parameter_count(dim(), k_); }
  /// P = 2 d k + 2 d + 2 k.
  static Eigen::Index parameter_count(Eigen::Index d, Eigen::Index k) { return 2 * d * k + 2 * d + 2 * k; }
  /// The viewed data.
  const Eigen::Ref<const matrix_t<S>>& data() const { return x_; }

  /// Flatten `p` into the documented layout. @throws invalid_argument on wrong shapes.
  vector_type pack(const params_type& p) const {
    constexpr std::string_view fn = "linear_vae::pack";
    const Eigen::Index d = dim(), k = k_;
    detail::require_shape(p.loadings, d, k, fn, "loadings");
    detail::require_shape(p.mean, d, 1, fn, "mean");
    detail::require_shape(p.log_uniquenesses, d, 1, fn, "log_uniquenesses");
    detail::require_shape(p.encoder_weights, k, d, fn, "encoder_weights");
    detail::require_shape(p.encoder_bias, k, 1, fn, "encoder_bias");
    detail::require_shape(p.encoder_log_scales, k, 1, fn, "encoder_log_scales");
    vector_type v(num_parameters());
    detail::linear_vae_view<S> w(v.data(), d, k);
    w.L = p.loadings;
    w.mu = p.mean;
    w.log_psi = p.log_uniquenesses;
    w.W = p.encoder_weights;
    w.b = p.encoder_bias;
    w.log_s = p.encoder_log_scales;
    return v;
  }

  /// The matrices of a flat vector. @throws invalid_argument on a wrong length.
  params_type unpack(const Eigen::Ref<const vector_type>& v) const {
    check_params(v, "linear_vae::unpack");
    const detail::linear_vae_view<const S> w(v.data(), dim(), k_);
    return {w.L, w.mu, w.log_psi, w.W, w.b, w.log_s};
  }

  /// A starting point: mu = the data mean, psi = half the per-coordinate variance, Lambda with
  /// independent N(0, 0.01 var_i) entries from `rng` (drawn in double, so float and double
  /// objectives consume the engine identically), W = 0, b = 0, s = 1 (q = the prior).
  template <std::uniform_random_bit_generator Rng>
  vector_type initial_params(Rng& rng) const {
    using A = accumulator_type;
    const Eigen::Index d = dim();
    const vector_t<A> mean = x_.template cast<A>().rowwise().mean();
    // Floor the variance so a constant coordinate still gives a finite log psi.
    const vector_t<A> var =
        ((x_.template cast<A>().colwise() - mean).rowwise().squaredNorm() / static_cast<A>(x_.cols())).cwiseMax(A(1e-6));
    params_type p;
    p.loadings = ((A(0.1) * var.cwiseSqrt()).asDiagonal() * standard_normal<A>(d, k_, rng)).template cast<S>();
    p.mean = mean.template cast<S>();
    p.log_uniquenesses = (A(0.5) * var).array().log().matrix().template cast<S>();
    p.encoder_weights = matrix_t<S>::Zero(k_, d);
    p.encoder_bias = vector_type::Zero(k_);
    p.encoder_log_scales = vector_type::Zero(k_);
    return pack(p);
  }

  /// Unbiased estimate of the full-data ELBO over the minibatch `batch` (sum over the batch
  /// times N / |B|), with `num_samples` reparameterized draws per observation from `rng`, and
  /// its gradient in `grad` (resized to P). See the file comment for the formulas.
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or num_samples = 0
  template <std::uniform_random_bit_generator Rng>
  double value_and_gradient(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type& grad,
                            Rng& rng) const {
    return estimate(params, batch, num_samples, &grad, rng, "linear_vae::value_and_gradient");
  }

  /// The estimate `value_and_gradient` returns for the same arguments and engine state (it
  /// draws the same noise), without the gradient.
  template <std::uniform_random_bit_generator Rng>
  double value(const vector_type& params, minibatch batch, std::size_t num_samples, Rng& rng) const {
    return estimate(params, batch, num_samples, nullptr, rng, "linear_vae::value");
  }

  /// The exact full-data ELBO sum_n F_n (no Monte Carlo), in column blocks computed in S and
  /// added in double. O(N d k).
  double elbo(const vector_type& params) const {
    using A = accumulator_type;
    check_params(params, "linear_vae::elbo");
    const Eigen::Index d = dim(), k = k_, n = num_observations();
    const detail::linear_vae_view<const S> w(params.data(), d, k);
    const array_t<S> psi_inv = (-w.log_psi.array()).exp();
    const array_t<S> s2 = (S(2) * w.log_s.array()).exp();
    // Per-coordinate variance of Lambda z under q: sum_j Lambda_ij^2 s_j^2.
    const array_t<S> extra = (w.L.array().square().matrix() * s2.matrix()).array();
    A sq = 0, msq = 0;
    for (Eigen::Index b0 = 0; b0 < n; b0 += block_columns) {
      const Eigen::Index len = std::min(block_columns, n - b0);
      const matrix_t<S> m = (w.W * x_.middleCols(b0, len)).colwise() + w.b;
      matrix_t<S> r = x_.middleCols(b0, len) - w.L * m;
      r.colwise() -= w.mu;
      sq += static_cast<A>((r.array().square().colwise() * psi_inv).sum());
      msq += static_cast<A>(m.squaredNorm());
    }
    const A nd = static_cast<A>(n);
    const A loglik = A(-0.5) * nd * (static_cast<A>(d) * A(log_two_pi) + static_cast<A>(w.log_psi.sum())) -
                     A(0.5) * (sq + nd * static_cast<A>((extra * psi_inv).sum()));
    const A kl = A(0.5) * (msq + nd * (static_cast<A>(s2.sum()) - static_cast<A>(k) - A(2) * static_cast<A>(w.log_s.sum())));
    return static_cast<double>(loglik - kl);
  }

  /// The encoder's q(z | x_n) = N(W x_n + b, diag s^2) for the columns n in `batch`: `mean`
  /// is resized to k x |B| and set to W x_n + b, `log_scale` to k x |B| with log s in every
  /// column. With `log_joint` this makes the linear VAE an `AmortizedObjective`.
  /// @throws invalid_argument for a wrong parameter length, an empty batch or an index out of
  ///         range
  void encode(const vector_type& params, minibatch batch, matrix_t<S>& mean, matrix_t<S>& log_scale) const {
    constexpr std::string_view fn = "linear_vae::encode";
    check_params(params, fn);
    detail::require_minibatch(batch, num_observations(), 1, fn);
    const detail::linear_vae_view<const S> w(params.data(), dim(), k_);
    mean.noalias() = w.W * x_(Eigen::all, batch);
    mean.colwise() += w.b;
    log_scale = w.log_s.replicate(1, static_cast<Eigen::Index>(batch.size()));
  }

  /// The decoder's log joint at given latent points: for z of size k x (|B| R), R >= 1, whose
  /// column c = r |B| + j belongs to the observation n = batch[j], `values` (resized to
  /// |B| R) gets
  ///
  ///   log p(x_n, z_c) = log N(x_n | Lambda z_c + mu, Psi) + log N(z_c | 0, I_k)
  ///
  /// (computed in S per column, returned in double), and, if `dz` is not null, `*dz` (resized
  /// to k x |B| R) gets its gradient Lambda^T Psi^-1 (x_n - Lambda z_c - mu) - z_c. One
  /// d x k x |B| R product (two with the gradient). Safe to call concurrently.
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or z with k rows and a positive multiple of |B| columns
  void log_joint(const vector_type& params, minibatch batch, const matrix_t<S>& z, vector_t<double>& values,
                 matrix_t<S>* dz) const {
    using A = accumulator_type;
    constexpr std::string_view fn = "linear_vae::log_joint";
    check_params(params, fn);
    detail::require_minibatch(batch, num_observations(), 1, fn);
    const Eigen::Index d = dim(), k = k_, b = static_cast<Eigen::Index>(batch.size());
    detail::require(z.rows() == k && z.cols() > 0 && z.cols() % b == 0, fn, "argument 'z' must be ", k,
                    " x (|B| R) with |B| = ", b, " and R >= 1, got ", z.rows(), " x ", z.cols());
    const detail::linear_vae_view<const S> w(params.data(), d, k);
    const Eigen::Index reps = z.cols() / b;
    const array_t<S> psi_inv = (-w.log_psi.array()).exp();
    const matrix_t<S> xb = x_(Eigen::all, batch).colwise() - w.mu;
    matrix_t<S> resid(d, z.cols());
    resid.noalias() = -w.L * z;
    for (Eigen::Index r = 0; r < reps; ++r) resid.middleCols(r * b, b) += xb;
    const matrix_t<S> u = psi_inv.matrix().asDiagonal() * resid;
    const A constant = A(-0.5) * (static_cast<A>(d + k) * A(log_two_pi) + static_cast<A>(w.log_psi.template cast<A>().sum()));
    const row_vector_t<S> quad = (resid.array() * u.array()).colwise().sum() + z.array().square().colwise().sum();
    values = (constant - A(0.5) * quad.template cast<A>().array()).template cast<double>().matrix().transpose();
    if (dz != nullptr) {
      dz->resize(k, z.cols());
      dz->noalias() = w.L.transpose() * u;
      *dz -= z;
    }
  }

  /// The exact log-likelihood of the decoder, sum_n log N(x_n | mu, Lambda Lambda^T + Psi):
  /// the bound `elbo(params)` can reach (it is >= the ELBO for every encoder). Computed in
  /// double. O(d^3 + N d^2).
  /// @throws numerical_error if the implied covariance does not factor
  double log_likelihood(const vector_type& params) const {
    using A = accumulator_type;
    check_params(params, "linear_vae::log_likelihood");
    const detail::linear_vae_view<const S> w(params.data(), dim(), k_);
    const matrix_t<A> l = w.L.template cast<A>();
    matrix_t<A> cov = l * l.transpose();
    cov.diagonal() += w.log_psi.template cast<A>().array().exp().matrix();
    const auto chol = regularized_cholesky(cov);
    if (!chol.ok)
      throw numerical_error("linear_vae::log_likelihood: Lambda Lambda^T + Psi is not positive definite");
    const vector_t<A> mu = w.mu.template cast<A>();
    A total = 0;
    for (Eigen::Index b0 = 0; b0 < num_observations(); b0 += block_columns) {
      const Eigen::Index len = std::min(block_columns, num_observations() - b0);
      total += mvn_log_density(x_.middleCols(b0, len).template cast<A>(), mu, chol.llt).sum();
    }
    return static_cast<double>(total);
  }

 private:
  static constexpr Eigen::Index block_columns = 4096;  // bounds the memory of exact evaluations

  /// The minibatch estimate, and its gradient into `*grad` unless `grad` is null. Everything
  /// up to the value is the same code for both, so `value` equals `value_and_gradient`'s value
  /// bit for bit.
  template <class Rng>
  double estimate(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type* grad, Rng& rng,
                  std::string_view fn) const {
    using A = accumulator_type;
    check_params(params, fn);
    detail::require_minibatch(batch, num_observations(), num_samples, fn);
    const Eigen::Index d = dim(), k = k_, b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index s_count = static_cast<Eigen::Index>(num_samples), bs = b * s_count;
    const A n = static_cast<A>(num_observations());
    const A c = n / static_cast<A>(bs), cb = n / static_cast<A>(b);
    const detail::linear_vae_view<const S> w(params.data(), d, k);

    const matrix_t<S> xb = x_(Eigen::all, batch);
    const array_t<S> psi_inv = (-w.log_psi.array()).exp();
    const array_t<S> s = w.log_s.array().exp();
    const matrix_t<S> m = (w.W * xb).colwise() + w.b;  // k x B encoder means

    // Column j = s_idx * B + n holds draw s_idx of observation n.
    const matrix_t<S> eps = standard_normal<S>(k, bs, rng);
    matrix_t<S> z = s.matrix().asDiagonal() * eps;
    for (Eigen::Index r = 0; r < s_count; ++r) z.middleCols(r * b, b) += m;
    matrix_t<S> resid = -w.L * z;  // d x BS
    for (Eigen::Index r = 0; r < s_count; ++r) resid.middleCols(r * b, b) += xb;
    resid.colwise() -= w.mu;
    const matrix_t<S> u = psi_inv.matrix().asDiagonal() * resid;
    const vector_t<S> weighted_ss = (resid.array() * u.array()).rowwise().sum();

    const A loglik = A(-0.5) * static_cast<A>(bs) *
                         (static_cast<A>(d) * A(log_two_pi) + static_cast<A>(w.log_psi.sum())) -
                     A(0.5) * static_cast<A>(weighted_ss.sum());
    const A kl = A(0.5) * (static_cast<A>(m.squaredNorm()) +
                           static_cast<A>(b) * (static_cast<A>(s.square().sum()) - static_cast<A>(k) -
                                                A(2) * static_cast<A>(w.log_s.sum())));
    const A value = c * loglik - cb * kl;
    if (grad == nullptr) return static_cast<double>(value);

    const S cs = static_cast<S>(c), cbs = static_cast<S>(cb), ns = static_cast<S>(n);
    grad->resize(num_parameters());
    detail::linear_vae_view<S> g(grad->data(), d, k);
    g.L.noalias() = cs * u * z.transpose();
    g.mu = cs * u.rowwise().sum();
    g.log_psi = cs * (S(0.5) * weighted_ss.array() - S(0.5) * static_cast<S>(bs)).matrix();
    const matrix_t<S> gz = w.L.transpose() * u;  // k x BS: d loglik / dz
    matrix_t<S> dm = gz.leftCols(b);
    for (Eigen::Index r = 1; r < s_count; ++r) dm += gz.middleCols(r * b, b);
    dm = cs * dm - cbs * m;
    g.W.noalias() = dm * xb.transpose();
    g.b = dm.rowwise().sum();
    g.log_s = (cs * s * (gz.array() * eps.array()).rowwise().sum() - ns * (s.square() - S(1))).matrix();
    return static_cast<double>(value);
  }

  void check_params(const Eigen::Ref<const vector_type>& v, std::string_view fn) const {
    detail::require(v.size() == num_parameters(), fn, "argument 'params' must have ", num_parameters(),
                    " entries (2dk + 2d + 2k), got ", v.size());
  }

  Eigen::Ref<const matrix_t<S>> x_;
  Eigen::Index k_;
};

using linear_vae = basic_linear_vae<double>;

}  // namespace latent
