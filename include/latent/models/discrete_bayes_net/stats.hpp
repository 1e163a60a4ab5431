#pragma once
/// @file
/// Expected counts of a discrete Bayesian network: the sufficient statistics of its E-steps.
///
///     n_v[r, s] = sum_records w_j p(X_v = s, pa(X_v) = r | o_j)
///
/// one P_v x K_v matrix per variable, plus the total record weight. They are additive over
/// records and blocks and always accumulate in `accumulator_t<S>` (double for float and
/// double networks): the kernels compute a record's posterior in S and add w times it
/// straight into these double counts.

#include <latent/core/scalar.hpp>

#include <cstddef>
#include <span>
#include <vector>

namespace latent {

/// Expected counts, one P_v x K_v matrix per variable, and the total record weight
/// (`FlatStatistics`: the flat view is every count table in variable order, then the weight).
template <Scalar S>
struct basic_discrete_bayes_net_stats {
  using accumulator_type = accumulator_t<S>;

  std::vector<matrix_t<accumulator_type>> counts;
  accumulator_type weight = 0;

  basic_discrete_bayes_net_stats& operator+=(const basic_discrete_bayes_net_stats& o) {
    for (std::size_t v = 0; v < counts.size(); ++v) counts[v] += o.counts[v];
    weight += o.weight;
    return *this;
  }
  basic_discrete_bayes_net_stats& operator*=(double w) {
    for (auto& c : counts) c *= static_cast<accumulator_type>(w);
    weight *= static_cast<accumulator_type>(w);
    return *this;
  }

  /// Calls `f(std::span<accumulator_type>)` for each count table (column-major), then for the weight.
  template <class F>
  void for_each_span(F&& f) {
    for (auto& c : counts) f(std::span<accumulator_type>(c.data(), static_cast<std::size_t>(c.size())));
    f(std::span<accumulator_type>(&weight, 1));
  }
  /// The same spans, read-only.
  template <class F>
  void for_each_span(F&& f) const {
    for (const auto& c : counts) f(std::span<const accumulator_type>(c.data(), static_cast<std::size_t>(c.size())));
    f(std::span<const accumulator_type>(&weight, 1));
  }
};

/// Expected counts of a double-precision network.
using discrete_bayes_net_stats = basic_discrete_bayes_net_stats<double>;

}  // namespace latent
