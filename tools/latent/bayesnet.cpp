// latent bayesnet fit: a discrete Bayesian network on a given graph, fitted by EM to a CSV
// file of named states with missing values.
//
// The graph file (docs/cli.md): one line per child, "child: parent1 parent2" (parents
// separated by spaces or commas, in the order the table's rows use), '#' starts a comment,
// blank lines are skipped. The network's variables are the data file's columns; a column
// that is never a child is a root. States come from the data (sorted) unless --states gives them.
#include "common.hpp"
#include "save.hpp"

#include <latent/core/error.hpp>
#include <latent/io/csv.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/solvers/em.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

namespace latent_cli {

namespace {

struct bn_fit_args {
  std::string graph;
  std::string data;
  std::vector<std::string> states;
  std::size_t restarts = 10;
  std::uint64_t seed = 1;
  std::size_t max_iterations = 10000;
  double tolerance = 1e-12;
  double pseudo_count = 0.0;
  std::string out;
  bool quiet = false;
};

/// "name=s1,s2,s3" options as the reader's per-variable state lists.
std::map<std::string, std::vector<std::string>> parse_states(const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& s : specs) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      throw usage_error("--states: '" + s + "' is not of the form variable=state1,state2,...");
    const std::string name = s.substr(0, eq);
    std::vector<std::string> list;
    std::size_t begin = eq + 1;
    while (true) {
      const auto comma = s.find(',', begin);
      const std::string st = s.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
      if (st.empty()) throw usage_error("--states: '" + s + "' has an empty state name");
      list.push_back(st);
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
    if (!out.emplace(name, std::move(list)).second)
      throw usage_error("--states: variable '" + name + "' is given twice");
  }
  return out;
}

/// The parents of every column from the graph file (see the file comment).
std::vector<std::vector<std::string>> read_graph(const std::string& path, const std::vector<std::string>& names) {
  std::ifstream in(path);
  if (!in) throw usage_error("--graph: cannot open '" + path + "'");
  std::map<std::string, std::size_t> column;
  for (std::size_t j = 0; j < names.size(); ++j) column.emplace(names[j], j);
  std::vector<std::vector<std::string>> parents(names.size());
  std::vector<bool> defined(names.size(), false);
  std::string line;
  for (std::size_t lineno = 1; std::getline(in, line); ++lineno) {
    const std::string at = path + ": line " + std::to_string(lineno) + ": ";
    line = line.substr(0, line.find('#'));
    std::replace(line.begin(), line.end(), ',', ' ');
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) throw usage_error(at + "expected 'child: parent1 parent2 ...'");
    std::istringstream head(line.substr(0, colon)), tail(line.substr(colon + 1));
    std::string child, extra, p;
    head >> child;
    if (child.empty() || (head >> extra)) throw usage_error(at + "expected one child name before ':'");
    const auto c = column.find(child);
    if (c == column.end()) throw usage_error(at + "'" + child + "' is not a column of the data file");
    if (defined[c->second]) throw usage_error(at + "the parents of '" + child + "' are given a second time");
    defined[c->second] = true;
    auto& ps = parents[c->second];
    while (tail >> p) {
      if (column.find(p) == column.end()) throw usage_error(at + "parent '" + p + "' is not a column of the data file");
      if (p == child) throw usage_error(at + "'" + child + "' is its own parent");
      if (std::find(ps.begin(), ps.end(), p) != ps.end())
        throw usage_error(at + "'" + child + "' lists parent '" + p + "' twice");
      ps.push_back(p);
    }
  }
  if (in.bad()) throw usage_error("--graph: reading '" + path + "' failed");
  return parents;
}

/// Progress on stderr: each start's end, and a line every few seconds of a long start.
struct bn_progress {
  const progress& prog;
  std::size_t restarts;
  double last = 0.0;
  void on_iteration(const latent::iteration_info& i) {
    if (prog.seconds() - last < 2.0) return;
    last = prog.seconds();
    prog.line("start " + std::to_string(i.restart + 1) + ": iteration " + std::to_string(i.iteration) +
              ", log-likelihood " + number(i.objective, 10));
  }
  void on_end(const latent::iteration_info& i) {
    prog.line("start " + std::to_string(i.restart + 1) + "/" + std::to_string(restarts) + ": log-likelihood " +
              number(i.objective, 10) + " after " + std::to_string(i.iteration) + " iterations");
  }
};

