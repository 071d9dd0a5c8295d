#!/usr/bin/env bash
# Runs the whole test suite of an existing build (scripts/build.sh first).
# Arguments go to ctest, e.g. -L unit or -R clients.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${TORII_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j"${TORII_TEST_JOBS:-2}" --timeout 600 "$@"
