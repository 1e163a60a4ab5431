#pragma once
/// @file
/// The graph of a discrete Bayesian network, validated and indexed (internal; namespace
/// `latent::detail`): `bn_graph` checks the variables (names, states, parents, acyclicity)
/// and computes a topological order and the table layout; `bn_structure` is the view the
/// inference kernels use.
///
/// Table layout. theta_v is P_v x K_v (P_v = prod of the parents' K), stored column-major,
/// so entry (r, s) is at flat index r + P_v s; the row r of a parent configuration is mixed
/// radix over the parents in the order given, the last parent fastest. The flat index of a
/// family configuration is thus a linear form sum_u state_u * stride_u over the family
/// (parents, then v with stride P_v).
///
/// These are plain integer computations on std containers; only the checks of tables and
/// records, member templates, touch Eigen.

#include <latent/core/error.hpp>
#include <latent/models/discrete_bayes_net/options.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
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

/// The validated graph of a network: variables, name index, parents, topological order,
/// table rows P_v and the kernels' `bn_structure`.
struct bn_graph {
  std::vector<bn_variable> vars;
  std::unordered_map<std::string, std::ptrdiff_t> index;
  std::vector<std::vector<int>> parents;
  std::vector<int> topo;
  std::vector<std::ptrdiff_t> rows;
  bn_structure st;

  /// @throws invalid_argument naming the variable: empty or duplicate name, states < 1,
  ///         unknown or repeated parent, a variable its own parent, a cycle, a table too large
  explicit bn_graph(std::vector<bn_variable> variables) : vars(std::move(variables)) {
    constexpr const char* fn = "discrete_bayes_net";
    const std::size_t n = vars.size();
    require(n > 0, fn, "argument 'variables' must not be empty");
    for (std::size_t v = 0; v < n; ++v) {
      require(!vars[v].name.empty(), fn, "variable ", v, " has an empty name");
      require(index.emplace(vars[v].name, static_cast<std::ptrdiff_t>(v)).second, fn, "variable '", vars[v].name,
              "' is defined twice");
      require(vars[v].states >= 1, fn, "variable '", vars[v].name, "' must have at least 1 state, got ",
              vars[v].states);
    }
    parents.assign(n, {});
    for (std::size_t v = 0; v < n; ++v)
      for (const auto& p : vars[v].parents) {
        const auto it = index.find(p);
        require(it != index.end(), fn, "variable '", vars[v].name, "' has unknown parent '", p, "'");
        require(it->second != static_cast<std::ptrdiff_t>(v), fn, "variable '", vars[v].name,
                "' is its own parent (a cycle)");
        require(std::find(parents[v].begin(), parents[v].end(), it->second) == parents[v].end(), fn, "variable '",
                vars[v].name, "' lists parent '", p, "' twice");
        parents[v].push_back(static_cast<int>(it->second));
      }
    order(fn);
    layout(fn);
  }

  /// Number of variables.
  std::ptrdiff_t size() const { return static_cast<std::ptrdiff_t>(vars.size()); }

