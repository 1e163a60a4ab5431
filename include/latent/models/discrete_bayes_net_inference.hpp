#pragma once
/// @file
/// Inference kernels of `discrete_bayes_net` for one record with missing values: exact
/// posterior by variable elimination / junction tree over the missing variables, and mean
/// field by coordinate ascent. Not part of the API (namespace `latent::detail`).
///
/// Notation. Variable v has K_v states and parents pa(v); its family is pa(v) + {v} and its
/// table theta_v[r, s] = p(v = s | pa(v) = r) is stored flat, column-major (entry (r, s) at
/// r + P_v s, P_v = number of parent configurations, the last parent varying fastest in r).
/// So the flat index of a family configuration is a linear form sum_u state_u * stride_u.
///
/// For a record with observed values o and missing set M:
///  - a family with no missing member is *observed*: it contributes log theta_v[...] to the
///    log-likelihood and a count of w to one cell;
///  - the other families are *affected*; restricted to the evidence, each is a factor over
///    its missing members. The missing variables split into connected components (linked
///    by shared factors), which are independent given o.
///  - Exact (per component): if the joint size prod K_m is at most `enumeration_limit`, one
///    clique holds the whole component (enumeration). Otherwise a clique tree is built by
///    greedy min-weight variable elimination (clique of x = x and its neighbours at
///    elimination; its parent is the clique of the first-eliminated separator variable;
///    each factor goes to the clique of its first-eliminated variable), then calibrated by
///    one upward pass (normalized messages, log normalizers summed into log p(o)) and one
///    downward Hugin pass (P(C_i) = beta_i(C_i) P(S_i) / mu_i(S_i), 0/0 := 0). Cost per
///    record: O(sum_i K^{|C_i|}) -- polynomial for bounded treewidth.
///  - Expected counts of an affected family are scattered from the posterior of the clique
///    that holds its factor: counts_v[offset(c)] += w P(C_i = c).

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace latent::detail {

/// Network structure as the kernels see it.
struct bn_structure {
  std::vector<int> cards;                      ///< K_v
  std::vector<std::vector<int>> fam_vars;      ///< family of v: parents (in order), then v
  std::vector<std::vector<int>> fam_strides;   ///< flat stride of each family member
  /// children[v]: (child c, flat stride of v in c's family) for every child of v
  std::vector<std::vector<std::pair<int, int>>> children;
  /// Flattened families (same content as fam_vars / fam_strides): members of v's family are
  /// flat_vars[flat_start[v] .. flat_start[v + 1]).
  std::vector<int> flat_start, flat_vars, flat_strides;

  /// Fill `children` and the flat arrays from `cards`, `fam_vars` and `fam_strides`.
  void finish() {
    const std::size_t n = cards.size();
    children.assign(n, {});
    flat_start.assign(n + 1, 0);
    flat_vars.clear();
    flat_strides.clear();
    for (std::size_t v = 0; v < n; ++v) {
      for (std::size_t a = 0; a < fam_vars[v].size(); ++a) {
        flat_vars.push_back(fam_vars[v][a]);
        flat_strides.push_back(fam_strides[v][a]);
        if (a + 1 < fam_vars[v].size())
          children[static_cast<std::size_t>(fam_vars[v][a])].emplace_back(static_cast<int>(v), fam_strides[v][a]);
      }
      flat_start[v + 1] = static_cast<int>(flat_vars.size());
    }
  }
};

/// out[c * L + l] = base[l] + sum_i digit_i(c) * stride[l * k + i] for every configuration c
/// of k variables with cardinalities `cards` (first variable fastest); L linear forms at once.
inline void bn_fill_offsets(const std::vector<int>& cards, std::size_t L, const int* base,
                            const int* stride, std::vector<int>& out, std::vector<int>& digit,
                            std::vector<int>& cur) {
  const std::size_t k = cards.size();
  std::size_t J = 1;
  for (int c : cards) J *= static_cast<std::size_t>(c);
  out.resize(J * L);
  digit.assign(k, 0);
  cur.assign(base, base + L);
  for (std::size_t c = 0; c < J; ++c) {
    std::copy(cur.begin(), cur.end(), out.begin() + static_cast<std::ptrdiff_t>(c * L));
    for (std::size_t i = 0; i < k; ++i) {
      for (std::size_t l = 0; l < L; ++l) cur[l] += stride[l * k + i];
      if (++digit[i] < cards[i]) break;
      digit[i] = 0;
      for (std::size_t l = 0; l < L; ++l) cur[l] -= cards[i] * stride[l * k + i];
    }
  }
}

/// One clique of a record's clique tree, with its index maps and belief.
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
  std::vector<double> belief;
  std::vector<double> mu;
  double log_max = 0.0;
};

