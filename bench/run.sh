#!/usr/bin/env bash
# Torii benchmarks: every figure is measured against the bare gRPC echo
# server in the same run (docs/performance.md explains the method).
#
#   bench/run.sh [--build DIR] [--results DIR] SUBCOMMAND
#
#   smoke      < 1 min: identity vs echo, 1 KiB, c=1 and c=16, unary and
#              streaming, short windows. Exits non-zero only on errors
#              (failed requests, a server that does not start), never on
#              timings. What CI runs (scripts/ci/bench-smoke.sh).
#   identity   (a) identity vs echo at c=1,16,64 with 1 KiB and 64 KiB FP32
#   batching   (b) MLP 256-1024-1024-16 with vs without dynamic batching, c=32
#   instances  (c) MLP with one vs two instances, c=32
#   http       identity over HTTP (binary and JSON tensors) against gRPC, same
#              server, same run; target: HTTP binary at 1 KiB, c=16 >= 0.7 x
#              gRPC (bench/results/http.json)
#   callgrind  instructions per request on the server hot path (valgrind)
#   all        identity, batching, instances, http
#
# Environment: MEASUREMENT_MS (window, default 2000), MAX_TRIALS (10),
# STABILITY (10 %), BENCH_THREADS (OPENBLAS/OMP threads in the server for
# the MLP runs, default 1), MAX_QUEUE_DELAY_US (MLP batching, default 500),
# CALLGRIND_REQUESTS (2000), ROUNDS (identity, batching, instances: how many
# times each point is repeated, alternating servers/models; default 3; the
# tables show medians), NO_DEADLOCK_VARIANT=1 (identity: also measure
# Torii with Abseil's deadlock detection off, via an LD_PRELOAD shim),
# IDENTITY_SIZES ("256 16384" FP32 elements), IDENTITY_LEVELS ("1 16 64"),
# IDENTITY_NAME (results file name, default identity), HTTP_SIZES ("256
# 16384"), HTTP_LEVELS ("1 16").
# Before/after and variants (identity, smoke): TORII_BEFORE=DIR (a second
# build, e.g. of main: its torii-server is measured as "before", alternated
# with this build's and the echo in every round), TORII_VARIANTS="NAME:ENV=V
# ..." (more servers of this build, each with one environment variable set,
# e.g. "handoff:TORII_SCHEDULER=handoff"), IDENTITY_TARGETS="LABEL=SERVER:MODEL
# ..." (what is measured; SERVER torii, before, nodd or a variant name; MODEL
# identity, identity_isolated, identity_batching or identity_batching_500;
# default "before=before:identity torii=torii:identity", without "before"
# when TORII_BEFORE is unset).
#
# Everything listens on 127.0.0.1 only, on free ports; every process this
# script starts is stopped on exit (trap).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${ROOT}/build"
RESULTS="${ROOT}/bench/results"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD="$(cd "$2" && pwd)"; shift 2 ;;
    --results) RESULTS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) break ;;
  esac
done
CMD="${1:-}"
[[ -n "${CMD}" ]] || { usage; exit 1; }

MEASUREMENT_MS="${MEASUREMENT_MS:-2000}"
MAX_TRIALS="${MAX_TRIALS:-10}"
STABILITY="${STABILITY:-10}"
BENCH_THREADS="${BENCH_THREADS:-1}"
MAX_QUEUE_DELAY_US="${MAX_QUEUE_DELAY_US:-500}"
CALLGRIND_REQUESTS="${CALLGRIND_REQUESTS:-2000}"
ROUNDS="${ROUNDS:-3}"
PY=/usr/bin/python3
[[ -x "${PY}" ]] || PY=python3

BIN="${BUILD}/bin"
PERF="${BIN}/torii-perf"
ECHO_SERVER="${BIN}/torii-echo-server"
TORII_SERVER="${BIN}/torii-server"
MAKE_MLP="${BIN}/torii-bench-make-mlp"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/torii-bench.XXXXXX")"
PIDS=()
FAILURES=0

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [[ -n "${pid}" ]] || continue
    kill -TERM "${pid}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n "${pid}" ]] || continue
    for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  rm -rf "${WORK}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
need() { [[ -x "$1" ]] || die "$1 is not built (cmake --build ${BUILD} --target $(basename "$1"))"; }

