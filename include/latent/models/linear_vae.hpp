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
///
/// `linear_vae` is `basic_linear_vae<double>`; `basic_linear_vae<float>` computes in float
/// (parameters and gradients `vector_t<float>`) and returns values in double. `value(params,
/// batch, S, rng)` is the value-only path. Files: factor_analysis/linear_vae.hpp (the
/// objective), factor_analysis/linear_vae_layout.hpp (params_type and the flat views).

#include <latent/models/factor_analysis/linear_vae.hpp>
#include <latent/models/factor_analysis/linear_vae_layout.hpp>
