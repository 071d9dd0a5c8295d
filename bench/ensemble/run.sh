#!/usr/bin/env bash
# The cost of an ensemble step, in one run (docs/model-repository.md#ensembles):
#
#   1. through gRPC: torii-server serving the example `identity` (FP32 [1,16],
#      one instance, no dynamic batching) and two ensembles of it,
#      `identity_x1` (one step) and `identity_x2` (identity -> identity),
#      driven by torii-perf at concurrency 1 and 16, the three models
#      alternating within each round;
#   2. in process: torii-bench-ensemble, the same models through
#      InferenceCore without gRPC (less noise, the ensemble's own cost).
#
# Extra p50 per step = (p50(identity_x2) - p50(identity)) / 2 at c=1, per
# round, median over rounds. Throughput at c=16 for each model.
#
#   bench/ensemble/run.sh [build-dir] [rounds] [window-ms]
#
# Needs a build with the benchmarks (TORII_BUILD_BENCH=ON, the default).
# Writes bench/ensemble/results.json (gRPC) and bench/ensemble/results_core.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
rounds="${2:-5}"
window_ms="${3:-2000}"
cmake --build "$build" -j2 --target torii-server torii-perf identity torii-bench-ensemble
server="$build/bin/torii-server"
perf="$build/bin/torii-perf"
core_bench="$build/bin/torii-bench-ensemble"
py=/usr/bin/python3

work="$(mktemp -d "${TMPDIR:-/tmp}/torii-bench-ensemble-XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

repo="$work/repository"
mkdir -p "$repo"
cp -r examples/model_repository/identity "$repo/identity"
chain() {  # chain NAME STEPS
  local name="$1" steps="$2" i in out
  mkdir -p "$repo/$name/1"
  {
    echo "name: \"$name\" platform: \"ensemble\" max_batch_size: 64"
    echo 'input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]'
    echo 'output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]'
    echo 'ensemble_scheduling { step ['
    for ((i = 0; i < steps; i++)); do
      in="t$i"; out="t$((i + 1))"
      [[ $i -eq 0 ]] && in="IN"
      [[ $((i + 1)) -eq $steps ]] && out="OUT"
      [[ $i -gt 0 ]] && echo ","
      echo "  { model_name: \"identity\" input_map { key: \"INPUT0\" value: \"$in\" }"
      echo "    output_map { key: \"OUTPUT0\" value: \"$out\" } }"
    done
    echo '] }'
  } > "$repo/$name/config.pbtxt"
}
chain identity_x1 1
chain identity_x2 2

port="$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server" --model-repository="$repo" --grpc-address=127.0.0.1 --grpc-port="$port" \
  --allow-metrics=false --allow-http=false > "$work/server.log" 2>&1 &
server_pid=$!
url="127.0.0.1:$port"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
for ((r = 1; r <= rounds; r++)); do
  for c in 1 16; do
    # Rotate the order each round so no model always runs first.
    models=(identity:INPUT0 identity_x1:IN identity_x2:IN)
    for ((k = 0; k < 3; k++)); do
      m="${models[$(((k + r) % 3))]}"
      name="${m%%:*}"
      input="${m##*:}"
      "$perf" -u "$url" -m "$name" --input "$input:FP32:1,16" --concurrency-range "$c" \
        -p "$window_ms" -r 6 -s 15 --percentile 50 --wait-ready 60000 --server-pid "$server_pid" \
        --output-json "$work/r${r}_c${c}_${name}.json" > "$work/r${r}_c${c}_${name}.log" 2>&1 ||
        { tail -5 "$work/r${r}_c${c}_${name}.log" >&2; echo "torii-perf failed" >&2; exit 1; }
      echo "round $r c=$c $(tail -1 "$work/r${r}_c${c}_${name}.log" | sed "s/^Concurrency: [0-9]*, //") [$name]"
    done
  done
done
echo "load average after gRPC runs: $(cut -d' ' -f1-3 /proc/loadavg)"

$py - "$work" "$rounds" bench/ensemble/results.json "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" <<'EOF'
import json, statistics, sys
work, rounds, out, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
models = ["identity", "identity_x1", "identity_x2"]
summary, points = [], []
for c in (1, 16):
    per = {m: [] for m in models}
    step2, step1 = [], []
    for r in range(1, rounds + 1):
        got = {}
        for m in models:
            res = json.load(open(f"{work}/r{r}_c{c}_{m}.json"))["results"][0]
            got[m] = res
            per[m].append(res)
            points.append({"round": r, "concurrency": c, "model": m,
                           "p50_us": res["latency_us"]["p50"], "p99_us": res["latency_us"]["p99"],
                           "throughput": res["throughput"], "stable": res["stable"],
                           "server_cpu_us_per_request": (res["server_cpu"] or {}).get("us_per_request"),
                           "errors": res["error_count"]})
        base = got["identity"]["latency_us"]["p50"]
        step2.append((got["identity_x2"]["latency_us"]["p50"] - base) / 2)
        step1.append(got["identity_x1"]["latency_us"]["p50"] - base)
    entry = {"concurrency": c,
             "extra_p50_us_per_step_2steps": statistics.median(step2),
             "extra_p50_us_1step": statistics.median(step1)}
    print(f"\nc={c}, medians over {rounds} rounds (gRPC, torii-perf):")
    for m in models:
        p50 = statistics.median(x["latency_us"]["p50"] for x in per[m])
        tput = statistics.median(x["throughput"] for x in per[m])
        cpu = statistics.median((x["server_cpu"] or {}).get("us_per_request", 0) for x in per[m])
        entry[m] = {"p50_us": p50, "throughput": tput, "server_cpu_us_per_request": cpu}
        print(f"  {m:12s} p50 {p50:7.1f} us  {tput:9.0f} req/s  server cpu {cpu:6.1f} us/req")
    print(f"  extra p50 per step: {entry['extra_p50_us_per_step_2steps']:.1f} us (2 steps vs 1 call), "
          f"{entry['extra_p50_us_1step']:.1f} us (1-step ensemble vs 1 call); "
          f"per-round values {', '.join(f'{x:.1f}' for x in step2)}")
    if c == 16:
        ratio = entry["identity_x2"]["throughput"] / entry["identity"]["throughput"]
        print(f"  throughput identity_x2 / identity: {ratio:.2f} (each ensemble request runs identity twice)")
    summary.append(entry)
json.dump({"tool": "bench/ensemble/run.sh", "level": "gRPC, torii-perf, one channel",
           "commit": commit, "rounds": rounds, "payload": "FP32 [1,16]",
           "summary": summary, "points": points}, open(out, "w"), indent=1)
print(f"\nwritten: {out}")
EOF

kill -TERM "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=""

echo
echo "in process (torii-bench-ensemble):"
"$core_bench" --rounds="$rounds" --json=bench/ensemble/results_core.json 2>/dev/null | sed -n '/^c=/,$p'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