void print_table(const latent::discrete_bayes_net& net, const latent::categorical_table& t, Eigen::Index v,
                 const Eigen::MatrixXd& counts) {
  const auto& pa = net.parents(v);
  const auto& states = t.states[static_cast<std::size_t>(v)];
  std::string title = "P(" + t.names[static_cast<std::size_t>(v)];
  for (std::size_t a = 0; a < pa.size(); ++a)
    title += (a == 0 ? " | " : ", ") + t.names[static_cast<std::size_t>(pa[a])];
  std::printf("%s)\n", (title).c_str());
  // Column widths: each parent's name and states, each state's name (at least a number's width).
  std::vector<int> pw;
  for (int p : pa) {
    int w = static_cast<int>(t.names[static_cast<std::size_t>(p)].size());
    for (const auto& s : t.states[static_cast<std::size_t>(p)]) w = std::max(w, static_cast<int>(s.size()));
    pw.push_back(w);
  }
  std::vector<int> sw;
  for (const auto& s : states) sw.push_back(std::max(8, static_cast<int>(s.size())));
  for (std::size_t a = 0; a < pa.size(); ++a)
    std::printf("%-*s  ", pw[a], t.names[static_cast<std::size_t>(pa[a])].c_str());
  for (std::size_t s = 0; s < states.size(); ++s) std::printf(" %*s", sw[s], states[s].c_str());
  std::printf(" %10s\n", "n");
  const Eigen::MatrixXd& tab = net.table(v);
  // Row r is mixed radix over the parents in order, the last fastest.
  std::vector<int> digit(pa.size(), 0);
  for (Eigen::Index r = 0; r < tab.rows(); ++r) {
    for (std::size_t a = 0; a < pa.size(); ++a)
      std::printf("%-*s  ", pw[a], t.states[static_cast<std::size_t>(pa[a])][static_cast<std::size_t>(digit[a])].c_str());
    const double n = counts.row(r).sum();
    for (Eigen::Index s = 0; s < tab.cols(); ++s) {
      if (n > 0) std::printf(" %*.6f", sw[static_cast<std::size_t>(s)], tab(r, s));
      else std::printf(" %*s", sw[static_cast<std::size_t>(s)], "-");
    }
    std::printf(" %10.4f%s\n", n, n > 0 ? "" : "  (no data: this row is not estimated)");
    for (std::size_t a = pa.size(); a-- > 0;) {
      if (++digit[a] < static_cast<int>(t.states[static_cast<std::size_t>(pa[a])].size())) break;
      digit[a] = 0;
    }
  }
  std::printf("\n");
}

