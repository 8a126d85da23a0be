#!/bin/sh
# Builds the three runtime images with podman from the repository root, tagged REGISTRY/TARGET:VERSION
# (REGISTRY defaults to ghcr.io/meshserve, VERSION is the package's), on the base image that base-image.sh
# provides. Prints one line per image: its name and its build time in seconds. `make images` runs it.
set -eu
cd "$(dirname "$0")/.."
REGISTRY=${1:-ghcr.io/meshserve}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
sh runtime_images/base-image.sh >/dev/null
for target in model-server-sklearn model-server-tensorflow steps; do
  started=$(date +%s.%N)
  podman build --quiet -f runtime_images/Dockerfile --target "$target" -t "$REGISTRY/$target:$VERSION" . >/dev/null
  echo "$REGISTRY/$target:$VERSION $(echo "$(date +%s.%N) - $started" | bc)"
done
