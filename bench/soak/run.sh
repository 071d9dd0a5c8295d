#!/usr/bin/env bash
# Soak: concurrency 64 of valid, invalid and slow requests plus a model reload
# every 2 s, against a real server on loopback; prints the status-code
# histogram and the resident-memory slope, writes bench/results/soak.json.
#
#   bench/soak/run.sh [SECONDS] [BUILD_DIR]     (default 300 s, build)
# CI runs a short version: bench/soak/run.sh 20 build
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-300}"
build="${2:-build}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The example models (identity, add_sub) plus a slow probe model.
mkdir -p "$work/repo"
cp -r examples/model_repository/identity examples/model_repository/add_sub "$work/repo/"
mkdir -p "$work/repo/slow/1"
cp "$build/tests/server/fixtures/libtorii_probe.so" "$work/repo/slow/"
cat > "$work/repo/slow/config.pbtxt" <<'PBTXT'
backend: "probe"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
PBTXT

port="$(free_port)"
mport="$(free_port)"
"$build/bin/torii-server" --model-repository="$work/repo" --grpc-address=127.0.0.1 \
  --grpc-port="$port" --metrics-address=127.0.0.1 --metrics-port="$mport" \
  --model-control-mode=explicit --load-model='*' --allow-http=false > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if grep -q "server ready" "$work/server.log"; then break; fi
  sleep 0.1
done
grep -q "server ready" "$work/server.log" || { cat "$work/server.log"; exit 1; }

json="${SOAK_JSON:-bench/results/soak.json}"
mkdir -p "$(dirname "$json")"
status=0
"$build/bin/torii-soak" --address="127.0.0.1:$port" --pid="$server_pid" --seconds="$seconds" \
  --concurrency=64 --reload-model=add_sub --slow-model=slow --json="$json" || status=$?

kill -0 "$server_pid" || { echo "soak: the server died"; tail -20 "$work/server.log"; exit 1; }
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
echo "server exit code after SIGTERM: $rc"
[ "$rc" = 0 ] || status=1
exit "$status"
