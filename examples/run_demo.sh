#!/usr/bin/env bash
# Install the dependencies (Debian 12), build the examples and run the main demo: Gaussian
# mixtures on Old Faithful (K and covariance chosen by BIC) and on a simulated problem.
# Usage: bash examples/run_demo.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LATENT_BUILD_DIR:-$root/build}
bash "$root/tests/install_dependencies.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)" --target gaussian_mixture
"$build/examples/gaussian_mixture"
