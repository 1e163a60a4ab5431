#pragma once
/// @file
/// `latent::observations`: a read-only view of a d x N data matrix (one observation per
/// column) with optional non-negative sample weights. It binds to any Eigen matrix, map or
/// contiguous block without copying, so models and solvers can take it by reference.

#include <latent/core/error.hpp>

#include <Eigen/Core>

namespace latent {

/// Columns of data, optionally weighted. Observations are the **columns** of `x()`.
///
/// A plain `Eigen::MatrixXd` converts implicitly, so `em(model, x)` works; sample weights are
/// given explicitly: `em(model, latent::observations(x, w))`. A weight scales an observation's
/// contribution to the log-likelihood and to the sufficient statistics (a weight of 2 is the
/// same as repeating the column). The view does not own the data: keep the matrix alive.
class observations {
 public:
  /// Unit-weight observations: the columns of `x`.
  template <class Derived>
  observations(const Eigen::MatrixBase<Derived>& x)  // NOLINT: implicit on purpose
      : x_(x), w_(empty_weights()), weighted_(false) {}

  /// Weighted observations: column n of `x` has weight `weights(n)` (finite, >= 0).
  /// @throws invalid_argument if the weights are not one per column, negative or non-finite.
  template <class DerivedX, class DerivedW>
  observations(const Eigen::MatrixBase<DerivedX>& x, const Eigen::MatrixBase<DerivedW>& weights)
      : x_(x), w_(weights), weighted_(true) {
    detail::require(w_.size() == x_.cols(), "observations", "argument 'weights' must have one ",
                    "entry per column of 'x' (", x_.cols(), "), got ", w_.size());
    for (Eigen::Index n = 0; n < w_.size(); ++n)
      detail::require(std::isfinite(w_(n)) && w_(n) >= 0.0, "observations",
                      "argument 'weights' must be finite and non-negative, but entry ", n,
                      " is ", w_(n));
  }

  /// The d x N data matrix.
  const Eigen::Ref<const Eigen::MatrixXd>& x() const { return x_; }
  /// Dimension d (rows).
  Eigen::Index dim() const { return x_.rows(); }
  /// Number of observations N (columns).
  Eigen::Index size() const { return x_.cols(); }
  /// True if sample weights were given.
  bool weighted() const { return weighted_; }
  /// The weights (empty if unweighted).
  const Eigen::Ref<const Eigen::VectorXd>& weights() const { return w_; }
  /// Weight of observation n (1 if unweighted).
  double weight(Eigen::Index n) const { return weighted_ ? w_(n) : 1.0; }
  /// Sum of the weights (N if unweighted).
  double total_weight() const { return weighted_ ? w_.sum() : static_cast<double>(x_.cols()); }

 private:
  static const Eigen::VectorXd& empty_weights() {
    static const Eigen::VectorXd empty;
    return empty;
  }
  Eigen::Ref<const Eigen::MatrixXd> x_;
  Eigen::Ref<const Eigen::VectorXd> w_;
  bool weighted_;
};

}  // namespace latent
