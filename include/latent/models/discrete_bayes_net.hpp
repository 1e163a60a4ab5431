#pragma once
/// @file
/// Discrete Bayesian network with values missing at random, fitted by exact EM or by
/// mean-field variational EM.
///
/// Model. A DAG over categorical variables X_1..X_n (X_v has K_v states) with one conditional
/// probability table per variable:
///
///     p(x) = prod_v theta_v[pa_v(x), x_v],     theta_v[r, s] = p(X_v = s | pa(X_v) = r)
///
/// theta_v is a P_v x K_v matrix (P_v = prod of the parents' K), one row per parent
/// configuration, rows summing to 1. Row index of a parent configuration: mixed radix over the
/// parents in the order given, **the last parent varying fastest** (for parents (A, B) with
/// two states each: rows (0,0), (0,1), (1,0), (1,1)).
///
/// Data. Records are the columns of an integer matrix (variables x records) with entries in
/// [0, K_v) or `latent::missing`; any pattern of missing cells is allowed, including
/// variables never observed (latent variables). `make_data` validates and groups identical
/// records (see discrete_bayes_net_data.hpp).
///
/// Exact E-step. For a record with observed values o and missing values m, the posterior
/// p(m | o) is computed by variable elimination over the missing variables only (components
/// enumerated whole when small, otherwise a clique tree; see discrete_bayes_net_inference.hpp).
/// The sufficient statistics are the expected counts
///
///     n_v[r, s] = sum_records w_j p(X_v = s, pa(X_v) = r | o_j)
///
/// (additive over records and blocks), and the E-step returns sum_j w_j log p(o_j).
///
/// M-step. theta_v[r, s] = (n_v[r, s] + a) / (sum_s' n_v[r, s'] + K_v a), with `pseudo_count`
/// a >= 0: the MLE for a = 0, the MAP estimate under a Dirichlet(a + 1) prior on each row
/// otherwise. A row with no expected count (a parent configuration never seen, possible only
/// for a = 0) follows `unseen_parent_policy`: it keeps its previous values (default) or
/// becomes uniform; it never becomes NaN.
///
/// Mean-field E-step. q(m) = prod_{u in m} q_u(x_u); coordinate ascent
///
///     log q_u(s) = sum_{families f containing u} E_{q_{-u}}[log theta_f | X_u = s] + const,
///
/// swept until no entry moves by more than the tolerance; the ELBO
/// E_q[log p(o, m)] + H(q) <= log p(o) is returned and E_q[n_v] added to the statistics.
///
/// Cost of one E-step: O(D * (n + sum of clique sizes)) for D distinct records.

#include <latent/core/error.hpp>
#include <latent/core/random.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/discrete_bayes_net_data.hpp>
#include <latent/models/discrete_bayes_net_inference.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace latent {

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

/// Options of a discrete Bayesian network.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `pseudo_count` | a >= 0 added to every expected count in the M-step (MAP under Dirichlet(a + 1) rows) | 0 |
/// | `unseen` | fallback for a row with zero expected count | keep_previous |
/// | `enumeration_limit` | a connected group of missing variables with at most this many joint states is enumerated whole; larger groups use a clique tree | 256 |
/// | `table_tolerance` | how far a given table row may sum from 1 | 1e-9 |
struct discrete_bayes_net_options {
  double pseudo_count = 0.0;
  unseen_parent_policy unseen = unseen_parent_policy::keep_previous;
  std::size_t enumeration_limit = 256;
  double table_tolerance = 1e-9;
};

/// Parameters: one table per variable (P_v x K_v, rows sum to 1), in variable order.
struct discrete_bayes_net_params {
  std::vector<Eigen::MatrixXd> tables;
};

/// Expected counts, one P_v x K_v matrix per variable, and the total record weight.
struct discrete_bayes_net_stats {
  std::vector<Eigen::MatrixXd> counts;
  double weight = 0.0;

  discrete_bayes_net_stats& operator+=(const discrete_bayes_net_stats& o) {
    for (std::size_t v = 0; v < counts.size(); ++v) counts[v] += o.counts[v];
    weight += o.weight;
    return *this;
  }
  discrete_bayes_net_stats& operator*=(double w) {
    for (auto& c : counts) c *= w;
    weight *= w;
    return *this;
  }
};

