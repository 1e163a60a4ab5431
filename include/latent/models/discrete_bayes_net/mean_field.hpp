#pragma once
/// @file
/// Mean-field inference for one record of a discrete Bayesian network (internal; namespace
/// `latent::detail`).
///
/// q(m) = prod_{u in m} q_u(x_u) over the record's missing variables; coordinate ascent
///
///     log q_u(s) = sum_{families f containing u} E_{q_{-u}}[log theta_f | X_u = s] + const,
///
/// swept until no entry moves by more than the tolerance; the ELBO
/// E_q[log p(o, m)] + H(q) <= log p(o) is returned and w E_q[n_v] added to the counts. The
/// factors live in caller-owned memory (`q`), so that they can be kept between E-steps
/// (warm start; see mean_field_state.hpp).

#include <latent/core/scalar.hpp>
#include <latent/models/discrete_bayes_net/engine.hpp>
#include <latent/models/discrete_bayes_net/structure.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace latent::detail {

/// A factor of the mean-field kernel: an affected family over its missing members.
struct bn_mf_factor {
  int fam = 0;
  std::vector<int> members;  ///< local indices (into the record's missing list)
  std::vector<int> cards;
  std::vector<int> radix;    ///< mixed radix of members (first fastest)
  std::vector<int> offsets;  ///< flat table index per configuration of the members
};

/// The mean-field kernel for one thread: holds scratch memory, so create one per block.
template <Scalar S>
class bn_mean_field_engine : bn_engine_core {
 public:
  using acc_type = accumulator_t<S>;

  /// `log_tables[v]` are the flat log tables.
  bn_mean_field_engine(const bn_structure& st, const std::vector<vector_t<S>>& log_tables)
      : bn_engine_core(st), logt_(log_tables) {}

  /// Number of entries of the factors of a record's missing variables.
  std::size_t factor_size(const int* rec) const {
    std::size_t k = 0;
    for (std::size_t i = 0; i < st_.cards.size(); ++i)
      if (rec[i] < 0) k += static_cast<std::size_t>(st_.cards[i]);
    return k;
  }

