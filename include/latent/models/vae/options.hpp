#pragma once
/// @file
/// The variational autoencoder's architecture and bound, chosen at run time, and its flat
/// parameter layout. See models/vae.hpp for the model.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/nn/activation.hpp>
#include <latent/nn/layout.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// The decoder's likelihood p(x | z).
enum class vae_likelihood {
  bernoulli,        ///< x_i in [0, 1], logits l = decoder(z): log p = sum_i x_i l_i - softplus(l_i)
  gaussian,         ///< N(decoder(z), diag(exp(log_variance))), one learned log-variance per dimension
  gaussian_shared,  ///< the same with ONE learned log-variance shared by all dimensions
};

/// The lower bound on log p(x_n) that the objective estimates and trains.
enum class vae_bound {
  elbo,  ///< E_q[log p(x_n | z)] - KL(q(z | x_n) || p(z)), the KL in closed form
  iwae,  ///< E[log (1/K) sum_k p(x_n, z_k) / q(z_k | x_n)], z_1..z_K ~ q iid (Burda et al. (2016))
};

/// Options of `basic_vae`: the architecture and the bound.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `latent_dim` | k, the dimension of z (>= 1) | 20 |
/// | `encoder_hidden` | widths of the encoder's hidden layers, input side first; EMPTY = no hidden layer (the encoder is affine in x) | {400} |
/// | `decoder_hidden` | widths of the decoder's hidden layers, latent side first; empty = affine decoder | {400} |
/// | `encoder_activation` | activation of every encoder hidden layer | relu |
/// | `decoder_activation` | activation of every decoder hidden layer | relu |
/// | `likelihood` | `bernoulli`, `gaussian` or `gaussian_shared` | bernoulli |
/// | `bound` | `elbo` or `iwae` | elbo |
/// | `iwae_samples` | K, proposals per importance-weighted estimate, in [1, 10^6] (used only with `iwae`) | 5 |
///
/// A hidden width of 0 is not "no layer" but an error: to drop the hidden layers, leave the
/// list empty.
struct vae_options {
  Eigen::Index latent_dim = 20;
  std::vector<Eigen::Index> encoder_hidden{400};
  std::vector<Eigen::Index> decoder_hidden{400};
  nn::activation encoder_activation = nn::activation::relu;
  nn::activation decoder_activation = nn::activation::relu;
  vae_likelihood likelihood = vae_likelihood::bernoulli;
  vae_bound bound = vae_bound::elbo;
  Eigen::Index iwae_samples = 5;
};

namespace detail {

/// Throws `invalid_argument` naming the offending option.
inline void validate_vae_options(const vae_options& o, std::string_view fn) {
  require(o.latent_dim >= 1, fn, "option 'latent_dim' must be >= 1, got ", o.latent_dim);
  for (std::size_t i = 0; i < o.encoder_hidden.size(); ++i)
    require(o.encoder_hidden[i] >= 1, fn, "option 'encoder_hidden' holds an empty layer (width ", o.encoder_hidden[i],
            ") at entry ", i, "; leave the list empty for no hidden layer");
  for (std::size_t i = 0; i < o.decoder_hidden.size(); ++i)
    require(o.decoder_hidden[i] >= 1, fn, "option 'decoder_hidden' holds an empty layer (width ", o.decoder_hidden[i],
            ") at entry ", i, "; leave the list empty for no hidden layer");
  require(nn::is_valid(o.encoder_activation), fn, "option 'encoder_activation' is not a valid activation");
  require(nn::is_valid(o.decoder_activation), fn, "option 'decoder_activation' is not a valid activation");
  require(static_cast<unsigned>(o.likelihood) <= static_cast<unsigned>(vae_likelihood::gaussian_shared), fn,
          "option 'likelihood' is not a valid vae_likelihood");
  require(o.bound == vae_bound::elbo || o.bound == vae_bound::iwae, fn, "option 'bound' is not a valid vae_bound");
  require(o.iwae_samples >= 1 && o.iwae_samples <= static_cast<Eigen::Index>(max_sample_count), fn,
          "option 'iwae_samples' must be in [1, ", max_sample_count, "], got ", o.iwae_samples);
}

/// The encoder's architecture: d -> hidden... -> 2k (means in rows 0..k-1, log-scales in rows
/// k..2k-1; the last layer is affine).
inline nn::mlp_layout vae_encoder_layout(Eigen::Index d, const vae_options& o) {
  std::vector<Eigen::Index> widths{d};
  widths.insert(widths.end(), o.encoder_hidden.begin(), o.encoder_hidden.end());
  widths.push_back(2 * o.latent_dim);
  std::vector<nn::activation> acts(o.encoder_hidden.size(), o.encoder_activation);
  acts.push_back(nn::activation::identity);
  return {std::move(widths), std::move(acts)};
}

/// The decoder's architecture: k -> hidden... -> d (logits or means; the last layer is affine).
inline nn::mlp_layout vae_decoder_layout(Eigen::Index d, const vae_options& o) {
  std::vector<Eigen::Index> widths{o.latent_dim};
  widths.insert(widths.end(), o.decoder_hidden.begin(), o.decoder_hidden.end());
  widths.push_back(d);
  std::vector<nn::activation> acts(o.decoder_hidden.size(), o.decoder_activation);
  acts.push_back(nn::activation::identity);
  return {std::move(widths), std::move(acts)};
}

/// Number of learned log-variances: 0 (Bernoulli), d (gaussian) or 1 (gaussian_shared).
inline Eigen::Index vae_log_variance_count(Eigen::Index d, vae_likelihood l) {
  return l == vae_likelihood::bernoulli ? 0 : l == vae_likelihood::gaussian ? d : 1;
}

}  // namespace detail
}  // namespace latent
