#pragma once
/// @file
/// Exact inference for one record of a discrete Bayesian network (internal; namespace
/// `latent::detail`): the posterior of the missing values given the observed ones, by
/// variable elimination / junction tree over the missing variables only.
///
/// The missing variables of a record split into connected components (linked by shared
/// affected families, see engine.hpp), which are independent given o.
///  - A missing variable alone in all its families (the common case) is done in closed form.
///  - Per component: if the joint size prod K_m is at most `enumeration_limit`, one clique
///    holds the whole component (enumeration). Otherwise a clique tree is built by greedy
///    min-weight variable elimination (clique of x = x and its neighbours at elimination; its
///    parent is the clique of the first-eliminated separator variable; each factor goes to
///    the clique of its first-eliminated variable), then calibrated by one upward pass
///    (normalized messages, log normalizers summed into log p(o)) and one downward Hugin pass
///    (P(C_i) = beta_i(C_i) P(S_i) / mu_i(S_i), 0/0 := 0). Cost per record:
///    O(sum_i K^{|C_i|}) -- polynomial for bounded treewidth.
///  - Expected counts of an affected family are scattered from the posterior of the clique
///    that holds its factor: counts_v[offset(c)] += w P(C_i = c).

#include <latent/core/scalar.hpp>
#include <latent/models/discrete_bayes_net/engine.hpp>
#include <latent/models/discrete_bayes_net/structure.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace latent::detail {

/// One clique of a record's clique tree, with its index maps and belief.
template <Scalar S>
struct bn_clique {
  std::vector<int> scope;        ///< variables; scope[0] is the eliminated one (first = fastest)
  std::vector<int> cards;
  std::size_t size = 1;
  int parent = -1;
  std::size_t sep_size = 1;      ///< separator = scope[1..] (with a parent)
  std::vector<int> factors;      ///< family ids assigned here
  std::vector<int> offsets;      ///< size x factors: flat table index of each factor
  std::vector<int> sep_index;    ///< size: separator configuration of each clique configuration
  std::vector<int> sep_in_parent;  ///< parent size: separator configuration of each parent configuration
  std::vector<S> belief;
  std::vector<S> mu;
};

/// The exact kernel for one thread: holds scratch memory, so create one per block.
template <Scalar S>
class bn_exact_engine : bn_engine_core {
 public:
  using acc_type = accumulator_t<S>;

  /// `log_tables[v]` are the flat log tables; `limit` the largest component enumerated whole.
  bn_exact_engine(const bn_structure& st, const std::vector<vector_t<S>>& log_tables, std::size_t limit)
      : bn_engine_core(st), logt_(log_tables), limit_(limit) {
    uf_.reserve(st.cards.size());
    comp_local_.assign(st.cards.size(), -1);
  }

  /// Exact: returns log p(o) of the record; if `counts` is non-null adds w * E[counts].
  /// Returns -inf (and adds nothing) for a record of probability zero.
  double exact(const int* rec, acc_type w, acc_type* const* counts) {
    double ll = setup(logt_, rec, w, counts);
    if (missing_.empty()) return ll;
    // Adds one independent component's log-probability; false once the record is impossible
    // (a component of probability zero makes the whole record's zero: stop there).
    const auto add = [&ll](double part) {
      if (part == -std::numeric_limits<double>::infinity()) {
        ll = part;
        return false;
      }
      ll += part;
      return true;
    };
    if (!coupled_) {  // no family holds two missing values: each is its own component
      for (int m : missing_)
        if (!add(single(m, w, counts))) break;
      clear_local();
      return ll;
    }
    components();
    for (std::size_t c = 0; c < comp_vars_.size(); ++c) {
      const double part = comp_vars_[c].size() == 1  // the common case: a missing value alone in its families
                              ? single(comp_vars_[c][0], w, counts)
                              : calibrate(build_cliques(comp_vars_[c], comp_factors_[c], false), w, counts);
      if (!add(part)) break;
    }
    clear_local();
    return ll;
  }

  /// The joint posterior over all missing variables of a record, as one clique (its scope is
  /// the missing variables in ascending order, the first fastest). Returns log p(o).
  double joint(const int* rec, std::vector<S>& posterior, std::vector<int>& scope) {
    const double ll = setup(logt_, rec, acc_type(0), nullptr);
    std::vector<int> all(missing_), facs(fams_);
    const std::size_t nc = build_cliques(all, facs, true);
    (void)nc;
    const double part = calibrate(1, acc_type(0), nullptr);
    clear_local();
    posterior = cliques_[0].belief;
    scope = cliques_[0].scope;
    return ll + part;
  }

