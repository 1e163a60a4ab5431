#pragma once
/// @file
/// The mean-field factors a data object keeps for its records between variational E-steps
/// (warm start). Internal (namespace `latent::detail`): a model reaches it through
/// `basic_discrete_bayes_net_data<S>::variational_state()`.
///
/// Layout. Record j's missing variables, in ascending order, each own K_v consecutive
/// entries of `q` starting at `offset[j]` (so `offset` has one entry per distinct record plus
/// one, and depends only on the records' missing patterns and the cardinalities). `ready[j]`
/// says that record j's factors come from a previous E-step (otherwise the E-step starts
/// them uniform).

#include <latent/core/scalar.hpp>

#include <cstdint>
#include <mutex>
#include <vector>

namespace latent::detail {

/// Per-record mean-field factors kept between variational E-steps (warm start). Allocated
/// once, on first use, under a once_flag; afterwards each E-step block writes only the
/// factors of its own records, so concurrent blocks never touch the same memory.
template <Scalar S>
struct bn_mean_field_cache {
  std::once_flag once;
  std::vector<std::int64_t> offset;  // start of record j's factors in q; size D + 1
  std::vector<S> q;                  // factors of record j's missing variables, ascending
  std::vector<unsigned char> ready;  // record j has factors from a previous E-step
};

}  // namespace latent::detail
