#pragma once
/// @file
/// Bayesian neural networks by variational inference ("Bayes by backprop", Blundell et al.
/// (2015), arXiv:1505.05424; Graves (2011)): the weights w of an MLP (nn/) are the latent
/// variables, with a prior p(w), a mean-field Gaussian q(w) = prod_i N(mu_i, sigma_i^2),
/// sigma = softplus(rho), and the ELBO
///
///   F(mu, rho, v) = sum_n E_q[log p(y_n | x_n, w)] - KL(q(w) || p(w))
///
/// maximized by `sgd_elbo` with the reparameterization w = mu + sigma (.) eps, eps ~ N(0, I).
/// The weights are GLOBAL latents: the KL is counted once per full-data estimate, and a
/// minibatch estimate is N / (|B| S) times the sum of its |B| S log-likelihood terms minus the
/// KL (the `ElboObjective` scaling). One weight draw serves a whole minibatch; with
/// `local_reparameterization` the pre-activations are drawn per column instead (Kingma,
/// Salimans & Welling (2015), arXiv:1506.02557), which removes the covariance between the
/// batch's terms and so lowers the gradient's variance.
///
/// Likelihoods (`bnn_likelihood`): Gaussian with learned homoscedastic noise variances (point
/// estimates, part of the flat vector), heteroscedastic Gaussian (the network outputs means and
/// log-variances), categorical (softmax). Priors (`bnn_prior`): N(0, s^2) with an analytic KL,
/// or a two-component scale mixture with a Monte Carlo KL.
///
/// Inputs, and regression targets, are standardized internally (each row to mean 0, sd 1 over
/// the training data); the prior scales and `noise_variance` are on that scale, and everything
/// the model reports (predictions, noise variances, test log-likelihoods) is on the original
/// scale.
///
/// Flat parameter layout (P = the network's weights and biases, nn/layout.hpp):
///
/// | offset | length | block |
/// |---|---|---|
/// | 0 | P | mu, the means of q |
/// | P | P | rho, sigma = softplus(rho) = log(1 + e^rho) |
/// | 2P | m or 0 | log noise variances v (gaussian with `learn_noise`), standardized scale |
///
/// Gradients: the network's backward pass gives g = dF_lik/dw at the draw; then dF/dmu = g -
/// dKL/dmu, dF/dsigma = g (.) eps - dKL/dsigma, dF/drho = dF/dsigma (.) sigmoid(rho).
///
/// Files: bayesian_mlp/options.hpp (options, prior, architecture), bayesian_mlp/likelihood.hpp,
/// bayesian_mlp/prior.hpp (KL terms), bayesian_mlp/prediction.hpp (predictive types and
/// intervals), bayesian_mlp/model.hpp (the objective and prediction).

#include <latent/models/bayesian_mlp/model.hpp>
#include <latent/models/bayesian_mlp/options.hpp>
#include <latent/models/bayesian_mlp/prediction.hpp>
