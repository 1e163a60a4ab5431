// Distributed EM over MPI: the same Gaussian mixture fit (d = 16, K = 8, full covariances) on
// one process with threads and on all the ranks of MPI_COMM_WORLD, from a .npy file of which
// each rank reads only its shard. The two fits are compared bit for bit, and their times printed.
//
//   mpirun -np 2 ./mpi_em                 N = 200000, 2 threads single-process vs 2 ranks x 1 thread
//   mpirun -np 2 ./mpi_em --n 20000       a small run (what ctest does)
//   mpirun -np 4 ./mpi_em --threads 2     the single process gets 2 threads, each rank 1
//   mpirun -np 2 ./mpi_em --block-size 256  smaller blocks: more statistics sent and merged per pass
//
// (As root, Open MPI wants OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.)
//
// Open MPI pins each rank to one core by default, and with it the single process of step 1,
// whose threads then share that core: to compare the executors, time the single process
// under `mpirun -np 1 --bind-to none ./mpi_em --threads 2` and the ranks under
// `mpirun -np 2 ./mpi_em` (docs/scaling.md gives both).
//
// ctest-arguments: --n 20000 --iterations 5

#include <latent/io/mapped_npy.hpp>
#include <latent/io/npy.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/mpi/executor.hpp>
#include <latent/solvers/em.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace {

// Waits at a barrier without spinning, so an idle rank leaves its core to the one working.
void quiet_barrier(MPI_Comm comm) {
  MPI_Request request;
  MPI_Ibarrier(comm, &request);
  for (int done = 0; !done;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Eight overlapping components in 16 dimensions, written to `path` by rank 0 in pieces.
void write_data(const std::string& path, Eigen::Index n) {
  const Eigen::Index d = 16, k = 8;
  std::mt19937_64 rng(2026);
  latent::gaussian_mixture::params_type p;
  p.weights = Eigen::VectorXd::Constant(k, 1.0 / k);
  p.means = 2.0 * latent::standard_normal(d, k, rng);
  for (Eigen::Index j = 0; j < k; ++j) {
    const Eigen::MatrixXd a = 0.3 * latent::standard_normal(d, d, rng);
    p.covariances.push_back(a * a.transpose() + Eigen::MatrixXd::Identity(d, d));
  }
  const latent::gaussian_mixture truth(p);
  latent::basic_npy_writer<double> out(path, d);
  for (Eigen::Index done = 0; done < n; done += 65536) out.append(truth.sample(std::min<Eigen::Index>(65536, n - done), rng));
  out.close();
}

void print(const char* what, const latent::fit_result<latent::gaussian_mixture::params_type>& fit) {
  std::printf("%-34s log-likelihood %.17g after %zu iterations, %.3f s (%.1f ms per iteration)\n", what, fit.objective,
              fit.iterations, fit.seconds, 1e3 * fit.seconds / static_cast<double>(fit.iterations));
}

}  // namespace

int main(int argc, char* argv[]) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  Eigen::Index n = 200000;
  std::size_t iterations = 20;
  int threads = ranks;  // the single process gets as many threads as there are ranks
  Eigen::Index block_size = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--n") == 0) n = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = static_cast<std::size_t>(std::atoll(argv[i + 1]));
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--block-size") == 0) block_size = std::atoll(argv[i + 1]);
  }
  const std::string path = "mpi_em_data.npy";
  if (rank == 0) write_data(path, n);
  MPI_Barrier(MPI_COMM_WORLD);

  // A fixed number of iterations (tolerance 0), so that the times compare equal work.
  const latent::em_options options{.max_iterations = iterations, .tolerance = 0.0, .parameter_tolerance = 0.0};
  const latent::mpi_executor ex(MPI_COMM_WORLD, n, /*threads=*/1, block_size);

  // Each rank reads the columns it holds (whole turns of blocks, dealt round-robin).
  const latent::mapped_npy file(path);
  const Eigen::MatrixXd local = ex.shard(file.matrix());
  int same = 1;

  // 1. One process, `threads` threads; the other ranks wait without taking a core.
  latent::gaussian_mixture single(8, latent::covariance_type::full);
  if (rank == 0) {
    std::mt19937_64 rng(1);
    const auto fit = latent::em(single, file.observations(), rng, latent::thread_executor{threads, ex.block_size()}, options);
    std::printf("N = %lld, d = 16, K = 8, full covariances, %zu iterations\n", static_cast<long long>(n), iterations);
    print(("1 process x " + std::to_string(threads) + " threads:").c_str(), fit);
  }
  quiet_barrier(MPI_COMM_WORLD);

  // 2. Every rank, 1 thread each, on its shard.
  latent::gaussian_mixture distributed(8, latent::covariance_type::full);
  std::mt19937_64 rng(1);
  const auto fit = latent::em(distributed, latent::observations(local), rng, ex, options);
  if (rank == 0) {
    print((std::to_string(ranks) + " ranks x 1 thread:").c_str(), fit);
    const auto& a = single.params();
    const auto& b = distributed.params();
    same = a.weights == b.weights && a.means == b.means;
    for (std::size_t k = 0; k < a.covariances.size(); ++k) same = same && a.covariances[k] == b.covariances[k];
    std::printf("parameters identical bit for bit: %s\n", same ? "yes" : "NO");
    std::remove(path.c_str());
  }
  MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return same ? 0 : 1;
}