 private:
  // Posterior of a missing variable m whose families have no other missing member: its own
  // family and its children's families, each a factor over m alone.
  double single(int m, acc_type w, acc_type* const* counts) {
    const auto mu = static_cast<std::size_t>(m);
    const int K = st_.cards[mu];
    const int own_stride = st_.flat_strides[static_cast<std::size_t>(st_.flat_start[mu + 1] - 1)];
    const auto& ch = st_.children[mu];
    g_.assign(static_cast<std::size_t>(K), S(0));
    {
      const S* lt = logt_[mu].data();
      for (int k = 0; k < K; ++k) g_[static_cast<std::size_t>(k)] = lt[fam_base_[mu] + k * own_stride];
    }
    for (const auto& [c, stride] : ch) {
      const S* lt = logt_[static_cast<std::size_t>(c)].data();
      const int base = fam_base_[static_cast<std::size_t>(c)];
      for (int k = 0; k < K; ++k) g_[static_cast<std::size_t>(k)] += lt[base + k * stride];
    }
    const S mx = *std::max_element(g_.begin(), g_.end());
    if (mx == -std::numeric_limits<S>::infinity()) return -std::numeric_limits<double>::infinity();
    S z = 0;
    for (S& v : g_) z += (v = std::exp(v - mx));
    if (counts) {
      const acc_type scale = w / static_cast<acc_type>(z);
      acc_type* cnt = counts[m];
      for (int k = 0; k < K; ++k) cnt[fam_base_[mu] + k * own_stride] += scale * g_[static_cast<std::size_t>(k)];
      for (const auto& [c, stride] : ch) {
        acc_type* cc = counts[c];
        const int base = fam_base_[static_cast<std::size_t>(c)];
        for (int k = 0; k < K; ++k) cc[base + k * stride] += scale * g_[static_cast<std::size_t>(k)];
      }
    }
    return static_cast<double>(mx) + static_cast<double>(std::log(z));
  }

  int find(int a) {
    while (uf_[static_cast<std::size_t>(a)] != a) a = uf_[static_cast<std::size_t>(a)] = uf_[static_cast<std::size_t>(uf_[static_cast<std::size_t>(a)])];
    return a;
  }

  // Splits the missing variables into connected components with their factors.
  void components() {
    const std::size_t m = missing_.size();
    uf_.resize(m);
    for (std::size_t i = 0; i < m; ++i) uf_[i] = static_cast<int>(i);
    for (int f : fams_) {
      int first = -1;
      for (int u : st_.fam_vars[static_cast<std::size_t>(f)]) {
        const int l = local_[static_cast<std::size_t>(u)];
        if (l < 0) continue;
        if (first < 0)
          first = find(l);
        else {
          const int r = find(l);
          if (r != first) uf_[static_cast<std::size_t>(r)] = first;
        }
      }
    }
    comp_id_.assign(m, -1);
    std::size_t nc = 0;
    for (std::size_t i = 0; i < m; ++i) {
      const int r = find(static_cast<int>(i));
      if (comp_id_[static_cast<std::size_t>(r)] < 0) comp_id_[static_cast<std::size_t>(r)] = static_cast<int>(nc++);
    }
    if (comp_vars_.size() < nc) {
      comp_vars_.resize(nc);
      comp_factors_.resize(nc);
    }
    comp_vars_.resize(nc);
    comp_factors_.resize(nc);
    for (auto& v : comp_vars_) v.clear();
    for (auto& v : comp_factors_) v.clear();
    for (std::size_t i = 0; i < m; ++i)
      comp_vars_[static_cast<std::size_t>(comp_id_[static_cast<std::size_t>(find(static_cast<int>(i)))])].push_back(missing_[i]);
    for (int f : fams_) {
      for (int u : st_.fam_vars[static_cast<std::size_t>(f)]) {
        const int l = local_[static_cast<std::size_t>(u)];
        if (l < 0) continue;
        comp_factors_[static_cast<std::size_t>(comp_id_[static_cast<std::size_t>(find(l))])].push_back(f);
        break;
      }
    }
  }

  bn_clique<S>& clique(std::size_t i) {
    if (cliques_.size() <= i) cliques_.resize(i + 1);
    return cliques_[i];
  }

  // The flat stride of variable u in family f (0 if u is not a member).
  int stride_in(int f, int u) const {
    const auto& fv = st_.fam_vars[static_cast<std::size_t>(f)];
    for (std::size_t a = 0; a < fv.size(); ++a)
      if (fv[a] == u) return st_.fam_strides[static_cast<std::size_t>(f)][a];
    return 0;
  }

