#pragma once
/// @file
/// The variational autoencoder (Kingma & Welling (2014), arXiv:1312.6114): nonlinear factor
/// analysis with neural networks, as an `ElboObjective` for `sgd_elbo` and an
/// `AmortizedObjective` for importance-sampling estimators.
///
/// Generative model (decoder), for each observation x_n (a column of the d x N data):
///
///   z_n ~ N(0, I_k),      x_n | z_n ~ p(x | g(z_n)),      g = decoder MLP (last layer affine)
///
/// with p(x | g) either Bernoulli with logits g (x_i in [0, 1]; continuous x is allowed, as in
/// the usual MNIST-type VAE, and log p = sum_i x_i g_i - softplus(g_i) is then the
/// cross-entropy, not a normalized density of continuous x) or Gaussian N(g, diag(exp(v)))
/// with learned log-variances v (one per coordinate, or one shared).
///
/// Amortized encoder (the variational family):
///
///   q(z_n | x_n) = N(m_n, diag(s_n^2)),     [m_n; log s_n] = f(x_n),     f = encoder MLP
///
/// (one network with 2k outputs: rows 0..k-1 are the means, rows k..2k-1 the log-scales).
///
/// Bounds (`vae_options::bound`), with z = m_n + s_n (.) eps, eps ~ N(0, I) (reparameterization):
///  - ELBO: f_n = log p(x_n | z) - KL(q(z | x_n) || N(0, I)), KL = 1/2 sum_j (m^2 + s^2 - 1 - 2 log s)
///    in closed form;
///  - IWAE (Burda et al. (2016), arXiv:1509.00519): f_n = log (1/K) sum_k w_k, w_k =
///    p(x_n, z_k) / q(z_k | x_n) for K independent proposals; L_1 = ELBO <= L_K <= L_{K+1} <=
///    log p(x_n) in expectation. Its gradient is sum_k omega_k grad log w_k with the normalized
///    weights omega = softmax(log w).
/// The minibatch estimate follows the N/|B| SCALING of `ElboObjective`: value = N / (|B| S)
/// times the sum of the |B| S single estimates f_n (S = `num_samples` independent estimates
/// per observation, each with K proposals for IWAE).
///
/// Flat parameter layout (P = P_enc + P_dec + L):
///
/// | offset | length | block |
/// |---|---|---|
/// | 0 | P_enc | encoder MLP d -> hidden... -> 2k (nn/layout.hpp: per layer vec(W_l) then b_l) |
/// | P_enc | P_dec | decoder MLP k -> hidden... -> d |
/// | P_enc + P_dec | L = 0, d or 1 | log-variances (Bernoulli: none; gaussian: d; gaussian_shared: 1) |
///
/// Gradients are hand-written backward passes (nn/mlp.hpp): with per-column weights w_c (c for
/// the ELBO; c omega_c for IWAE; c = N / (|B| S)), dvalue/dg_c = w_c (x - sigmoid(g_c)) for
/// Bernoulli, w_c (x - g_c) / var for Gaussian; the decoder's backward pass gives dz_c;
/// dm = sum_c dz_c, dlog s = sum_c dz_c (.) eps_c (.) s, plus -N/|B| (m, s^2 - 1) from the KL
/// (ELBO) or -w_c z_c in dz_c and +N/|B| in dlog s from log p(z) - log q(z | x) (IWAE); the
/// encoder's backward pass skips the product for the data input. Every product runs over the
/// whole minibatch: per step, about 2 x (forward + backward) GEMMs of each layer.
///
/// `vae` is `basic_vae<double>`; `basic_vae<float>` computes in float and returns values in
/// double. Files: vae/options.hpp (architecture, bound, layout helpers), vae/model.hpp (the
/// objective and the new-data API).

#include <latent/models/vae/model.hpp>
#include <latent/models/vae/options.hpp>