/// Posterior of one record's missing values.
struct bn_posterior {
  std::vector<int> missing;               ///< indices of the missing variables, ascending
  Eigen::MatrixXi completions;            ///< variables x J: the record completed each way
  Eigen::VectorXd weights;                ///< p(completion | observed values), sums to 1
  std::vector<Eigen::VectorXd> marginals;  ///< p(X_m | observed) for each missing m, same order
  double log_likelihood = 0.0;            ///< log p(observed values)
};

/// A discrete Bayesian network (see the file comment for the model, E- and M-steps).
///
/// Satisfies `EMModel` and `VariationalEMModel<discrete_bayes_net, mean_field>`:
/// ```
/// latent::discrete_bayes_net net({{"A", 2, {}}, {"B", 2, {}}, {"C", 2, {"A", "B"}}});
/// auto data = net.make_data(x);             // x: 3 x N, entries 0/1 or latent::missing
/// auto fit = latent::em(net, data);         // exact EM
/// auto vfit = latent::variational_em(net, data, latent::mean_field{});
/// ```
class discrete_bayes_net {
 public:
  using data_type = discrete_bayes_net_data;
  using stats_type = discrete_bayes_net_stats;
  using params_type = discrete_bayes_net_params;

  /// A network with uniform tables.
  /// @throws invalid_argument naming the variable: empty or duplicate name, states < 1,
  ///         unknown or repeated parent, a variable its own parent, a cycle
  explicit discrete_bayes_net(std::vector<bn_variable> variables, const discrete_bayes_net_options& options = {})
      : vars_(std::move(variables)), opts_(options) {
    build_structure();
    params_type p;
    for (std::size_t v = 0; v < vars_.size(); ++v)
      p.tables.push_back(Eigen::MatrixXd::Constant(rows_[v], vars_[v].states, 1.0 / vars_[v].states));
    set_params_unchecked(std::move(p));
  }

  /// A network with given tables (`tables[v]` is P_v x K_v, rows summing to 1).
  /// @throws invalid_argument naming the variable for a structural error, a table of the
  ///         wrong size, an entry outside [0, 1] or a row not summing to 1
  discrete_bayes_net(std::vector<bn_variable> variables, std::vector<Eigen::MatrixXd> tables,
                     const discrete_bayes_net_options& options = {})
      : vars_(std::move(variables)), opts_(options) {
    build_structure();
    set_params(params_type{std::move(tables)});
  }

  // ----- structure -----

  /// Number of variables n.
  Eigen::Index num_variables() const { return static_cast<Eigen::Index>(vars_.size()); }
  /// The variables as given.
  const std::vector<bn_variable>& variables() const { return vars_; }
  /// Name of variable v.
  const std::string& name(Eigen::Index v) const { return vars_.at(static_cast<std::size_t>(v)).name; }
  /// Index of the variable called `name`. @throws invalid_argument if there is none.
  Eigen::Index index(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    detail::require(it != index_.end(), "discrete_bayes_net::index", "argument 'name': no variable called '", name, "'");
    return it->second;
  }
  /// Cardinalities K_v.
  const std::vector<int>& cardinalities() const { return st_.cards; }
  /// Parent indices of variable v, in table order.
  const std::vector<int>& parents(Eigen::Index v) const { return parents_.at(static_cast<std::size_t>(v)); }
  /// A topological order (parents before children).
  const std::vector<int>& topological_order() const { return topo_; }
  /// The options.
  const discrete_bayes_net_options& options() const { return opts_; }

  // ----- parameters -----

  /// The tables.
  const params_type& params() const { return params_; }
  /// Table of variable v (P_v x K_v).
  const Eigen::MatrixXd& table(Eigen::Index v) const { return params_.tables.at(static_cast<std::size_t>(v)); }
  /// Table of the variable called `name`.
  const Eigen::MatrixXd& table(std::string_view name) const { return table(index(name)); }

