#pragma once
/// @file
/// Forward and backward passes of a dense MLP over a minibatch, as block matrix products.
///
/// The minibatch is a matrix with one observation per COLUMN (n_0 x B), so each layer is one
/// matrix product over the whole batch,
///
///   A_{l+1} = W_l H_l + b_l 1^T,      H_{l+1} = f_l(A_{l+1}),      H_0 = X,
///
/// and the backward pass, given G = dJ/dH_L for a scalar J, runs
///
///   D_l = dJ/dA_{l+1} = (dJ/dH_{l+1}) (.) f_l'(A_{l+1}),
///   dJ/dW_l = D_l H_l^T,      dJ/db_l = D_l 1,      dJ/dH_l = W_l^T D_l,
///
/// with f' computed from H_{l+1} (see activation.hpp). The last product, dJ/dX = W_0^T D_0,
/// is skipped unless the caller asks for it (a network's data input needs no gradient).
///
/// The network itself (`basic_mlp<S>`) holds only its architecture and is immutable; the
/// parameters are a view of a flat vector (layout.hpp), and everything the forward pass
/// caches for the backward pass lives in a `basic_mlp_workspace<S>` that the CALLER owns. One
/// network can therefore be used from several threads at once, one workspace per thread. A
/// workspace is sized on first use and reused: passes over batches of the same size do not
/// allocate.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/nn/activation.hpp>
#include <latent/nn/layout.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace latent::nn {

/// Whether a backward pass overwrites the gradient's blocks or adds into them (e.g. to sum
/// the gradients of two uses of one network, or of several networks sharing a flat vector), or
/// computes no parameter gradient at all (`none`: only the input's, e.g. dlog p(x | z)/dz).
enum class gradient_mode { overwrite, accumulate, none };

/// What a forward pass keeps for the backward pass: the output H_{l+1} of every layer (the
/// last one is the network's output), and scratch space for the backward pass.
template <Scalar S>
struct basic_mlp_workspace {
  std::vector<matrix_t<S>> outputs;  ///< H_1, ..., H_L (n_{l+1} x B)
  std::vector<matrix_t<S>> deltas;   ///< scratch: dJ/dH_1, ..., dJ/dH_{L-1}
};

/// A dense MLP of scalar type S (float or double) with a run-time architecture.
template <Scalar S>
class basic_mlp {
 public:
  using scalar_type = S;
  using workspace = basic_mlp_workspace<S>;

  basic_mlp() = default;  ///< a network without layers; assign a real one before use
  explicit basic_mlp(mlp_layout layout) : layout_(std::move(layout)) {}
  /// Shorthand for `basic_mlp(mlp_layout(widths, activations))`.
  basic_mlp(std::vector<Eigen::Index> widths, std::vector<activation> activations)
      : layout_(std::move(widths), std::move(activations)) {}

  const mlp_layout& layout() const { return layout_; }
  Eigen::Index num_parameters() const { return layout_.num_parameters(); }
  Eigen::Index input_dim() const { return layout_.input_dim(); }
  Eigen::Index output_dim() const { return layout_.output_dim(); }

  /// Run the network on the n_0 x B input `x` with the parameters `params` (length P, the
  /// layout of layout.hpp), caching every layer's output in `ws`.
  /// @return the network's output H_L (n_L x B), a reference into `ws`
  /// @throws invalid_argument for a `params` of the wrong length or an `x` with the wrong
  ///         number of rows
  const matrix_t<S>& forward(const Eigen::Ref<const vector_t<S>>& params, const Eigen::Ref<const matrix_t<S>>& x,
                             workspace& ws) const {
    constexpr std::string_view fn = "nn::mlp::forward";
    check_params(params.size(), fn);
    require(x.rows() == input_dim(), fn, "argument 'x' must have ", input_dim(), " rows, got ", x.rows());
    const Eigen::Index layers = layout_.num_layers(), b = x.cols();
    ws.outputs.resize(static_cast<std::size_t>(layers));
    for (Eigen::Index l = 0; l < layers; ++l) {
      matrix_t<S>& h = ws.outputs[static_cast<std::size_t>(l)];
      h.resize(layout_.width(l + 1), b);
      if (l == 0)
        h.noalias() = layout_.weights(params.data(), l) * x;
      else
        h.noalias() = layout_.weights(params.data(), l) * ws.outputs[static_cast<std::size_t>(l - 1)];
      h.colwise() += layout_.bias(params.data(), l);
      activate(layout_.activation_of(l), h);
    }
    return ws.outputs.back();
  }

