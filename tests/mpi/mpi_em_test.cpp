// The MPI executor against the single-process executors, bit for bit. ctest runs this one
// program under `mpirun -np 1, 2, 3, 4`: every rank generates the same data from the same
// seed, fits it alone (thread_executor) and, with the other ranks, on its shard
// (mpi_executor), and compares the two fits exactly. Every rank runs every collective before
// it checks anything (CHECK, never REQUIRE), so a failed comparison cannot leave ranks waiting.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <latent/core/random.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/models/factor_analysis.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/mpi/executor.hpp>
#include <latent/solvers/em.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <iostream>
#include <random>
#include <utility>
#include <vector>

namespace {

// Small blocks and turns: many blocks and several turns on every rank for N ~ 10^3.
constexpr Eigen::Index block = 64;
constexpr Eigen::Index turn = 2;

// round_bytes = 1: one turn per rank a round, so an E-step takes several rounds; the default
// (8 MB) takes all turns in one round at these sizes.
latent::mpi_executor executor_for(Eigen::Index n, int threads, std::size_t round_bytes) {
  return latent::mpi_executor(MPI_COMM_WORLD, n, threads, block, turn, Eigen::Index{1} << 18, round_bytes);
}

// The two fits of `model` (restarts drawn from the same seed), compared bit for bit.
template <class Model, class Data, class Shard, class SameParams>
void compare_fits(const Model& start, const Data& all, Shard&& shard_of, Eigen::Index n, SameParams&& same_params) {
  // Few iterations: oversubscribed ranks (4 on 2 cores) pay a time slice per collective.
  const latent::em_options options{.max_iterations = 12, .tolerance = 1e-12, .restarts = 2};
  for (const auto& [threads, round_bytes] : {std::pair{1, std::size_t{1}}, std::pair{2, latent::detail::wave_memory_budget}}) {
    Model single = start;
    std::mt19937_64 rng_single(7);
    const auto a = latent::em(single, all, rng_single, latent::thread_executor{threads, block}, options);

    const auto ex = executor_for(n, threads, round_bytes);
    const auto local = shard_of(ex);
    Model distributed = start;
    std::mt19937_64 rng_distributed(7);
    const auto b = latent::em(distributed, local, rng_distributed, ex, options);

    INFO("rank " << ex.rank() << " of " << ex.ranks() << ", " << threads << " threads, rounds of " << round_bytes
                 << " bytes");
    CHECK(a.iterations > 2);
    CHECK(b.iterations == a.iterations);
    CHECK(b.restart == a.restart);
    CHECK(b.trace == a.trace);  // bit for bit, every iteration
    CHECK(b.objective == a.objective);
    CHECK(same_params(single.params(), distributed.params()));
  }
}

bool same(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

}  // namespace

TEST_CASE("mpi_executor: the Gaussian mixture fit is bit-identical to the single process", "[mpi]") {
  std::mt19937_64 rng(1);
  const Eigen::Index n = 1500;
  Eigen::MatrixXd x = latent::standard_normal(3, n, rng);
  for (Eigen::Index j = 0; j < n; ++j) x.col(j).array() += 2.5 * static_cast<double>(j % 3);
  const latent::gaussian_mixture start(3, latent::covariance_type::full);
  compare_fits(
      start, x, [&](const latent::mpi_executor& ex) { return ex.shard(x); }, n,
      [](const auto& p, const auto& q) {
        bool ok = same(p.weights, q.weights) && same(p.means, q.means);
        for (std::size_t k = 0; k < p.covariances.size(); ++k) ok = ok && same(p.covariances[k], q.covariances[k]);
        return ok;
      });
}

TEST_CASE("mpi_executor: the factor analysis fit is bit-identical to the single process", "[mpi]") {
  std::mt19937_64 rng(2);
  const Eigen::Index n = 1200, d = 6;
  const Eigen::MatrixXd loadings = latent::standard_normal(d, 2, rng);
  const Eigen::MatrixXd x = loadings * latent::standard_normal(2, n, rng) + 0.5 * latent::standard_normal(d, n, rng);
  const latent::factor_analysis start(2);
  compare_fits(
      start, x, [&](const latent::mpi_executor& ex) { return ex.shard(x); }, n,
      [](const auto& p, const auto& q) {
        return same(p.loadings, q.loadings) && same(p.mean, q.mean) && same(p.uniquenesses, q.uniquenesses);
      });
}

TEST_CASE("mpi_executor: the Bayesian network fit (latent class) is bit-identical to the single process",
          "[mpi]") {
  std::mt19937_64 rng(3);
  using latent::bn_variable;
  const std::vector<bn_variable> vars{{"H", 2, {}}, {"Y1", 3, {"H"}}, {"Y2", 3, {"H"}}, {"Y3", 3, {"H"}}};
  Eigen::MatrixXd h(1, 2), y(2, 3);
  h << 0.4, 0.6;
  y << 0.7, 0.2, 0.1, 0.1, 0.3, 0.6;
  const latent::discrete_bayes_net truth(vars, {h, y, y, y});
  Eigen::MatrixXi records = truth.sample(1100, rng);
  records.row(0).setConstant(latent::missing);
  records = latent::apply_missing_at_random(records, 0.1, rng);
  // Ungrouped records, so that every rank holds a share of the columns.
  const latent::bn_data_options ungrouped{.group = false};
  const auto all = truth.make_data(records, ungrouped);
  const latent::discrete_bayes_net start(vars);
  compare_fits(
      start, all, [&](const latent::mpi_executor& ex) { return truth.make_data(ex.shard(records), ungrouped); },
      records.cols(), [](const auto& p, const auto& q) {
        bool ok = p.tables.size() == q.tables.size();
        for (std::size_t v = 0; ok && v < p.tables.size(); ++v)
          ok = same(p.tables[v].template cast<double>(), q.tables[v].template cast<double>());
        return ok;
      });
}

TEST_CASE("mpi_executor: shards, the initialization sample and wrong shards", "[mpi]") {
  const Eigen::Index n = 1000;
  Eigen::MatrixXd x(2, n);
  for (Eigen::Index j = 0; j < n; ++j) x.col(j) << static_cast<double>(j), -static_cast<double>(j);
  const latent::mpi_executor ex(MPI_COMM_WORLD, n, 1, block, turn, /*init_columns=*/100);

  // The shards partition [0, N) into whole turns, dealt round-robin, and no rank holds more
  // than its fair share of blocks, ceil(B / P).
  Eigen::Index held = ex.local_columns();
  MPI_Allreduce(MPI_IN_PLACE, &held, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  CHECK(held == n);
  const Eigen::Index t = ex.turn_blocks(), nblocks = (n + block - 1) / block;
  CHECK((t >= 1 && t <= turn));
  std::vector<int> owner(static_cast<std::size_t>(n), -1);
  for (int r = 0; r < ex.ranks(); ++r) {
    for (const auto& [b, e] : ex.ranges_of(r)) {
      CHECK(b % (block * t) == 0);
      CHECK(b / (block * t) % ex.ranks() == r);
      for (Eigen::Index j = b; j < e; ++j) owner[static_cast<std::size_t>(j)] = r;
    }
    CHECK((ex.columns_of(r) + block - 1) / block <= (nblocks + ex.ranks() - 1) / ex.ranks());
  }
  CHECK(std::count(owner.begin(), owner.end(), -1) == 0);
  // The turn size evens the load: 196 blocks in turns of at most 16 on P ranks. Turns of 16
  // would give rank 0 100 blocks on 2 ranks; turns of 14 give 98 each.
  const latent::mpi_executor even(MPI_COMM_WORLD, 196 * 1024, 1);
  const Eigen::Index fair = (196 + even.ranks() - 1) / even.ranks();
  CHECK(even.turn_blocks() <= 16);
  for (int r = 0; r < even.ranks(); ++r) CHECK(even.columns_of(r) <= fair * 1024);
  if (even.ranks() == 2) CHECK(even.turn_blocks() == 14);
  if (even.ranks() == 1) CHECK(even.turn_blocks() == 16);

  // Every rank gathers the same sample: columns floor(j N / m), in order.
  const Eigen::MatrixXd local = ex.shard(x);
  const auto sample = ex.gather(latent::observations(local), ex.sample_columns());
  REQUIRE(sample.get().size() == 100);
  for (Eigen::Index j = 0; j < 100; ++j) CHECK(same(sample.get().x().col(j), x.col(j * n / 100)));

  // A rank given the wrong number of columns: every rank throws, none waits for ever.
  const bool wrong = ex.rank() == ex.ranks() - 1;
  const Eigen::MatrixXd given = wrong ? Eigen::MatrixXd(local.leftCols(local.cols() - 1)) : local;
  latent::gaussian_mixture gmm(2, latent::covariance_type::full);
  std::mt19937_64 rng(4);
  gmm.initialize(latent::observations(x), rng);
  auto stats = gmm.zero_stats();
  const auto e_step = [&] { latent::e_step(gmm, latent::observations(given), stats, ex); };
  if (wrong)
    CHECK_THROWS_WITH(e_step(), Catch::Contains("was given") && Catch::Contains("holds"));
  else
    CHECK_THROWS_WITH(e_step(), Catch::Contains("failed on rank " + std::to_string(ex.ranks() - 1)));
}

TEST_CASE("mpi_executor: bad options are rejected", "[mpi]") {
  CHECK_THROWS_AS(latent::mpi_executor(MPI_COMM_WORLD, -1), latent::invalid_argument);
  CHECK_THROWS_AS(latent::mpi_executor(MPI_COMM_WORLD, 10, -1), latent::invalid_argument);
  CHECK_THROWS_AS(latent::mpi_executor(MPI_COMM_WORLD, 10, 1, 0), latent::invalid_argument);
  CHECK_THROWS_AS(latent::mpi_executor(MPI_COMM_WORLD, 10, 1, 8, 0), latent::invalid_argument);
  CHECK_THROWS_AS(latent::mpi_executor(MPI_COMM_WORLD, 10, 1, 8, 1, 0), latent::invalid_argument);
  // Fewer blocks than ranks would leave a rank without columns (every rank throws alike);
  // as many blocks as ranks is enough, whatever turn_blocks asks (turns shrink to one block).
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const Eigen::Index n = 8 * (ranks - 1) + 1;  // ranks blocks of 8, the last of one column
  CHECK_NOTHROW(latent::mpi_executor(MPI_COMM_WORLD, n, 1, 8, 16));
  CHECK(latent::mpi_executor(MPI_COMM_WORLD, n, 1, 8, 16).local_columns() >= 1);
  CHECK_THROWS_WITH(latent::mpi_executor(MPI_COMM_WORLD, n - 1, 1, 8, 16), Catch::Contains("every rank needs at least one"));
}

int main(int argc, char* argv[]) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  Catch::Session session;
  int rc = session.applyCommandLine(argc, argv);
  if (rc == 0) {
    if (rank == 0) std::cout << "mpi_em_test on " << size << " ranks\n";
    rc = session.run();
  }
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