free_port() {
  "${PY}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_echo: sets ECHO_PID, ECHO_URL.
start_echo() {
  need "${ECHO_SERVER}"
  rm -f "${WORK}/echo.port"
  "${ECHO_SERVER}" --address=127.0.0.1 --port=0 --port_file="${WORK}/echo.port" \
    > "${WORK}/echo.log" 2>&1 &
  ECHO_PID=$!
  PIDS+=("${ECHO_PID}")
  for _ in $(seq 100); do
    [[ -s "${WORK}/echo.port" ]] && break
    kill -0 "${ECHO_PID}" 2>/dev/null || { cat "${WORK}/echo.log" >&2; die "echo server exited"; }
    sleep 0.1
  done
  [[ -s "${WORK}/echo.port" ]] || die "echo server did not start"
  ECHO_URL="127.0.0.1:$(cat "${WORK}/echo.port")"
  echo "echo server:  pid ${ECHO_PID} at ${ECHO_URL}"
}

# start_torii REPOSITORY [ENV...]: sets TORII_PID, TORII_URL. Readiness is
# awaited per model by torii-perf --wait-ready.
start_torii() {
  local repo="$1"; shift
  need "${TORII_SERVER}"
  local port http_port
  port="$(free_port)"
  http_port="$(free_port)"
  # Metrics and HTTP stay on (a real deployment has them) but on loopback and
  # free ports, so two servers never collide on the defaults 8000 and 8002.
  env "$@" "${TORII_SERVER}" --model-repository="${repo}" --grpc-port="${port}" \
    --grpc-address=127.0.0.1 --metrics-address=127.0.0.1 --metrics-port="$(free_port)" \
    --http-address=127.0.0.1 --http-port="${http_port}" \
    >> "${WORK}/torii.log" 2>&1 &
  TORII_PID=$!
  PIDS+=("${TORII_PID}")
  TORII_URL="127.0.0.1:${port}"
  TORII_HTTP_URL="127.0.0.1:${http_port}"
  sleep 0.2
  kill -0 "${TORII_PID}" 2>/dev/null || { cat "${WORK}/torii.log" >&2; die "torii-server exited at start"; }
  echo "torii-server: pid ${TORII_PID} at ${TORII_URL} (repository ${repo})"
}

stop_pid() {
  local pid="$1"
  kill -TERM "${pid}" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
}

# perf OUT_JSON LABEL URL SERVER_PID [torii-perf args...]: one torii-perf run;
# request errors (exit 2) and setup failures (exit 1) count as failures.
run_perf() {
  local out="$1" label="$2" url="$3" pid="$4"; shift 4
  need "${PERF}"
  local rc=0
  "${PERF}" -u "${url}" --label "${label}" --server-pid "${pid}" \
    --output-json "${out}" --wait-ready 60000 "$@" > "${out%.json}.log" 2>&1 || rc=$?
  sed -n '/^  Concurrency\|^  Request rate/,$p' "${out%.json}.log" | grep -v '^Inferences\|^Concurrency:\|^Request rate:' | sed "s/^/  [${label}]/"
  if [[ ${rc} -ne 0 ]]; then
    echo "bench: torii-perf (${label}) exited ${rc}:" >&2
    tail -5 "${out%.json}.log" >&2
    FAILURES=$((FAILURES + 1))
    [[ -s "${out}" ]] || echo '{"results": [], "setup_error": true}' > "${out}"
  fi
}

# salvage DIR NAME: the summary failed; keep the raw torii-perf files.
salvage() {
  mkdir -p "${RESULTS}/${2}-raw"
  cp -r "$1"/. "${RESULTS}/${2}-raw/"
  echo "bench: compare.py failed; raw results kept in ${RESULTS}/${2}-raw" >&2
  FAILURES=$((FAILURES + 1))
}

window_args() {
  echo -p "${MEASUREMENT_MS}" -r "${MAX_TRIALS}" -s "${STABILITY}"
}

# --- (a) identity vs echo ---------------------------------------------------
identity_repo() {
  if [[ -f "${ROOT}/examples/model_repository/identity/config.pbtxt" ]]; then
    echo "${ROOT}/examples/model_repository"
  else
    die "examples/model_repository/identity/config.pbtxt is missing"
  fi
}

# A repository of identity and its variants (same runner, same payloads):
# identity (as in examples/), identity_isolated (isolation "process"),
# identity_batching (dynamic batching, no queue delay), identity_batching_500
# (dynamic batching, 500 us queue delay).
identity_variants_repo() {
  local src repo="${WORK}/identity_repository"
  src="$(identity_repo)/identity/config.pbtxt"
  [[ -d "${repo}" ]] && { echo "${repo}"; return; }
  local m
  for m in identity identity_isolated identity_batching identity_batching_500; do
    mkdir -p "${repo}/${m}/1"
    sed "s/^name: \"identity\"/name: \"${m}\"/" "${src}" > "${repo}/${m}/config.pbtxt"
  done
  echo 'parameters { key: "isolation" value { string_value: "process" } }' \
    >> "${repo}/identity_isolated/config.pbtxt"
  echo 'dynamic_batching { max_queue_delay_microseconds: 0 }' \
    >> "${repo}/identity_batching/config.pbtxt"
  echo 'dynamic_batching { max_queue_delay_microseconds: 500 }' \
    >> "${repo}/identity_batching_500/config.pbtxt"
  echo "${repo}"
}

# The Torii servers and models of an identity sweep, as LABEL=SERVER:MODEL
# (IDENTITY_TARGETS). SERVER is "torii" (this build), "before" (the build
# in TORII_BEFORE), "nodd" (this build, deadlock detection off) or a
# TORII_VARIANTS name; MODEL is identity or one of its variants above.
identity_targets() {
  if [[ -n "${IDENTITY_TARGETS:-}" ]]; then
    echo "${IDENTITY_TARGETS}"
    return
  fi
  local t="torii=torii:identity"
  [[ -n "${TORII_BEFORE:-}" ]] && t="before=before:identity ${t}"
  [[ "${NO_DEADLOCK_VARIANT:-0}" == 1 ]] && t="${t} toriinodd=nodd:identity"
  echo "${t}"
}

# identity_sweep NAME ROUNDS "PAYLOAD_ELEMENTS..." "CONCURRENCIES..." [args]
identity_sweep() {
  local name="$1" rounds="$2" sizes="$3" levels="$4"; shift 4
  local repo
  repo="$(identity_variants_repo)"
  start_echo
  # The servers the targets name, each started once.
  local -A server_pid=() server_url=()
  local targets target label server model variant
  targets="$(identity_targets)"
  for target in ${targets}; do
    server="${target#*=}"; server="${server%%:*}"
    [[ -n "${server_pid[${server}]:-}" ]] && continue
    case "${server}" in
      torii) start_torii "${repo}" ;;
      before)
        [[ -n "${TORII_BEFORE:-}" ]] || die "target ${target}: set TORII_BEFORE to a build directory"
        local before_bin
        before_bin="$(cd "${TORII_BEFORE}" && pwd)/bin/torii-server"
        TORII_SERVER="${before_bin}" start_torii "${repo}"
        ;;
      nodd)
        local preload="${BUILD}/lib/libtorii_bench_no_deadlock_detection.so"
        [[ -f "${preload}" ]] || die "${preload} is not built (target torii_bench_no_deadlock_detection)"
        start_torii "${repo}" LD_PRELOAD="${preload}"
        ;;
      *)
        # TORII_VARIANTS="NAME:ENV=VALUE ...": this build with one variable set.
        local found=""
        for variant in ${TORII_VARIANTS:-}; do
          [[ "${variant%%:*}" == "${server}" ]] && found="${variant#*:}"
        done
        [[ -n "${found}" ]] || die "target ${target}: no server '${server}' (TORII_VARIANTS?)"
        start_torii "${repo}" "${found}"
        ;;
    esac
    server_pid[${server}]="${TORII_PID}"
    server_url[${server}]="${TORII_URL}"
  done
  # What later steps (smoke's streaming run) use: this build's server.
  if [[ -n "${server_pid[torii]:-}" ]]; then
    TORII_PID="${server_pid[torii]}" TORII_URL="${server_url[torii]}"
  fi
  echo "targets: ${targets}"
  local dir="${WORK}/${name}"
  mkdir -p "${dir}"
  local n c r k
  local -a order
  read -r -a order <<< "${targets}"
  for r in $(seq "${rounds}"); do
    for n in ${sizes}; do
      for c in ${levels}; do
        echo "--- identity round ${r}/${rounds}: FP32 [1,${n}] ($((n * 4)) bytes), concurrency ${c}"
        # The echo first, then every target; the targets' order rotates from
        # round to round, so none is always measured right after the echo.
        run_perf "${dir}/echo_${n}_c${c}_r${r}.json" echo "${ECHO_URL}" "${ECHO_PID}" \
          -m identity --input "INPUT0:FP32:1,${n}" --concurrency-range "${c}" "$@"
        for k in "${!order[@]}"; do
          target="${order[$(( (k + r - 1) % ${#order[@]} ))]}"
          label="${target%%=*}"; server="${target#*=}"; model="${server#*:}"; server="${server%%:*}"
          run_perf "${dir}/${label}_${n}_c${c}_r${r}.json" "${label}" "${server_url[${server}]}" \
            "${server_pid[${server}]}" \
            -m "${model}" --input "INPUT0:FP32:1,${n}" --concurrency-range "${c}" "$@"
        done
      done
    done
  done
  mkdir -p "${RESULTS}"
  "${PY}" "${ROOT}/bench/compare.py" "${name}" "${dir}" "${RESULTS}/${name}.json" \
    --config "$(identity_repo)/identity/config.pbtxt" --note "targets: ${targets}; TORII_BEFORE=${TORII_BEFORE:-}; TORII_VARIANTS=${TORII_VARIANTS:-}" \
    || salvage "${dir}" "${name}"
}

