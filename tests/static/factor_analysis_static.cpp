// Compile-time contract checks for factor analysis: which solvers accept which model, in float
// and double.
#include <latent/core/concepts.hpp>
#include <latent/core/statistics.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/factor_analysis.hpp>

#include <random>
#include <type_traits>

namespace {

using latent::factor_analysis;
using float_fa = latent::basic_factor_analysis<float>;

// Exact EM, variational EM with mean field, and random restarts, in both precisions.
static_assert(latent::EMModel<factor_analysis>);
static_assert(latent::VariationalEMModel<factor_analysis, latent::mean_field>);
static_assert(latent::RandomlyInitializable<factor_analysis>);
static_assert(latent::RandomlyInitializable<factor_analysis, std::minstd_rand>);
static_assert(latent::EMModel<float_fa>);
static_assert(latent::VariationalEMModel<float_fa, latent::mean_field>);
static_assert(latent::RandomlyInitializable<float_fa>);
static_assert(latent::RandomlyInitializable<float_fa, std::minstd_rand>);
static_assert(latent::SufficientStatistics<latent::factor_analysis_stats>);
static_assert(latent::FlatStatistics<latent::factor_analysis_stats>);
static_assert(latent::FlatStatistics<latent::basic_factor_analysis_stats<float>>);
static_assert(std::is_same_v<factor_analysis::data_type, latent::observations>);
static_assert(std::is_same_v<float_fa::data_type, latent::basic_observations<float>>);
static_assert(std::is_same_v<factor_analysis, latent::basic_factor_analysis<double>>);
static_assert(std::is_same_v<latent::factor_analysis_params, latent::basic_factor_analysis_params<double>>);
// Float models keep float parameters but double statistics, moments and log-likelihoods.
static_assert(std::is_same_v<decltype(float_fa::params_type::loadings), Eigen::MatrixXf>);
static_assert(std::is_same_v<decltype(float_fa::stats_type::sum_yz), Eigen::MatrixXd>);
static_assert(std::is_same_v<decltype(float_fa::moments_type::covariance), Eigen::MatrixXd>);
static_assert(std::is_same_v<decltype(std::declval<const float_fa&>().log_likelihood_per_observation(
                                 std::declval<const Eigen::MatrixXf&>())),
                             Eigen::RowVectorXd>);
static_assert(std::is_same_v<decltype(std::declval<const float_fa&>().sample(1, std::declval<std::mt19937_64&>())),
                             Eigen::MatrixXf>);

// The moments view: exact EM on sample moments, with the model's own parameters and statistics.
using moments_view = factor_analysis::moment_model_view;
static_assert(latent::EMModel<moments_view>);
static_assert(latent::EMModel<float_fa::moment_model_view>);
static_assert(std::is_same_v<moments_view::data_type, latent::sample_moments>);
static_assert(std::is_same_v<moments_view::params_type, factor_analysis::params_type>);

// Negative: no variational family other than mean field; the moments view has no variational
// E-step (mean field needs each observation) and cannot draw random starts; engines must be
// engines; double data are not float data.
struct not_a_family {};
static_assert(!latent::VariationalEMModel<factor_analysis, not_a_family>);
static_assert(!latent::VariationalEMModel<factor_analysis, int>);
static_assert(!latent::VariationalEMModel<float_fa, not_a_family>);
static_assert(!latent::VariationalEMModel<moments_view, latent::mean_field>);
static_assert(!latent::RandomlyInitializable<moments_view>);
static_assert(!latent::RandomlyInitializable<factor_analysis, int>);
static_assert(!std::is_convertible_v<const Eigen::MatrixXd&, float_fa::data_type>);
static_assert(!std::is_same_v<float_fa::stats_type, factor_analysis::stats_type>);

}  // namespace
