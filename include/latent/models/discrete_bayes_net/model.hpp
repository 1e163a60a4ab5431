#pragma once
/// @file
/// The model class `basic_discrete_bayes_net<S>` (`discrete_bayes_net` = double): a discrete
/// Bayesian network with values missing at random, fitted by exact EM or by mean-field
/// variational EM. The maths is in discrete_bayes_net.hpp's file comment.

#include <latent/core/error.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/core/variational_families.hpp>
#include <latent/models/discrete_bayes_net/data.hpp>
#include <latent/models/discrete_bayes_net/exact_inference.hpp>
#include <latent/models/discrete_bayes_net/mean_field.hpp>
#include <latent/models/discrete_bayes_net/mean_field_state.hpp>
#include <latent/models/discrete_bayes_net/options.hpp>
#include <latent/models/discrete_bayes_net/posterior.hpp>
#include <latent/models/discrete_bayes_net/stats.hpp>
#include <latent/models/discrete_bayes_net/structure.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// A discrete Bayesian network whose tables and inference arithmetic are in S (see
/// discrete_bayes_net.hpp for the model, the E- and M-steps and the precision policy).
///
/// Satisfies `EMModel` and `VariationalEMModel<basic_discrete_bayes_net<S>, mean_field>`:
/// ```
/// latent::discrete_bayes_net net({{"A", 2, {}}, {"B", 2, {}}, {"C", 2, {"A", "B"}}});
/// auto data = net.make_data(x);             // x: 3 x N, entries 0/1 or latent::missing
/// auto fit = latent::em(net, data);         // exact EM
/// auto vfit = latent::variational_em(net, data, latent::mean_field{});
/// ```
template <Scalar S>
class basic_discrete_bayes_net {
 public:
  using scalar_type = S;
  using data_type = basic_discrete_bayes_net_data<S>;
  using stats_type = basic_discrete_bayes_net_stats<S>;
  using params_type = basic_discrete_bayes_net_params<S>;
  using posterior_type = basic_bn_posterior<S>;
  using table_type = matrix_t<S>;

  /// A network with uniform tables.
  /// @throws invalid_argument naming the variable: empty or duplicate name, states < 1,
  ///         unknown or repeated parent, a variable its own parent, a cycle
  explicit basic_discrete_bayes_net(std::vector<bn_variable> variables, const discrete_bayes_net_options& options = {})
      : g_(std::move(variables)), opts_(options) {
    check_options();
    params_type p;
    for (std::size_t v = 0; v < g_.vars.size(); ++v) {
      const int K = g_.vars[v].states;
      p.tables.push_back(table_type::Constant(g_.rows[v], K, static_cast<S>(1.0 / K)));
    }
    set_params_unchecked(std::move(p));
  }

  /// A network with given tables (`tables[v]` is P_v x K_v, rows summing to 1).
  /// @throws invalid_argument naming the variable for a structural error, a table of the
  ///         wrong size, an entry outside [0, 1] or a row not summing to 1
  basic_discrete_bayes_net(std::vector<bn_variable> variables, std::vector<table_type> tables,
                           const discrete_bayes_net_options& options = {})
      : g_(std::move(variables)), opts_(options) {
    check_options();
    set_params(params_type{std::move(tables)});
  }

  // ----- structure (every index argument is checked: invalid_argument naming it) -----

  /// Number of variables n.
  Eigen::Index num_variables() const { return g_.size(); }
  /// The variables as given.
  const std::vector<bn_variable>& variables() const { return g_.vars; }
  /// Name of variable v.
  const std::string& name(Eigen::Index v) const {
    g_.check_variable(v, "discrete_bayes_net::name");
    return g_.vars[static_cast<std::size_t>(v)].name;
  }
  /// Index of the variable called `name`. @throws invalid_argument if there is none.
  Eigen::Index index(std::string_view name) const { return g_.find(name, "discrete_bayes_net::index"); }
  /// Cardinalities K_v.
  const std::vector<int>& cardinalities() const { return g_.st.cards; }
  /// Parent indices of variable v, in table order.
  const std::vector<int>& parents(Eigen::Index v) const {
    g_.check_variable(v, "discrete_bayes_net::parents");
    return g_.parents[static_cast<std::size_t>(v)];
  }
  /// A topological order (parents before children).
  const std::vector<int>& topological_order() const { return g_.topo; }
  /// The options.
  const discrete_bayes_net_options& options() const { return opts_; }

