#pragma once
/// @file
/// The Bayesian MLP's architecture, likelihood, prior and variational starting point, chosen at
/// run time, and a trained model's record (`basic_fitted_bayesian_mlp`). See
/// models/bayesian_mlp.hpp for the model.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/nn/activation.hpp>
#include <latent/nn/layout.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// The likelihood p(y | x, w) of a Bayesian MLP whose network outputs g(x; w).
enum class bnn_likelihood {
  gaussian,                  ///< y ~ N(g(x; w), diag(exp(v))), v: one learned (or fixed) log-variance per output
  heteroscedastic_gaussian,  ///< the network outputs 2m rows: means g_1..m and log-variances g_{m+1..2m}
  categorical,               ///< y in {0, ..., K-1}, p(y = k) = softmax(g(x; w))_k (K outputs)
};

/// The prior over every weight and bias: p(w) = pi N(0, s1^2) + (1 - pi) N(0, s2^2), a single
/// Gaussian N(0, s1^2) when pi = 1 (the default). The scales are on the STANDARDIZED scale of
/// the inputs (see `bnn_options::standardize`). A single Gaussian has an analytic KL(q || p);
/// the two-component scale mixture of Blundell et al. (2015) has none, and its KL is
/// estimated by Monte Carlo from the same weight draws as the likelihood.
struct bnn_prior {
  double scale = 1.0;         ///< s1 > 0
  double mixture_weight = 1.0;  ///< pi in (0, 1]
  double second_scale = 1.0;  ///< s2 > 0 (used only if pi < 1)
};

/// Options of `basic_bayesian_mlp`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `hidden` | widths of the hidden layers, input side first; EMPTY = no hidden layer (a Bayesian linear / softmax regression) | {50} |
/// | `activation` | activation of every hidden layer (the output layer is affine) | relu |
/// | `likelihood` | `gaussian`, `heteroscedastic_gaussian` or `categorical` | gaussian |
/// | `num_classes` | K >= 2 for `categorical` (0 = the largest label + 1) | 0 |
/// | `prior` | see `bnn_prior` | N(0, 1) |
/// | `initial_scale` | the standard deviation every weight's q starts from (> 0) | 1e-2 |
/// | `learn_noise` | `gaussian`: learn the log noise variances by maximizing the ELBO (a point estimate, type-II ML); false keeps them at `noise_variance` | true |
/// | `noise_variance` | `gaussian`: the starting (or fixed) noise variance, on the standardized scale of the targets (> 0) | 0.1 |
/// | `standardize` | standardize each input row, and for regression each target row, to mean 0 and sd 1 over the training data before anything else; results are reported on the original scale | true |
/// | `local_reparameterization` | draw the pre-activations instead of the weights (Kingma, Salimans & Welling (2015)): one draw per observation instead of one per minibatch, lower-variance gradients | false |
struct bnn_options {
  std::vector<Eigen::Index> hidden{50};
  nn::activation activation = nn::activation::relu;
  bnn_likelihood likelihood = bnn_likelihood::gaussian;
  Eigen::Index num_classes = 0;
  bnn_prior prior{};
  double initial_scale = 1e-2;
  bool learn_noise = true;
  double noise_variance = 0.1;
  bool standardize = true;
  bool local_reparameterization = false;
};

/// A trained Bayesian MLP: everything prediction needs, without the training data. Get one
/// from `model.fitted(params)`, save and load it with io/json.hpp, and predict from it with
/// `basic_bayesian_mlp<S> m(fitted); m.predict(fitted.params, x, draws, rng)`.
template <Scalar S>
struct basic_fitted_bayesian_mlp {
  using scalar_type = S;
  Eigen::Index input_dim = 0;   ///< d
  Eigen::Index output_dim = 0;  ///< m (regression targets) or K (classes)
  bnn_options options;          ///< the architecture, likelihood and prior
  array_t<S> input_shift, input_scale;    ///< d each: x_std = (x - shift) / scale
  array_t<S> target_shift, target_scale;  ///< m each (empty for categorical)
  vector_t<S> params;  ///< [mu (P) | rho (P) | log noise variances], as `sgd_elbo` returned them
};
using fitted_bayesian_mlp = basic_fitted_bayesian_mlp<double>;

namespace detail {

/// Throws `invalid_argument` naming the offending option.
inline void validate_bnn_options(const bnn_options& o, std::string_view fn) {
  for (std::size_t i = 0; i < o.hidden.size(); ++i)
    require(o.hidden[i] >= 1, fn, "option 'hidden' holds a layer of ", o.hidden[i], " units at entry ", i,
            "; leave the list empty for no hidden layer");
  require(nn::is_valid(o.activation), fn, "option 'activation' is not a valid activation");
  require(static_cast<unsigned>(o.likelihood) <= static_cast<unsigned>(bnn_likelihood::categorical), fn,
          "option 'likelihood' is not a valid bnn_likelihood");
  require(o.num_classes == 0 || o.num_classes >= 2, fn, "option 'num_classes' must be 0 (from the labels) or >= 2, got ",
          o.num_classes);
  require(std::isfinite(o.prior.scale) && o.prior.scale > 0.0, fn, "option 'prior.scale' must be finite and > 0, got ",
          o.prior.scale);
  require(o.prior.mixture_weight > 0.0 && o.prior.mixture_weight <= 1.0, fn,
          "option 'prior.mixture_weight' must be in (0, 1], got ", o.prior.mixture_weight);
  require(std::isfinite(o.prior.second_scale) && o.prior.second_scale > 0.0, fn,
          "option 'prior.second_scale' must be finite and > 0, got ", o.prior.second_scale);
  require(std::isfinite(o.initial_scale) && o.initial_scale > 0.0, fn,
          "option 'initial_scale' must be finite and > 0, got ", o.initial_scale);
  require(std::isfinite(o.noise_variance) && o.noise_variance > 0.0, fn,
          "option 'noise_variance' must be finite and > 0, got ", o.noise_variance);
}

/// The network's architecture: inputs -> hidden... -> outputs (the last layer affine), with
/// `outputs` = m (gaussian), 2m (heteroscedastic) or K (categorical).
inline nn::mlp_layout bnn_layout(Eigen::Index inputs, Eigen::Index outputs, const bnn_options& o) {
  std::vector<Eigen::Index> widths{inputs};
  widths.insert(widths.end(), o.hidden.begin(), o.hidden.end());
  widths.push_back(outputs);
  std::vector<nn::activation> acts(o.hidden.size(), o.activation);
  acts.push_back(nn::activation::identity);
  return {std::move(widths), std::move(acts)};
}

}  // namespace detail
}  // namespace latent
