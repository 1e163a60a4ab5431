// Compile-time contract tests for the VAE: an ElboObjective with a value-only path (not an exact
// one: its bound has no closed form), an AmortizedObjective in float and double, and not an
// EM model.
#include <latent/core/amortized.hpp>
#include <latent/core/concepts.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/models/vae.hpp>
#include <latent/nn.hpp>

#include <Eigen/Core>

#include <random>
#include <type_traits>

static_assert(latent::ElboObjective<latent::vae>);
static_assert(latent::ElboObjective<latent::vae, std::minstd_rand>);
static_assert(latent::ElboValueObjective<latent::vae>);
static_assert(latent::ElboValueObjective<latent::basic_vae<float>, std::mt19937>);
static_assert(!latent::ExactElboObjective<latent::vae>);
// Training reuses buffers held by the objective: value_and_gradient is not const.
static_assert(!latent::ElboObjective<const latent::vae>);
static_assert(latent::AmortizedObjective<latent::vae>);
static_assert(latent::AmortizedObjective<latent::basic_vae<float>>);
static_assert(latent::AmortizedObjective<const latent::vae>);  // encode and log_joint are const
static_assert(!latent::EMModel<latent::vae>);
static_assert(std::is_same_v<latent::vae, latent::basic_vae<double>>);
static_assert(std::is_same_v<latent::objective_vector_t<latent::basic_vae<float>>, Eigen::VectorXf>);
static_assert(std::is_same_v<latent::nn::basic_mlp<float>::scalar_type, float>);
