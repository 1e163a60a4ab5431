#pragma once
/// @file
/// Discrete Bayesian network with values missing at random, fitted by exact EM or by
/// mean-field variational EM: `basic_discrete_bayes_net<S>` (`discrete_bayes_net` = double).
/// This is the header users include; the pieces live in discrete_bayes_net/ (see the end of
/// this comment).
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
/// records (see discrete_bayes_net/data.hpp).
///
/// Exact E-step. For a record with observed values o and missing values m, the posterior
/// p(m | o) is computed by variable elimination over the missing variables only (components
/// enumerated whole when small, otherwise a clique tree; see discrete_bayes_net/exact_inference.hpp).
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
///
/// Precision. S (float or double) is the type of the tables and of the inference arithmetic
/// on a record (log tables, beliefs, mean-field factors). Each record's log-likelihood or
/// ELBO is summed from its parts in double, e-steps return double, and the expected counts
/// (statistics), record counts and weights accumulate in `accumulator_t<S>` (double). The
/// M-step divides the double counts and rounds the new tables to S. Records are integers.
///
/// Layout (include this header; the others compile on their own too):
///  - discrete_bayes_net/options.hpp: `missing`, `bn_variable`, options, params
///  - discrete_bayes_net/stats.hpp, posterior.hpp: expected counts; a record's joint posterior
///  - discrete_bayes_net/data.hpp: grouped records, `apply_missing_at_random`
///  - discrete_bayes_net/structure.hpp: the validated graph and table layout (detail)
///  - discrete_bayes_net/engine.hpp, exact_inference.hpp: exact kernel (detail)
///  - discrete_bayes_net/mean_field.hpp (detail), mean_field_state.hpp: mean-field kernel;
///    `bn_mean_field_state<S>`, the warm-start factors, sliceable by block
///  - discrete_bayes_net/model.hpp: the class

#include <latent/models/discrete_bayes_net/data.hpp>
#include <latent/models/discrete_bayes_net/mean_field_state.hpp>
#include <latent/models/discrete_bayes_net/model.hpp>
#include <latent/models/discrete_bayes_net/options.hpp>
#include <latent/models/discrete_bayes_net/posterior.hpp>
#include <latent/models/discrete_bayes_net/stats.hpp>
