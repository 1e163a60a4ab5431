#pragma once
/// @file
/// Random initialisation of an MLP's flat parameter vector from the caller's engine.
///
/// Weights are drawn independently per layer, biases are set to 0:
///  - Glorot (Xavier) uniform: W_ij ~ U(-r, r), r = sqrt(6 / (n_in + n_out)), which keeps the
///    variance of activations and gradients roughly constant through tanh, sigmoid and linear
///    layers (Glorot & Bengio (2010));
///  - He normal: W_ij ~ N(0, 2 / n_in), the same for ReLU-like layers, whose output has half
///    the input's second moment (He et al. (2015), arXiv:1502.01852).
/// `init_scheme::automatic` picks He for relu, elu and softplus layers and Glorot otherwise.
/// The draws are made in double and rounded, so float and double parameters consume the
/// engine identically and agree to float precision.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/nn/activation.hpp>
#include <latent/nn/layout.hpp>
#include <latent/nn/mlp.hpp>

#include <Eigen/Core>

#include <cmath>
#include <random>
#include <type_traits>

namespace latent::nn {

/// How `initialize` draws a layer's weights (see the file comment).
enum class init_scheme { automatic, glorot_uniform, he_normal };

/// Fill the P entries of `params` (a view of the network's segment of a flat vector) with
/// random weights (column by column, layer by layer) and zero biases. The scalar type is
/// explicit: `nn::initialize<float>(layout, v, rng)`.
/// @throws invalid_argument if `params` does not have P entries
template <Scalar S, std::uniform_random_bit_generator Rng>
void initialize(const mlp_layout& layout, Eigen::Ref<vector_t<S>> params, Rng& rng,
                init_scheme scheme = init_scheme::automatic) {
  require(params.size() == layout.num_parameters(), "nn::initialize", "argument 'params' must have ",
          layout.num_parameters(), " entries, got ", params.size());
  for (Eigen::Index l = 0; l < layout.num_layers(); ++l) {
    const activation f = layout.activation_of(l);
    const bool relu_like = f == activation::relu || f == activation::elu || f == activation::softplus;
    const bool he = scheme == init_scheme::he_normal || (scheme == init_scheme::automatic && relu_like);
    const double n_in = static_cast<double>(layout.width(l)), n_out = static_cast<double>(layout.width(l + 1));
    auto w = layout.weights(params.data(), l);
    if (he) {
      std::normal_distribution<double> normal(0.0, std::sqrt(2.0 / n_in));
      for (Eigen::Index j = 0; j < w.cols(); ++j)
        for (Eigen::Index i = 0; i < w.rows(); ++i) w(i, j) = static_cast<S>(normal(rng));
    } else {
      const double r = std::sqrt(6.0 / (n_in + n_out));
      std::uniform_real_distribution<double> uniform(-r, r);
      for (Eigen::Index j = 0; j < w.cols(); ++j)
        for (Eigen::Index i = 0; i < w.rows(); ++i) w(i, j) = static_cast<S>(uniform(rng));
    }
    layout.bias(params.data(), l).setZero();
  }
}

/// The same for a network: `nn::initialize(net, v, rng)` (the scalar type is the network's).
template <Scalar S, std::uniform_random_bit_generator Rng>
void initialize(const basic_mlp<S>& net, std::type_identity_t<Eigen::Ref<vector_t<S>>> params, Rng& rng,
                init_scheme scheme = init_scheme::automatic) {
  initialize<S>(net.layout(), params, rng, scheme);
}

}  // namespace latent::nn
