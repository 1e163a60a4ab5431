#pragma once
/// @file
/// Factor analysis fitted from sample moments: an `EMModel` view of a `basic_factor_analysis`
/// whose data are `basic_sample_moments` (a covariance matrix and a count), at O(d^2 k) per
/// iteration. Obtained from `model.moment_model()`.

#include <latent/core/scalar.hpp>
#include <latent/models/factor_analysis/params.hpp>
#include <latent/models/factor_analysis/sample_moments.hpp>
#include <latent/models/factor_analysis/stats.hpp>

#include <Eigen/Core>

namespace latent {

template <Scalar S>
class basic_factor_analysis;

/// The moments view of a factor analysis model: its data are `basic_sample_moments<S>`, its
/// parameters and statistics the model's. The view refers to the model, which must outlive
/// it. The moments form a single block (one "observation").
template <Scalar S>
class basic_factor_analysis_moment_view {
 public:
  using scalar_type = S;
  using data_type = basic_sample_moments<S>;
  using params_type = basic_factor_analysis_params<S>;
  using stats_type = basic_factor_analysis_stats<S>;

  explicit basic_factor_analysis_moment_view(basic_factor_analysis<S>& model) : m_(&model) {}
  const params_type& params() const { return m_->params(); }
  void set_params(const params_type& p) { m_->set_params(p); }
  Eigen::Index num_observations(const data_type&) const { return 1; }
  double observation_weight(const data_type& m) const { return static_cast<double>(m.count); }
  stats_type zero_stats() const { return m_->zero_stats(); }
  double e_step(const data_type& m, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    return end > begin ? m_->e_step(m, s) : 0.0;
  }
  void m_step(const stats_type& s) { m_->m_step(s); }
  basic_factor_analysis<S>& model() const { return *m_; }

 private:
  basic_factor_analysis<S>* m_;
};

}  // namespace latent
