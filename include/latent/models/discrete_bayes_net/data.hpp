#pragma once
/// @file
/// Records of a discrete Bayesian network with missing values, grouped into distinct records:
/// `basic_discrete_bayes_net_data<S>` (the data type of `basic_discrete_bayes_net<S>`;
/// `discrete_bayes_net_data` is the double one).
///
/// Raw data is an integer matrix, **variables x records** (one record per column, row i is
/// variable i of the network), whose entries are states 0, ..., K_i - 1 or `latent::missing`.
/// `basic_discrete_bayes_net_data` validates it and groups identical columns (same observed
/// pattern, same observed values) into one distinct record with a count, so an E-step costs
/// in proportion to the number of distinct records. The EM solvers block over distinct
/// records; `observation_weight` is the total count.
///
/// Precision. Records are integers whatever S is; weights are given and counts kept in
/// `accumulator_t<S>` (double for float and double: a count sums many record weights). S is
/// the scalar of the network the data is made for, and of the mean-field factors the object
/// keeps for warm starts.
///
/// Also here: `apply_missing_at_random`, which hides cells of complete data for simulations.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/discrete_bayes_net/mean_field_state.hpp>
#include <latent/models/discrete_bayes_net/options.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace latent {

/// Options of `basic_discrete_bayes_net_data`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `group` | merge identical records into one distinct record with a count; `false` keeps every record (in input order) with its own weight | true |
struct bn_data_options {
  bool group = true;
};

/// Validated, grouped records of a discrete Bayesian network (see the file comment).
///
/// Distinct records are the columns of `records()` (variables x distinct), with counts
/// (sums of record weights) in `counts()`. With grouping they are sorted by their values,
/// so the order is deterministic and independent of the input order of identical records.
///
/// The object also keeps the mean-field factors of its records between variational
/// E-steps (warm start; see `latent::mean_field`). Use one object in one variational fit
/// at a time, or call `reset_variational_state()` to start a fit from scratch. Copies start
/// with no variational state.
template <Scalar S>
class basic_discrete_bayes_net_data {
 public:
  /// The network scalar this data is made for (type of the kept mean-field factors).
  using scalar_type = S;
  /// Type of weights, counts and the total weight.
  using weight_type = accumulator_t<S>;

  /// Unit-weight records.
  /// @param x              variables x records; entries in [0, K_i) or `latent::missing`
  /// @param names          variable names (for messages), one per row of `x`
  /// @param cardinalities  K_i, one per row of `x`
  /// @throws invalid_argument naming the variable and record of a state out of range, or for
  ///         a wrong number of rows or no records at all
  basic_discrete_bayes_net_data(const Eigen::Ref<const Eigen::MatrixXi>& x, std::vector<std::string> names,
                                std::vector<int> cardinalities, const bn_data_options& options = {})
      : basic_discrete_bayes_net_data(x, vector_t<weight_type>::Ones(x.cols()), std::move(names),
                                      std::move(cardinalities), options) {}