  /// Runs mean field on one record. `q` holds the concatenated factors of the missing variables (ascending);
  /// if `init` they are first set uniform. Coordinate ascent for at most `max_sweeps` sweeps
  /// or until no entry moves by more than `tol`. Returns the ELBO; adds w * E_q[counts].
  double run(const int* rec, acc_type w, acc_type* const* counts, S* q, bool init, std::size_t max_sweeps,
             S tol) {
    constexpr S ninf = -std::numeric_limits<S>::infinity();
    double elbo = setup(logt_, rec, w, counts);
    const std::size_t m = missing_.size();
    if (m == 0) return elbo;
    // Factor offsets over each affected family's missing members.
    if (mf_.size() < fams_.size()) mf_.resize(fams_.size());
    qoff_.assign(m + 1, 0);
    for (std::size_t i = 0; i < m; ++i) qoff_[i + 1] = qoff_[i] + st_.cards[static_cast<std::size_t>(missing_[i])];
    if (by_var_.size() < m) by_var_.resize(m);
    for (std::size_t i = 0; i < m; ++i) by_var_[i].clear();
    for (std::size_t t = 0; t < fams_.size(); ++t) {
      auto& f = mf_[t];
      f.fam = fams_[t];
      f.members.clear();
      f.cards.clear();
      f.radix.clear();
      strides_.clear();
      const auto& fv = st_.fam_vars[static_cast<std::size_t>(f.fam)];
      int r = 1;
      for (std::size_t a = 0; a < fv.size(); ++a) {
        const int u = fv[a];
        if (local_[static_cast<std::size_t>(u)] < 0) continue;
        f.members.push_back(local_[static_cast<std::size_t>(u)]);
        f.cards.push_back(st_.cards[static_cast<std::size_t>(u)]);
        f.radix.push_back(r);
        r *= st_.cards[static_cast<std::size_t>(u)];
        strides_.push_back(st_.fam_strides[static_cast<std::size_t>(f.fam)][a]);
        by_var_[static_cast<std::size_t>(local_[static_cast<std::size_t>(u)])].push_back(static_cast<int>(t));
      }
      const int base = fam_base_[static_cast<std::size_t>(f.fam)];
      bn_fill_offsets(f.cards, 1, &base, strides_.data(), f.offsets, digit_, cur_);
    }
    if (init)
      for (std::size_t i = 0; i < m; ++i) {
        const int K = st_.cards[static_cast<std::size_t>(missing_[i])];
        std::fill(q + qoff_[i], q + qoff_[i + 1], S(1) / static_cast<S>(K));
      }
    for (std::size_t sweep = 0; sweep < max_sweeps; ++sweep) {
      S moved = 0;
      for (std::size_t i = 0; i < m; ++i) {
        const int K = st_.cards[static_cast<std::size_t>(missing_[i])];
        g_.assign(static_cast<std::size_t>(K), S(0));
        for (int t : by_var_[i]) {
          const auto& f = mf_[static_cast<std::size_t>(t)];
          const std::size_t J = f.offsets.size();
          const vector_t<S>& lt = logt_[static_cast<std::size_t>(f.fam)];
          for (std::size_t c = 0; c < J; ++c) {
            S wgt = 1;
            int own = 0;
            for (std::size_t a = 0; a < f.members.size(); ++a) {
              const int s = (static_cast<int>(c) / f.radix[a]) % f.cards[a];
              if (f.members[a] == static_cast<int>(i))
                own = s;
              else
                wgt *= q[qoff_[static_cast<std::size_t>(f.members[a])] + static_cast<std::size_t>(s)];
            }
            if (wgt == S(0)) continue;  // 0 * log 0 = 0: never form 0 * -inf
            g_[static_cast<std::size_t>(own)] += wgt * lt(f.offsets[c]);
          }
        }
        const S mx = *std::max_element(g_.begin(), g_.end());
        if (mx == ninf) {
          clear_local();
          return -std::numeric_limits<double>::infinity();  // the record has probability zero
        }
        S z = 0;
        for (S& v : g_) z += (v = std::exp(v - mx));
        for (int k = 0; k < K; ++k) {
          const S nv = g_[static_cast<std::size_t>(k)] / z;
          S& old = q[qoff_[i] + static_cast<std::size_t>(k)];
          moved = std::max(moved, std::abs(nv - old));
          old = nv;
        }
      }
      if (moved <= tol) break;
    }
    // ELBO = sum_f E_q[log theta_f] + sum_i H(q_i) (+ observed families, already in elbo).
    for (std::size_t t = 0; t < fams_.size(); ++t) {
      const auto& f = mf_[t];
      const vector_t<S>& lt = logt_[static_cast<std::size_t>(f.fam)];
      acc_type* cnt = counts ? counts[f.fam] : nullptr;
      for (std::size_t c = 0; c < f.offsets.size(); ++c) {
        S wgt = 1;
        for (std::size_t a = 0; a < f.members.size(); ++a)
          wgt *= q[qoff_[static_cast<std::size_t>(f.members[a])] +
                   static_cast<std::size_t>((static_cast<int>(c) / f.radix[a]) % f.cards[a])];
        if (wgt == S(0)) continue;
        elbo += static_cast<double>(wgt * lt(f.offsets[c]));
        if (cnt) cnt[f.offsets[c]] += w * static_cast<acc_type>(wgt);
      }
    }
    for (std::size_t i = 0; i < qoff_.back(); ++i)
      if (q[i] > S(0)) elbo -= static_cast<double>(q[i] * std::log(q[i]));
    clear_local();
    return elbo;
  }

 private:
  const std::vector<vector_t<S>>& logt_;
  std::vector<S> g_;  // scratch: one variable's log potentials
  std::vector<bn_mf_factor> mf_;
  std::vector<std::vector<int>> by_var_;
  std::vector<std::size_t> qoff_;
};

}  // namespace latent::detail
