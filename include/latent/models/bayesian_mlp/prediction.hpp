#pragma once
/// @file
/// What a Bayesian MLP predicts for new inputs (see `basic_bayesian_mlp::predict` and
/// `predict_classes`), on the original scale of the targets, and predictive intervals.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cmath>
#include <string_view>

namespace latent {

/// The posterior predictive of a regression network at n inputs, from T weight draws w_t ~ q:
/// mean = (1/T) sum_t mu(x; w_t); the predictive variance splits by the law of total variance
/// into epistemic = Var_t[mu(x; w_t)] (what more data would remove) and aleatoric =
/// (1/T) sum_t sigma^2(x; w_t) (the noise; learned constant or network-predicted).
template <Scalar S>
struct basic_bnn_regression_prediction {
  matrix_t<S> mean;                ///< m x n predictive means
  matrix_t<S> epistemic_variance;  ///< m x n
  matrix_t<S> aleatoric_variance;  ///< m x n
  /// The total predictive variance, epistemic + aleatoric.
  matrix_t<S> variance() const { return epistemic_variance + aleatoric_variance; }
};
using bnn_regression_prediction = basic_bnn_regression_prediction<double>;

/// The posterior predictive of a classification network at n inputs, from T weight draws:
/// probabilities p = (1/T) sum_t softmax(g(x; w_t)), their entropy H[p] (total uncertainty),
/// and the mean entropy of the draws' own probabilities (1/T) sum_t H[p_t] (aleatoric); their
/// difference, the mutual information between the label and the weights, is the epistemic part.
template <Scalar S>
struct basic_bnn_class_prediction {
  matrix_t<S> probabilities;                           ///< K x n, columns sum to 1
  Eigen::Array<S, 1, Eigen::Dynamic> entropy;          ///< H[p], nats
  Eigen::Array<S, 1, Eigen::Dynamic> expected_entropy; ///< (1/T) sum_t H[p_t], nats
  /// The most probable class of each column.
  Eigen::Array<Eigen::Index, 1, Eigen::Dynamic> classes() const {
    Eigen::Array<Eigen::Index, 1, Eigen::Dynamic> c(probabilities.cols());
    for (Eigen::Index j = 0; j < probabilities.cols(); ++j) probabilities.col(j).maxCoeff(&c(j));
    return c;
  }
};
using bnn_class_prediction = basic_bnn_class_prediction<double>;

/// Lower and upper ends of central predictive intervals.
template <Scalar S>
struct basic_bnn_interval {
  matrix_t<S> lower, upper;
};

/// The standard normal quantile z_p (Phi(z_p) = p) for p in (0, 1), by Newton's method on
/// Phi(z) = erfc(-z / sqrt 2) / 2 from z = 0 (to double rounding).
/// @throws invalid_argument for p outside (0, 1)
inline double standard_normal_quantile(double p) {
  require(p > 0.0 && p < 1.0, "standard_normal_quantile", "argument 'p' must be in (0, 1), got ", p);
  // Work in the lower tail (q <= 1/2) for accuracy, then reflect.
  const double q = p < 0.5 ? p : 1.0 - p;
  double z = -std::sqrt(-2.0 * std::log(q)) * 0.8;  // a start below the root; Newton ascends monotonically
  if (q > 0.3) z = 0.0;
  for (int i = 0; i < 100; ++i) {
    const double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * z * z) / std::sqrt(2.0 * 3.14159265358979323846);
    const double step = (cdf - q) / pdf;
    z -= step;
    if (std::abs(step) <= 1e-15 * (1.0 + std::abs(z))) break;
  }
  return p < 0.5 ? z : -z;
}

/// The central `level` interval mean -/+ z sqrt(variance), z = Phi^-1((1 + level) / 2): the
/// Gaussian approximation of the predictive (exact when the network is linear in Gaussian
/// weights and the noise is Gaussian and known; otherwise the predictive is a mixture over
/// weight draws and the interval matches its first two moments).
/// @throws invalid_argument for a level outside (0, 1)
template <Scalar S>
basic_bnn_interval<S> predictive_interval(const basic_bnn_regression_prediction<S>& p, double level) {
  require(level > 0.0 && level < 1.0, "predictive_interval", "argument 'level' must be in (0, 1), got ", level);
  const S z = static_cast<S>(standard_normal_quantile(0.5 * (1.0 + level)));
  const matrix_t<S> half = z * p.variance().array().sqrt().matrix();
  return {p.mean - half, p.mean + half};
}

}  // namespace latent
