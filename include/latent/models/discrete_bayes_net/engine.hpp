#pragma once
/// @file
/// What every inference kernel of a discrete Bayesian network does first with a record
/// (internal; namespace `latent::detail`): `bn_engine_core` sorts the families of one
/// record into observed and affected ones and owns the scratch memory the kernels share.
/// The exact kernel (exact_inference.hpp) and the mean-field kernel (mean_field.hpp) derive
/// from it; create one engine per thread (per E-step block).
///
/// For a record with observed values o and missing set M:
///  - a family with no missing member is *observed*: it contributes log theta_v[...] to the
///    log-likelihood and a count of w to one cell;
///  - the other families are *affected*; restricted to the evidence, each is a factor over
///    its missing members, whose flat table index is the observed part `fam_base_[v]` plus
///    the missing members' states times their strides.
///
/// Precision. The log tables are in S, and so is the arithmetic on one record's beliefs;
/// each record's log-likelihood is summed from its parts in double, and w times its expected
/// counts is added straight into the `accumulator_t<S>` count tables.

#include <latent/models/discrete_bayes_net/structure.hpp>

#include <cstddef>
#include <type_traits>
#include <vector>

namespace latent::detail {

/// A record's families sorted into observed and affected ones, and the scratch memory the
/// kernels share. Not a template: only `setup`, a member template, touches the tables.
class bn_engine_core {
 protected:
  explicit bn_engine_core(const bn_structure& st) : st_(st) {
    const std::size_t n = st.cards.size();
    local_.assign(n, -1);
    fam_base_.assign(n, 0);
  }

  // Collects missing variables, handles observed families (adds w to their count cell, if
  // `counts`), lists affected families with the observed part of their flat offset.
  // `logt[v]` is the flat (column-major) log table of v. Returns the observed families'
  // log-likelihood, summed in double.
  template <class Tables, class Acc>
  double setup(const Tables& logt, const int* rec, Acc w, std::type_identity_t<Acc>* const* counts) {
    const std::size_t n = st_.cards.size();
    missing_.clear();
    fams_.clear();
    coupled_ = false;
    for (std::size_t v = 0; v < n; ++v)
      if (rec[v] < 0) {
        local_[v] = static_cast<int>(missing_.size());
        missing_.push_back(static_cast<int>(v));
      }
    double ll = 0.0;
    const int* fv = st_.flat_vars.data();
    const int* fs = st_.flat_strides.data();
    for (std::size_t v = 0; v < n; ++v) {
      int off = 0, nmiss = 0;
      for (int a = st_.flat_start[v]; a < st_.flat_start[v + 1]; ++a) {
        const int s = rec[fv[a]];
        if (s < 0)
          ++nmiss;
        else
          off += s * fs[a];
      }
      coupled_ = coupled_ || nmiss > 1;
      if (nmiss > 0) {
        fam_base_[v] = off;
        fams_.push_back(static_cast<int>(v));
      } else {
        ll += static_cast<double>(logt[v](off));
        if (counts) counts[v][off] += w;
      }
    }
    return ll;
  }

  void clear_local() {
    for (int v : missing_) local_[static_cast<std::size_t>(v)] = -1;
  }

  const bn_structure& st_;
  bool coupled_ = false;                    // some family holds two or more missing values
  std::vector<int> missing_;                // the record's missing variables, ascending
  std::vector<int> local_;                  // position of a variable in missing_, or -1
  std::vector<int> fams_;                   // affected families
  std::vector<int> fam_base_;               // observed part of an affected family's flat index
  std::vector<int> strides_, digit_, cur_;  // scratch of bn_fill_offsets
};

}  // namespace latent::detail
