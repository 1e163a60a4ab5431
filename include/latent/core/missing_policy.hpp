#pragma once
/// @file
/// `latent::missing_policy`: whether a model accepts NaN entries as values missing at random
/// (the Gaussian mixture's and factor analysis's `missing_values` option). No Eigen type here,
/// so the models' options headers can hold it.

#include <string_view>

namespace latent {

/// Whether a model accepts NaN entries in its data as values missing at random.
enum class missing_policy {
  reject,  ///< NaN is invalid input (`invalid_argument`), as for any non-finite entry (default)
  allow    ///< NaN marks a value missing at random: the E-step conditions on the observed coordinates
};

/// A human-readable name for a missing-value policy.
constexpr std::string_view to_string(missing_policy m) {
  switch (m) {
    case missing_policy::reject: return "reject";
    case missing_policy::allow: return "allow";
  }
  return "unknown";
}

}  // namespace latent
