#pragma once
/// @file
/// Dense multilayer perceptrons over a minibatch (observations are columns), written as block
/// matrix products with hand-written backward passes into views of one flat parameter vector:
/// activations (nn/activation.hpp), the architecture and parameter layout (nn/layout.hpp),
/// forward and backward passes with a caller-owned workspace (nn/mlp.hpp), and Glorot/He
/// initialisation (nn/init.hpp). Everything is in namespace `latent::nn`.

#include <latent/nn/activation.hpp>
#include <latent/nn/init.hpp>
#include <latent/nn/layout.hpp>
#include <latent/nn/mlp.hpp>