  /// The backward pass of the last `forward(params, x, ws)` call (the same `params` and `x`,
  /// and `ws` untouched since).
  ///
  /// @param d_output  dJ/dH_L (n_L x B); overwritten (used as scratch)
  /// @param grad      a view of the network's P gradient entries: dJ/dparams is written into it
  ///                  (`overwrite`) or added to it (`accumulate`); not used (may be empty) with
  ///                  `none`
  /// @param d_input   if not null, resized to n_0 x B and set to dJ/dX; null skips that product
  /// @throws invalid_argument for arguments of the wrong shape
  void backward(const Eigen::Ref<const vector_t<S>>& params, const Eigen::Ref<const matrix_t<S>>& x, workspace& ws,
                Eigen::Ref<matrix_t<S>> d_output, Eigen::Ref<vector_t<S>> grad,
                gradient_mode mode = gradient_mode::overwrite, matrix_t<S>* d_input = nullptr) const {
    constexpr std::string_view fn = "nn::mlp::backward";
    check_params(params.size(), fn);
    const Eigen::Index layers = layout_.num_layers(), b = x.cols();
    require(ws.outputs.size() == static_cast<std::size_t>(layers) && x.rows() == input_dim() &&
                ws.outputs.back().cols() == b,
            fn, "argument 'ws' does not hold a forward pass of this network on an input of the shape of 'x'");
    require_shape(d_output, output_dim(), b, fn, "d_output");
    const bool want_params = mode != gradient_mode::none;
    require(!want_params || grad.size() == num_parameters(), fn, "argument 'grad' must have ", num_parameters(), " entries, got ",
            grad.size());
    ws.deltas.resize(static_cast<std::size_t>(layers));
    for (Eigen::Index l = layers - 1; l >= 0; --l) {
      const std::size_t ul = static_cast<std::size_t>(l);
      Eigen::Ref<matrix_t<S>> delta = l == layers - 1 ? d_output : Eigen::Ref<matrix_t<S>>(ws.deltas[ul]);
      multiply_derivative(layout_.activation_of(l), delta, ws.outputs[ul]);
      const auto w = layout_.weights(params.data(), l);
      if (want_params) {
        auto gw = layout_.weights(grad.data(), l);
        auto gb = layout_.bias(grad.data(), l);
        if (l == 0)
          accumulate_weight_gradient(gw, delta, x, mode);
        else
          accumulate_weight_gradient(gw, delta, ws.outputs[ul - 1], mode);
        if (mode == gradient_mode::overwrite)
          gb.noalias() = delta.rowwise().sum();
        else
          gb.noalias() += delta.rowwise().sum();
      }
      if (l > 0) {
        matrix_t<S>& previous = ws.deltas[ul - 1];
        previous.resize(layout_.width(l), b);
        previous.noalias() = w.transpose() * delta;
      } else if (d_input != nullptr) {
        d_input->resize(input_dim(), b);
        d_input->noalias() = w.transpose() * delta;
      }
    }
  }

 private:
  template <class GW, class Input>
  static void accumulate_weight_gradient(GW& gw, const Eigen::Ref<matrix_t<S>>& delta, const Input& in,
                                         gradient_mode mode) {
    if (mode == gradient_mode::overwrite)
      gw.noalias() = delta * in.transpose();
    else
      gw.noalias() += delta * in.transpose();
  }

  void check_params(Eigen::Index size, std::string_view fn) const {
    require(size == num_parameters(), fn, "argument 'params' must have ", num_parameters(), " entries, got ", size);
  }

  mlp_layout layout_;
};

}  // namespace latent::nn