cmd_identity() {
  identity_sweep "${IDENTITY_NAME:-identity}" "${ROUNDS}" "${IDENTITY_SIZES:-256 16384}" \
    "${IDENTITY_LEVELS:-1 16 64}" $(window_args)
}

cmd_smoke() {
  local args=(-p 500 -r 3 -s "${STABILITY}" --warmup-interval 200)
  identity_sweep smoke 1 "256" "1 16" "${args[@]}"
  local dir="${WORK}/smoke"
  echo "--- identity streaming: FP32 [1,256], concurrency 4"
  run_perf "${dir}/stream_echo.json" echo "${ECHO_URL}" "${ECHO_PID}" -m identity \
    --input INPUT0:FP32:1,256 --concurrency-range 4 --streaming "${args[@]}"
  run_perf "${dir}/stream_torii.json" torii "${TORII_URL}" "${TORII_PID}" -m identity \
    --input INPUT0:FP32:1,256 --concurrency-range 4 --streaming "${args[@]}"
  echo "--- identity typed contents and request-rate mode (Torii only)"
  run_perf "${dir}/typed_torii.json" torii "${TORII_URL}" "${TORII_PID}" -m identity \
    --input INPUT0:FP32:1,256 --typed --request-rate-range 1000 "${args[@]}"
  echo "--- identity over HTTP, binary and JSON tensors (Torii only)"
  run_perf "${dir}/http_binary_torii.json" torii "${TORII_HTTP_URL}" "${TORII_PID}" -i http \
    -m identity --input INPUT0:FP32:1,256 --concurrency-range 4 "${args[@]}"
  run_perf "${dir}/http_json_torii.json" torii "${TORII_HTTP_URL}" "${TORII_PID}" -i http \
    --input-tensor-format json --output-tensor-format json -m identity \
    --input INPUT0:FP32:1,256 --concurrency-range 4 "${args[@]}"
}

