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
/// `step_size` with the locals in mind.
///
/// Cost per minibatch (issue #9 part 3): every path does O(|B| S) work and touches only the
/// batch's entries of `params`, except that the dense `value_and_gradient` must also zero the
/// other 2(N - |B|) entries of its P-vector. `value_and_sparse_gradient` returns the same
/// gradient without that O(N) write, for solvers with sparse (lazy) optimizer updates:
///
///     template <std::uniform_random_bit_generator Rng>
///     double value_and_sparse_gradient(const vector_t<S>& params, minibatch batch,
///                                      std::size_t num_samples, sparse_gradient& grad,
///                                      Rng& rng) const;
///
///     struct sparse_gradient {               // basic_neyman_scott_elbo<S>::sparse_gradient
///       vector_t<S> global;                  // d/d params(0 .. num_global() - 1), dense
///       std::vector<Eigen::Index> indices;   // 2|B| distinct flat indices >= num_global()
///       vector_t<S> values;                  // the gradient at those indices
///     };
///
/// `indices` holds g + n_j for the batch's groups n_j in batch order, then g + N + n_j (the
/// q means, then the q log standard deviations); every entry of the flat gradient not listed
/// (and not global) is exactly 0. The value and the listed numbers are bit-identical to what
/// `value_and_gradient` returns for the same engine state, and `value(params, batch, S, rng)`
/// returns the same value without a gradient. Reusing one `sparse_gradient` across steps
/// allocates nothing after the first step.
///
/// Precision: parameters, gradients and the per-draw arithmetic are in S; sums over the batch
/// are rounded to double before they are scaled by N/|B|, and values are returned in double.

#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/neyman_scott/kernels.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

namespace latent {

/// A fixed prior z ~ N(mean, variance) for `basic_neyman_scott_elbo` (not estimated).
template <Scalar S>
struct basic_neyman_scott_elbo_fixed_prior {
  S mean = S(0);
  S variance = S(1);  ///< tau^2 > 0
};
using neyman_scott_elbo_fixed_prior = basic_neyman_scott_elbo_fixed_prior<double>;

/// Neyman–Scott SGD-on-ELBO objective with a free Gaussian q per group (see the file comment),
/// with parameters of scalar type `S`.
template <Scalar S>
class basic_neyman_scott_elbo {
 public:
  using scalar_type = S;
  using vector_type = vector_t<S>;
  using fixed_prior_type = basic_neyman_scott_elbo_fixed_prior<S>;

  /// The parameters in natural form (log scales as in the flat layout).
  struct params_type {
    S log_theta = S(0);           ///< log of the within-group variance theta
    S mean = S(0);                ///< mu, the prior mean of z
    S log_prior_variance = S(0);  ///< log tau^2
    vector_type q_means;          ///< m_n, N
    vector_type q_log_sds;        ///< log s_n, N
  };

  /// A minibatch gradient in sparse form (see the file comment).
  struct sparse_gradient {
    vector_type global;                 ///< d/d params(0 .. num_global() - 1)
    std::vector<Eigen::Index> indices;  ///< flat indices of the local entries: means, then log sds
    vector_type values;                 ///< the gradient at `indices`
  };

  /// Estimate theta, mu and tau^2 together with the local q's.
  /// @param y  K x N, groups are columns, K >= 2, finite
  /// @throws invalid_argument on bad data
  explicit basic_neyman_scott_elbo(const Eigen::Ref<const matrix_t<S>>& y) { set_data(y); }

  /// Estimate theta and the q's with the prior of z fixed at `prior`.
  /// @throws invalid_argument on bad data or a non-positive prior variance
  basic_neyman_scott_elbo(const Eigen::Ref<const matrix_t<S>>& y, const fixed_prior_type& prior) : prior_(prior) {
    detail::require(std::isfinite(prior.mean), "neyman_scott_elbo",
                    "argument 'prior.mean' must be finite, got ", prior.mean);
    detail::require(std::isfinite(prior.variance) && prior.variance > S(0), "neyman_scott_elbo",
                    "argument 'prior.variance' must be finite and positive, got ", prior.variance);
    set_data(y);
  }

  Eigen::Index replicates() const { return k_; }
  Eigen::Index num_observations() const { return ybar_.size(); }
  bool estimates_prior() const { return !prior_.has_value(); }
  /// The number of global entries at the head of the flat vector (3, or 1 with a fixed prior).
  Eigen::Index num_global() const { return estimates_prior() ? 3 : 1; }
  /// P, the length of the flat parameter vector.
  Eigen::Index num_parameters() const { return num_global() + 2 * num_observations(); }
  /// Group means ybar_n and within-group sums of squares SS_n.
  const vector_type& group_means() const { return ybar_; }
  const vector_type& within_ss() const { return ss_; }

