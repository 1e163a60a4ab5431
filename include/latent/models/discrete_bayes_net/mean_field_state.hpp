#pragma once
/// @file
/// The mean-field factors of every distinct record of a data set, kept between variational
/// E-steps (warm start): `bn_mean_field_state<S>`, sliceable by block.
///
/// Layout. Record j's missing variables, in ascending order, each own K_v consecutive
/// entries of `q` starting at `offset[j]` (so `offset` has one entry per distinct record plus
/// one, and depends only on the records' missing patterns and the cardinalities). `ready[j]`
/// says that record j's factors come from a previous E-step (otherwise the next E-step
/// starts them uniform).
///
/// Ownership. Today a data object keeps one state for its records
/// (`basic_discrete_bayes_net_data<S>::variational_state()`), which is what
/// `e_step(x, begin, end, stats, mean_field)` warm-starts from. The state is also a plain
/// value that a caller (a solver) can own: make one for a data set, pass
/// `state.slice(begin, end)` to `e_step(x, begin, end, stats, family, slice)` for each block.
/// Blocks write disjoint slices, so concurrent blocks never touch the same memory.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace latent {

/// Mean-field factors of the distinct records of one data set (see the file comment).
template <Scalar S>
class bn_mean_field_state {
 public:
  /// The factors of the records [begin, end) of a state: what one E-step block reads and writes.
  struct slice_type {
    Eigen::Index begin = 0, end = 0;
    const std::int64_t* offset = nullptr;  ///< offset[j - begin]: start of record j's factors (absolute)
    S* q = nullptr;                        ///< the whole state's factors (index with `offset`)
    unsigned char* ready = nullptr;        ///< ready[j - begin]

    /// Record j's factors.
    S* factors(Eigen::Index j) const { return q + offset[j - begin]; }
    /// Whether record j's factors come from a previous E-step; marks them as such from now on.
    bool take_ready(Eigen::Index j) const {
      const bool was = ready[j - begin] != 0;
      ready[j - begin] = 1;
      return was;
    }
  };

  /// An empty state (for no records).
  bn_mean_field_state() : offset_(1, 0) {}

  /// Uniform-to-be factors for each column of `records` (variables x distinct records,
  /// `latent::missing` = -1 marks a missing value) with the variables' cardinalities.
  template <class Derived>
  bn_mean_field_state(const Eigen::DenseBase<Derived>& records, const std::vector<int>& cardinalities) {
    offset_.assign(static_cast<std::size_t>(records.cols()) + 1, 0);
    for (Eigen::Index j = 0; j < records.cols(); ++j) {
      std::int64_t k = 0;
      for (Eigen::Index i = 0; i < records.rows(); ++i)
        if (records(i, j) < 0) k += cardinalities[static_cast<std::size_t>(i)];
      offset_[static_cast<std::size_t>(j) + 1] = offset_[static_cast<std::size_t>(j)] + k;
    }
    q_.assign(static_cast<std::size_t>(offset_.back()), S(0));
    ready_.assign(static_cast<std::size_t>(records.cols()), 0);
  }

  /// Number of records the state holds factors for.
  Eigen::Index num_records() const { return static_cast<Eigen::Index>(ready_.size()); }
  /// Number of factor entries (sum over records of the missing variables' K).
  std::size_t size() const { return q_.size(); }

  /// Forget all factors: the next E-step starts every record from uniform factors.
  void reset() { std::fill(ready_.begin(), ready_.end(), 0); }

  /// The factors of records [begin, end). @throws invalid_argument outside [0, num_records()]
  slice_type slice(Eigen::Index begin, Eigen::Index end) {
    detail::require(0 <= begin && begin <= end && end <= num_records(), "bn_mean_field_state::slice", "block [", begin,
                    ", ", end, ") must lie within [0, ", num_records(), ")");
    return {begin, end, offset_.data() + begin, q_.data(), ready_.data() + begin};
  }

 private:
  std::vector<std::int64_t> offset_;
  std::vector<S> q_;
  std::vector<unsigned char> ready_;
};

}  // namespace latent