  /// Set all tables. @throws invalid_argument naming the variable (see the constructor).
  void set_params(params_type p) {
    detail::require(p.tables.size() == vars_.size(), "discrete_bayes_net",
                    "argument 'tables' must have one table per variable (", vars_.size(), "), got ", p.tables.size());
    for (std::size_t v = 0; v < vars_.size(); ++v) check_table(v, p.tables[v]);
    set_params_unchecked(std::move(p));
  }

  /// Row index of a parent configuration of variable v given a full record (parents observed).
  Eigen::Index parent_row(Eigen::Index v, const Eigen::Ref<const Eigen::VectorXi>& record) const {
    Eigen::Index r = 0;
    const auto& fv = st_.fam_vars[static_cast<std::size_t>(v)];
    const auto& fs = st_.fam_strides[static_cast<std::size_t>(v)];
    for (std::size_t a = 0; a + 1 < fv.size(); ++a) r += record(fv[a]) * fs[a];
    return r;
  }

  // ----- data -----

  /// Validate and group records (variables x records, entries in [0, K_v) or `missing`).
  data_type make_data(const Eigen::Ref<const Eigen::MatrixXi>& x, const bn_data_options& options = {}) const {
    return data_type(x, names(), st_.cards, options);
  }
  /// Validate and group weighted records.
  data_type make_data(const Eigen::Ref<const Eigen::MatrixXi>& x, const Eigen::Ref<const Eigen::VectorXd>& weights,
                      const bn_data_options& options = {}) const {
    return data_type(x, weights, names(), st_.cards, options);
  }

  // ----- EM contract -----

  /// Number of distinct records (what E-step blocks partition).
  Eigen::Index num_observations(const data_type& x) const { return x.num_distinct(); }
  /// Total record weight (the scale of the EM tolerance).
  double observation_weight(const data_type& x) const { return x.total_weight(); }

  /// Zero expected counts, shaped like the tables.
  stats_type zero_stats() const {
    stats_type s;
    s.counts.reserve(vars_.size());
    for (std::size_t v = 0; v < vars_.size(); ++v) s.counts.push_back(Eigen::MatrixXd::Zero(rows_[v], vars_[v].states));
    return s;
  }