  // ----- parameters -----

  /// The tables.
  const params_type& params() const { return params_; }
  /// Table of variable v (P_v x K_v).
  const table_type& table(Eigen::Index v) const {
    g_.check_variable(v, "discrete_bayes_net::table");
    return params_.tables[static_cast<std::size_t>(v)];
  }
  /// Table of the variable called `name`.
  const table_type& table(std::string_view name) const { return table(index(name)); }

  /// Set all tables. @throws invalid_argument naming the variable (see the constructor).
  void set_params(params_type p) {
    detail::require(p.tables.size() == g_.vars.size(), "discrete_bayes_net",
                    "argument 'tables' must have one table per variable (", g_.vars.size(), "), got ", p.tables.size());
    // Rounding exact rows to S moves their sum by up to epsilon(S) / 2.
    const double tol = std::max(opts_.table_tolerance, 4.0 * static_cast<double>(std::numeric_limits<S>::epsilon()));
    for (std::size_t v = 0; v < g_.vars.size(); ++v) g_.check_table(v, p.tables[v], tol);
    set_params_unchecked(std::move(p));
  }

  /// Number of free parameters, sum_v P_v (K_v - 1): what BIC and AIC count.
  Eigen::Index num_free_parameters() const {
    Eigen::Index p = 0;
    for (std::size_t v = 0; v < g_.vars.size(); ++v) p += g_.rows[v] * (g_.vars[v].states - 1);
    return p;
  }

  /// Row index of a parent configuration of variable v given a record whose parents of v
  /// are observed. @throws invalid_argument for v out of range, a record without one entry
  /// per variable, or a parent of v missing or out of range in it
  Eigen::Index parent_row(Eigen::Index v, const Eigen::Ref<const Eigen::VectorXi>& record) const {
    constexpr const char* fn = "discrete_bayes_net::parent_row";
    g_.check_variable(v, fn);
    detail::require(record.size() == num_variables(), fn, "argument 'record' must have one entry per variable (",
                    num_variables(), "), got ", record.size());
    Eigen::Index r = 0;
    const auto& fv = g_.st.fam_vars[static_cast<std::size_t>(v)];
    const auto& fs = g_.st.fam_strides[static_cast<std::size_t>(v)];
    for (std::size_t a = 0; a + 1 < fv.size(); ++a) {
      const int s = record(fv[a]), K = g_.st.cards[static_cast<std::size_t>(fv[a])];
      detail::require(s >= 0 && s < K, fn, "argument 'record': parent '", g_.vars[static_cast<std::size_t>(fv[a])].name,
                      "' of '", g_.vars[static_cast<std::size_t>(v)].name, "' must be observed, in [0, ", K, "), got ", s);
      r += s * fs[a];
    }
    return r;
  }

  // ----- data -----

  /// Validate and group records (variables x records, entries in [0, K_v) or `missing`).
  data_type make_data(const Eigen::Ref<const Eigen::MatrixXi>& x, const bn_data_options& options = {}) const {
    return data_type(x, g_.names(), g_.st.cards, options);
  }
  /// Validate and group weighted records (weights in `accumulator_t<S>`, i.e. double).
  data_type make_data(const Eigen::Ref<const Eigen::MatrixXi>& x,
                      const Eigen::Ref<const vector_t<accumulator_t<S>>>& weights,
                      const bn_data_options& options = {}) const {
    return data_type(x, weights, g_.names(), g_.st.cards, options);
  }

  // ----- EM contract -----

  /// Number of distinct records (what E-step blocks partition).
  Eigen::Index num_observations(const data_type& x) const { return x.num_distinct(); }
  /// Total record weight (the scale of the EM tolerance).
  double observation_weight(const data_type& x) const { return static_cast<double>(x.total_weight()); }

