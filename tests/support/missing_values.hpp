#pragma once
// Helpers of the missing-value tests: an MCAR mask and the log-density of a Gaussian's observed
// coordinates computed directly, observation by observation (independent of the models' code).

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

namespace latent_test {

/// Sets each entry of x to NaN with probability p, independently (missing completely at random),
/// except coordinate n mod d of column n, which stays observed (no column is entirely missing).
inline void mask_completely_at_random(Eigen::MatrixXd& x, double p, std::mt19937_64& rng) {
  std::bernoulli_distribution missing(p);
  for (Eigen::Index n = 0; n < x.cols(); ++n)
    for (Eigen::Index j = 0; j < x.rows(); ++j)
      if (missing(rng) && j != n % x.rows()) x(j, n) = std::numeric_limits<double>::quiet_NaN();
}

/// log N(x_o | mean_o, cov_oo) over the coordinates o where x is not NaN, by a Cholesky factor of
/// the observed block.
inline double log_marginal_density(const Eigen::VectorXd& x, const Eigen::VectorXd& mean, const Eigen::MatrixXd& cov) {
  std::vector<Eigen::Index> o;
  for (Eigen::Index j = 0; j < x.size(); ++j)
    if (!std::isnan(x(j))) o.push_back(j);
  const Eigen::LLT<Eigen::MatrixXd> llt(cov(o, o));
  const Eigen::VectorXd y = llt.matrixL().solve(Eigen::VectorXd(x(o) - mean(o)));
  return -0.5 * static_cast<double>(o.size()) * std::log(2.0 * std::numbers::pi) -
         Eigen::VectorXd(llt.matrixLLT().diagonal()).array().log().sum() - 0.5 * y.squaredNorm();
}

}  // namespace latent_test
