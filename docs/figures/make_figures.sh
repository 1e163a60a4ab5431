#!/usr/bin/env bash
# Renders the figures under docs/figures from the examples' plot data (gnuplot, Debian package
# gnuplot-nox). Usage: bash docs/figures/make_figures.sh [--vae] [--no-build] [--out DIR] [build-dir]
#   Builds the examples (Release) in build-dir (default: build-figures at the top of the tree),
#   runs gaussian_mixture, neyman_scott, factor_analysis and linear_vae with --plot-data, and
#   renders figures.gp into docs/figures (or --out DIR). With --vae it also trains the
#   Fashion-MNIST VAE (10 epochs: minutes) and converts its PGM image grids to PNG (needs
#   python3-pil). --no-build uses the examples already built in build-dir (the ctest entry
#   figures.render does this).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vae=0 build_examples=1 out=$root/docs/figures
while [ $# -gt 0 ]; do
  case "$1" in
    --vae) vae=1 ;;
    --no-build) build_examples=0 ;;
    --out) out=$2; shift ;;
    -*) echo "make_figures.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
build=${1:-$root/build-figures}
mkdir -p "$out"
command -v gnuplot >/dev/null || { echo "make_figures.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }

examples=(gaussian_mixture neyman_scott factor_analysis linear_vae)
[ $vae -eq 1 ] && examples+=(vae)
if [ $build_examples -eq 1 ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLATENT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target "${examples[@]}"
fi

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
for e in gaussian_mixture neyman_scott factor_analysis linear_vae; do
  echo "running $e --plot-data" >&2
  "$build/examples/$e" --plot-data "$data" >"$data/$e.txt"
done
gnuplot -e "data='$data'; out='$out'" "$root/docs/figures/figures.gp"

if [ $vae -eq 1 ]; then
  echo "running vae (10 epochs, then the log p(x) estimates)" >&2
  "$build/examples/vae" --out "$data" >"$data/vae.txt"
  for f in vae_reconstructions vae_samples vae_interpolation; do
    /usr/bin/python3 -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])' \
      "$data/$f.pgm" "$out/$f.png"
  done
fi
echo "wrote $(cd "$out" && ls ./*.png | tr '\n' ' ')in $out" >&2
