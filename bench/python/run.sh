#!/usr/bin/env bash
# The Python runner against the C++ runner (issue 12): the same add/sub model
# (1 KiB per input) served once by the bundled C++ runner and once by a
# model.py, measured in the same run, alternating, at concurrency 1 and 16;
# plus what one Python instance costs (resident memory of its process, load
# time). Targets: Python p50 at c=1 within +100 µs of C++; throughput at
# c=16 >= 0.6x C++.
#
#   bench/python/run.sh [--build DIR]       (default: build)
#
# Environment: ROUNDS (default 3), MEASUREMENT_MS (default 2000).
# Listens on 127.0.0.1 only, on free ports; stops what it starts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${ROOT}/build"
[[ "${1:-}" == "--build" ]] && BUILD="$(cd "$2" && pwd)"
ROUNDS="${ROUNDS:-3}"
MEASUREMENT_MS="${MEASUREMENT_MS:-2000}"
PERF="${BUILD}/bin/torii-perf"
SERVER="${BUILD}/bin/torii-server"
for f in "${PERF}" "${SERVER}" "${BUILD}/lib/torii/libtorii_python.so"; do
  [[ -e "$f" ]] || { echo "bench/python: missing $f (build with TORII_BUILD_BENCH=ON and the Python runner)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/torii-bench-python.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [[ -n "${SERVER_PID}" ]]; then
    kill -TERM "${SERVER_PID}" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "${SERVER_PID}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${SERVER_PID}" 2>/dev/null || true
  fi
  [[ -n "${KEEP:-}" ]] || rm -rf "${WORK}"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cp -r "${ROOT}/bench/python/models" "${WORK}/repo"
GRPC_PORT="$(free_port)"; METRICS_PORT="$(free_port)"; HTTP_PORT="$(free_port)"
HTTP_ARG=()
"${SERVER}" --help 2>/dev/null | grep -q -- '--http-port' && HTTP_ARG=(--http-port="${HTTP_PORT}" --http-address=127.0.0.1)
"${SERVER}" --model-repository="${WORK}/repo" --grpc-address=127.0.0.1 --grpc-port="${GRPC_PORT}" \
  --metrics-address=127.0.0.1 --metrics-port="${METRICS_PORT}" "${HTTP_ARG[@]}" \
  >"${WORK}/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
  grep -q "server ready" "${WORK}/server.log" && break
  kill -0 "${SERVER_PID}" 2>/dev/null || { cat "${WORK}/server.log" >&2; exit 1; }
  sleep 0.1
done

point() {  # model concurrency round
  "${PERF}" -m "$1" -u "127.0.0.1:${GRPC_PORT}" --input INPUT0:FP32:256 --input INPUT1:FP32:256 \
    --concurrency-range "$2" -p "${MEASUREMENT_MS}" --server-pid "${SERVER_PID}" \
    --output-json "${WORK}/$1_c$2_r$3.json" >/dev/null
}
for r in $(seq "${ROUNDS}"); do
  for c in 1 16; do
    point add_sub_cpp "$c" "$r"
    point add_sub_py "$c" "$r"
  done
done

# What a Python instance costs: its process's memory (from /metrics) and the
# load time the server logged.
curl_metrics() { /usr/bin/python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:${METRICS_PORT}/metrics').read().decode())"; }
curl_metrics > "${WORK}/metrics.txt"

/usr/bin/python3 - "${WORK}" "${ROUNDS}" <<'PY'
import json, re, statistics, sys, os
work, rounds = sys.argv[1], int(sys.argv[2])
def load(model, c):
    pts = []
    for r in range(1, rounds + 1):
        with open(f"{work}/{model}_c{c}_r{r}.json") as f:
            d = json.load(f)
        pts.append(d["results"][0])
    return pts
def med(pts, key):
    return statistics.median(p[key] for p in pts)
def lat(pts, q):
    return statistics.median(p["latency_us"][q] for p in pts)
print("| runner | c | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs |")
print("|---|---|---|---|---|---|---|")
res = {}
for c in (1, 16):
    for model, name in (("add_sub_cpp", "C++"), ("add_sub_py", "Python")):
        pts = load(model, c)
        res[(name, c)] = (med(pts, "throughput"), lat(pts, "p50"))
        print(f"| {name} | {c} | {med(pts, 'throughput'):.0f} | {lat(pts, 'p50'):.1f} | {lat(pts, 'p90'):.1f} | {lat(pts, 'p99'):.1f} | {lat(pts, 'p99.9'):.1f} |")
d_p50 = res[("Python", 1)][1] - res[("C++", 1)][1]
ratio = res[("Python", 16)][0] / res[("C++", 16)][0]
print()
print(f"Python p50 at c=1: {d_p50:+.1f} µs against C++ (target <= +100 µs): {'met' if d_p50 <= 100 else 'MISSED'}")
print(f"Python throughput at c=16: {ratio:.2f}x C++ (target >= 0.6x): {'met' if ratio >= 0.6 else 'MISSED'}")
rss = [float(m.group(1)) for m in re.finditer(r'torii_runner_process_resident_memory_bytes\{[^}]*model="add_sub_py"[^}]*\} (\S+)', open(f"{work}/metrics.txt").read())]
load_ms = [int(m.group(1)) for m in re.finditer(r'model ready model=add_sub_py version=1 duration_ms=(\d+)', open(f"{work}/server.log").read())]
if rss:
    print(f"One Python instance: {rss[0] / 2**20:.1f} MiB resident (its own process)")
if load_ms:
    print(f"Python model load (process start, interpreter, numpy, model.py, initialize): {load_ms[0]} ms")
PY