  /// Weighted records: record n counts `weights(n)` times (finite, >= 0, with a finite and
  /// positive sum: all-zero weights are rejected, as are zero records).
  basic_discrete_bayes_net_data(const Eigen::Ref<const Eigen::MatrixXi>& x,
                                const Eigen::Ref<const vector_t<weight_type>>& weights,
                                std::vector<std::string> names, std::vector<int> cardinalities,
                                const bn_data_options& options = {})
      : names_(std::move(names)), cards_(std::move(cardinalities)),
        cache_(std::make_unique<cache>()) {
    constexpr const char* fn = "discrete_bayes_net_data";
    const auto n = static_cast<Eigen::Index>(cards_.size());
    detail::require(static_cast<Eigen::Index>(names_.size()) == n, fn,
                    "argument 'names' must have one name per cardinality (", n, "), got ", names_.size());
    detail::require(x.rows() == n, fn, "argument 'x' must have one row per variable (", n,
                    "), got ", x.rows());
    detail::require(weights.size() == x.cols(), fn, "argument 'weights' must have one entry per record (",
                    x.cols(), "), got ", weights.size());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      detail::require(std::isfinite(weights(j)) && weights(j) >= 0, fn,
                      "argument 'weights' must be finite and non-negative, but entry ", j, " is ", weights(j));
      for (Eigen::Index i = 0; i < n; ++i) {
        const int s = x(i, j);
        if (s != missing && (s < 0 || s >= cards_[static_cast<std::size_t>(i)]))
          detail::throw_invalid(fn, "argument 'x': the state of variable '", names_[static_cast<std::size_t>(i)],
                                "' in record ", j, " must be in [0, ", cards_[static_cast<std::size_t>(i)],
                                ") or latent::missing (", missing, "), got ", s);
      }
    }
    num_records_ = x.cols();
    total_weight_ = weights.sum();
    detail::require(std::isfinite(total_weight_), fn, "argument 'weights' must have a finite sum, got ", total_weight_);
    // Data that carry no information would "fit" with objective 0 and any tables.
    detail::require(num_records_ > 0, fn, "argument 'x' must have at least one record (column), got 0");
    detail::require(total_weight_ > 0, fn, "argument 'weights' must not all be zero (total weight 0: nothing to fit)");
    if (options.group)
      group(x, weights);
    else {
      records_ = x;
      counts_ = weights;
    }
  }

  basic_discrete_bayes_net_data(const basic_discrete_bayes_net_data& o)
      : names_(o.names_), cards_(o.cards_), records_(o.records_), counts_(o.counts_),
        num_records_(o.num_records_), total_weight_(o.total_weight_),
        cache_(std::make_unique<cache>()) {}
  basic_discrete_bayes_net_data& operator=(const basic_discrete_bayes_net_data& o) {
    if (this != &o) *this = basic_discrete_bayes_net_data(o);
    return *this;
  }
  basic_discrete_bayes_net_data(basic_discrete_bayes_net_data&&) noexcept = default;
  basic_discrete_bayes_net_data& operator=(basic_discrete_bayes_net_data&&) noexcept = default;
  ~basic_discrete_bayes_net_data() = default;

  /// Distinct records, variables x distinct (one per column).
  const Eigen::MatrixXi& records() const { return records_; }
  /// Count (total weight) of each distinct record.
  const vector_t<weight_type>& counts() const { return counts_; }
  /// Number of variables (rows).
  Eigen::Index num_variables() const { return static_cast<Eigen::Index>(cards_.size()); }
  /// Number of distinct records (columns of `records()`): what E-step blocks partition.
  Eigen::Index num_distinct() const { return records_.cols(); }
  /// Number of records given (columns of the input).
  Eigen::Index num_records() const { return num_records_; }
  /// Sum of the record weights (number of records for unit weights).
  weight_type total_weight() const { return total_weight_; }
  /// Number of missing cells over all records (weighted by counts).
  weight_type missing_weight() const {
    weight_type m = 0;
    for (Eigen::Index j = 0; j < records_.cols(); ++j)
      m += counts_(j) * static_cast<weight_type>((records_.col(j).array() == missing).count());
    return m;
  }
  /// Cardinalities K_i, one per variable.
  const std::vector<int>& cardinalities() const { return cards_; }
  /// Variable names, one per row.
  const std::vector<std::string>& names() const { return names_; }

  /// Forget the mean-field factors kept from previous variational E-steps, so the next one
  /// starts from uniform factors. Not thread-safe with a running fit on this object.
  void reset_variational_state() {
    if (cache_) cache_->state.reset();
  }

  /// The warm-start factors of the records (allocated on first call; thread-safe). For
  /// models, not users: each E-step block writes only its own records' slice.
  bn_mean_field_state<S>& variational_state() const {
    std::call_once(cache_->once, [this] { cache_->state = bn_mean_field_state<S>(records_, cards_); });
    return cache_->state;
  }

 private:
  // Sort records by a packed key (state + 1 in bit_width(K_i + 1) bits per variable, in as
  // many 64-bit words as needed) and merge equal keys. Equal keys are equal records.
  void group(const Eigen::Ref<const Eigen::MatrixXi>& x, const Eigen::Ref<const vector_t<weight_type>>& weights) {
    const Eigen::Index n = x.rows(), N = x.cols();
    std::vector<int> word(static_cast<std::size_t>(n)), shift(static_cast<std::size_t>(n));
    int words = 1, used = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      const int bits = static_cast<int>(std::bit_width(static_cast<unsigned>(cards_[static_cast<std::size_t>(i)])));
      if (used + bits > 64) {
        ++words;
        used = 0;
      }
      word[static_cast<std::size_t>(i)] = words - 1;
      shift[static_cast<std::size_t>(i)] = used;
      used += bits;
    }
    const auto W = static_cast<std::size_t>(words);
    std::vector<std::uint64_t> key(static_cast<std::size_t>(N) * W, 0);
    for (Eigen::Index j = 0; j < N; ++j)
      for (Eigen::Index i = 0; i < n; ++i)
        key[static_cast<std::size_t>(j) * W + static_cast<std::size_t>(word[static_cast<std::size_t>(i)])] |=
            static_cast<std::uint64_t>(x(i, j) + 1) << shift[static_cast<std::size_t>(i)];

    std::vector<Eigen::Index> order(static_cast<std::size_t>(N));
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    const auto less = [&](Eigen::Index a, Eigen::Index b) {
      for (std::size_t w = W; w-- > 0;) {
        const auto ka = key[static_cast<std::size_t>(a) * W + w], kb = key[static_cast<std::size_t>(b) * W + w];
        if (ka != kb) return ka < kb;
      }
      return a < b;
    };
    if (W == 1) {
      std::vector<std::pair<std::uint64_t, Eigen::Index>> kv(static_cast<std::size_t>(N));
      for (Eigen::Index j = 0; j < N; ++j) kv[static_cast<std::size_t>(j)] = {key[static_cast<std::size_t>(j)], j};
      std::sort(kv.begin(), kv.end());
      for (Eigen::Index j = 0; j < N; ++j) order[static_cast<std::size_t>(j)] = kv[static_cast<std::size_t>(j)].second;
    } else {
      std::sort(order.begin(), order.end(), less);
    }
    const auto same = [&](Eigen::Index a, Eigen::Index b) {
      for (std::size_t w = 0; w < W; ++w)
        if (key[static_cast<std::size_t>(a) * W + w] != key[static_cast<std::size_t>(b) * W + w]) return false;
      return true;
    };
    std::vector<Eigen::Index> first;
    std::vector<weight_type> count;
    for (std::size_t t = 0; t < order.size(); ++t) {
      const Eigen::Index j = order[t];
      if (first.empty() || !same(first.back(), j)) {
        first.push_back(j);
        count.push_back(weight_type(0));
      }
      count.back() += weights(j);
    }
    records_.resize(n, static_cast<Eigen::Index>(first.size()));
    counts_.resize(static_cast<Eigen::Index>(first.size()));
    for (std::size_t d = 0; d < first.size(); ++d) {
      records_.col(static_cast<Eigen::Index>(d)) = x.col(first[d]);
      counts_(static_cast<Eigen::Index>(d)) = count[d];
    }
  }

  std::vector<std::string> names_;
  std::vector<int> cards_;
  Eigen::MatrixXi records_;
  vector_t<weight_type> counts_;
  Eigen::Index num_records_ = 0;
  weight_type total_weight_ = 0;
  // The kept factors behind a pointer: once_flag is neither copyable nor movable.
  struct cache {
    std::once_flag once;
    bn_mean_field_state<S> state;
  };
  std::unique_ptr<cache> cache_;
};

