// Compile-time contract tests for the estimators: which objectives are AmortizedObjectives,
// and that the estimators accept them.
#include <latent/core/amortized.hpp>
#include <latent/estimators/gap_decomposition.hpp>
#include <latent/models/linear_vae.hpp>
#include <latent/models/neyman_scott_elbo.hpp>

#include <Eigen/Core>

#include <random>

namespace {

// An encoder but no log joint.
struct encoder_only {
  Eigen::Index latent_dim() const { return 1; }
  Eigen::Index num_observations() const { return 1; }
  void encode(const Eigen::VectorXd&, latent::minibatch, Eigen::MatrixXd&, Eigen::MatrixXd&) const {}
};
// Both, but log_joint is not const (estimators call it from several threads).
struct mutable_log_joint {
  Eigen::Index latent_dim() const { return 1; }
  Eigen::Index num_observations() const { return 1; }
  void encode(const Eigen::VectorXd&, latent::minibatch, Eigen::MatrixXd&, Eigen::MatrixXd&) const {}
  void log_joint(const Eigen::VectorXd&, latent::minibatch, const Eigen::MatrixXd&, Eigen::VectorXd&,
                 Eigen::MatrixXd*) {}
};
// The minimal amortized objective in float.
struct minimal_float {
  using scalar_type = float;
  Eigen::Index latent_dim() const { return 1; }
  Eigen::Index num_observations() const { return 1; }
  void encode(const Eigen::VectorXf&, latent::minibatch, Eigen::MatrixXf&, Eigen::MatrixXf&) const {}
  void log_joint(const Eigen::VectorXf&, latent::minibatch, const Eigen::MatrixXf&, Eigen::VectorXd&,
                 Eigen::MatrixXf*) const {}
};

}  // namespace

static_assert(latent::AmortizedObjective<latent::linear_vae>);
static_assert(latent::AmortizedObjective<latent::basic_linear_vae<float>>);
static_assert(latent::AmortizedObjective<minimal_float>);
static_assert(!latent::AmortizedObjective<encoder_only>);
static_assert(!latent::AmortizedObjective<mutable_log_joint>);
static_assert(!latent::AmortizedObjective<latent::neyman_scott_elbo>);  // local Gaussians, no encoder

// The estimators accept exactly the amortized objectives.
template <class F>
concept gap_decomposable = requires(const F& f, const latent::objective_vector_t<F>& p, std::mt19937_64& rng) {
  latent::gap_decomposition(f, p, rng);
  latent::estimate_log_likelihood(f, p, rng);
};
static_assert(gap_decomposable<latent::linear_vae>);
static_assert(gap_decomposable<minimal_float>);
static_assert(!gap_decomposable<encoder_only>);
