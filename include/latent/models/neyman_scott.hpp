#pragma once
/// @file
/// The Neyman–Scott / one-way random-effects normal model, fitted by exact EM, with the closed
/// forms that make it the library's reference for "what does EM converge to".
///
/// Data: a K x N matrix Y (K >= 2 replicates per group; **each column is one group**).
///
///     z_n   ~ N(mu, tau2)          n = 1..N   (the latent group mean)
///     y_nk  ~ N(z_n, theta)        k = 1..K   (replicates, independent given z_n)
///
/// Marginally each column is y_n ~ N(mu 1, theta I + tau2 1 1^T). Its covariance has the
/// eigenvalue lambda = theta + K tau2 along 1/sqrt(K) and theta on the (K-1)-dimensional
/// complement, so with the group mean ybar_n and the within-group sum of squares
/// S_n = sum_k (y_nk - ybar_n)^2,
///
///     log p(y_n) = -K/2 log(2 pi) - (K-1)/2 log theta - 1/2 log(theta + K tau2)
///                  - S_n / (2 theta) - (ybar_n - mu)^2 / (2 (theta/K + tau2)),
///
/// with no K x K matrix anywhere.
///
/// Posterior of a group mean (the E-step): z_n | y_n ~ N(m_n, v) with precision
/// K/theta + 1/tau2. Writing s = theta/K and the shrinkage factor B = tau2 / (tau2 + s):
///
///     m_n = mu + B (ybar_n - mu),      v = B s.
///
/// Expected complete-data sufficient statistics (weighted by the sample weights w_n):
///
///     R  = sum_n w_n E[sum_k (y_nk - z_n)^2] = sum_n w_n (S_n + K ((1-B)^2 (ybar_n-mu)^2 + B s))
///     M1 = sum_n w_n E[z_n - c],   M2 = sum_n w_n E[(z_n - c)^2]   (c: a fixed centre, see below)
///
/// M-step: theta = R / (K W); if the prior is estimated, mu = c + M1/W and
/// tau2 = M2/W - (M1/W)^2, with W = sum_n w_n. With a fixed prior only theta moves.
///
/// The joint maximizer over (theta, z_1..z_N) is z_n = ybar_n, theta = sum S_n / (N K), which
/// tends to theta (K-1)/K, not theta, as N grows with K fixed (Neyman & Scott, 1948,
/// Econometrica 16(1)): the number of nuisance parameters grows with the data. The marginal MLE
/// (what EM finds) integrates the z_n out and is consistent.
///
/// See docs/models/neyman_scott.md for the closed forms and the derivation of the fixed-prior
/// root.
///
/// Every type is a template on the scalar type S (float or double) with a double alias:
/// `basic_neyman_scott<S>` / `neyman_scott`, `basic_neyman_scott_params<S>` /
/// `neyman_scott_params`, and so on. The pieces live in models/neyman_scott/:
///
/// | file | holds |
/// |---|---|
/// | params.hpp | parameters, prior choice, options, posterior, joint draw |
/// | stats.hpp | the expected sufficient statistics (additive, flat view) |
/// | kernels.hpp | per-group summaries and blocked sums (detail) |
/// | model.hpp | `basic_neyman_scott<S>`, the `EMModel` |
/// | closed_forms.hpp | joint MLE, marginal MLE, fixed-prior MLE |
/// | elbo.hpp | `basic_neyman_scott_elbo<S>`, the SGD objective (also via neyman_scott_elbo.hpp) |

#include <latent/models/neyman_scott/closed_forms.hpp>
#include <latent/models/neyman_scott/model.hpp>
#include <latent/models/neyman_scott/params.hpp>
#include <latent/models/neyman_scott/standard_errors.hpp>
#include <latent/models/neyman_scott/stats.hpp>