/// Grouped records for a double-precision network.
using discrete_bayes_net_data = basic_discrete_bayes_net_data<double>;

/// Hide each cell of `x` independently with probability `rate(i)` for variable (row) i
/// (missing completely at random), drawing from the caller's engine in column-major order.
/// Cells already missing stay missing.
/// @throws invalid_argument if `rate` does not have one entry per row or an entry is outside [0, 1]
template <std::uniform_random_bit_generator Rng>
Eigen::MatrixXi apply_missing_at_random(const Eigen::Ref<const Eigen::MatrixXi>& x,
                                        const Eigen::Ref<const Eigen::VectorXd>& rate, Rng& rng) {
  detail::require(rate.size() == x.rows(), "apply_missing_at_random",
                  "argument 'rate' must have one entry per row of 'x' (", x.rows(), "), got ", rate.size());
  for (Eigen::Index i = 0; i < rate.size(); ++i)
    detail::require(rate(i) >= 0.0 && rate(i) <= 1.0, "apply_missing_at_random",
                    "argument 'rate' must be in [0, 1], but entry ", i, " is ", rate(i));
  Eigen::MatrixXi out = x;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < x.rows(); ++i)
      if (u(rng) < rate(i)) out(i, j) = missing;
  return out;
}

/// Hide each cell of `x` independently with the same probability `rate` in [0, 1].
template <std::uniform_random_bit_generator Rng>
Eigen::MatrixXi apply_missing_at_random(const Eigen::Ref<const Eigen::MatrixXi>& x, double rate, Rng& rng) {
  detail::require(rate >= 0.0 && rate <= 1.0, "apply_missing_at_random",
                  "argument 'rate' must be in [0, 1], got ", rate);
  return apply_missing_at_random(x, Eigen::VectorXd::Constant(x.rows(), rate), rng);
}

}  // namespace latent
