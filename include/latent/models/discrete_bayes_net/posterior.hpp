#pragma once
/// @file
/// The joint posterior of one record's missing values, as returned by
/// `basic_discrete_bayes_net<S>::posterior`.

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <vector>

namespace latent {

/// Posterior of one record's missing values; probabilities in the network's scalar S, the
/// log-likelihood in double.
template <Scalar S>
struct basic_bn_posterior {
  std::vector<int> missing;                ///< indices of the missing variables, ascending
  Eigen::MatrixXi completions;             ///< variables x J: the record completed each way
  vector_t<S> weights;                     ///< p(completion | observed values), sums to 1
  std::vector<vector_t<S>> marginals;      ///< p(X_m | observed) for each missing m, same order
  double log_likelihood = 0.0;             ///< log p(observed values)
};

/// Posterior of a double-precision network.
using bn_posterior = basic_bn_posterior<double>;

}  // namespace latent
