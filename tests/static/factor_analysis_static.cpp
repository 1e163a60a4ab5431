// Compile-time contract checks for factor analysis: which solvers accept which model.
#include <latent/core/concepts.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/factor_analysis.hpp>

namespace {

using latent::factor_analysis;

// Exact EM, variational EM with mean field, and random restarts.
static_assert(latent::EMModel<factor_analysis>);
static_assert(latent::VariationalEMModel<factor_analysis, latent::mean_field>);
static_assert(latent::RandomlyInitializable<factor_analysis>);
static_assert(latent::SufficientStatistics<latent::factor_analysis_stats>);
static_assert(std::is_same_v<factor_analysis::data_type, latent::observations>);

// The moments view: exact EM on sample moments, with the model's own parameters and statistics.
using moments_view = factor_analysis::moment_model_view;
static_assert(latent::EMModel<moments_view>);
static_assert(std::is_same_v<moments_view::data_type, latent::sample_moments>);
static_assert(std::is_same_v<moments_view::params_type, factor_analysis::params_type>);

// Negative: no variational family other than mean field; the moments view has no variational
// E-step (mean field needs each observation) and cannot draw random starts.
struct not_a_family {};
static_assert(!latent::VariationalEMModel<factor_analysis, not_a_family>);
static_assert(!latent::VariationalEMModel<factor_analysis, int>);
static_assert(!latent::VariationalEMModel<moments_view, latent::mean_field>);
static_assert(!latent::RandomlyInitializable<moments_view>);

}  // namespace