void bn_fit(const bn_fit_args& a) {
  const progress prog(a.quiet);
  latent::categorical_csv_options co;
  co.states = parse_states(a.states);
  const latent::categorical_table t = latent::read_categorical_csv(a.data, co);
  if (t.data.cols() == 0) throw usage_error(a.data + ": no records after the header line");
  for (std::size_t j = 0; j < t.names.size(); ++j)
    if (t.states[j].empty())
      throw usage_error(a.data + ": column '" + t.names[j] +
                        "' has no observed value, so its states are unknown (give them with --states " + t.names[j] +
                        "=state1,state2,...)");
  const auto parents = read_graph(a.graph, t.names);
  std::vector<latent::bn_variable> vars;
  const std::vector<int> cards = t.cardinalities();
  for (std::size_t j = 0; j < t.names.size(); ++j) vars.push_back({t.names[j], cards[j], parents[j]});
  latent::discrete_bayes_net_options no;
  no.pseudo_count = a.pseudo_count;
  std::optional<latent::discrete_bayes_net> made;
  try {
    made.emplace(vars, no);
  } catch (const latent::invalid_argument& e) {  // a cycle: say which file it is in
    throw usage_error(a.graph + ": " + e.what());
  }
  latent::discrete_bayes_net& net = *made;
  const auto data = net.make_data(t.data);
  const Eigen::Index n = t.data.cols(), d = t.data.rows();
  const double missing = static_cast<double>(data.missing_weight());

  std::printf("Discrete Bayesian network fitted to %s by EM: %ld records of %ld variables, %s of %ld values missing "
              "(%.1f%%)\n",
              a.data.c_str(), static_cast<long>(n), static_cast<long>(d), number(missing, 10).c_str(),
              static_cast<long>(n * d), 100.0 * missing / static_cast<double>(n * d));
  std::printf("Graph %s:", a.graph.c_str());
  for (Eigen::Index v = 0; v < d; ++v) {
    std::printf(" %s", t.names[static_cast<std::size_t>(v)].c_str());
    const auto& pa = net.parents(v);
    for (std::size_t k = 0; k < pa.size(); ++k)
      std::printf("%s%s", k == 0 ? " <- " : ", ", t.names[static_cast<std::size_t>(pa[k])].c_str());
    std::printf("%s", v + 1 < d ? ";" : "\n");
  }

  std::mt19937_64 rng(a.seed);
  latent::em_options eo;
  eo.max_iterations = a.max_iterations;
  eo.tolerance = a.tolerance;
  eo.restarts = a.restarts;
  bn_progress cb{prog, a.restarts};
  prog.line("EM from " + std::to_string(a.restarts) + " random starts on " + std::to_string(data.num_distinct()) +
            " distinct records");
  const auto fit = latent::em(net, data, rng, eo, cb);
  if (fit.status == latent::fit_status::numerical_issue) throw std::runtime_error("the fit failed: " + fit.message);
  const double ll = net.log_likelihood(data);
  const auto p = net.num_free_parameters();
  std::printf("EM from %zu random starts (Dirichlet(1) tables), seed %llu, pseudo-count %g: the best (start %zu) %s "
              "after %zu iterations\n",
              a.restarts, static_cast<unsigned long long>(a.seed), a.pseudo_count, fit.restart + 1,
              std::string(to_string(fit.status)).c_str(), fit.iterations);
  if (!fit.converged()) std::printf("warning: EM did not converge; raise --max-iterations\n");
  std::printf("Log-likelihood (observed data) %.6f, %ld free parameters, BIC %.4f, AIC %.4f (lower is better)\n\n",
              ll, static_cast<long>(p), net.bic(data), net.aic(data));

  // Expected counts of every row (parent configuration) under the fitted tables.
  auto stats = net.zero_stats();
  net.e_step(data, 0, data.num_distinct(), stats);
  std::printf("Conditional probability tables (one row per state of the parents; n = the row's expected count):\n\n");
  for (Eigen::Index v = 0; v < d; ++v) print_table(net, t, v, stats.counts[static_cast<std::size_t>(v)]);

  if (!a.out.empty()) {
    save_model(net, a.out);
    std::printf("Saved the fitted network to %s (states are numbered in the order of the tables above)\n",
                a.out.c_str());
  }
}

}  // namespace

void add_bayesnet_commands(CLI::App& root) {
  CLI::App* bn = root.add_subcommand("bayesnet", "Discrete Bayesian networks with named states and missing values");
  bn->require_subcommand(1);
  auto args = std::make_shared<bn_fit_args>();
  CLI::App* fit = bn->add_subcommand(
      "fit",
      "Fit the conditional probability tables of a network with a given graph by EM (missing values at random); "
      "print the tables, log-likelihood, free parameters and BIC");
  fit->add_option("-g,--graph", args->graph,
                  "graph file: one line 'child: parent1 parent2' per child, '#' comments; other columns are roots")
      ->required();
  fit->add_option("data", args->data,
                  "CSV file: header line of variable names, one record per line, state names as values; "
                  "empty, NA, N/A and ? are missing")
      ->required();
  fit->add_option("--states", args->states,
                  "a variable's states in table order, variable=s1,s2,... (repeatable); other variables get the "
                  "states in the data, sorted");
  fit->add_option("--restarts", args->restarts, "random starts (the best is kept)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  fit->add_option("--seed", args->seed, "seed of the random starts")->capture_default_str();
  fit->add_option("--max-iterations", args->max_iterations, "EM iterations per start")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000000}))
      ->capture_default_str();
  fit->add_option("--tolerance", args->tolerance,
                  "converged when the log-likelihood rises by at most this times max(|log L|, records)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  fit->add_option("--pseudo-count", args->pseudo_count,
                  "added to every expected count (0: maximum likelihood; > 0: MAP under Dirichlet(a + 1) rows)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  fit->add_option("-o,--out", args->out, "save the fitted network to this JSON file");
  fit->add_flag("-q,--quiet", args->quiet, "no progress lines on stderr");
  fit->callback([args] { bn_fit(*args); });
}

}  // namespace latent_cli
