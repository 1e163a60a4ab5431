#pragma once
/// @file
/// Forwarding header (first edition): grouped records of a discrete Bayesian network.
#include <latent/models/discrete_bayes_net/data.hpp>
