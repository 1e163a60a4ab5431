#pragma once
/// @file
/// Umbrella header: every public header of latent, and nothing else.

#include <latent/version.hpp>

#include <latent/core/amortized.hpp>
#include <latent/core/callbacks.hpp>
#include <latent/core/chi_square.hpp>
#include <latent/core/chunks.hpp>
#include <latent/core/concepts.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/executor.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/gaussian.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/parallel.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/core/statistics.hpp>
#include <latent/core/variational_families.hpp>

#include <latent/estimators/elbo.hpp>
#include <latent/estimators/gap_decomposition.hpp>
#include <latent/estimators/importance_sampling.hpp>
#include <latent/estimators/local_gaussians.hpp>
#include <latent/estimators/per_observation.hpp>

#include <latent/io/csv.hpp>
#include <latent/io/csv_to_npy.hpp>
#include <latent/io/idx.hpp>
#include <latent/io/npy.hpp>
// Not here, as they need libraries besides Eigen: io/idx_gzip.hpp (zlib) and io/json.hpp
// (nlohmann/json; saving and loading models). Include them yourself.
#if __has_include(<sys/mman.h>)  // POSIX memory maps
#include <latent/io/mapped_npy.hpp>
#endif

#include <latent/nn.hpp>

#include <latent/optim/adam.hpp>
#include <latent/optim/sgd.hpp>

#include <latent/solvers/em.hpp>
#include <latent/solvers/online_em.hpp>
#include <latent/solvers/sgd_elbo.hpp>
#include <latent/solvers/variational_em.hpp>

#include <latent/models/bayesian_mlp.hpp>
#include <latent/models/discrete_bayes_net.hpp>
#include <latent/models/factor_analysis.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/models/neyman_scott.hpp>
#include <latent/models/neyman_scott_elbo.hpp>
#include <latent/models/vae.hpp>

#include <latent/model_selection.hpp>
