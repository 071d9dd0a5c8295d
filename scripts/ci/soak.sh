#!/usr/bin/env bash
# Short soak for CI (20 s of concurrency 64 with reloads). The long version is
# run by hand: bench/soak/run.sh 600 build
set -euo pipefail
cd "$(dirname "$0")/../.."
# Results stay in the build tree: CI must not dirty the source tree.
SOAK_JSON="${1:-build}/soak.json" bash bench/soak/run.sh "${SOAK_SECONDS:-20}" "${1:-build}"
