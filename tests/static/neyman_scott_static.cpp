// Compile-time contract checks for the Neyman–Scott model.
#include <latent/core/concepts.hpp>
#include <latent/models/neyman_scott.hpp>

#include <type_traits>

namespace {
// A variational family the model does not know: it has no e_step taking one.
struct some_family {};
}  // namespace

// Positive: exact EM accepts it, its statistics are additive and scalable.
static_assert(latent::EMModel<latent::neyman_scott>);
static_assert(latent::ParametricModel<latent::neyman_scott>);
static_assert(latent::SufficientStatistics<latent::neyman_scott_stats>);
static_assert(std::is_aggregate_v<latent::neyman_scott_params>);

// Negative: its E-step is exact only, so it is not a variational EM model for any family; it
// offers no random initialization (the estimated-prior likelihood is unimodal: no restarts);
// and a scalar is not a model at all.
static_assert(!latent::VariationalEMModel<latent::neyman_scott, some_family>);
static_assert(!latent::RandomlyInitializable<latent::neyman_scott>);
static_assert(!latent::EMModel<int>);
static_assert(!latent::SufficientStatistics<latent::neyman_scott_params>);
