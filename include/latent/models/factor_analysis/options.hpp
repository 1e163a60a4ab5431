#pragma once
/// @file
/// Factor analysis: the noise model and the options (everything except k).

#include <latent/core/missing_policy.hpp>

#include <string_view>

namespace latent {

/// The noise covariance Psi of factor analysis.
enum class noise_model {
  diagonal,   ///< Psi = diag(psi_1..psi_d): factor analysis
  isotropic   ///< Psi = sigma^2 I: probabilistic PCA
};

/// A human-readable name for a noise model.
constexpr std::string_view to_string(noise_model n) {
  switch (n) {
    case noise_model::diagonal: return "diagonal";
    case noise_model::isotropic: return "isotropic";
  }
  return "unknown";
}

/// Options of a factor analysis model (everything except k). They hold no number of the
/// model's scalar type (the floor is a ratio applied in the double-precision M-step), so one
/// options type serves `basic_factor_analysis<float>` and `<double>`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `noise` | `diagonal` (factor analysis) or `isotropic` (probabilistic PCA) | diagonal |
/// | `uniqueness_floor` | after each M-step Psi_jj >= uniqueness_floor * max(v_j, 1e-3 vbar) (PPCA: sigma^2 >= uniqueness_floor * vbar), v_j the sample variances, vbar their mean; must be in (0, 1) | 1e-6 |
/// | `missing_values` | `allow`: NaN entries are values missing at random (the exact E-step conditions on each observation's observed coordinates; see the model's page, "Missing values"); `reject`: NaN is invalid input | reject |
struct factor_analysis_options {
  noise_model noise = noise_model::diagonal;
  double uniqueness_floor = 1e-6;
  missing_policy missing_values = missing_policy::reject;
};

}  // namespace latent