  /// Flatten `p` (its mean and log_prior_variance are ignored for a fixed prior).
  /// @throws invalid_argument if q_means or q_log_sds are not of length N
  vector_type pack(const params_type& p) const {
    const Eigen::Index n = num_observations(), g = num_global();
    detail::require_shape(p.q_means, n, 1, "neyman_scott_elbo::pack", "q_means");
    detail::require_shape(p.q_log_sds, n, 1, "neyman_scott_elbo::pack", "q_log_sds");
    vector_type v(num_parameters());
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
  params_type unpack(const Eigen::Ref<const vector_type>& v) const {
    check_params(v, "neyman_scott_elbo::unpack");
    const Eigen::Index n = num_observations(), g = num_global();
    params_type p{v(0), S(0), S(0), v.segment(g, n), v.segment(g + n, n)};
    if (estimates_prior()) {
      p.mean = v(1);
      p.log_prior_variance = v(2);
    } else {
      p.mean = prior_->mean;
      p.log_prior_variance = std::log(prior_->variance);
    }
    return p;
  }

  /// A starting point that ignores the data's structure: theta = 1, mu = 0, tau^2 = 1, every
  /// q = N(0, 1). Deterministic: `rng` is not used (the signature is the vocabulary's).
  template <std::uniform_random_bit_generator Rng>
  vector_type initial_params(Rng& /*rng*/) const {
    return vector_type::Zero(num_parameters());
  }
  [[deprecated("use initial_params(rng)")]] vector_type default_params() const {
    return vector_type::Zero(num_parameters());
  }

  /// Unbiased estimate of the full-data ELBO over the groups in `batch` (sum over the batch
  /// times N / |B|) with `num_samples` draws per group, and its gradient in `grad` (resized to
  /// P; zero for the local parameters of groups outside the batch: an O(N) write).
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or num_samples = 0
  template <std::uniform_random_bit_generator Rng>
  double value_and_gradient(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type& grad,
                            Rng& rng) const {
    sparse_gradient sg;
    const double v = estimate(params, batch, num_samples, rng, &sg, "neyman_scott_elbo::value_and_gradient");
    grad.setZero(num_parameters());
    grad.head(num_global()) = sg.global;
    grad(sg.indices) = sg.values;
    return v;
  }

  /// The same estimate and gradient as `value_and_gradient` (bit for bit, same engine use) in
  /// sparse form, in O(|B| S) work: see the file comment for the layout of `grad`.
  /// @throws invalid_argument as `value_and_gradient`
  template <std::uniform_random_bit_generator Rng>
  double value_and_sparse_gradient(const vector_type& params, minibatch batch, std::size_t num_samples,
                                   sparse_gradient& grad, Rng& rng) const {
    return estimate(params, batch, num_samples, rng, &grad, "neyman_scott_elbo::value_and_sparse_gradient");
  }

  /// The estimate `value_and_gradient` returns for the same engine state, without a gradient.
  /// @throws invalid_argument as `value_and_gradient`
  template <std::uniform_random_bit_generator Rng>
  double value(const vector_type& params, minibatch batch, std::size_t num_samples, Rng& rng) const {
    return estimate(params, batch, num_samples, rng, nullptr, "neyman_scott_elbo::value");
  }

  /// The exact full-data ELBO sum_n F_n (all expectations in closed form), in double. O(N).
  double elbo(const vector_type& params) const {
    check_params(params, "neyman_scott_elbo::elbo");
    const Eigen::Index n = num_observations(), g = num_global();
    const double nd = static_cast<double>(n), kd = static_cast<double>(k_);
    const globals gl = read_globals(params);
    const Eigen::ArrayXd m = params.segment(g, n).template cast<double>().array();
    const Eigen::ArrayXd log_s = params.segment(g + n, n).template cast<double>().array();
    const Eigen::ArrayXd s2 = (2.0 * log_s).exp();
    const Eigen::ArrayXd ybar = ybar_.template cast<double>().array();
    const double resid = (ss_.template cast<double>().array() + kd * ((ybar - m).square() + s2)).sum();
    const double prior = ((m - gl.mu).square() + s2).sum();
    return -0.5 * nd * kd * (log_two_pi + gl.log_theta) - 0.5 * resid / gl.theta -
           0.5 * nd * (log_two_pi + gl.log_tau2) - 0.5 * prior / gl.tau2 + 0.5 * nd * (log_two_pi + 1.0) +
           log_s.sum();
  }

 private:
  using array_type = Eigen::Array<S, Eigen::Dynamic, 1>;
  using array2_type = Eigen::Array<S, Eigen::Dynamic, Eigen::Dynamic>;

  /// The global parameters in double.
  struct globals {
    double log_theta, theta, mu, log_tau2, tau2;
  };
  globals read_globals(const Eigen::Ref<const vector_type>& v) const {
    globals gl{};
    gl.log_theta = static_cast<double>(v(0));
    gl.theta = std::exp(gl.log_theta);
    if (estimates_prior()) {
      gl.mu = static_cast<double>(v(1));
      gl.log_tau2 = static_cast<double>(v(2));
    } else {
      gl.mu = static_cast<double>(prior_->mean);
      gl.log_tau2 = std::log(static_cast<double>(prior_->variance));
    }
    gl.tau2 = std::exp(gl.log_tau2);
    return gl;
  }

  /// The minibatch estimate, and its sparse gradient into `*grad` unless `grad` is null. The
  /// value is computed by the same code whether or not the gradient is wanted.
  template <class Rng>
  double estimate(const vector_type& params, minibatch batch, std::size_t num_samples, Rng& rng,
                  sparse_gradient* grad, std::string_view fn) const {
    check_params(params, fn);
    const Eigen::Index n = num_observations(), g = num_global();
    detail::require_minibatch(batch, n, num_samples, fn);
    const Eigen::Index b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index sc = static_cast<Eigen::Index>(num_samples);
    const double nd = static_cast<double>(n), kd = static_cast<double>(k_);
    const double c = nd / static_cast<double>(b * sc), cb = nd / static_cast<double>(b);
    const globals gl = read_globals(params);
    const S theta = static_cast<S>(gl.theta), tau2 = static_cast<S>(gl.tau2), mu = static_cast<S>(gl.mu);

    // B x S blocks: row = group in the batch, column = draw. O(|B| S).
    const array_type ybar = ybar_(batch).array(), ss = ss_(batch).array();
    const array_type m = params.segment(g, n)(batch).array();
    const array_type log_s = params.segment(g + n, n)(batch).array();
    const array_type s = log_s.exp();
    const array2_type eps = standard_normal<S>(b, sc, rng).array();
    const array2_type z = (eps.colwise() * s).colwise() + m;
    const array2_type dev = (-z).colwise() + ybar;  // ybar_n - z
    const array2_type dz0 = z - mu;                 // z - mu
    const double sum_resid = static_cast<double>(((static_cast<S>(kd) * dev.square()).colwise() + ss).sum());
    const double sum_prior = static_cast<double>(dz0.square().sum());
    const double bs = static_cast<double>(b * sc);
    const double value =
        c * (-0.5 * bs * kd * (log_two_pi + gl.log_theta) - 0.5 * sum_resid / gl.theta -
             0.5 * bs * (log_two_pi + gl.log_tau2) - 0.5 * sum_prior / gl.tau2) +
        cb * (0.5 * static_cast<double>(b) * (log_two_pi + 1.0) + static_cast<double>(log_s.sum()));
    if (grad == nullptr) return value;

    grad->global.resize(g);
    grad->global(0) = static_cast<S>(c * (-0.5 * bs * kd + 0.5 * sum_resid / gl.theta));
    if (estimates_prior()) {
      grad->global(1) = static_cast<S>(c * static_cast<double>(dz0.sum()) / gl.tau2);
      grad->global(2) = static_cast<S>(c * (-0.5 * bs + 0.5 * sum_prior / gl.tau2));
    }
    const array2_type dz = static_cast<S>(kd) * dev / theta - dz0 / tau2;  // d F-hat / dz per draw
    grad->values.resize(2 * b);
    grad->values.head(b) = static_cast<S>(c) * dz.rowwise().sum();
    grad->values.tail(b) = static_cast<S>(c) * s * (dz * eps).rowwise().sum() + static_cast<S>(cb);
    grad->indices.resize(static_cast<std::size_t>(2 * b));
    for (std::size_t j = 0; j < batch.size(); ++j) {
      grad->indices[j] = g + batch[j];
      grad->indices[batch.size() + j] = g + n + batch[j];
    }
    return value;
  }

  void set_data(const Eigen::Ref<const matrix_t<S>>& y) {
    detail::require(y.rows() >= 2 && y.cols() >= 1, "neyman_scott_elbo",
                    "argument 'y' must be K x N with K >= 2 replicates and N >= 1 groups, got ",
                    y.rows(), " x ", y.cols());
    detail::require_finite(y, "neyman_scott_elbo", "y");
    k_ = y.rows();
    // The ELBO depends on the data only through ybar_n and SS_n, so those are all we keep.
    row_vector_t<S> mean, ss;
    detail::neyman_scott_group_summaries(y, mean, ss);
    ybar_ = mean.transpose();
    ss_ = ss.transpose();
  }

  void check_params(const Eigen::Ref<const vector_type>& v, std::string_view fn) const {
    detail::require(v.size() == num_parameters(), fn, "argument 'params' must have ", num_parameters(),
                    " entries, got ", v.size());
  }

  std::optional<fixed_prior_type> prior_;
  Eigen::Index k_ = 0;
  vector_type ybar_, ss_;
};

/// The double-precision Neyman–Scott ELBO objective.
using neyman_scott_elbo = basic_neyman_scott_elbo<double>;

}  // namespace latent
