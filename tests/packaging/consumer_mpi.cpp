// A minimal consumer of the mpi component: the executor on however many ranks run it (one when
// started without mpirun), fitting the same mixture as consumer.cpp.
#include <latent/latent.hpp>
#include <latent/mpi/executor.hpp>

#include <mpi.h>

#include <iostream>
#include <random>

int main(int argc, char* argv[]) {
  MPI_Init(&argc, &argv);
  std::mt19937_64 rng(1);
  Eigen::MatrixXd x = latent::standard_normal(2, 400, rng);
  x.rightCols(200).array() += 6.0;
  const latent::mpi_executor ex(MPI_COMM_WORLD, x.cols(), 1, 64, 1);  // 7 turns of 64 columns
  const Eigen::MatrixXd local = ex.shard(x);
  latent::gaussian_mixture gmm(2, latent::covariance_type::full);
  const auto fit = latent::em(gmm, latent::observations(local), rng, ex, {.restarts = 2});
  if (ex.rank() == 0) std::cout << "latent::mpi on " << ex.ranks() << " ranks: log-likelihood " << fit.objective << '\n';
  MPI_Finalize();
  return fit.converged() && fit.decreases == 0 ? 0 : 1;
}
