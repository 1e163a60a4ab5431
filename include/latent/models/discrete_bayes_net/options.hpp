#pragma once
/// @file
/// The vocabulary of a discrete Bayesian network: the marker of a missing value, a variable
/// (name, states, parents), the options, and the parameters (one probability table per
/// variable) of `basic_discrete_bayes_net<S>`.

#include <latent/core/scalar.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace latent {

/// The marker of a missing value in record matrices of discrete Bayesian networks.
inline constexpr int missing = -1;

/// One variable of a network: its name, number of states and parents (by name).
struct bn_variable {
  std::string name;
  int states = 2;
  std::vector<std::string> parents;
};

/// What the M-step does with a parent configuration that has no expected count.
enum class unseen_parent_policy {
  keep_previous,  ///< the row keeps its current values
  uniform         ///< the row becomes uniform, 1 / K
};

/// Options of a discrete Bayesian network (of any scalar type: they hold no tables).
///
/// | name | meaning | default |
/// |---|---|---|
/// | `pseudo_count` | a >= 0 added to every expected count in the M-step (MAP under Dirichlet(a + 1) rows) | 0 |
/// | `unseen` | fallback for a row with zero expected count | keep_previous |
/// | `enumeration_limit` | a connected group of missing variables with at most this many joint states is enumerated whole; larger groups use a clique tree | 256 |
/// | `table_tolerance` | how far a given table row may sum from 1 (never less than 4 epsilon of the table's scalar, so float tables rounded from exact rows pass) | 1e-9 |
struct discrete_bayes_net_options {
  double pseudo_count = 0.0;
  unseen_parent_policy unseen = unseen_parent_policy::keep_previous;
  std::size_t enumeration_limit = 256;
  double table_tolerance = 1e-9;
};

/// Parameters: one table per variable (P_v x K_v, rows sum to 1), in variable order, in the
/// network's scalar type S.
template <Scalar S>
struct basic_discrete_bayes_net_params {
  std::vector<matrix_t<S>> tables;
};

/// The tables of a double-precision network.
using discrete_bayes_net_params = basic_discrete_bayes_net_params<double>;

}  // namespace latent
