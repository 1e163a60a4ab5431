#pragma once
/// @file
/// The Gaussian mixture's structural choices and options: covariance restriction,
/// initialization, regularization. They hold no Eigen type and are the same for every scalar.

#include <latent/core/missing_policy.hpp>

#include <cstddef>
#include <string_view>

namespace latent {

/// Restriction on the component covariances.
enum class covariance_type {
  full,       ///< each component its own d x d covariance
  diagonal,   ///< each component its own diagonal covariance
  spherical,  ///< each component its own sigma_k^2 I
  tied        ///< one full covariance shared by all components
};

/// A human-readable name for a covariance type.
constexpr std::string_view to_string(covariance_type t) {
  switch (t) {
    case covariance_type::full: return "full";
    case covariance_type::diagonal: return "diagonal";
    case covariance_type::spherical: return "spherical";
    case covariance_type::tied: return "tied";
  }
  return "unknown";
}

/// How `initialize` draws starting parameters.
enum class mixture_init {
  kmeans_plus_plus,  ///< k-means++ seeding, a few Lloyd iterations, then an M-step from hard labels
  random_points      ///< K distinct random observations as means, then an M-step from hard labels
};

/// Options of a Gaussian mixture (everything except K and the covariance type). The numbers
/// are double for every scalar type: they are used by the M-step, which runs in double.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `reg_covar` | added to every covariance diagonal after each M-step (data units squared); keeps collapsing components positive definite | 1e-6 |
/// | `init` | how `initialize(x, rng)` draws starting parameters | k-means++ |
/// | `kmeans_iterations` | Lloyd iterations after k-means++ seeding | 10 |
/// | `min_component_weight` | a component whose expected weight falls below this fraction of the total keeps its previous mean and covariance (its weight becomes its tiny share, possibly 0) instead of being re-estimated from almost no data | 1e-10 |
/// | `missing_values` | `allow`: NaN entries are values missing at random (the E-step conditions on each observation's observed coordinates; see the model's page, "Missing values"); `reject`: NaN is invalid input | reject |
struct gaussian_mixture_options {
  double reg_covar = 1e-6;
  mixture_init init = mixture_init::kmeans_plus_plus;
  std::size_t kmeans_iterations = 10;
  double min_component_weight = 1e-10;
  missing_policy missing_values = missing_policy::reject;
};

}  // namespace latent