/// A factor of the mean-field kernel: an affected family over its missing members.
struct bn_mf_factor {
  int fam = 0;
  std::vector<int> members;  ///< local indices (into the record's missing list)
  std::vector<int> cards;
  std::vector<int> radix;    ///< mixed radix of members (first fastest)
  std::vector<int> offsets;  ///< flat table index per configuration of the members
};

/// Kernels for one thread: holds scratch memory, so create one per block.
class bn_engine {
 public:
  /// `log_tables[v]` are the flat log tables; `limit` the largest component enumerated whole.
  bn_engine(const bn_structure& st, const std::vector<Eigen::VectorXd>& log_tables, std::size_t limit)
      : st_(st), logt_(log_tables), limit_(limit) {
    const std::size_t n = st.cards.size();
    local_.assign(n, -1);
    fam_base_.assign(n, 0);
    uf_.reserve(n);
    comp_local_.assign(n, -1);
  }

  /// Exact: returns log p(o) of the record; if `counts` is non-null adds w * E[counts].
  /// Returns -inf (and adds nothing) for a record of probability zero.
  double exact(const int* rec, double w, double* const* counts) {
    double ll = setup(rec, w, counts);
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
  double joint(const int* rec, std::vector<double>& posterior, std::vector<int>& scope) {
    double ll = setup(rec, 0.0, nullptr);
    std::vector<int> all(missing_), facs(fams_);
    const std::size_t nc = build_cliques(all, facs, true);
    (void)nc;
    const double part = calibrate(1, 0.0, nullptr);
    clear_local();
    posterior = cliques_[0].belief;
    scope = cliques_[0].scope;
    return ll + part;
  }

  /// Mean field. `q` holds the concatenated factors of the missing variables (ascending);
  /// if `init` they are first set uniform. Coordinate ascent for at most `max_sweeps` sweeps
  /// or until no entry moves by more than `tol`. Returns the ELBO; adds w * E_q[counts].
  double mean_field(const int* rec, double w, double* const* counts, double* q, bool init,
                    std::size_t max_sweeps, double tol) {
    constexpr double ninf = -std::numeric_limits<double>::infinity();
    double elbo = setup(rec, w, counts);
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
        std::fill(q + qoff_[i], q + qoff_[i + 1], 1.0 / K);
      }
    for (std::size_t sweep = 0; sweep < max_sweeps; ++sweep) {
      double moved = 0.0;
      for (std::size_t i = 0; i < m; ++i) {
        const int K = st_.cards[static_cast<std::size_t>(missing_[i])];
        g_.assign(static_cast<std::size_t>(K), 0.0);
        for (int t : by_var_[i]) {
          const auto& f = mf_[static_cast<std::size_t>(t)];
          const std::size_t J = f.offsets.size();
          const Eigen::VectorXd& lt = logt_[static_cast<std::size_t>(f.fam)];
          for (std::size_t c = 0; c < J; ++c) {
            double wgt = 1.0;
            int own = 0;
            for (std::size_t a = 0; a < f.members.size(); ++a) {
              const int s = (static_cast<int>(c) / f.radix[a]) % f.cards[a];
              if (f.members[a] == static_cast<int>(i))
                own = s;
              else
                wgt *= q[qoff_[static_cast<std::size_t>(f.members[a])] + static_cast<std::size_t>(s)];
            }
            if (wgt == 0.0) continue;  // 0 * log 0 = 0: never form 0 * -inf
            g_[static_cast<std::size_t>(own)] += wgt * lt(f.offsets[c]);
          }
        }
        const double mx = *std::max_element(g_.begin(), g_.end());
        if (mx == ninf) {
          clear_local();
          return ninf;  // the record has probability zero
        }
        double z = 0.0;
        for (double& v : g_) z += (v = std::exp(v - mx));
        for (int k = 0; k < K; ++k) {
          const double nv = g_[static_cast<std::size_t>(k)] / z;
          double& old = q[qoff_[i] + static_cast<std::size_t>(k)];
          moved = std::max(moved, std::abs(nv - old));
          old = nv;
        }
      }
      if (moved <= tol) break;
    }
    // ELBO = sum_f E_q[log theta_f] + sum_i H(q_i) (+ observed families, already in elbo).
    for (std::size_t t = 0; t < fams_.size(); ++t) {
      const auto& f = mf_[t];
      const Eigen::VectorXd& lt = logt_[static_cast<std::size_t>(f.fam)];
      double* cnt = counts ? counts[f.fam] : nullptr;
      for (std::size_t c = 0; c < f.offsets.size(); ++c) {
        double wgt = 1.0;
        for (std::size_t a = 0; a < f.members.size(); ++a)
          wgt *= q[qoff_[static_cast<std::size_t>(f.members[a])] +
                   static_cast<std::size_t>((static_cast<int>(c) / f.radix[a]) % f.cards[a])];
        if (wgt == 0.0) continue;
        elbo += wgt * lt(f.offsets[c]);
        if (cnt) cnt[f.offsets[c]] += w * wgt;
      }
    }
    for (std::size_t i = 0; i < qoff_.back(); ++i)
      if (q[i] > 0.0) elbo -= q[i] * std::log(q[i]);
    clear_local();
    return elbo;
  }

