#pragma once
/// @file
/// Factor analysis: starting points -- a random start from the data's moments and a caller's
/// engine, and the deterministic start from the closed-form PPCA fit. Both are computed in
/// double and rounded to the model's scalar type.

#include <latent/core/error.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/closed_form.hpp>
#include <latent/models/factor_analysis/model.hpp>
#include <latent/models/factor_analysis/sample_moments.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <random>
#include <string_view>

namespace latent {

template <Scalar S>
template <std::uniform_random_bit_generator Rng>
void basic_factor_analysis<S>::initialize(const data_type& x, Rng& rng) {
  using A = accumulator_type;
  constexpr std::string_view fn = "factor_analysis::initialize";
  if (has_missing(x.x())) {
    // Missing values: the start of the data with every NaN replaced by its variable's observed mean.
    detail::require_missing_at_random_data(x, fn);
    const matrix_t<S> filled = detail::impute_observed_means(x);
    initialize(x.weighted() ? data_type(filled, x.weights()) : data_type(filled), rng);
    return;
  }
  check_initial_data(x, fn);
  const Eigen::Index d = x.dim();
  vector_t<A> mean, var;
  detail::weighted_mean_and_variance(x, x.total_weight(), mean, var);
  const A vbar = var.mean();
  detail::require(vbar > A(0), fn, "argument 'x' must not be constant (every variable has zero variance)");
  basic_factor_analysis_params<A> p;
  p.mean = mean;
  p.loadings = standard_normal<A>(d, k_, rng);
  p.loadings.array().colwise() *= (var.array().max(A(1e-3) * vbar) / (A(2) * static_cast<A>(k_))).sqrt();
  if (opts_.noise == noise_model::diagonal)
    p.uniquenesses = (A(0.5) * var).cwiseMax(uniqueness_floors(var));
  else
    p.uniquenesses = vector_t<A>::Constant(d, std::max(A(0.5) * vbar, static_cast<A>(opts_.uniqueness_floor) * vbar));
  set_params(p.template cast<S>());
}

template <Scalar S>
void basic_factor_analysis<S>::initialize_pca(const moments_type& m) {
  using A = accumulator_type;
  constexpr std::string_view fn = "factor_analysis::initialize_pca";
  const Eigen::Index d = m.mean.size();
  detail::require(d > k_, fn, "the data must have more variables (d) than factors (k = ", k_, "), got d = ", d);
  check_moment_shape(m, d, fn);
  basic_factor_analysis_params<A> p = detail::ppca_closed_form(m.mean, m.covariance, k_, fn);
  const vector_t<A> var = m.covariance.diagonal().cwiseMax(A(0));
  if (opts_.noise == noise_model::diagonal) {
    p.uniquenesses = (var - p.loadings.rowwise().squaredNorm()).cwiseMax(uniqueness_floors(var));
  } else {
    p.uniquenesses.setConstant(std::max(p.uniquenesses(0), static_cast<A>(opts_.uniqueness_floor) * var.mean()));
  }
  set_params(p.template cast<S>());
}

}  // namespace latent