  /// Variable names, one per variable.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& v : vars) out.push_back(v.name);
    return out;
  }

  /// Index of the variable called `name`. @throws invalid_argument if there is none.
  std::ptrdiff_t find(std::string_view name, std::string_view fn) const {
    const auto it = index.find(std::string(name));
    require(it != index.end(), fn, "argument 'name': no variable called '", name, "'");
    return it->second;
  }

  /// @throws invalid_argument unless 0 <= v < size(), naming the argument `arg`.
  void check_variable(std::ptrdiff_t v, std::string_view fn, std::string_view arg = "v") const {
    require(v >= 0 && v < size(), fn, "argument '", arg, "' must be a variable index in [0, ", size(), "), got ", v);
  }

  /// @throws invalid_argument naming the variable unless `t` is a valid table of v: P_v x K_v,
  ///         entries in [0, 1], every row summing to 1 within `tol` (the sum taken in double).
  template <class Derived>
  void check_table(std::size_t v, const Eigen::MatrixBase<Derived>& t, double tol) const {
    constexpr const char* fn = "discrete_bayes_net";
    const auto& name = vars[v].name;
    const int K = vars[v].states;
    require(t.rows() == rows[v] && t.cols() == K, fn, "the table of variable '", name, "' must be ", rows[v], " x ", K,
            " (parent configurations x states), got ", t.rows(), " x ", t.cols());
    for (Eigen::Index r = 0; r < t.rows(); ++r) {
      for (Eigen::Index k = 0; k < t.cols(); ++k)
        require(std::isfinite(t(r, k)) && t(r, k) >= 0 && t(r, k) <= 1, fn, "the table of variable '", name,
                "' must have entries in [0, 1], but entry (", r, ", ", k, ") is ", t(r, k));
      const double s = t.row(r).template cast<double>().sum();
      require(std::abs(s - 1.0) <= tol, fn, "row ", r, " of the table of variable '", name, "' must sum to 1 (within ",
              tol, "), but sums to ", s);
    }
  }

  /// @throws invalid_argument naming the variable and the record unless `x` has one row per
  ///         variable and every entry is a state of its variable or `missing`.
  template <class Derived>
  void check_records(const Eigen::DenseBase<Derived>& x, std::string_view fn) const {
    require(x.rows() == size(), fn, "argument 'x' must have one row per variable (", size(), "), got ", x.rows());
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index i = 0; i < x.rows(); ++i) {
        const int s = x(i, j), K = st.cards[static_cast<std::size_t>(i)];
        if (s != missing && (s < 0 || s >= K))
          throw_invalid(fn, "the state of variable '", vars[static_cast<std::size_t>(i)].name, "' in record ", j,
                        " must be in [0, ", K, ") or latent::missing (", missing, "), got ", s);
      }
  }

 private:
  // Depth-first search along parent links: a grey parent closes a cycle; post-order is a
  // topological order.
  void order(const char* fn) {
    const std::size_t n = vars.size();
    std::vector<int> colour(n, 0), path;
    const auto visit = [&](auto&& self, int v) -> void {
      colour[static_cast<std::size_t>(v)] = 1;
      path.push_back(v);
      for (int p : parents[static_cast<std::size_t>(v)]) {
        if (colour[static_cast<std::size_t>(p)] == 1) {
          std::ostringstream cycle;
          cycle << "'" << vars[static_cast<std::size_t>(p)].name << "'";
          const auto start = std::find(path.begin(), path.end(), p);
          for (auto it = path.end(); it != start;) cycle << " <- '" << vars[static_cast<std::size_t>(*--it)].name << "'";
          throw_invalid(fn, "variable '", vars[static_cast<std::size_t>(p)].name,
                        "' is on a cycle (child <- parent): ", cycle.str());
        }
        if (colour[static_cast<std::size_t>(p)] == 0) self(self, p);
      }
      colour[static_cast<std::size_t>(v)] = 2;
      path.pop_back();
      topo.push_back(v);
    };
    for (std::size_t v = 0; v < n; ++v)
      if (colour[v] == 0) visit(visit, static_cast<int>(v));
  }

  // Table rows and the kernels' view of the families.
  void layout(const char* fn) {
    const std::size_t n = vars.size();
    st.cards.resize(n);
    st.fam_vars.assign(n, {});
    st.fam_strides.assign(n, {});
    rows.assign(n, 1);
    for (std::size_t v = 0; v < n; ++v) st.cards[v] = vars[v].states;
    for (std::size_t v = 0; v < n; ++v) {
      const auto& pa = parents[v];
      std::vector<int> strides(pa.size() + 1);
      double r = 1.0;
      for (std::size_t j = pa.size(); j-- > 0;) {
        strides[j] = static_cast<int>(r);
        r *= st.cards[static_cast<std::size_t>(pa[j])];
      }
      require(r * vars[v].states < 2147483647.0, fn, "the table of variable '", vars[v].name, "' would have ",
              r * vars[v].states, " entries, too many");
      rows[v] = static_cast<std::ptrdiff_t>(r);
      strides.back() = static_cast<int>(r);
      st.fam_vars[v] = pa;
      st.fam_vars[v].push_back(static_cast<int>(v));
      st.fam_strides[v] = std::move(strides);
    }
    st.finish();
  }
};

}  // namespace latent::detail