  // Builds the cliques of one component (variables ascending, factors); returns their count.
  std::size_t build_cliques(const std::vector<int>& vars, const std::vector<int>& factors, bool force_single) {
    const std::size_t k = vars.size();
    std::size_t J = 1;
    for (int v : vars) {
      J *= static_cast<std::size_t>(st_.cards[static_cast<std::size_t>(v)]);
      if (J > limit_) break;
    }
    std::size_t nc = 0;
    if (force_single || J <= limit_) {
      bn_clique<S>& c = clique(0);
      c.scope = vars;
      c.parent = -1;
      c.factors = factors;
      nc = 1;
    } else {
      for (std::size_t i = 0; i < k; ++i) comp_local_[static_cast<std::size_t>(vars[i])] = static_cast<int>(i);
      adj_.assign(k * k, 0);
      for (int f : factors) {
        mem_.clear();
        for (int u : st_.fam_vars[static_cast<std::size_t>(f)])
          if (local_[static_cast<std::size_t>(u)] >= 0) mem_.push_back(comp_local_[static_cast<std::size_t>(u)]);
        for (int a : mem_)
          for (int b : mem_)
            if (a != b) adj_[static_cast<std::size_t>(a) * k + static_cast<std::size_t>(b)] = 1;
      }
      alive_.assign(k, 1);
      pos_.assign(k, 0);
      for (std::size_t step = 0; step < k; ++step) {
        std::size_t best = k;
        double best_w = std::numeric_limits<double>::infinity();
        for (std::size_t x = 0; x < k; ++x) {
          if (!alive_[x]) continue;
          double wgt = st_.cards[static_cast<std::size_t>(vars[x])];
          for (std::size_t y = 0; y < k; ++y)
            if (alive_[y] && adj_[x * k + y]) wgt *= st_.cards[static_cast<std::size_t>(vars[y])];
          if (wgt < best_w) {
            best_w = wgt;
            best = x;
          }
        }
        bn_clique<S>& c = clique(step);
        c.scope.clear();
        c.scope.push_back(vars[best]);
        c.factors.clear();
        for (std::size_t y = 0; y < k; ++y)
          if (alive_[y] && adj_[best * k + y]) c.scope.push_back(vars[y]);
        for (std::size_t a = 1; a < c.scope.size(); ++a)
          for (std::size_t b = 1; b < c.scope.size(); ++b)
            if (a != b)
              adj_[static_cast<std::size_t>(comp_local_[static_cast<std::size_t>(c.scope[a])]) * k +
                   static_cast<std::size_t>(comp_local_[static_cast<std::size_t>(c.scope[b])])] = 1;
        alive_[best] = 0;
        pos_[best] = static_cast<int>(step);
      }
      nc = k;
      for (std::size_t i = 0; i < nc; ++i) {
        bn_clique<S>& c = cliques_[i];
        c.parent = -1;
        for (std::size_t a = 1; a < c.scope.size(); ++a) {
          const int p = pos_[static_cast<std::size_t>(comp_local_[static_cast<std::size_t>(c.scope[a])])];
          if (c.parent < 0 || p < c.parent) c.parent = p;
        }
      }
      for (int f : factors) {
        int target = -1;
        for (int u : st_.fam_vars[static_cast<std::size_t>(f)]) {
          if (local_[static_cast<std::size_t>(u)] < 0) continue;
          const int p = pos_[static_cast<std::size_t>(comp_local_[static_cast<std::size_t>(u)])];
          if (target < 0 || p < target) target = p;
        }
        cliques_[static_cast<std::size_t>(target)].factors.push_back(f);
      }
      for (int v : vars) comp_local_[static_cast<std::size_t>(v)] = -1;
    }
    // Index maps.
    for (std::size_t i = 0; i < nc; ++i) {
      bn_clique<S>& c = cliques_[i];
      const std::size_t ks = c.scope.size(), F = c.factors.size();
      c.cards.resize(ks);
      c.size = 1;
      for (std::size_t a = 0; a < ks; ++a) {
        c.cards[a] = st_.cards[static_cast<std::size_t>(c.scope[a])];
        c.size *= static_cast<std::size_t>(c.cards[a]);
      }
      base_.resize(F);
      strides_.assign(F * ks, 0);
      for (std::size_t t = 0; t < F; ++t) {
        base_[t] = fam_base_[static_cast<std::size_t>(c.factors[t])];
        for (std::size_t a = 0; a < ks; ++a) strides_[t * ks + a] = stride_in(c.factors[t], c.scope[a]);
      }
      bn_fill_offsets(c.cards, F, base_.data(), strides_.data(), c.offsets, digit_, cur_);
      if (c.parent >= 0) {
        // Separator scope[1..] with mixed radix, first fastest.
        strides_.assign(ks, 0);
        int r = 1;
        for (std::size_t a = 1; a < ks; ++a) {
          strides_[a] = r;
          r *= c.cards[a];
        }
        c.sep_size = static_cast<std::size_t>(r);
        const int zero = 0;
        bn_fill_offsets(c.cards, 1, &zero, strides_.data(), c.sep_index, digit_, cur_);
      } else {
        c.sep_size = 1;
      }
    }
    for (std::size_t i = 0; i < nc; ++i) {
      bn_clique<S>& c = cliques_[i];
      if (c.parent < 0) continue;
      const bn_clique<S>& p = cliques_[static_cast<std::size_t>(c.parent)];
      strides_.assign(p.scope.size(), 0);
      int r = 1;
      for (std::size_t a = 1; a < c.scope.size(); ++a) {
        for (std::size_t b = 0; b < p.scope.size(); ++b)
          if (p.scope[b] == c.scope[a]) strides_[b] = r;
        r *= c.cards[a];
      }
      const int zero = 0;
      bn_fill_offsets(p.cards, 1, &zero, strides_.data(), c.sep_in_parent, digit_, cur_);
    }
    return nc;
  }