 private:
  // Collects missing variables, handles observed families, lists affected families with the
  // observed part of their flat offset. Returns the observed families' log-likelihood.
  double setup(const int* rec, double w, double* const* counts) {
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
      const bool affected = nmiss > 0;
      coupled_ = coupled_ || nmiss > 1;
      if (affected) {
        fam_base_[v] = off;
        fams_.push_back(static_cast<int>(v));
      } else {
        ll += logt_[v](off);
        if (counts) counts[v][off] += w;
      }
    }
    return ll;
  }

  // Posterior of a missing variable m whose families have no other missing member: its own
  // family and its children's families, each a factor over m alone.
  double single(int m, double w, double* const* counts) {
    const auto mu = static_cast<std::size_t>(m);
    const int K = st_.cards[mu];
    const int own_stride = st_.flat_strides[static_cast<std::size_t>(st_.flat_start[mu + 1] - 1)];
    const auto& ch = st_.children[mu];
    g_.assign(static_cast<std::size_t>(K), 0.0);
    {
      const double* lt = logt_[mu].data();
      for (int k = 0; k < K; ++k) g_[static_cast<std::size_t>(k)] = lt[fam_base_[mu] + k * own_stride];
    }
    for (const auto& [c, stride] : ch) {
      const double* lt = logt_[static_cast<std::size_t>(c)].data();
      const int base = fam_base_[static_cast<std::size_t>(c)];
      for (int k = 0; k < K; ++k) g_[static_cast<std::size_t>(k)] += lt[base + k * stride];
    }
    const double mx = *std::max_element(g_.begin(), g_.end());
    if (mx == -std::numeric_limits<double>::infinity()) return mx;
    double z = 0.0;
    for (double& v : g_) z += (v = std::exp(v - mx));
    if (counts) {
      const double scale = w / z;
      double* cnt = counts[m];
      for (int k = 0; k < K; ++k) cnt[fam_base_[mu] + k * own_stride] += scale * g_[static_cast<std::size_t>(k)];
      for (const auto& [c, stride] : ch) {
        double* cc = counts[c];
        const int base = fam_base_[static_cast<std::size_t>(c)];
        for (int k = 0; k < K; ++k) cc[base + k * stride] += scale * g_[static_cast<std::size_t>(k)];
      }
    }
    return mx + std::log(z);
  }

  void clear_local() {
    for (int v : missing_) local_[static_cast<std::size_t>(v)] = -1;
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

  bn_clique& clique(std::size_t i) {
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
      bn_clique& c = clique(0);
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
        bn_clique& c = clique(step);
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
        bn_clique& c = cliques_[i];
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
      bn_clique& c = cliques_[i];
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
      bn_clique& c = cliques_[i];
      if (c.parent < 0) continue;
      const bn_clique& p = cliques_[static_cast<std::size_t>(c.parent)];
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
  double calibrate(std::size_t nc, double w, double* const* counts) {
    constexpr double ninf = -std::numeric_limits<double>::infinity();
    double ll = 0.0;
    for (std::size_t i = 0; i < nc; ++i) {
      bn_clique& c = cliques_[i];
      const std::size_t F = c.factors.size();
      c.belief.assign(c.size, 0.0);
      double mx = ninf;
      for (std::size_t s = 0; s < c.size; ++s) {
        double v = 0.0;
        for (std::size_t t = 0; t < F; ++t) v += logt_[static_cast<std::size_t>(c.factors[t])](c.offsets[s * F + t]);
        c.belief[s] = v;
        mx = std::max(mx, v);
      }
      if (mx == ninf) return ninf;
      for (double& v : c.belief) v = std::exp(v - mx);
      c.log_max = mx;
      ll += mx;
    }
    for (std::size_t i = 0; i < nc; ++i) {
      bn_clique& c = cliques_[i];
      double z = 0.0;
      for (double v : c.belief) z += v;
      if (!(z > 0.0)) return ninf;
      const double inv = 1.0 / z;
      for (double& v : c.belief) v *= inv;
      ll += std::log(z);
      if (c.parent < 0) continue;
      c.mu.assign(c.sep_size, 0.0);
      for (std::size_t s = 0; s < c.size; ++s) c.mu[static_cast<std::size_t>(c.sep_index[s])] += c.belief[s];
      bn_clique& p = cliques_[static_cast<std::size_t>(c.parent)];
      for (std::size_t s = 0; s < p.size; ++s) p.belief[s] *= c.mu[static_cast<std::size_t>(c.sep_in_parent[s])];
    }
    for (std::size_t i = nc; i-- > 0;) {
      bn_clique& c = cliques_[i];
      if (c.parent < 0) continue;
      const bn_clique& p = cliques_[static_cast<std::size_t>(c.parent)];
      ratio_.assign(c.sep_size, 0.0);
      for (std::size_t s = 0; s < p.size; ++s) ratio_[static_cast<std::size_t>(c.sep_in_parent[s])] += p.belief[s];
      for (std::size_t s = 0; s < c.sep_size; ++s) ratio_[s] = c.mu[s] > 0.0 ? ratio_[s] / c.mu[s] : 0.0;
      for (std::size_t s = 0; s < c.size; ++s) c.belief[s] *= ratio_[static_cast<std::size_t>(c.sep_index[s])];
    }
    if (counts)
      for (std::size_t i = 0; i < nc; ++i) {
        const bn_clique& c = cliques_[i];
        const std::size_t F = c.factors.size();
        for (std::size_t t = 0; t < F; ++t) {
          double* cnt = counts[c.factors[t]];
          for (std::size_t s = 0; s < c.size; ++s) cnt[c.offsets[s * F + t]] += w * c.belief[s];
        }
      }
    return ll;
  }

  const bn_structure& st_;
  const std::vector<Eigen::VectorXd>& logt_;
  std::size_t limit_;
  bool coupled_ = false;
  std::vector<int> missing_, local_, fams_, fam_base_, uf_, comp_id_, comp_local_;
  std::vector<std::vector<int>> comp_vars_, comp_factors_, by_var_;
  std::vector<bn_clique> cliques_;
  std::vector<bn_mf_factor> mf_;
  std::vector<unsigned char> adj_, alive_;
  std::vector<int> pos_, mem_, base_, strides_, digit_, cur_;
  std::vector<double> ratio_, g_;
  std::vector<std::size_t> qoff_;
};

}  // namespace latent::detail
