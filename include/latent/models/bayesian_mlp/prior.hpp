#pragma once
/// @file
/// The Bayesian MLP's prior term: KL(q || p) for the mean-field q(w) = prod_i N(mu_i, sigma_i^2)
/// and the prior of `bnn_prior`, with its gradient.
///
///  - Gaussian prior N(0, s^2) (analytic):
///      KL = sum_i [ log s - log sigma_i + (sigma_i^2 + mu_i^2) / (2 s^2) - 1/2 ],
///      dKL/dmu_i = mu_i / s^2,  dKL/dsigma_i = -1/sigma_i + sigma_i / s^2.
///  - Scale mixture p(w) = pi N(0, s1^2) + (1 - pi) N(0, s2^2) (Blundell et al. (2015)), by
///    Monte Carlo at the reparameterized draw w = mu + sigma (.) eps:
///      KL ~ sum_i [ log q(w_i) - log p(w_i) ],  log q(w_i) = -1/2 log 2 pi - log sigma_i - eps_i^2 / 2,
///    whose pathwise gradient is d/dw_i = -d log p / dw_i (through w = mu + sigma eps) plus
///    -1/sigma_i directly in sigma (eps fixed).

#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/bayesian_mlp/options.hpp>

#include <Eigen/Core>

#include <cmath>

namespace latent::detail {

/// KL(q || N(0, s^2)) summed over the weights, in the accumulation precision.
template <Scalar S>
accumulator_t<S> gaussian_prior_kl(const array_t<S>& mu, const array_t<S>& sigma, double s) {
  using A = accumulator_t<S>;
  const S inv_s2 = static_cast<S>(1.0 / (s * s));
  return static_cast<A>(mu.size()) * (static_cast<A>(std::log(s)) - A(0.5)) +
         (S(0.5) * inv_s2 * (sigma.square() + mu.square()) - sigma.log()).template cast<A>().sum();
}

/// g_mu -= dKL/dmu and g_sigma -= dKL/dsigma for the Gaussian prior N(0, s^2).
template <Scalar S>
void subtract_gaussian_prior_kl_gradient(const array_t<S>& mu, const array_t<S>& sigma, double s, array_t<S>& g_mu,
                                         array_t<S>& g_sigma) {
  const S inv_s2 = static_cast<S>(1.0 / (s * s));
  g_mu -= inv_s2 * mu;
  g_sigma += sigma.inverse() - inv_s2 * sigma;
}

/// log p(w) summed over the weights for the scale mixture, and d log p / dw_i into `dlogp`.
template <Scalar S>
accumulator_t<S> mixture_log_prior(const array_t<S>& w, const bnn_prior& prior, array_t<S>& dlogp) {
  using A = accumulator_t<S>;
  const double pi = prior.mixture_weight, s1 = prior.scale, s2 = prior.second_scale;
  const S c1 = static_cast<S>(std::log(pi) - std::log(s1) - 0.5 * log_two_pi);
  const S c2 = static_cast<S>(std::log1p(-pi) - std::log(s2) - 0.5 * log_two_pi);
  const S i1 = static_cast<S>(1.0 / (s1 * s1)), i2 = static_cast<S>(1.0 / (s2 * s2));
  const array_t<S> w2 = w.square();
  const array_t<S> l1 = c1 - S(0.5) * i1 * w2, l2 = c2 - S(0.5) * i2 * w2;
  const array_t<S> top = l1.max(l2);
  const array_t<S> e1 = (l1 - top).exp(), e2 = (l2 - top).exp();
  const array_t<S> total = e1 + e2;
  // d log p / dw = -w (r1 / s1^2 + r2 / s2^2), r = the components' responsibilities.
  dlogp = -w * (e1 * i1 + e2 * i2) / total;
  return (top + total.log()).template cast<A>().sum();
}

}  // namespace latent::detail
