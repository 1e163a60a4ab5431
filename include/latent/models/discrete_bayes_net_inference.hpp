#pragma once
/// @file
/// Forwarding header (first edition): the inference kernels of a discrete Bayesian network.
#include <latent/models/discrete_bayes_net/exact_inference.hpp>
#include <latent/models/discrete_bayes_net/mean_field.hpp>
