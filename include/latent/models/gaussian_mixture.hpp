#pragma once
/// @file
/// Gaussian mixture model with full, diagonal, spherical or tied covariance, fitted by EM:
/// `latent::basic_gaussian_mixture<S>` (S = float or double) and `latent::gaussian_mixture`
/// (double). This is the header to include; the pieces live in models/gaussian_mixture/:
///
/// | file | what |
/// |---|---|
/// | options.hpp | `covariance_type`, `mixture_init`, `gaussian_mixture_options` |
/// | params.hpp | `basic_gaussian_mixture_params<S>` |
/// | stats.hpp | `basic_gaussian_mixture_stats<S>` (additive, in double, with a flat view) |
/// | model.hpp | `basic_gaussian_mixture<S>`: EM contract, queries, sampling |
/// | mstep.hpp | the M-step in double, and the checks on user parameters (detail) |
/// | density.hpp | the log-joint's coefficients from the parameters (detail) |
/// | estep.hpp | the E-step over a column range (detail) |
/// | kernels.hpp | the fused per-group kernels, generic in S (detail) |
/// | initialization.hpp | k-means++ and random starting centers (detail) |

// Not used by the model; kept because code written for the first edition got the block
// densities (mvn_log_density, ...) through this header. Templates only: it costs nothing.
#include <latent/core/gaussian.hpp>
#include <latent/models/gaussian_mixture/model.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/models/gaussian_mixture/params.hpp>
#include <latent/models/gaussian_mixture/stats.hpp>
