// One EM iteration of a discrete Bayesian network on 10^6 records with missing values.
//
// Network: 20 variables, seeded random structure (a random order, each variable with 0-3
// parents among the earlier ones), 2-4 states, rows drawn from Dirichlet(1). Records: 10^6
// ancestral samples with 10% of the cells missing completely at random.
//
// BM_EMIteration<S>/threads/grouped: exact E-step over all records + M-step, with identical
// records grouped (grouped:1) or every record processed on its own (grouped:0); S = double,
// and float for the same problem (the same records, the same starting tables rounded).
// BM_MeanFieldIteration: the same with the mean-field E-step (warm-started).
// BM_Grouping: the one-off cost of validating and grouping the raw matrix.
// items_per_second counts records (not distinct records). FLOPS is an estimate: 2 per
// observed family, 4 per configuration of each affected family's missing members.
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/solvers/em.hpp>
#include <latent/solvers/variational_em.hpp>

#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

// "X<i>" (built by appending: g++ 12 warns falsely on "literal" + std::string).
std::string var_name(int i) {
  std::string s = "X";
  s += std::to_string(i);
  return s;
}

constexpr Eigen::Index num_records = 1000000;
constexpr int num_variables = 20;

latent::discrete_bayes_net make_network(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> states(2, 4), parents(0, 3);
  std::vector<latent::bn_variable> vars(num_variables);
  for (int i = 0; i < num_variables; ++i) {
    vars[static_cast<std::size_t>(i)] = {var_name(i), states(rng), {}};
    std::vector<int> earlier(static_cast<std::size_t>(i));
    for (int j = 0; j < i; ++j) earlier[static_cast<std::size_t>(j)] = j;
    std::shuffle(earlier.begin(), earlier.end(), rng);
    const int np = std::min(parents(rng), i);
    for (int p = 0; p < np; ++p) vars[static_cast<std::size_t>(i)].parents.push_back(var_name(earlier[static_cast<std::size_t>(p)]));
  }
  latent::discrete_bayes_net net(vars);
  net.initialize(net.make_data(Eigen::MatrixXi::Zero(num_variables, 1)), rng);
  return net;
}

// The records grouped and ungrouped for a network of scalar S.
template <class S>
struct data_pair {
  std::unique_ptr<latent::basic_discrete_bayes_net_data<S>> grouped, raw;
};

struct fixture {
  latent::discrete_bayes_net truth = make_network(42);
  Eigen::MatrixXi x;
  std::unique_ptr<latent::discrete_bayes_net_data> grouped, raw;
  data_pair<float> float_data;

  fixture() {
    std::mt19937_64 rng(7);
    x = latent::apply_missing_at_random(truth.sample(num_records, rng), 0.1, rng);
    grouped = std::make_unique<latent::discrete_bayes_net_data>(truth.make_data(x));
    raw = std::make_unique<latent::discrete_bayes_net_data>(truth.make_data(x, latent::bn_data_options{.group = false}));
  }

  // Records for a network of scalar S (the float copies are made on first use).
  template <class S>
  const latent::basic_discrete_bayes_net_data<S>& records(bool group) {
    if constexpr (std::is_same_v<S, double>) {
      return group ? *grouped : *raw;
    } else {
      const latent::basic_discrete_bayes_net<S> net(truth.variables());
      auto& slot = group ? float_data.grouped : float_data.raw;
      if (!slot)
        slot = std::make_unique<latent::basic_discrete_bayes_net_data<S>>(
            net.make_data(x, latent::bn_data_options{.group = group}));
      return *slot;
    }
  }

  template <class Data>
  double estimate_flops(const Data& d) const {
    double f = 0.0;
    for (Eigen::Index j = 0; j < d.num_distinct(); ++j)
      for (Eigen::Index v = 0; v < truth.num_variables(); ++v) {
        double J = 1.0;
        bool affected = false;
        for (int u : truth.parents(v))
          if (d.records()(u, j) == latent::missing) affected = true, J *= truth.cardinalities()[static_cast<std::size_t>(u)];
        if (d.records()(v, j) == latent::missing) affected = true, J *= truth.cardinalities()[static_cast<std::size_t>(v)];
        f += affected ? 4.0 * J : 2.0;
      }
    return f;
  }
};

fixture& data() {
  static fixture f;
  return f;
}

template <class S>
void BM_EMIteration(benchmark::State& state) {
  fixture& f = data();
  const int threads = static_cast<int>(state.range(0));
  const bool grouped = state.range(1) != 0;
  const auto& d = f.records<S>(grouped);
  latent::basic_discrete_bayes_net<S> model(f.truth.variables());
  std::mt19937_64 rng(1);
  model.initialize(d, rng);  // the same draws for float and double
  const latent::thread_executor par{.threads = threads, .block_size = 1024};
  double ll = 0.0;
  for (auto _ : state) {
    auto s = model.zero_stats();
    ll = latent::e_step(model, d, s, par);
    model.m_step(s);
    benchmark::DoNotOptimize(ll);
  }
  state.SetItemsProcessed(state.iterations() * num_records);
  state.counters["distinct"] = static_cast<double>(d.num_distinct());
  state.counters["loglik_per_record"] = ll / static_cast<double>(num_records);
  state.counters["FLOPS"] =
      benchmark::Counter(f.estimate_flops(d), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_EMIteration<double>)
    ->ArgsProduct({{1, 2}, {1, 0}})
    ->ArgNames({"threads", "grouped"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK(BM_EMIteration<float>)
    ->ArgsProduct({{1, 2}, {1, 0}})
    ->ArgNames({"threads", "grouped"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

void BM_MeanFieldIteration(benchmark::State& state) {
  fixture& f = data();
  const int threads = static_cast<int>(state.range(0));
  const latent::discrete_bayes_net_data& d = *f.grouped;
  d.variational_state();  // allocate the warm-start store outside the timing
  latent::discrete_bayes_net model(f.truth.variables());
  std::mt19937_64 rng(1);
  model.initialize(d, rng);
  const latent::thread_executor par{.threads = threads, .block_size = 1024};
  for (auto _ : state) {
    auto s = model.zero_stats();
    const double elbo = latent::variational_e_step(model, d, latent::mean_field{}, s, par);
    model.m_step(s);
    benchmark::DoNotOptimize(elbo);
  }
  state.SetItemsProcessed(state.iterations() * num_records);
  state.counters["distinct"] = static_cast<double>(d.num_distinct());
}
BENCHMARK(BM_MeanFieldIteration)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_Grouping(benchmark::State& state) {
  fixture& f = data();
  for (auto _ : state) {
    auto d = f.truth.make_data(f.x);
    benchmark::DoNotOptimize(d.num_distinct());
  }
  state.SetItemsProcessed(state.iterations() * num_records);
}
BENCHMARK(BM_Grouping)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