# --- HTTP against gRPC --------------------------------------------------------
# http_sweep NAME ROUNDS "PAYLOAD_ELEMENTS..." "CONCURRENCIES..." [args]: one
# torii-server; per round and point gRPC, HTTP with binary tensors and HTTP
# with JSON tensors, back to back.
http_sweep() {
  local name="$1" rounds="$2" sizes="$3" levels="$4"; shift 4
  local repo
  repo="$(identity_repo)"
  start_torii "${repo}"
  local dir="${WORK}/${name}"
  mkdir -p "${dir}"
  local n c r
  for r in $(seq "${rounds}"); do
    for n in ${sizes}; do
      for c in ${levels}; do
        echo "--- http round ${r}/${rounds}: FP32 [1,${n}] ($((n * 4)) bytes), concurrency ${c}"
        run_perf "${dir}/grpc_${n}_c${c}_r${r}.json" grpc "${TORII_URL}" "${TORII_PID}" \
          -m identity --input "INPUT0:FP32:1,${n}" --concurrency-range "${c}" "$@"
        run_perf "${dir}/httpbin_${n}_c${c}_r${r}.json" http_binary "${TORII_HTTP_URL}" \
          "${TORII_PID}" -i http -m identity --input "INPUT0:FP32:1,${n}" \
          --concurrency-range "${c}" "$@"
        run_perf "${dir}/httpjson_${n}_c${c}_r${r}.json" http_json "${TORII_HTTP_URL}" \
          "${TORII_PID}" -i http --input-tensor-format json --output-tensor-format json \
          -m identity --input "INPUT0:FP32:1,${n}" --concurrency-range "${c}" "$@"
      done
    done
  done
  mkdir -p "${RESULTS}"
  "${PY}" "${ROOT}/bench/compare.py" http "${dir}" "${RESULTS}/${name}.json" \
    --config "${repo}/identity/config.pbtxt" || salvage "${dir}" "${name}"
}

