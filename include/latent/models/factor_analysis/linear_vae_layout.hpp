#pragma once
/// @file
/// The linear VAE's flat parameter layout (length P = 2 d k + 2 d + 2 k; matrices
/// column-major), as read-only and writable views of a flat vector. See models/linear_vae.hpp.
///
/// | offset | length | block |
/// |---|---|---|
/// | 0 | d k | vec(Lambda), d x k loadings |
/// | d k | d | mu |
/// | d k + d | d | log psi (log uniquenesses) |
/// | d k + 2 d | k d | vec(W), k x d encoder weights |
/// | 2 d k + 2 d | k | b, encoder bias |
/// | 2 d k + 2 d + k | k | log s, encoder log standard deviations |

#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <type_traits>

namespace latent {

/// The linear VAE's parameters as matrices, in scalar type S.
template <Scalar S>
struct basic_linear_vae_params {
  using scalar_type = S;
  matrix_t<S> loadings;            ///< Lambda, d x k
  vector_t<S> mean;                ///< mu, d
  vector_t<S> log_uniquenesses;    ///< log psi, d
  matrix_t<S> encoder_weights;     ///< W, k x d
  vector_t<S> encoder_bias;        ///< b, k
  vector_t<S> encoder_log_scales;  ///< log s, k
};
/// Double-precision linear-VAE parameters.
using linear_vae_params = basic_linear_vae_params<double>;

namespace detail {

/// Views of the blocks of a flat linear-VAE parameter vector of scalar type `T` (`const S`
/// for a read-only view of parameters, `S` for a writable view of a gradient).
template <class T>
struct linear_vae_view {
  using S = std::remove_const_t<T>;
  using mat = Eigen::Map<std::conditional_t<std::is_const_v<T>, const matrix_t<S>, matrix_t<S>>>;
  using vec = Eigen::Map<std::conditional_t<std::is_const_v<T>, const vector_t<S>, vector_t<S>>>;
  mat L;
  vec mu, log_psi;
  mat W;
  vec b, log_s;
  linear_vae_view(T* v, Eigen::Index d, Eigen::Index k)
      : L(v, d, k), mu(v + d * k, d), log_psi(v + d * k + d, d), W(v + d * k + 2 * d, k, d),
        b(v + 2 * d * k + 2 * d, k), log_s(v + 2 * d * k + 2 * d + k, k) {}
};

}  // namespace detail
}  // namespace latent
