#!/usr/bin/env bash
# The cost of isolation: "process" against in-process, on identity, 1 KiB and
# 64 KiB, concurrency 1 and 8, in one run (docs/reliability.md#costs).
#
#   bench/isolation/run.sh [build-dir] [torii-bench-isolation flags...]
#   e.g. bench/isolation/run.sh build --seconds=3 --rounds=4
#
# Needs a build with the benchmarks (TORII_BUILD_BENCH=ON, the default).
# Writes bench/isolation/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
shift || true
cmake --build "$build" -j2 --target torii-bench-isolation torii-server torii-runner-host identity
bin="$build/bin/torii-bench-isolation"
[ -x "$bin" ] || bin="$(find "$build" -name torii-bench-isolation -type f -perm -u+x | head -1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" --json=bench/isolation/results.json "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