  // Upward pass (normalized messages), downward Hugin pass, scatter of expected counts.
  // Returns the log normalizer of the cliques (their part of log p(o)), or -inf.
  double calibrate(std::size_t nc, acc_type w, acc_type* const* counts) {
    constexpr S ninf = -std::numeric_limits<S>::infinity();
    constexpr double fail = -std::numeric_limits<double>::infinity();
    double ll = 0.0;
    for (std::size_t i = 0; i < nc; ++i) {
      bn_clique<S>& c = cliques_[i];
      const std::size_t F = c.factors.size();
      c.belief.assign(c.size, S(0));
      S mx = ninf;
      for (std::size_t s = 0; s < c.size; ++s) {
        S v = 0;
        for (std::size_t t = 0; t < F; ++t) v += logt_[static_cast<std::size_t>(c.factors[t])](c.offsets[s * F + t]);
        c.belief[s] = v;
        mx = std::max(mx, v);
      }
      if (mx == ninf) return fail;
      for (S& v : c.belief) v = std::exp(v - mx);
      ll += static_cast<double>(mx);
    }
    for (std::size_t i = 0; i < nc; ++i) {
      bn_clique<S>& c = cliques_[i];
      S z = 0;
      for (S v : c.belief) z += v;
      if (!(z > S(0))) return fail;
      const S inv = S(1) / z;
      for (S& v : c.belief) v *= inv;
      ll += static_cast<double>(std::log(z));
      if (c.parent < 0) continue;
      c.mu.assign(c.sep_size, S(0));
      for (std::size_t s = 0; s < c.size; ++s) c.mu[static_cast<std::size_t>(c.sep_index[s])] += c.belief[s];
      bn_clique<S>& p = cliques_[static_cast<std::size_t>(c.parent)];
      for (std::size_t s = 0; s < p.size; ++s) p.belief[s] *= c.mu[static_cast<std::size_t>(c.sep_in_parent[s])];
    }
    for (std::size_t i = nc; i-- > 0;) {
      bn_clique<S>& c = cliques_[i];
      if (c.parent < 0) continue;
      const bn_clique<S>& p = cliques_[static_cast<std::size_t>(c.parent)];
      ratio_.assign(c.sep_size, S(0));
      for (std::size_t s = 0; s < p.size; ++s) ratio_[static_cast<std::size_t>(c.sep_in_parent[s])] += p.belief[s];
      for (std::size_t s = 0; s < c.sep_size; ++s) ratio_[s] = c.mu[s] > S(0) ? ratio_[s] / c.mu[s] : S(0);
      for (std::size_t s = 0; s < c.size; ++s) c.belief[s] *= ratio_[static_cast<std::size_t>(c.sep_index[s])];
    }
    if (counts)
      for (std::size_t i = 0; i < nc; ++i) {
        const bn_clique<S>& c = cliques_[i];
        const std::size_t F = c.factors.size();
        for (std::size_t t = 0; t < F; ++t) {
          acc_type* cnt = counts[c.factors[t]];
          for (std::size_t s = 0; s < c.size; ++s) cnt[c.offsets[s * F + t]] += w * static_cast<acc_type>(c.belief[s]);
        }
      }
    return ll;
  }


  const std::vector<vector_t<S>>& logt_;
  std::vector<S> g_;  // scratch: one variable's log potentials
  std::size_t limit_;
  std::vector<int> uf_, comp_id_, comp_local_;
  std::vector<std::vector<int>> comp_vars_, comp_factors_;
  std::vector<bn_clique<S>> cliques_;
  std::vector<unsigned char> adj_, alive_;
  std::vector<int> pos_, mem_, base_;
  std::vector<S> ratio_;
};

}  // namespace latent::detail
