#pragma once
/// @file
/// The scalar types latent computes in, the Eigen types built on them, and the precision in
/// which sums over many observations are accumulated.
///
/// Every model, objective and optimizer is a class template on its scalar type, in the style
/// of `std::basic_string`: `basic_gaussian_mixture<float>` computes its densities, its
/// responsibilities and its parameters in float, and `gaussian_mixture` is
/// `basic_gaussian_mixture<double>`. Nothing is instantiated until a user's code names a type,
/// so including the library costs little more than including Eigen.
///
/// **Accumulation precision.** A float E-step over 10^6 observations summed in float loses
/// about six digits of the log-likelihood and of the statistics, enough to stall EM or to make
/// its monotonicity check fire on rounding. latent therefore separates two precisions:
///  - the *compute* scalar `Scalar` (float or double): data, parameters, per-observation
///    densities and the arithmetic of a block's kernels;
///  - the *accumulation* scalar `accumulator_t<Scalar>` (double for both float and double,
///    long double for long double): log-likelihoods and ELBOs returned by E-steps and solvers,
///    and the sufficient statistics, which sum many blocks. A model may sum within a block of
///    at most a few thousand observations in `Scalar` (relative error ~ block size x epsilon)
///    and must add each block into its statistics in `accumulator_t<Scalar>`.
/// Objectives, traces and `fit_result::objective` are therefore always at least double.

#include <Eigen/Core>

#include <concepts>
#include <type_traits>

namespace latent {

/// A scalar type latent computes in: float, double or long double.
template <class T>
concept Scalar = std::floating_point<T>;

/// The precision in which sums over observations are accumulated (see the file comment):
/// at least double.
template <Scalar S>
using accumulator_t = std::conditional_t<(sizeof(S) < sizeof(double)), double, S>;

/// Column vector, row vector, matrix and array of a scalar type (dynamic sizes).
template <Scalar S>
using vector_t = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <Scalar S>
using row_vector_t = Eigen::Matrix<S, 1, Eigen::Dynamic>;
template <Scalar S>
using matrix_t = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
template <Scalar S>
using array_t = Eigen::Array<S, Eigen::Dynamic, 1>;

/// The scalar type a model, objective or optimizer computes in: `T::scalar_type`, or double
/// for a type that names none (first-edition and user types).
template <class T>
struct scalar_of {
  using type = double;
};
template <class T>
  requires requires { typename T::scalar_type; }
struct scalar_of<T> {
  using type = typename T::scalar_type;
};
template <class T>
using scalar_of_t = typename scalar_of<T>::type;

}  // namespace latent