  /// Exact E-step over distinct records [begin, end): adds the expected counts into `stats`
  /// and returns sum_j w_j log p(o_j) (-inf if a record with positive weight is impossible).
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats) const {
    check_block(x, begin, end, "discrete_bayes_net::e_step");
    detail::bn_engine engine(st_, logt_, opts_.enumeration_limit);
    const auto ptr = count_pointers(stats);
    double total = 0.0, weight = 0.0;
    for (Eigen::Index j = begin; j < end; ++j) {
      const double w = x.counts()(j);
      if (w == 0.0) continue;
      const double ll = engine.exact(x.records().col(j).data(), w, ptr.data());
      if (ll == -std::numeric_limits<double>::infinity()) return ll;
      total += w * ll;
      weight += w;
    }
    stats.weight += weight;
    return total;
  }

  /// Mean-field E-step over distinct records [begin, end): coordinate ascent on each record's
  /// factors (warm-started from the previous E-step on `x` if `family.warm_start`), adds
  /// E_q[counts] into `stats` and returns the sum of the records' weighted ELBOs.
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats,
                const mean_field& family) const {
    validate(family, "discrete_bayes_net::e_step");
    check_block(x, begin, end, "discrete_bayes_net::e_step");
    detail::bn_engine engine(st_, logt_, opts_.enumeration_limit);
    const auto ptr = count_pointers(stats);
    detail::bn_mean_field_cache* cache = family.warm_start ? &x.variational_state() : nullptr;
    std::vector<double> local;
    double total = 0.0, weight = 0.0;
    for (Eigen::Index j = begin; j < end; ++j) {
      const double w = x.counts()(j);
      if (w == 0.0) continue;
      const int* rec = x.records().col(j).data();
      double* q;
      bool init = true;
      if (cache) {
        q = cache->q.data() + cache->offset[static_cast<std::size_t>(j)];
        init = !cache->ready[static_cast<std::size_t>(j)];
        cache->ready[static_cast<std::size_t>(j)] = 1;
      } else {
        std::size_t k = 0;
        for (Eigen::Index i = 0; i < x.num_variables(); ++i)
          if (rec[i] == missing) k += static_cast<std::size_t>(st_.cards[static_cast<std::size_t>(i)]);
        local.resize(k);
        q = local.data();
      }
      const double elbo = engine.mean_field(rec, w, ptr.data(), q, init, family.max_sweeps, family.tolerance);
      if (elbo == -std::numeric_limits<double>::infinity()) return elbo;
      total += w * elbo;
      weight += w;
    }
    stats.weight += weight;
    return total;
  }

  /// M-step: theta_v[r, :] = (n_v[r, :] + a) / (sum + K_v a); a row with zero total follows
  /// `options().unseen`. @throws numerical_error (parameters unchanged) if a count is negative
  /// or not finite; invalid_argument if the statistics have the wrong shape.
  void m_step(const stats_type& s) {
    detail::require(s.counts.size() == vars_.size(), "discrete_bayes_net::m_step",
                    "argument 'stats' must have one count table per variable (", vars_.size(), "), got ", s.counts.size());
    params_type next = params_;
    const double a = opts_.pseudo_count;
    for (std::size_t v = 0; v < vars_.size(); ++v) {
      const Eigen::MatrixXd& n = s.counts[v];
      detail::require_shape(n, rows_[v], vars_[v].states, "discrete_bayes_net::m_step", "stats.counts");
      const int K = vars_[v].states;
      for (Eigen::Index r = 0; r < n.rows(); ++r) {
        if (!n.row(r).allFinite() || (n.row(r).array() < 0.0).any())
          throw numerical_error(detail::concat("discrete_bayes_net::m_step: expected counts of variable '",
                                               vars_[v].name, "' (row ", r, ") are negative or not finite"));
        const double total = n.row(r).sum() + K * a;
        if (total > 0.0)
          next.tables[v].row(r) = (n.row(r).array() + a) / total;
        else if (opts_.unseen == unseen_parent_policy::uniform)
          next.tables[v].row(r).setConstant(1.0 / K);
        // keep_previous: the row is left as it is.
      }
    }
    set_params_unchecked(std::move(next));
  }

  /// log of the Dirichlet(a + 1) prior density of the tables, up to its normalizing constant:
  /// a * sum log theta (0 when a = 0). MAP-EM (a > 0) never decreases log-likelihood + this.
  double log_prior() const {
    const double a = opts_.pseudo_count;
    if (a == 0.0) return 0.0;
    double lp = 0.0;
    for (const auto& t : params_.tables) lp += a * t.array().log().sum();
    return lp;
  }

  /// Random starting tables: every row drawn from Dirichlet(1, ..., 1) with the caller's engine.
  template <std::uniform_random_bit_generator Rng>
  void initialize(const data_type& x, Rng& rng) {
    check_data(x, "discrete_bayes_net::initialize");
    std::exponential_distribution<double> e(1.0);
    params_type p = params_;
    for (auto& t : p.tables)
      for (Eigen::Index r = 0; r < t.rows(); ++r) {
        for (Eigen::Index k = 0; k < t.cols(); ++k) t(r, k) = e(rng) + std::numeric_limits<double>::min();
        t.row(r) /= t.row(r).sum();
      }
    set_params_unchecked(std::move(p));
  }

  // ----- queries -----

  /// Total weighted log-likelihood sum_j w_j log p(o_j) of grouped records.
  double log_likelihood(const data_type& x) const {
    stats_type s = zero_stats();
    return e_step(x, 0, x.num_distinct(), s);
  }

  /// log p(o_j) of each record (column) of `x` (variables x records, entries in [0, K_v) or
  /// `missing`). @throws invalid_argument for a wrong row count or a state out of range
  Eigen::VectorXd log_likelihood(const Eigen::Ref<const Eigen::MatrixXi>& x) const {
    check_records(x, "discrete_bayes_net::log_likelihood");
    detail::bn_engine engine(st_, logt_, opts_.enumeration_limit);
    Eigen::VectorXd ll(x.cols());
    Eigen::VectorXi rec(x.rows());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      rec = x.col(j);
      ll(j) = engine.exact(rec.data(), 1.0, nullptr);
    }
    return ll;
  }

  /// Posterior marginals p(X_v | evidence) of every variable (an observed variable gets its
  /// observed state with probability 1), by one exact inference pass.
  /// @throws invalid_argument for an invalid record or evidence of probability zero
  std::vector<Eigen::VectorXd> marginals(const Eigen::Ref<const Eigen::VectorXi>& evidence) const {
    check_records(evidence, "discrete_bayes_net::marginals");
    stats_type s = zero_stats();
    const auto ptr = count_pointers(s);
    detail::bn_engine engine(st_, logt_, opts_.enumeration_limit);
    const Eigen::VectorXi rec = evidence;
    const double ll = engine.exact(rec.data(), 1.0, ptr.data());
    detail::require(ll > -std::numeric_limits<double>::infinity(), "discrete_bayes_net::marginals",
                    "argument 'evidence' has probability zero under the current tables");
    std::vector<Eigen::VectorXd> out;
    for (const auto& c : s.counts) out.push_back(c.colwise().sum().transpose());
    return out;
  }

  /// Posterior marginal p(X_v | evidence) of variable v.
  Eigen::VectorXd marginal(Eigen::Index v, const Eigen::Ref<const Eigen::VectorXi>& evidence) const {
    detail::require(v >= 0 && v < num_variables(), "discrete_bayes_net::marginal",
                    "argument 'v' must be in [0, ", num_variables(), "), got ", v);
    return marginals(evidence)[static_cast<std::size_t>(v)];
  }
  /// Posterior marginal of the variable called `name`.
  Eigen::VectorXd marginal(std::string_view name, const Eigen::Ref<const Eigen::VectorXi>& evidence) const {
    return marginal(index(name), evidence);
  }

  /// The joint posterior of a record's missing values: every completion with its weight
  /// (J = prod of the missing K, the first missing variable varying fastest), and the
  /// marginals. The joint is exponential in the number of missing values: at most
  /// `max_completions` completions are listed. @throws invalid_argument for an invalid
  /// record, more completions than `max_completions`, or a record of probability zero
  bn_posterior posterior(const Eigen::Ref<const Eigen::VectorXi>& record, std::size_t max_completions = 1u << 20) const {
    constexpr const char* fn = "discrete_bayes_net::posterior";
    check_records(record, fn);
    const Eigen::VectorXi rec = record;
    double J = 1.0;
    for (Eigen::Index i = 0; i < rec.size(); ++i)
      if (rec(i) == missing) J *= st_.cards[static_cast<std::size_t>(i)];
    detail::require(J <= static_cast<double>(max_completions), fn, "the record has ", J,
                    " completions, more than 'max_completions' (", max_completions, "); use marginals()");
    detail::bn_engine engine(st_, logt_, opts_.enumeration_limit);
    std::vector<double> post;
    bn_posterior out;
    out.log_likelihood = engine.joint(rec.data(), post, out.missing);
    detail::require(out.log_likelihood > -std::numeric_limits<double>::infinity(), fn,
                    "argument 'record' has probability zero under the current tables");
    const auto nj = static_cast<Eigen::Index>(post.size());
    out.weights = Eigen::Map<const Eigen::VectorXd>(post.data(), nj);
    out.completions = rec.replicate(1, nj);
    for (Eigen::Index c = 0; c < nj; ++c) {
      Eigen::Index rest = c;
      for (int v : out.missing) {
        const int K = st_.cards[static_cast<std::size_t>(v)];
        out.completions(v, c) = static_cast<int>(rest % K);
        rest /= K;
      }
    }
    const auto all = marginals(rec);
    for (int v : out.missing) out.marginals.push_back(all[static_cast<std::size_t>(v)]);
    return out;
  }

  /// n complete records (variables x n) by ancestral sampling from the caller's engine.
  template <std::uniform_random_bit_generator Rng>
  Eigen::MatrixXi sample(Eigen::Index n, Rng& rng) const {
    detail::require(n >= 0, "discrete_bayes_net::sample", "argument 'n' must be >= 0, got ", n);
    Eigen::MatrixXi x(num_variables(), n);
    for (Eigen::Index j = 0; j < n; ++j)
      for (int v : topo_) {
        const auto r = parent_row(v, x.col(j));
        x(v, j) = static_cast<int>(sample_categorical(params_.tables[static_cast<std::size_t>(v)].row(r), rng));
      }
    return x;
  }

 private:
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& v : vars_) out.push_back(v.name);
    return out;
  }

  void build_structure() {
    constexpr const char* fn = "discrete_bayes_net";
    const std::size_t n = vars_.size();
    detail::require(n > 0, fn, "argument 'variables' must not be empty");
    detail::require(std::isfinite(opts_.pseudo_count) && opts_.pseudo_count >= 0.0, fn,
                    "option 'pseudo_count' must be finite and >= 0, got ", opts_.pseudo_count);
    detail::require(opts_.enumeration_limit >= 1, fn, "option 'enumeration_limit' must be positive, got 0");
    detail::require(std::isfinite(opts_.table_tolerance) && opts_.table_tolerance >= 0.0, fn,
                    "option 'table_tolerance' must be finite and >= 0, got ", opts_.table_tolerance);
    for (std::size_t v = 0; v < n; ++v) {
      detail::require(!vars_[v].name.empty(), fn, "variable ", v, " has an empty name");
      detail::require(index_.emplace(vars_[v].name, static_cast<Eigen::Index>(v)).second, fn,
                      "variable '", vars_[v].name, "' is defined twice");
      detail::require(vars_[v].states >= 1, fn, "variable '", vars_[v].name, "' must have at least 1 state, got ",
                      vars_[v].states);
    }
    parents_.assign(n, {});
    for (std::size_t v = 0; v < n; ++v)
      for (const auto& p : vars_[v].parents) {
        const auto it = index_.find(p);
        detail::require(it != index_.end(), fn, "variable '", vars_[v].name, "' has unknown parent '", p, "'");
        detail::require(it->second != static_cast<Eigen::Index>(v), fn, "variable '", vars_[v].name,
                        "' is its own parent (a cycle)");
        detail::require(std::find(parents_[v].begin(), parents_[v].end(), it->second) == parents_[v].end(), fn,
                        "variable '", vars_[v].name, "' lists parent '", p, "' twice");
        parents_[v].push_back(static_cast<int>(it->second));
      }
    // Depth-first search along parent links: a grey parent closes a cycle; post-order is a
    // topological order.
    std::vector<int> colour(n, 0), path;
    const auto visit = [&](auto&& self, int v) -> void {
      colour[static_cast<std::size_t>(v)] = 1;
      path.push_back(v);
      for (int p : parents_[static_cast<std::size_t>(v)]) {
        if (colour[static_cast<std::size_t>(p)] == 1) {
          std::ostringstream cycle;
          cycle << "'" << vars_[static_cast<std::size_t>(p)].name << "'";
          const auto start = std::find(path.begin(), path.end(), p);
          for (auto it = path.end(); it != start;) cycle << " <- '" << vars_[static_cast<std::size_t>(*--it)].name << "'";
          detail::throw_invalid(fn, "variable '", vars_[static_cast<std::size_t>(p)].name,
                                "' is on a cycle (child <- parent): ", cycle.str());
        }
        if (colour[static_cast<std::size_t>(p)] == 0) self(self, p);
      }
      colour[static_cast<std::size_t>(v)] = 2;
      path.pop_back();
      topo_.push_back(v);
    };
    for (std::size_t v = 0; v < n; ++v)
      if (colour[v] == 0) visit(visit, static_cast<int>(v));

    st_.cards.resize(n);
    st_.fam_vars.assign(n, {});
    st_.fam_strides.assign(n, {});
    rows_.assign(n, 1);
    for (std::size_t v = 0; v < n; ++v) st_.cards[v] = vars_[v].states;
    for (std::size_t v = 0; v < n; ++v) {
      const auto& pa = parents_[v];
      std::vector<int> strides(pa.size() + 1);
      double rows = 1.0;
      for (std::size_t j = pa.size(); j-- > 0;) {
        strides[j] = static_cast<int>(rows);
        rows *= st_.cards[static_cast<std::size_t>(pa[j])];
      }
      detail::require(rows * vars_[v].states < 2147483647.0, fn, "the table of variable '", vars_[v].name,
                      "' would have ", rows * vars_[v].states, " entries, too many");
      rows_[v] = static_cast<Eigen::Index>(rows);
      strides.back() = static_cast<int>(rows);
      st_.fam_vars[v] = pa;
      st_.fam_vars[v].push_back(static_cast<int>(v));
      st_.fam_strides[v] = std::move(strides);
    }
    st_.finish();
  }

  void check_table(std::size_t v, const Eigen::MatrixXd& t) const {
    constexpr const char* fn = "discrete_bayes_net";
    const auto& name = vars_[v].name;
    detail::require(t.rows() == rows_[v] && t.cols() == vars_[v].states, fn, "the table of variable '", name,
                    "' must be ", rows_[v], " x ", vars_[v].states, " (parent configurations x states), got ",
                    t.rows(), " x ", t.cols());
    for (Eigen::Index r = 0; r < t.rows(); ++r) {
      for (Eigen::Index k = 0; k < t.cols(); ++k)
        detail::require(std::isfinite(t(r, k)) && t(r, k) >= 0.0 && t(r, k) <= 1.0, fn, "the table of variable '",
                        name, "' must have entries in [0, 1], but entry (", r, ", ", k, ") is ", t(r, k));
      const double s = t.row(r).sum();
      detail::require(std::abs(s - 1.0) <= opts_.table_tolerance, fn, "row ", r, " of the table of variable '", name,
                      "' must sum to 1 (within ", opts_.table_tolerance, "), but sums to ", s);
    }
  }

  void set_params_unchecked(params_type p) {
    params_ = std::move(p);
    logt_.resize(vars_.size());
    for (std::size_t v = 0; v < vars_.size(); ++v) {
      const Eigen::MatrixXd& t = params_.tables[v];
      logt_[v] = Eigen::Map<const Eigen::VectorXd>(t.data(), t.size()).array().log();
    }
  }

  std::vector<double*> count_pointers(stats_type& s) const {
    std::vector<double*> p(vars_.size());
    for (std::size_t v = 0; v < vars_.size(); ++v) {
      detail::require_shape(s.counts.at(v), rows_[v], vars_[v].states, "discrete_bayes_net::e_step", "stats.counts");
      p[v] = s.counts[v].data();
    }
    return p;
  }

  void check_data(const data_type& x, std::string_view fn) const {
    detail::require(x.cardinalities() == st_.cards, fn,
                    "argument 'x' was made for a network with other variables or cardinalities");
  }

  void check_block(const data_type& x, Eigen::Index b, Eigen::Index e, std::string_view fn) const {
    check_data(x, fn);
    detail::require(0 <= b && b <= e && e <= x.num_distinct(), fn, "block [", b, ", ", e,
                    ") must lie within [0, ", x.num_distinct(), ")");
  }

  void check_records(const Eigen::Ref<const Eigen::MatrixXi>& x, std::string_view fn) const {
    detail::require(x.rows() == num_variables(), fn, "argument 'x' must have one row per variable (",
                    num_variables(), "), got ", x.rows());
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index i = 0; i < x.rows(); ++i) {
        const int s = x(i, j);
        if (s != missing && (s < 0 || s >= st_.cards[static_cast<std::size_t>(i)]))
          detail::throw_invalid(fn, "the state of variable '", vars_[static_cast<std::size_t>(i)].name, "' in record ",
                                j, " must be in [0, ", st_.cards[static_cast<std::size_t>(i)],
                                ") or latent::missing (", missing, "), got ", s);
      }
  }

  std::vector<bn_variable> vars_;
  discrete_bayes_net_options opts_;
  std::unordered_map<std::string, Eigen::Index> index_;
  std::vector<std::vector<int>> parents_;
  std::vector<int> topo_;
  std::vector<Eigen::Index> rows_;
  detail::bn_structure st_;
  params_type params_;
  std::vector<Eigen::VectorXd> logt_;
};

}  // namespace latent
