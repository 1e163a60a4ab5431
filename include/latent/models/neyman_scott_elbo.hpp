#pragma once
/// @file
/// The Neyman–Scott model as an `ElboObjective` for `sgd_elbo`: `basic_neyman_scott_elbo<S>`
/// (`neyman_scott_elbo` = double). See models/neyman_scott/elbo.hpp for the maths, the flat
/// parameter layout, the minibatch scaling and the sparse-gradient form.

#include <latent/models/neyman_scott/elbo.hpp>
