#pragma once
// --out of every fit: save the fitted model as JSON (latent/io/json.hpp), or, in a build
// without nlohmann_json, fail with one line.
#include "common.hpp"

#ifdef LATENT_CLI_HAS_JSON  // set by CMake when nlohmann_json is found
#include <latent/io/json.hpp>
#endif

#include <string>

namespace latent_cli {

template <class Model>
void save_model(const Model& model, const std::string& path) {
#ifdef LATENT_CLI_HAS_JSON
  latent::save(model, path);
#else
  (void)model;
  throw usage_error("--out: this build of latent cannot save models (it was built without nlohmann_json)");
#endif
}

}  // namespace latent_cli
