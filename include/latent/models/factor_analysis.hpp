#pragma once
/// @file
/// Factor analysis and probabilistic PCA, fitted by exact EM or by mean-field variational EM.
///
/// Generative model, for observations x_n in R^d (the columns of a d x N matrix):
///
///     z_n ~ N(0, I_k),     x_n | z_n ~ N(Lambda z_n + mu, Psi),     so  x_n ~ N(mu, Lambda Lambda^T + Psi)
///
/// with k < d factors, loadings Lambda (d x k) and Psi diagonal (factor analysis, the
/// "uniquenesses") or Psi = sigma^2 I (probabilistic PCA, Tipping & Bishop 1999). The noise
/// structure is a runtime choice, `factor_analysis_options::noise`.
/// `factor_analysis` is `basic_factor_analysis<double>`.
///
/// **E-step (Woodbury).** With M = I_k + Lambda^T Psi^{-1} Lambda (k x k) and y = x - mu,
///
///     p(z | x) = N(M^{-1} Lambda^T Psi^{-1} y,  M^{-1})
///     y^T Sigma^{-1} y = y^T Psi^{-1} y - u^T M^{-1} u,   u = Lambda^T Psi^{-1} y
///     log det Sigma    = log det Psi + log det M           (matrix determinant lemma)
///
/// so no d x d matrix is formed or inverted: a block of B columns costs two GEMMs
/// (U = (Psi^{-1} Lambda)^T Y and the cross moment Y E[Z]^T), O(B d k), plus O(d k^2) per
/// parameter change for M. The posterior covariance M^{-1} is the same for every observation.
///
/// **Sufficient statistics.** About a reference point r (the model mean when the statistics are
/// created, so that nothing large cancels): W = sum w_n, sum y_n, diag(sum y_n y_n^T),
/// sum y_n E[z_n]^T, sum E[z_n], sum E[z_n z_n^T] (with y_n = x_n - r). They depend on the data
/// only through the count, the sum and the second moment, so the model also fits from sample
/// moments alone (`sample_moments`, `factor_analysis::moment_model`), at a cost independent of N.
///
/// **M-step.** With the augmented latent z~ = (z, 1) and loadings Lambda~ = (Lambda, mu - r):
///
///     Lambda~ = (sum y E[z~]^T) (sum E[z~ z~^T])^{-1}
///     Psi_jj  = (sum y_j^2 - sum_c Lambda~_jc (sum y E[z~]^T)_jc) / W         (factor analysis)
///     sigma^2 = mean_j Psi_jj                                                (PPCA)
///
/// **Uniqueness floor (Heywood cases).** An unconstrained Psi_jj can reach 0 (a Heywood case),
/// after which Psi^{-1} is infinite. After every M-step Psi_jj >= f_j with
///
///     f_j = uniqueness_floor * max(v_j, 1e-3 * vbar),
///
/// v_j the sample variance of variable j and vbar their mean (PPCA: sigma^2 >= uniqueness_floor
/// * vbar). The floor is the constrained maximizer of the M-step objective (it is unimodal in
/// each Psi_jj), so EM stays monotone; constant variables get a positive floor too. The
/// default 1e-6 keeps Psi^{-1} within 1e6 / v_j, which bounds the cancellation in the
/// Woodbury quadratic form to about six of the sixteen digits.
///
/// **Mean-field variational E-step.** q(z_n) = prod_j N(m_nj, s_j^2), coordinate ascent on
/// the ELBO: s_j^2 = 1 / M_jj and m_nj = (u_nj - sum_{l != j} M_jl m_nl) / M_jj (Gauss-Seidel on
/// M m = u). The means converge to the exact posterior means; the variances 1 / M_jj are at
/// most the exact (M^{-1})_jj, so mean field under-estimates posterior variance, and the
/// ELBO stays below log p(x) by KL(q || p(z | x)) = 1/2 (sum_j log M_jj - log det M) at the
/// fixed point (Hadamard's inequality makes it >= 0).
///
/// **Precision.** `basic_factor_analysis<S>` computes the O(N d k) block kernels in S (float or
/// double) and adds each block's sums into double statistics; the M-step, the moments path
/// and every O(d k^2) quantity run in double; parameters are stored in S.
///
/// **Layout.** models/factor_analysis/: options.hpp (noise model, options), params.hpp,
/// stats.hpp, sample_moments.hpp, posterior.hpp (mean-field q), kernels.hpp (block E-step
/// kernels), closed_form.hpp (PPCA MLE), model.hpp (the class), initialization.hpp (starting
/// points), m_step.hpp (M-step and the moments E-step), moment_model.hpp (the moments view),
/// linear_vae.hpp and linear_vae_layout.hpp (the ELBO objective, see models/linear_vae.hpp),
/// rotation.hpp (varimax, promax), factanal.hpp (R's factanal summary and chi-square test),
/// standard_errors.hpp (observed information and standard errors).
///
/// References: Rubin & Thayer (1982), EM algorithms for ML factor analysis; Tipping & Bishop
/// (1999), Probabilistic principal component analysis, JRSS B 61(3).

#include <latent/models/factor_analysis/closed_form.hpp>
#include <latent/models/factor_analysis/factanal.hpp>
#include <latent/models/factor_analysis/initialization.hpp>
#include <latent/models/factor_analysis/kernels.hpp>
#include <latent/models/factor_analysis/m_step.hpp>
#include <latent/models/factor_analysis/model.hpp>
#include <latent/models/factor_analysis/moment_model.hpp>
#include <latent/models/factor_analysis/options.hpp>
#include <latent/models/factor_analysis/params.hpp>
#include <latent/models/factor_analysis/posterior.hpp>
#include <latent/models/factor_analysis/rotation.hpp>
#include <latent/models/factor_analysis/sample_moments.hpp>
#include <latent/models/factor_analysis/standard_errors.hpp>
#include <latent/models/factor_analysis/stats.hpp>
