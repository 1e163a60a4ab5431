#pragma once
/// @file
/// `latent::basic_observations<Scalar>`: a read-only view of a d x N data matrix (one
/// observation per column) with optional non-negative sample weights. It binds to any Eigen
/// matrix, map or contiguous block of the same scalar type without copying, so models and
/// solvers can take it by reference. `latent::observations` is the double-precision view.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <concepts>
#include <limits>

namespace latent {

/// Columns of data, optionally weighted. Observations are the **columns** of `x()`.
///
/// A plain `Eigen::MatrixXd` converts implicitly, so `em(model, x)` works; sample weights are
/// given explicitly: `em(model, latent::observations(x, w))`. A weight scales an observation's
/// contribution to the log-likelihood and to the sufficient statistics (a weight of 2 is the
/// same as repeating the column). The view does not own the data: keep the matrix alive.
///
/// Weights have the data's scalar type; their sum (`total_weight`) is accumulated in
/// `accumulator_t<Scalar>` (at least double).
template <Scalar S>
class basic_observations {
 public:
  using scalar_type = S;
  using matrix_type = matrix_t<S>;
  using vector_type = vector_t<S>;
  using accumulator_type = accumulator_t<S>;

  /// Unit-weight observations: the columns of `x`.
  template <class Derived>
    requires std::same_as<typename Derived::Scalar, S>
  basic_observations(const Eigen::MatrixBase<Derived>& x)  // NOLINT: implicit on purpose
      : x_(x), w_(empty_weights()), weighted_(false) {}

  /// Weighted observations: column n of `x` has weight `weights(n)` (finite, >= 0), with a
  /// finite sum. (Only the weights' ratios matter to a fit's parameters: scale weights whose
  /// sum overflows down. All-zero weights are a valid view; the solvers refuse to fit them.)
  /// @throws invalid_argument if the weights are not one per column, negative or non-finite,
  ///         or if their sum (in `accumulator_t<S>`) overflows.
  template <class DerivedX, class DerivedW>
    requires std::same_as<typename DerivedX::Scalar, S> && std::same_as<typename DerivedW::Scalar, S>
  basic_observations(const Eigen::MatrixBase<DerivedX>& x, const Eigen::MatrixBase<DerivedW>& weights)
      : x_(x), w_(weights), weighted_(true) {
    detail::require(w_.size() == x_.cols(), "observations", "argument 'weights' must have one ",
                    "entry per column of 'x' (", x_.cols(), "), got ", w_.size());
    for (Eigen::Index n = 0; n < w_.size(); ++n)
      detail::require(std::isfinite(w_(n)) && w_(n) >= S(0), "observations",
                      "argument 'weights' must be finite and non-negative, but entry ", n,
                      " is ", w_(n));
    const accumulator_type total = total_weight();
    detail::require(std::isfinite(total), "observations",
                    "argument 'weights' must have a finite sum, got ", total,
                    " (only the weights' ratios matter to a fit: scale them down)");
  }

  /// The d x N data matrix.
  const Eigen::Ref<const matrix_type>& x() const { return x_; }
  /// Dimension d (rows).
  Eigen::Index dim() const { return x_.rows(); }
  /// Number of observations N (columns).
  Eigen::Index size() const { return x_.cols(); }
  /// True if sample weights were given.
  bool weighted() const { return weighted_; }
  /// The weights (empty if unweighted).
  const Eigen::Ref<const vector_type>& weights() const { return w_; }
  /// Weight of observation n (1 if unweighted).
  S weight(Eigen::Index n) const { return weighted_ ? w_(n) : S(1); }
  /// Sum of the weights (N if unweighted), accumulated in `accumulator_t<S>`.
  accumulator_type total_weight() const {
    return weighted_ ? w_.template cast<accumulator_type>().sum() : static_cast<accumulator_type>(x_.cols());
  }

 private:
  static const vector_type& empty_weights() {
    static const vector_type empty;
    return empty;
  }
  Eigen::Ref<const matrix_type> x_;
  Eigen::Ref<const vector_type> w_;
  bool weighted_;
};

/// Double-precision observations (the common case).
using observations = basic_observations<double>;

namespace detail {

/// Each row's minimum and maximum of the d x N data `x`, in `lo` and `hi`, from one sequential
/// pass in chunks of columns that stay in cache; false if some entry is not finite (then `lo`
/// and `hi` are unspecified). A whole-matrix row-wise reduction would walk a column-major
/// matrix row by row, which on a memory-mapped file larger than memory reads the file once per
/// row.
template <Scalar S>
bool finite_row_ranges(const Eigen::Ref<const matrix_t<S>>& x, vector_t<S>& lo, vector_t<S>& hi) {
  constexpr Eigen::Index chunk = 4096;
  lo = vector_t<S>::Constant(x.rows(), std::numeric_limits<S>::infinity());
  hi = vector_t<S>::Constant(x.rows(), -std::numeric_limits<S>::infinity());
  for (Eigen::Index j0 = 0; j0 < x.cols(); j0 += chunk) {
    const auto c = x.middleCols(j0, std::min(chunk, x.cols() - j0));
    if (!c.allFinite()) return false;
    lo = lo.cwiseMin(c.rowwise().minCoeff());
    hi = hi.cwiseMax(c.rowwise().maxCoeff());
  }
  return true;
}

}  // namespace detail
}  // namespace latent
