#!/usr/bin/env bash
# CI: the instruction-count regression gate. Runs after bench-smoke as
#   bash scripts/ci/perf-gate.sh BUILD_DIR [--update] [--cases A,B] [--repeat N]
# Counts torii-server's user-space instructions per request with valgrind's
# callgrind (identity over gRPC; identity isolated in a child process, which
# is counted too), three runs per case, and fails when a case exceeds its
# budget in bench/perf_budget.json by more than 10 %. Instruction counts do
# not depend on the machine's load the way timings do, so this can fail CI
# where bench-smoke cannot. The failure message prints both numbers, the
# ratio and how to re-baseline on purpose:
#   bash scripts/ci/perf-gate.sh build --update && git add bench/perf_budget.json
# About 1-2 minutes on 2 cores (a Release build; no debug info needed).
# Profiles are kept in BUILD_DIR/perf-gate/ (callgrind_annotate reads them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-build}"
[[ $# -gt 0 ]] && shift
# Recorded in the budget by --update, as the command that produced it.
export PERF_GATE_COMMAND="bash scripts/ci/perf-gate.sh ${BUILD}${*:+ $*}"
[[ -d "${BUILD}" ]] || BUILD="${ROOT}/${BUILD}"
[[ -d "${BUILD}" ]] || { echo "perf-gate: no build directory ${BUILD}" >&2; exit 1; }
PY=/usr/bin/python3
[[ -x "${PY}" ]] || PY=python3
exec timeout --kill-after=20 600 "${PY}" "${ROOT}/bench/perf_gate.py" --build "${BUILD}" "$@"
