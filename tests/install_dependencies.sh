#!/usr/bin/env bash
# Install what building and testing latent needs from Debian's archive, if it is missing.
set -euo pipefail
packages=(g++ cmake make libeigen3-dev catch2 libbenchmark-dev zlib1g-dev dataset-fashion-mnist
          nlohmann-json3-dev libcli11-dev gnuplot-nox libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
