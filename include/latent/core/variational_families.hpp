#pragma once
/// @file
/// Variational families: tags with options that select how a model's E-step optimizes q.
///
/// A model that supports a family overloads `e_step(x, begin, end, stats, family)` and so
/// satisfies `VariationalEMModel<M, Family>`; `variational_em(model, x, family, options)` then
/// runs variational EM with q restricted to that family.

#include <latent/core/error.hpp>

#include <cmath>
#include <cstddef>
#include <string_view>

namespace latent {

/// Mean field: q(z) = prod_j q_j(z_j), one factor per latent coordinate (per missing value,
/// per latent dimension, ...), optimized by coordinate ascent. Each coordinate update
///   log q_j(z_j) = E_{q_{-j}}[log p(x, z)] + const
/// maximizes the ELBO over q_j with the other factors fixed, so a sweep never lowers it.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `max_sweeps` | coordinate-ascent sweeps per observation and E-step, at most | 100 |
/// | `tolerance` | stop sweeping when no entry of any factor moved by more than this | 1e-10 |
/// | `warm_start` | start from the q of the previous E-step where the model keeps it (then the ELBO never decreases across EM iterations) | true |
struct mean_field {
  std::size_t max_sweeps = 100;
  double tolerance = 1e-10;
  bool warm_start = true;
};

/// Throws `invalid_argument` unless `f.max_sweeps > 0` and `f.tolerance` is finite and >= 0.
inline void validate(const mean_field& f, std::string_view function) {
  detail::require(f.max_sweeps > 0, function, "option 'max_sweeps' of mean_field must be positive, got 0");
  detail::require(std::isfinite(f.tolerance) && f.tolerance >= 0.0, function,
                  "option 'tolerance' of mean_field must be finite and >= 0, got ", f.tolerance);
}

}  // namespace latent