  /// Zero expected counts, shaped like the tables.
  stats_type zero_stats() const {
    stats_type s;
    s.counts.reserve(g_.vars.size());
    for (std::size_t v = 0; v < g_.vars.size(); ++v)
      s.counts.push_back(matrix_t<accumulator_t<S>>::Zero(g_.rows[v], g_.vars[v].states));
    return s;
  }

  /// Exact E-step over distinct records [begin, end): adds the expected counts into `stats`
  /// and returns sum_j w_j log p(o_j) (-inf if a record with positive weight is impossible).
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats) const {
    check_block(x, begin, end, "discrete_bayes_net::e_step");
    detail::bn_exact_engine<S> engine(g_.st, logt_, opts_.enumeration_limit);
    const auto ptr = count_pointers(stats, "discrete_bayes_net::e_step");
    return sum_records(x, begin, end, stats, [&](const int* rec, accumulator_t<S> w, Eigen::Index) {
      return engine.exact(rec, w, ptr.data());
    });
  }

  /// Mean-field E-step over distinct records [begin, end): coordinate ascent on each record's
  /// factors (warm-started from the previous E-step on `x` if `family.warm_start`: the
  /// factors `x` keeps, see `variational_state()`), adds E_q[counts] into `stats` and returns
  /// the sum of the records' weighted ELBOs. In float, sweeps stop once no entry moves by
  /// more than max(family.tolerance, 4 epsilon(S)).
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats,
                const mean_field& family) const {
    constexpr const char* fn = "discrete_bayes_net::e_step";
    validate(family, fn);
    check_block(x, begin, end, fn);
    if (!family.warm_start) return mean_field_block(x, begin, end, stats, family, nullptr);
    const auto q = x.variational_state().slice(begin, end);
    return mean_field_block(x, begin, end, stats, family, &q);
  }

  /// Mean-field E-step with caller-owned factors: `q` is `state.slice(begin, end)` of a
  /// `bn_mean_field_state<S>` made for `x` (`make_variational_state(x)`); each record starts
  /// from its factors there (uniform the first time) and leaves its new factors there, so a
  /// solver can own the variational state instead of the data. `family.warm_start` is not
  /// consulted. @throws invalid_argument if `q` is not the slice [begin, end) of a state
  /// for `x`'s records
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats, const mean_field& family,
                const typename bn_mean_field_state<S>::slice_type& q) const {
    constexpr const char* fn = "discrete_bayes_net::e_step";
    validate(family, fn);
    check_block(x, begin, end, fn);
    detail::require(q.begin == begin && q.end == end && q.q != nullptr, fn, "argument 'q' must be the slice [", begin,
                    ", ", end, ") of a variational state, got [", q.begin, ", ", q.end, ")");
    return mean_field_block(x, begin, end, stats, family, &q);
  }

  /// Fresh mean-field factors for the records of `x` (see the caller-owned `e_step`).
  bn_mean_field_state<S> make_variational_state(const data_type& x) const {
    check_data(x, "discrete_bayes_net::make_variational_state");
    return bn_mean_field_state<S>(x.records(), g_.st.cards);
  }

  /// The solver-owned form (`StatefulVariationalEMModel`): `variational_em` makes one state
  /// per fit, so two fits on the same data never share factors.
  bn_mean_field_state<S> make_variational_state(const data_type& x, const mean_field&) const {
    return make_variational_state(x);
  }

  /// Mean-field E-step over [begin, end) with the solver's whole state: warm-started from
  /// `state`'s factors of these records if `family.warm_start`, from uniform factors (and
  /// leaving `state` alone) otherwise.
  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats, const mean_field& family,
                bn_mean_field_state<S>& state) const {
    if (!family.warm_start) {
      constexpr const char* fn = "discrete_bayes_net::e_step";
      validate(family, fn);
      check_block(x, begin, end, fn);
      return mean_field_block(x, begin, end, stats, family, nullptr);
    }
    return e_step(x, begin, end, stats, family, state.slice(begin, end));
  }

  /// M-step: theta_v[r, :] = (n_v[r, :] + a) / (sum + K_v a), computed in double from the
  /// double counts and stored in S; a row with zero total follows `options().unseen`.
  /// @throws numerical_error (parameters unchanged) if a count is negative or not finite;
  ///         invalid_argument if the statistics have the wrong shape.
  void m_step(const stats_type& s) {
    constexpr const char* fn = "discrete_bayes_net::m_step";
    detail::require(s.counts.size() == g_.vars.size(), fn, "argument 'stats' must have one count table per variable (",
                    g_.vars.size(), "), got ", s.counts.size());
    params_type next = params_;
    const auto a = static_cast<accumulator_t<S>>(opts_.pseudo_count);
    for (std::size_t v = 0; v < g_.vars.size(); ++v) {
      const auto& n = s.counts[v];
      detail::require_shape(n, g_.rows[v], g_.vars[v].states, fn, "stats.counts");
      const int K = g_.vars[v].states;
      for (Eigen::Index r = 0; r < n.rows(); ++r) {
        if (!n.row(r).allFinite() || (n.row(r).array() < 0).any())
          throw numerical_error(detail::concat("discrete_bayes_net::m_step: expected counts of variable '",
                                               g_.vars[v].name, "' (row ", r, ") are negative or not finite"));
        const auto total = n.row(r).sum() + K * a;
        if (total > 0)
          next.tables[v].row(r) = ((n.row(r).array() + a) / total).template cast<S>();
        else if (opts_.unseen == unseen_parent_policy::uniform)
          next.tables[v].row(r).setConstant(static_cast<S>(1.0 / K));
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
    for (const auto& t : params_.tables) lp += a * t.template cast<double>().array().log().sum();
    return lp;
  }

  /// Random starting tables: every row drawn from Dirichlet(1, ..., 1) with the caller's
  /// engine (drawn in double, then rounded to S, so float and double consume it alike).
  template <std::uniform_random_bit_generator Rng>
  void initialize(const data_type& x, Rng& rng) {
    check_data(x, "discrete_bayes_net::initialize");
    std::exponential_distribution<double> e(1.0);
    params_type p = params_;
    Eigen::RowVectorXd row;
    for (auto& t : p.tables)
      for (Eigen::Index r = 0; r < t.rows(); ++r) {
        row.resize(t.cols());
        for (Eigen::Index k = 0; k < t.cols(); ++k) row(k) = e(rng) + std::numeric_limits<double>::min();
        t.row(r) = (row / row.sum()).template cast<S>();
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
  /// `missing`), in double. @throws invalid_argument for a wrong row count or a state out of range
  Eigen::RowVectorXd log_likelihood_per_observation(const Eigen::Ref<const Eigen::MatrixXi>& x) const {
    g_.check_records(x, "discrete_bayes_net::log_likelihood_per_observation");
    detail::bn_exact_engine<S> engine(g_.st, logt_, opts_.enumeration_limit);
    Eigen::RowVectorXd ll(x.cols());
    Eigen::VectorXi rec(x.rows());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      rec = x.col(j);
      ll(j) = engine.exact(rec.data(), 1, nullptr);
    }
    return ll;
  }
  /// The per-record log-likelihoods as a column vector (the first edition's overload).
  [[deprecated("use log_likelihood_per_observation")]] Eigen::VectorXd log_likelihood(
      const Eigen::Ref<const Eigen::MatrixXi>& x) const { return log_likelihood_per_observation(x).transpose(); }

  /// BIC = -2 log-likelihood + p log n, with p = `num_free_parameters()` and n the total
  /// record weight of `x` (the number of records for unit weights).
  double bic(const data_type& x) const {
    return -2.0 * log_likelihood(x) +
           static_cast<double>(num_free_parameters()) * std::log(static_cast<double>(x.total_weight()));
  }
  /// AIC = -2 log-likelihood + 2 p.
  double aic(const data_type& x) const {
    return -2.0 * log_likelihood(x) + 2.0 * static_cast<double>(num_free_parameters());
  }

  /// Posterior marginals p(X_v | evidence) of every variable (an observed variable gets its
  /// observed state with probability 1), by one exact inference pass.
  /// @throws invalid_argument for an invalid record or evidence of probability zero
  std::vector<vector_t<S>> marginals(const Eigen::Ref<const Eigen::VectorXi>& evidence) const {
    constexpr const char* fn = "discrete_bayes_net::marginals";
    g_.check_records(evidence, fn);
    stats_type s = zero_stats();
    const auto ptr = count_pointers(s, fn);
    detail::bn_exact_engine<S> engine(g_.st, logt_, opts_.enumeration_limit);
    const Eigen::VectorXi rec = evidence;
    const double ll = engine.exact(rec.data(), 1, ptr.data());
    detail::require(ll > -std::numeric_limits<double>::infinity(), fn,
                    "argument 'evidence' has probability zero under the current tables");
    std::vector<vector_t<S>> out;
    for (const auto& c : s.counts) out.push_back(c.colwise().sum().transpose().template cast<S>());
    return out;
  }

  /// Posterior marginal p(X_v | evidence) of variable v.
  vector_t<S> marginal(Eigen::Index v, const Eigen::Ref<const Eigen::VectorXi>& evidence) const {
    g_.check_variable(v, "discrete_bayes_net::marginal");
    return marginals(evidence)[static_cast<std::size_t>(v)];
  }
  /// Posterior marginal of the variable called `name`.
  vector_t<S> marginal(std::string_view name, const Eigen::Ref<const Eigen::VectorXi>& evidence) const {
    return marginal(index(name), evidence);
  }

  /// The joint posterior of a record's missing values: every completion with its weight
  /// (J = prod of the missing K, the first missing variable varying fastest), and the
  /// marginals. The joint is exponential in the number of missing values: at most
  /// `max_completions` completions are listed. @throws invalid_argument for an invalid
  /// record, more completions than `max_completions`, or a record of probability zero
  posterior_type posterior(const Eigen::Ref<const Eigen::VectorXi>& record, std::size_t max_completions = 1u << 20) const {
    constexpr const char* fn = "discrete_bayes_net::posterior";
    g_.check_records(record, fn);
    const Eigen::VectorXi rec = record;
    double J = 1.0;
    for (Eigen::Index i = 0; i < rec.size(); ++i)
      if (rec(i) == missing) J *= g_.st.cards[static_cast<std::size_t>(i)];
    detail::require(J <= static_cast<double>(max_completions), fn, "the record has ", J,
                    " completions, more than 'max_completions' (", max_completions, "); use marginals()");
    detail::bn_exact_engine<S> engine(g_.st, logt_, opts_.enumeration_limit);
    std::vector<S> post;
    posterior_type out;
    out.log_likelihood = engine.joint(rec.data(), post, out.missing);
    detail::require(out.log_likelihood > -std::numeric_limits<double>::infinity(), fn,
                    "argument 'record' has probability zero under the current tables");
    const auto nj = static_cast<Eigen::Index>(post.size());
    out.weights = Eigen::Map<const vector_t<S>>(post.data(), nj);
    out.completions = rec.replicate(1, nj);
    for (Eigen::Index c = 0; c < nj; ++c) {
      Eigen::Index rest = c;
      for (int v : out.missing) {
        const int K = g_.st.cards[static_cast<std::size_t>(v)];
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
      for (int v : g_.topo) {
        const auto& fv = g_.st.fam_vars[static_cast<std::size_t>(v)];
        const auto& fs = g_.st.fam_strides[static_cast<std::size_t>(v)];
        Eigen::Index r = 0;
        for (std::size_t a = 0; a + 1 < fv.size(); ++a) r += x(fv[a], j) * fs[a];
        x(v, j) = static_cast<int>(sample_categorical(params_.tables[static_cast<std::size_t>(v)].row(r), rng));
      }
    return x;
  }

 private:
  // Runs `record(rec, w, j)` (returning the record's log-likelihood or ELBO) over the
  // distinct records [begin, end) with positive weight; sums w times it in double and adds
  // the weight to `stats`. Stops at -inf (an impossible record).
  template <class Record>
  double sum_records(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats,
                     Record&& record) const {
    double total = 0.0;
    accumulator_t<S> weight = 0;
    for (Eigen::Index j = begin; j < end; ++j) {
      const accumulator_t<S> w = x.counts()(j);
      if (w == 0) continue;
      const double ll = record(x.records().col(j).data(), w, j);
      if (ll == -std::numeric_limits<double>::infinity()) return ll;
      total += static_cast<double>(w) * ll;
      weight += w;
    }
    stats.weight += weight;
    return total;
  }

  // Mean field over [begin, end), each record warm-started from `q` (if given) or from
  // uniform factors in block-local memory.
  double mean_field_block(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& stats,
                          const mean_field& family, const typename bn_mean_field_state<S>::slice_type* q) const {
    detail::bn_mean_field_engine<S> engine(g_.st, logt_);
    const auto ptr = count_pointers(stats, "discrete_bayes_net::e_step");
    const S tol = std::max(static_cast<S>(family.tolerance), 4 * std::numeric_limits<S>::epsilon());
    std::vector<S> local;
    return sum_records(x, begin, end, stats, [&](const int* rec, accumulator_t<S> w, Eigen::Index j) {
      if (q) return engine.run(rec, w, ptr.data(), q->factors(j), !q->take_ready(j), family.max_sweeps, tol);
      local.resize(engine.factor_size(rec));
      return engine.run(rec, w, ptr.data(), local.data(), true, family.max_sweeps, tol);
    });
  }

  void check_options() const {
    constexpr const char* fn = "discrete_bayes_net";
    detail::require(std::isfinite(opts_.pseudo_count) && opts_.pseudo_count >= 0.0, fn,
                    "option 'pseudo_count' must be finite and >= 0, got ", opts_.pseudo_count);
    detail::require(opts_.enumeration_limit >= 1, fn, "option 'enumeration_limit' must be positive, got 0");
    detail::require(std::isfinite(opts_.table_tolerance) && opts_.table_tolerance >= 0.0, fn,
                    "option 'table_tolerance' must be finite and >= 0, got ", opts_.table_tolerance);
  }

  void set_params_unchecked(params_type p) {
    params_ = std::move(p);
    logt_.resize(g_.vars.size());
    for (std::size_t v = 0; v < g_.vars.size(); ++v) {
      const table_type& t = params_.tables[v];
      logt_[v] = Eigen::Map<const vector_t<S>>(t.data(), t.size()).array().log();
    }
  }

  std::vector<accumulator_t<S>*> count_pointers(stats_type& s, std::string_view fn) const {
    detail::require(s.counts.size() == g_.vars.size(), fn, "argument 'stats' must have one count table per variable (",
                    g_.vars.size(), "), got ", s.counts.size());
    std::vector<accumulator_t<S>*> p(g_.vars.size());
    for (std::size_t v = 0; v < g_.vars.size(); ++v) {
      detail::require_shape(s.counts[v], g_.rows[v], g_.vars[v].states, fn, "stats.counts");
      p[v] = s.counts[v].data();
    }
    return p;
  }

  // Data made for this network: same variable names (in order) and cardinalities.
  void check_data(const data_type& x, std::string_view fn) const {
    detail::require(x.cardinalities() == g_.st.cards && x.names() == g_.names(), fn,
                    "argument 'x' was made for a network with other variables or cardinalities");
  }

  void check_block(const data_type& x, Eigen::Index b, Eigen::Index e, std::string_view fn) const {
    check_data(x, fn);
    detail::require(0 <= b && b <= e && e <= x.num_distinct(), fn, "block [", b, ", ", e, ") must lie within [0, ",
                    x.num_distinct(), ")");
  }

  detail::bn_graph g_;
  discrete_bayes_net_options opts_;
  params_type params_;
  std::vector<vector_t<S>> logt_;
};

/// A double-precision discrete Bayesian network.
using discrete_bayes_net = basic_discrete_bayes_net<double>;

}  // namespace latent