cmd_http() {
  http_sweep http "${ROUNDS}" "${HTTP_SIZES:-256 16384}" "${HTTP_LEVELS:-1 16}" $(window_args)
}

# --- (b), (c) MLP -----------------------------------------------------------
mlp_repo() {
  need "${MAKE_MLP}"
  local repo="${WORK}/mlp_repository"
  "${MAKE_MLP}" --repository "${repo}" --max-queue-delay-us "${MAX_QUEUE_DELAY_US}" > "${WORK}/make_mlp.log" 2>&1 \
    || { cat "${WORK}/make_mlp.log" >&2; die "torii-bench-make-mlp failed"; }
  echo "${repo}"
}

# mlp_runs NAME "MODELS..." : each model at c=32, plus echo on the same payload.
# With TORII_BEFORE, the build there serves the same models too ("before_<model>"),
# alternated with this build's in every round.
mlp_runs() {
  local name="$1" models="$2"
  local repo
  repo="$(mlp_repo)"
  start_echo
  local threads=(OPENBLAS_NUM_THREADS="${BENCH_THREADS}" OMP_NUM_THREADS="${BENCH_THREADS}"
                 MKL_NUM_THREADS="${BENCH_THREADS}")
  local before_pid="" before_url=""
  if [[ -n "${TORII_BEFORE:-}" ]]; then
    TORII_SERVER="$(cd "${TORII_BEFORE}" && pwd)/bin/torii-server" start_torii "${repo}" "${threads[@]}"
    before_pid="${TORII_PID}" before_url="${TORII_URL}"
  fi
  start_torii "${repo}" "${threads[@]}"
  local dir="${WORK}/${name}"
  mkdir -p "${dir}"
  local m r
  for r in $(seq "${ROUNDS}"); do
    echo "--- ${name} round ${r}/${ROUNDS}: MLP 256-1024-1024-16 FP32, request [1,256], concurrency 32"
    run_perf "${dir}/echo_r${r}.json" echo "${ECHO_URL}" "${ECHO_PID}" -m mlp \
      --input INPUT__0:FP32:1,256 --concurrency-range 32 $(window_args)
    for m in ${models}; do
      if [[ -n "${before_pid}" ]]; then
        run_perf "${dir}/before_${m}_r${r}.json" "before_${m}" "${before_url}" "${before_pid}" \
          -m "${m}" --input INPUT__0:FP32:1,256 --concurrency-range 32 $(window_args)
      fi
      run_perf "${dir}/${m}_r${r}.json" "${m}" "${TORII_URL}" "${TORII_PID}" -m "${m}" \
        --input INPUT__0:FP32:1,256 --concurrency-range 32 $(window_args)
    done
  done
  mkdir -p "${RESULTS}"
  "${PY}" "${ROOT}/bench/compare.py" "${name}" "${dir}" "${RESULTS}/${name}.json" \
    --config "${repo}/mlp_batching/config.pbtxt" \
    --note "server env OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=${BENCH_THREADS}; TORII_BEFORE=${TORII_BEFORE:-}" \
    || salvage "${dir}" "${name}"
}

cmd_batching() { mlp_runs batching "mlp mlp_batching"; }
cmd_instances() { mlp_runs instances "mlp mlp_2inst mlp_batching mlp_batching_2inst"; }

