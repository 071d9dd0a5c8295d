#!/usr/bin/env bash
# Configures and builds Torii (Release) into build/ (or $TORII_BUILD_DIR).
# Extra arguments go to the CMake configure step, e.g. -DTORII_WITH_TORCH=OFF.
# Used by README.md, .ci/run and deploy/Dockerfile alike.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${TORII_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j"${TORII_JOBS:-2}"
