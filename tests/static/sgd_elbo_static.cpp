// Compile-time contract tests for SGD on the ELBO: which types are ElboObjectives (and exact
// ones), which engines they accept, which optimizers the solver can drive, and that the
// solver rejects what is not an objective.
#include <latent/core/concepts.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/models/neyman_scott_elbo.hpp>
#include <latent/optim/adam.hpp>
#include <latent/optim/sgd.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include <Eigen/Core>

#include <random>
#include <type_traits>
#include <utility>

namespace {

// Has every ElboObjective member but no exact ELBO.
struct estimate_only {
  Eigen::Index num_parameters() const { return 1; }
  Eigen::Index num_observations() const { return 1; }
  template <class Rng>
  double value_and_gradient(const Eigen::VectorXd&, latent::minibatch, std::size_t, Eigen::VectorXd& g, Rng&) {
    g.setZero(1);
    return 0.0;
  }
};
// Works only with one engine type.
struct only_mt19937 {
  Eigen::Index num_parameters() const { return 1; }
  Eigen::Index num_observations() const { return 1; }
  double value_and_gradient(const Eigen::VectorXd&, latent::minibatch, std::size_t, Eigen::VectorXd&,
                            std::mt19937& ) { return 0.0; }
};
// Missing num_observations.
struct no_size {
  Eigen::Index num_parameters() const { return 1; }
  template <class Rng>
  double value_and_gradient(const Eigen::VectorXd&, latent::minibatch, std::size_t, Eigen::VectorXd&, Rng&) { return 0.0; }
};
// A whole-data gradient with no minibatch or engine (a deterministic objective) is not one.
struct deterministic {
  Eigen::Index num_parameters() const { return 1; }
  Eigen::Index num_observations() const { return 1; }
  double value_and_gradient(const Eigen::VectorXd&, Eigen::VectorXd&) { return 0.0; }
};

template <class F, class Rng = std::mt19937_64>
concept sgd_elbo_callable = requires(F& f, const Eigen::VectorXd& p, Rng& rng) { latent::sgd_elbo(f, p, rng); };

}  // namespace

// Shipped objectives.
static_assert(latent::ElboObjective<latent::linear_vae>);
static_assert(latent::ExactElboObjective<latent::linear_vae>);
static_assert(latent::ElboObjective<latent::linear_vae, std::mt19937>);
static_assert(latent::ElboObjective<latent::linear_vae, std::minstd_rand>);
static_assert(latent::ElboObjective<latent::neyman_scott_elbo>);
static_assert(latent::ExactElboObjective<latent::neyman_scott_elbo>);
static_assert(latent::ElboValueObjective<latent::neyman_scott_elbo>);
static_assert(latent::ElboValueObjective<latent::basic_neyman_scott_elbo<float>, std::minstd_rand>);
static_assert(latent::ExactElboObjective<latent::basic_neyman_scott_elbo<float>>);
static_assert(std::is_same_v<latent::objective_vector_t<latent::basic_neyman_scott_elbo<float>>, Eigen::VectorXf>);
static_assert(std::is_same_v<latent::neyman_scott_elbo, latent::basic_neyman_scott_elbo<double>>);
static_assert(latent::ElboObjective<const latent::linear_vae>);  // value_and_gradient is const
// The linear VAE in float: float parameters and gradients, a value-only path in both precisions.
static_assert(latent::ElboObjective<latent::basic_linear_vae<float>>);
static_assert(latent::ExactElboObjective<latent::basic_linear_vae<float>, std::minstd_rand>);
static_assert(latent::ElboValueObjective<latent::linear_vae>);
static_assert(latent::ElboValueObjective<latent::basic_linear_vae<float>>);
static_assert(std::is_same_v<latent::objective_vector_t<latent::basic_linear_vae<float>>, Eigen::VectorXf>);
static_assert(std::is_same_v<latent::objective_vector_t<latent::linear_vae>, Eigen::VectorXd>);
static_assert(!latent::ElboValueObjective<estimate_only>);

// They are not EM models (no statistics, no M-step) ...
static_assert(!latent::EMModel<latent::linear_vae>);
static_assert(!latent::EMModel<latent::neyman_scott_elbo>);
static_assert(!latent::EMModel<latent::basic_neyman_scott_elbo<float>>);
// ... and engines must be engines.
static_assert(!latent::ElboObjective<latent::linear_vae, int>);

// Archetypes.
static_assert(latent::ElboObjective<estimate_only>);
static_assert(!latent::ExactElboObjective<estimate_only>);
static_assert(latent::ElboObjective<only_mt19937, std::mt19937>);
static_assert(!latent::ElboObjective<only_mt19937, std::mt19937_64>);
static_assert(!latent::ElboObjective<no_size>);
static_assert(!latent::ElboObjective<deterministic>);
static_assert(!latent::ElboObjective<int>);

// The solver accepts objectives and nothing else.
static_assert(sgd_elbo_callable<latent::linear_vae>);
static_assert(sgd_elbo_callable<estimate_only>);
static_assert(sgd_elbo_callable<only_mt19937, std::mt19937>);
static_assert(!sgd_elbo_callable<only_mt19937, std::mt19937_64>);
static_assert(!sgd_elbo_callable<deterministic>);

// Both optimizers fit the solver's optimizer contract.
static_assert(latent::Optimizer<latent::adam>);
static_assert(latent::Optimizer<latent::sgd>);
static_assert(latent::SparseOptimizer<latent::adam>);
static_assert(latent::SparseOptimizer<latent::basic_sgd<float>, float>);
static_assert(latent::Optimizer<latent::basic_adam<float>, float>);
static_assert(!latent::Optimizer<latent::basic_adam<float>, double>);  // a float optimizer steps float parameters
static_assert(!latent::Optimizer<latent::adam_options>);

// The result is a fit_result over the flat parameter vector.
static_assert(std::is_base_of_v<latent::fit_result<Eigen::VectorXd>, latent::sgd_elbo_result>);