# --- callgrind ----------------------------------------------------------------
# callgrind_server LABEL URL PID: zero the counters after a warm-up, send
# CALLGRIND_REQUESTS requests at concurrency 1, dump, annotate.
callgrind_measure() {
  local label="$1" url="$2" pid="$3"
  local out="${WORK}/callgrind"
  "${PERF}" -u "${url}" -m identity --input INPUT0:FP32:1,256 --request-count 200 \
    --wait-ready 300000 > /dev/null
  callgrind_control -z "${pid}" > /dev/null
  "${PERF}" -u "${url}" -m identity --input INPUT0:FP32:1,256 \
    --request-count "${CALLGRIND_REQUESTS}" --output-json "${out}/${label}_perf.json" > /dev/null
  callgrind_control --dump="${label}" "${pid}" > /dev/null
  sleep 1
  local file
  file="$(ls "${out}/${label}".callgrind.out.*.1 2>/dev/null | head -1 || true)"
  [[ -n "${file}" ]] || die "callgrind wrote no dump for ${label} (see ${out}/${label}.log)"
  mkdir -p "${RESULTS}"
  # --threshold=100 lists every function (the default stops at 99 % and,
  # with thread roots carrying the whole total, would list only those).
  callgrind_annotate --threshold=100 --inclusive=no "${file}" 2>/dev/null | head -120 \
    > "${RESULTS}/callgrind_${label}_self.txt" || true
  callgrind_annotate --threshold=100 --inclusive=yes "${file}" 2>/dev/null | head -160 \
    > "${RESULTS}/callgrind_${label}_inclusive.txt" || true
  cp "${file}" "${out}/${label}.final"
}

# callgrind_server LABEL [ENV...] -- COMMAND...: runs COMMAND under callgrind
# (listening on the port in CG_PORT), measures, stops it.
callgrind_server() {
  local label="$1"; shift
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  local out="${WORK}/callgrind"
  env "${envs[@]}" valgrind --tool=callgrind --instr-atstart=yes --dump-line=no \
    --callgrind-out-file="${out}/${label}.callgrind.out.%p" "$@" > "${out}/${label}.log" 2>&1 &
  local pid=$!; PIDS+=("${pid}")
  callgrind_measure "${label}" "127.0.0.1:${CG_PORT}" "${pid}"
  stop_pid "${pid}"
}

cmd_callgrind() {
  command -v valgrind > /dev/null || die "valgrind is not installed (apt-get install valgrind)"
  need "${PERF}"; need "${ECHO_SERVER}"; need "${TORII_SERVER}"
  local repo="${WORK}/identity_only" out="${WORK}/callgrind"
  # Only the identity model: another model still loading (LibTorch takes
  # seconds under valgrind) would land in the measured window.
  mkdir -p "${repo}" "${out}"
  cp -r "$(identity_repo)/identity" "${repo}/identity"
  local preload="${BUILD}/lib/libtorii_bench_no_deadlock_detection.so"

  CG_PORT="$(free_port)"
  callgrind_server echo -- "${ECHO_SERVER}" --address=127.0.0.1 --port="${CG_PORT}"
  CG_PORT="$(free_port)"
  callgrind_server echo_deadlock_detection -- "${ECHO_SERVER}" --address=127.0.0.1 \
    --port="${CG_PORT}" --mutex_deadlock_detection=true
  CG_PORT="$(free_port)"
  callgrind_server torii -- "${TORII_SERVER}" --model-repository="${repo}" \
    --grpc-port="${CG_PORT}" --grpc-address=127.0.0.1 --metrics-address=127.0.0.1 \
    --metrics-port="$(free_port)" --allow-http=false
  if [[ -f "${preload}" ]]; then
    CG_PORT="$(free_port)"
    # valgrind honours LD_PRELOAD for the client program.
    callgrind_server torii_no_deadlock_detection LD_PRELOAD="${preload}" -- \
      "${TORII_SERVER}" --model-repository="${repo}" --grpc-port="${CG_PORT}" \
      --grpc-address=127.0.0.1 --metrics-address=127.0.0.1 --metrics-port="$(free_port)" \
      --allow-http=false
  fi

  "${PY}" "${ROOT}/bench/compare.py" callgrind "${out}" "${RESULTS}/callgrind.json" \
    --requests "${CALLGRIND_REQUESTS}"
}

case "${CMD}" in
  smoke) cmd_smoke ;;
  identity) cmd_identity ;;
  batching) cmd_batching ;;
  instances) cmd_instances ;;
  callgrind) cmd_callgrind ;;
  http) cmd_http ;;
  all) cmd_identity; cmd_batching; cmd_instances; cmd_http ;;
  *) die "unknown subcommand '${CMD}' (smoke|identity|batching|instances|callgrind|all)" ;;
esac

if [[ ${FAILURES} -ne 0 ]]; then
  echo "bench: ${FAILURES} run(s) had errors" >&2
  exit 1
fi
echo "bench: ${CMD} done, zero errors"
