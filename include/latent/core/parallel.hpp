#pragma once
/// @file
/// The first edition's header for the threaded reduction; everything now lives in
/// `latent/core/executor.hpp` (`parallel_options` is `thread_executor`).

#include <latent/core/executor.hpp>
