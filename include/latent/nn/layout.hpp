#pragma once
/// @file
/// The architecture of a dense multilayer perceptron, chosen at run time, and the layout of its
/// parameters in ONE flat vector.
///
/// An MLP with L layers has widths n_0 (input), n_1, ..., n_L (output); layer l = 0..L-1 maps
/// n_l inputs to n_{l+1} outputs, h_{l+1} = f_l(W_l h_l + b_l), with its own activation f_l.
/// Its parameters are laid out layer after layer, each layer's weights first:
///
/// | block | offset | length |
/// |---|---|---|
/// | vec(W_l), n_{l+1} x n_l, column-major | o_l = sum_{j<l} (n_{j+1} n_j + n_{j+1}) | n_{l+1} n_l |
/// | b_l | o_l + n_{l+1} n_l | n_{l+1} |
///
/// so P = sum_l (n_{l+1} n_l + n_{l+1}). The vector may be a segment of a longer one (a model
/// with several networks puts them one after the other): every function takes a pointer to or
/// a view of the network's own segment.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/nn/activation.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace latent::nn {

/// Widths and activations of a dense MLP, and the offsets of its blocks in a flat vector (see
/// the file comment).
class mlp_layout {
 public:
  mlp_layout() = default;  ///< an empty layout (no layers); assign a real one before use

  /// @param widths       n_0, ..., n_L: at least two entries (one layer), each >= 1
  /// @param activations  f_0, ..., f_{L-1}: one per layer
  /// @throws invalid_argument naming the argument otherwise
  mlp_layout(std::vector<Eigen::Index> widths, std::vector<activation> activations)
      : widths_(std::move(widths)), activations_(std::move(activations)) {
    constexpr std::string_view fn = "nn::mlp_layout";
    require(widths_.size() >= 2, fn, "argument 'widths' must hold the input width and at least one layer's width, got ",
            widths_.size(), " entries");
    for (std::size_t l = 0; l < widths_.size(); ++l)
      require(widths_[l] >= 1, fn, "argument 'widths' must be positive, but entry ", l, " is ", widths_[l]);
    require(activations_.size() + 1 == widths_.size(), fn, "argument 'activations' must hold one activation per layer (",
            widths_.size() - 1, "), got ", activations_.size());
    for (std::size_t l = 0; l < activations_.size(); ++l)
      require(is_valid(activations_[l]), fn, "argument 'activations' holds an invalid value at entry ", l);
    offsets_.resize(widths_.size());
    offsets_[0] = 0;
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l)
      offsets_[l + 1] = offsets_[l] + widths_[l + 1] * widths_[l] + widths_[l + 1];
  }

  /// L, the number of layers (0 for a default-constructed layout).
  Eigen::Index num_layers() const { return static_cast<Eigen::Index>(activations_.size()); }
  /// n_0.
  Eigen::Index input_dim() const { return widths_.empty() ? 0 : widths_.front(); }
  /// n_L.
  Eigen::Index output_dim() const { return widths_.empty() ? 0 : widths_.back(); }
  /// n_l for l = 0..L.
  Eigen::Index width(Eigen::Index l) const { return widths_[static_cast<std::size_t>(l)]; }
  /// f_l for l = 0..L-1.
  activation activation_of(Eigen::Index l) const { return activations_[static_cast<std::size_t>(l)]; }
  /// P, the length of the flat parameter vector.
  Eigen::Index num_parameters() const { return offsets_.empty() ? 0 : offsets_.back(); }
  /// Offset of vec(W_l) in the flat vector.
  Eigen::Index weight_offset(Eigen::Index l) const { return offsets_[static_cast<std::size_t>(l)]; }
  /// Offset of b_l in the flat vector.
  Eigen::Index bias_offset(Eigen::Index l) const { return weight_offset(l) + width(l + 1) * width(l); }

  /// W_l (n_{l+1} x n_l) inside the flat vector starting at `p` (T = `const S` for a read-only
  /// view of parameters, `S` for a writable view of a gradient).
  template <class T>
  auto weights(T* p, Eigen::Index l) const {
    using matrix = matrix_t<std::remove_const_t<T>>;
    using map = Eigen::Map<std::conditional_t<std::is_const_v<T>, const matrix, matrix>>;
    return map(p + weight_offset(l), width(l + 1), width(l));
  }
  /// b_l (n_{l+1}) inside the flat vector starting at `p`.
  template <class T>
  auto bias(T* p, Eigen::Index l) const {
    using vector = vector_t<std::remove_const_t<T>>;
    using map = Eigen::Map<std::conditional_t<std::is_const_v<T>, const vector, vector>>;
    return map(p + bias_offset(l), width(l + 1));
  }

  friend bool operator==(const mlp_layout&, const mlp_layout&) = default;

 private:
  std::vector<Eigen::Index> widths_;
  std::vector<activation> activations_;
  std::vector<Eigen::Index> offsets_;  // offsets_[l] = start of layer l; offsets_[L] = P
};

}  // namespace latent::nn
