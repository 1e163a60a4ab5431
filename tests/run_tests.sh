#!/usr/bin/env bash
# Install the dependencies (Debian 12), build everything (library tests, examples,
# benchmarks) and run the whole test suite with ctest. Usage: bash tests/run_tests.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LATENT_BUILD_DIR:-$root/build}
bash "$root/tests/install_dependencies.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLATENT_BUILD_BENCHMARKS=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
