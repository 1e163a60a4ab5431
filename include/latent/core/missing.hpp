#pragma once
/// @file
/// Missing values (NaN) in Gaussian data, missing at random: the opt-in policy, the checks, and
/// the grouping of a block of observations by missingness pattern that the Gaussian models'
/// E-steps use (a pattern's observations share one conditional distribution per component, so
/// each pattern costs one factorization and block solves over all of its columns).
///
/// A missing entry is a quiet NaN; +-inf is never a missing value (it stays an error).

#include <latent/core/error.hpp>
#include <latent/core/missing_policy.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

namespace detail {

/// The observations of a block that share one missingness pattern.
struct missing_pattern {
  std::vector<Eigen::Index> observed;  ///< the coordinates observed (increasing)
  std::vector<Eigen::Index> missing;   ///< the coordinates missing (increasing, not empty)
  std::vector<Eigen::Index> columns;   ///< the observations (absolute column indices, increasing)
};

/// Columns [begin, end) of a block split into those with nothing missing and the others grouped
/// by pattern, the patterns in the order of their first column (so the split, and everything
/// computed from it, is a function of the block alone).
struct missing_split {
  std::vector<Eigen::Index> complete;     ///< columns with no NaN (increasing)
  std::vector<missing_pattern> patterns;  ///< the other columns, by pattern
};

/// Splits columns [begin, end) of x (d x N) by missingness pattern. O(B d log P).
/// @throws invalid_argument if an entry is infinite or a column has no observed coordinate.
template <class X>
missing_split split_by_pattern(const X& x, Eigen::Index begin, Eigen::Index end, std::string_view fn) {
  const Eigen::Index d = x.rows();
  missing_split out;
  std::map<std::vector<bool>, std::size_t> index;
  std::vector<bool> key(static_cast<std::size_t>(d));
  for (Eigen::Index n = begin; n < end; ++n) {
    bool any = false, all = true;
    for (Eigen::Index j = 0; j < d; ++j) {
      require(!std::isinf(x(j, n)), fn, "argument 'x' must be finite or NaN (missing), but entry (", j, ", ", n,
              ") is ", static_cast<double>(x(j, n)));
      const bool miss = std::isnan(x(j, n));
      key[static_cast<std::size_t>(j)] = miss;
      any = any || miss;
      all = all && miss;
    }
    if (!any) {
      out.complete.push_back(n);
      continue;
    }
    require(!all, fn, "argument 'x' has no observed coordinate in column ", n,
            " (every entry NaN): drop the observations that carry no data");
    auto [it, inserted] = index.try_emplace(key, out.patterns.size());
    if (inserted) {
      missing_pattern p;
      for (Eigen::Index j = 0; j < d; ++j) (key[static_cast<std::size_t>(j)] ? p.missing : p.observed).push_back(j);
      out.patterns.push_back(std::move(p));
    }
    out.patterns[it->second].columns.push_back(n);
  }
  return out;
}

/// Checks data that may hold missing values (NaN): no infinite entry, every coordinate observed
/// in at least one column and every column observed in at least one coordinate. O(N d).
/// @throws invalid_argument naming 'x' and what is wrong.
template <Scalar S>
void require_missing_at_random_data(const basic_observations<S>& x, std::string_view fn) {
  const auto& xm = x.x();
  Eigen::VectorXi seen = Eigen::VectorXi::Zero(xm.rows());
  for (Eigen::Index n = 0; n < xm.cols(); ++n) {
    bool any = false;
    for (Eigen::Index j = 0; j < xm.rows(); ++j) {
      const S v = xm(j, n);
      require(!std::isinf(v), fn, "argument 'x' must be finite or NaN (missing), but entry (", j, ", ", n, ") is ",
              static_cast<double>(v));
      if (!std::isnan(v)) {
        any = true;
        ++seen(j);
      }
    }
    require(any, fn, "argument 'x' has no observed coordinate in column ", n,
            " (every entry NaN): drop the observations that carry no data");
  }
  for (Eigen::Index j = 0; j < xm.rows(); ++j)
    require(seen(j) > 0, fn, "argument 'x' has no observed value of coordinate ", j,
            " (row ", j, " is all NaN): the model cannot estimate it; drop the variable");
}

/// A copy of x with every NaN replaced by its coordinate's (weighted) observed mean, in double
/// and rounded to S: the data the starting values of a fit with missing values are computed from.
/// Call after `require_missing_at_random_data`.
template <Scalar S>
matrix_t<S> impute_observed_means(const basic_observations<S>& x) {
  const auto& xm = x.x();
  const Eigen::Index d = xm.rows(), n_obs = xm.cols();
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(d), weight = Eigen::VectorXd::Zero(d), count = Eigen::VectorXd::Zero(d);
  for (Eigen::Index n = 0; n < n_obs; ++n)
    for (Eigen::Index j = 0; j < d; ++j)
      if (!std::isnan(xm(j, n))) {
        const double w = static_cast<double>(x.weight(n));
        sum(j) += w * static_cast<double>(xm(j, n));
        weight(j) += w;
        count(j) += 1.0;
      }
  matrix_t<S> out = xm;
  for (Eigen::Index j = 0; j < d; ++j) {
    // Coordinates observed only where the weight is 0: their plain mean.
    double fill = 0.0;
    if (weight(j) > 0.0) {
      fill = sum(j) / weight(j);
    } else {
      for (Eigen::Index n = 0; n < n_obs; ++n)
        if (!std::isnan(xm(j, n))) fill += static_cast<double>(xm(j, n)) / count(j);
    }
    for (Eigen::Index n = 0; n < n_obs; ++n)
      if (std::isnan(out(j, n))) out(j, n) = static_cast<S>(fill);
  }
  return out;
}

/// The columns `cols` of x (and their weights) copied into a contiguous matrix, with a view of
/// them: the complete observations of a block that also holds incomplete ones, handed to the
/// complete-data E-step unchanged.
template <Scalar S>
struct gathered_columns {
  matrix_t<S> x;
  vector_t<S> w;
  gathered_columns(const basic_observations<S>& data, const std::vector<Eigen::Index>& cols)
      : x(data.x()(Eigen::all, cols)) {
    if (data.weighted()) w = data.weights()(cols);
  }
  basic_observations<S> view() const { return w.size() > 0 ? basic_observations<S>(x, w) : basic_observations<S>(x); }
};

/// The E-step of columns [begin, end) of a block holding missing values, shared by the
/// Gaussian models: `complete(view, n)` runs the model's complete-data E-step on the block's n
/// complete columns (gathered, with their weights) and returns their objective;
/// `pattern(pat, xo, w)` gets each missingness pattern with its observed coordinates (|o| x n)
/// and weights (n) in the accumulator type, adds its statistics and returns its objective.
/// Returns the sum, complete columns first, then the patterns in order.
/// @throws invalid_argument (split_by_pattern) for an infinite entry or an all-NaN column.
template <Scalar S, class Complete, class Pattern>
double e_step_by_pattern(const basic_observations<S>& x, Eigen::Index begin, Eigen::Index end, std::string_view fn,
                         Complete&& complete, Pattern&& pattern) {
  using A = accumulator_t<S>;
  const missing_split split = split_by_pattern(x.x(), begin, end, fn);
  double total = 0.0;
  if (!split.complete.empty()) {
    const gathered_columns<S> g(x, split.complete);
    total += complete(g.view(), g.x.cols());
  }
  for (const missing_pattern& pat : split.patterns) {
    vector_t<A> w(static_cast<Eigen::Index>(pat.columns.size()));
    for (Eigen::Index i = 0; i < w.size(); ++i) w(i) = static_cast<A>(x.weight(pat.columns[static_cast<std::size_t>(i)]));
    const matrix_t<A> xo = x.x()(pat.observed, pat.columns).template cast<A>();
    total += pattern(pat, xo, w);
  }
  return total;
}

}  // namespace detail
}  // namespace latent
