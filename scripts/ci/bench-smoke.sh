#!/usr/bin/env bash
# CI: the short benchmark. Runs after the build as
#   bash scripts/ci/bench-smoke.sh BUILD_DIR
# It prints Torii-vs-echo figures (identity, 1 KiB, unary and streaming) and
# fails only on errors (failed requests, a server that does not start, a
# missing binary), never on timings: CI machines are shared and noisy.
set -euo pipefail
BUILD="${1:-build}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[[ -d "${BUILD}" ]] || BUILD="${ROOT}/${BUILD}"
for bin in torii-perf torii-echo-server torii-server; do
  if [[ ! -x "${BUILD}/bin/${bin}" ]]; then
    echo "bench-smoke: ${BUILD}/bin/${bin} is missing (build with -DTORII_BUILD_BENCH=ON)" >&2
    exit 1
  fi
done
# The TorchScript runner's overhead against LibTorch direct (a few seconds).
if [[ -x "${BUILD}/bin/torii-bench-torchscript" ]]; then
  timeout --kill-after=10 120 "${BUILD}/bin/torii-bench-torchscript" --rounds 3
fi
# Results stay in the build tree: CI must not dirty the source tree.
exec timeout --kill-after=10 300 bash "${ROOT}/bench/run.sh" --build "${BUILD}" \
  --results "${BUILD}/bench-results" smoke
