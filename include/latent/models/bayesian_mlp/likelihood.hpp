#pragma once
/// @file
/// The Bayesian MLP's likelihoods log p(y_n | g_n) of a network output g_n, and their
/// gradients with respect to g_n, for a batch of columns at once (see `bnn_likelihood`):
///
/// | likelihood | log p(y | g) | d log p / d g |
/// |---|---|---|
/// | gaussian | sum_i -1/2 (log 2 pi + v_i + (y_i - g_i)^2 e^{-v_i}) | (y_i - g_i) e^{-v_i}; d/dv_i = -1/2 + (y_i - g_i)^2 e^{-v_i} / 2 |
/// | heteroscedastic | the same with v_i = g_{m+i} | mean rows as above; log-variance rows -1/2 + (y_i - g_i)^2 e^{-g_{m+i}} / 2 |
/// | categorical | g_y - log sum_k e^{g_k} | onehot(y) - softmax(g) |

#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/bayesian_mlp/options.hpp>

#include <Eigen/Core>

#include <cstddef>

namespace latent::detail {

/// ll(j) = log p(y_j | out_j) for the columns of `out` (network outputs) and `y` (targets, or
/// a 1 x B row of class labels for `categorical`), with log noise variances `log_noise` for
/// `gaussian`. If `d_out` is not null it is set to `weight` times d ll(j) / d out_j, and if
/// `g_log_noise` is not null (gaussian only) `weight` times the sum over j of d ll(j) / d v is
/// ADDED to it.
template <Scalar S>
void bnn_log_likelihood(bnn_likelihood lik, const matrix_t<S>& out, const Eigen::Ref<const matrix_t<S>>& y,
                        const array_t<S>& log_noise, Eigen::Array<S, 1, Eigen::Dynamic>& ll, S weight,
                        matrix_t<S>* d_out, array_t<S>* g_log_noise) {
  const Eigen::Index b = out.cols();
  ll.resize(b);
  if (lik == bnn_likelihood::categorical) {
    matrix_t<S> p = out;
    Eigen::Array<S, 1, Eigen::Dynamic> lse(b);
    normalize_columns_log(p, lse);  // p = softmax(out)
    for (Eigen::Index j = 0; j < b; ++j) ll(j) = out(static_cast<Eigen::Index>(y(0, j)), j) - lse(j);
    if (d_out != nullptr) {
      *d_out = -weight * p;
      for (Eigen::Index j = 0; j < b; ++j) (*d_out)(static_cast<Eigen::Index>(y(0, j)), j) += weight;
    }
    return;
  }
  const Eigen::Index m = y.rows();
  const S half_log_two_pi = static_cast<S>(0.5 * log_two_pi);
  if (lik == bnn_likelihood::gaussian) {
    const array_t<S> inv_var = (-log_noise).exp();
    const S constant = -static_cast<S>(m) * half_log_two_pi - S(0.5) * log_noise.sum();
    const auto r = (y - out).array();
    ll = constant - S(0.5) * (r.square().colwise() * inv_var).colwise().sum();
    if (d_out != nullptr) *d_out = (weight * (r.colwise() * inv_var)).matrix();
    if (g_log_noise != nullptr)
      *g_log_noise += weight * (S(0.5) * (r.square().rowwise().sum() * inv_var) - S(0.5) * static_cast<S>(b));
    return;
  }
  // heteroscedastic: rows 0..m-1 means, m..2m-1 log-variances
  const auto mean = out.topRows(m).array();
  const auto log_var = out.bottomRows(m).array();
  const Eigen::Array<S, Eigen::Dynamic, Eigen::Dynamic> inv_var = (-log_var).exp();
  const Eigen::Array<S, Eigen::Dynamic, Eigen::Dynamic> r = y.array() - mean;
  ll = -static_cast<S>(m) * half_log_two_pi - S(0.5) * (log_var + r.square() * inv_var).colwise().sum();
  if (d_out != nullptr) {
    d_out->resize(2 * m, b);
    d_out->topRows(m) = (weight * r * inv_var).matrix();
    d_out->bottomRows(m) = (weight * S(0.5) * (r.square() * inv_var - S(1))).matrix();
  }
}

}  // namespace latent::detail
