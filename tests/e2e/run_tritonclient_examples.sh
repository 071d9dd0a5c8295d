#!/usr/bin/env bash
# Runs Triton's own HTTP client examples, unchanged, against torii-server (a
# held-out check of the HTTP frontend; by hand, not in CI: it needs sources
# this repository does not ship).
#
#   tests/e2e/run_tritonclient_examples.sh CLIENT_GIT_DIR [PYTHON_BACKEND_GIT_DIR]
#
# CLIENT_GIT_DIR is a clone (bare or not) of triton-inference-server/client;
# its src/python/library (tritonclient) and src/python/examples are exported to
# a scratch directory and run from there, never copied into this repository.
# With PYTHON_BACKEND_GIT_DIR, python_backend's example clients run too, with
# their own model.py files served by Torii's Python runner; they call
# localhost:8000, so the server and they run in a private network namespace
# (unshare -n, needs root).
# Needs: torii-server and the Python runner built in BUILD (default build/),
# /usr/bin/python3 with python3-numpy, python3-rapidjson,
# python3-geventhttpclient and python3-aiohttp (Debian packages).
# Prints PASS/FAIL per script; exits 0. Results are listed in docs/http.md.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
CLIENT="${1:?usage: $0 CLIENT_GIT_DIR [PYTHON_BACKEND_GIT_DIR]}"
PYBACKEND="${2:-}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/torii-tritonclient.XXXXXX")"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

export_tree() {  # export_tree GIT_DIR PATH DEST
  mkdir -p "$3"
  git -C "$1" archive HEAD "$2" | tar -x -C "$3"
}
free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_ready() {  # wait_ready HOST:PORT
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/health/ready")" = 200 ] && return 0
    sleep 0.1
  done
  echo "server not ready; log:"; tail -20 "$WORK/server.log"; return 1
}
run_one() {  # run_one NAME DIR SCRIPT ARGS...
  local name="$1" dir="$2"; shift 2
  if (cd "$dir" && PYTHONPATH="$WORK/client/src/python/library" timeout 120 /usr/bin/python3 "$@" \
        > "$WORK/$name.log" 2>&1); then
    echo "PASS $name"
  else
    echo "FAIL $name: $(tail -2 "$WORK/$name.log" | tr '\n' ' ' | cut -c1-200)"
  fi
}

export_tree "$CLIENT" src/python "$WORK/client"
examples="$WORK/client/src/python/examples"

# Triton's examples: models simple, simple_string, simple_identity.
port="$(free_port)"
"$BUILD/bin/torii-server" --model-repository="$ROOT/tests/e2e/tritonclient_models" \
  --grpc-address=127.0.0.1 --grpc-port="$(free_port)" --http-address=127.0.0.1 \
  --http-port="$port" --metrics-address=127.0.0.1 --metrics-port="$(free_port)" \
  --model-control-mode=explicit --load-model='*' > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "127.0.0.1:$port" || exit 0
for f in "$examples"/simple_http_*.py; do
  run_one "$(basename "$f" .py)" "$examples" "$(basename "$f")" -u "127.0.0.1:$port"
done
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""

[ -n "$PYBACKEND" ] || exit 0
# python_backend's examples, with their own models.
export_tree "$PYBACKEND" examples "$WORK/pb"
ex="$WORK/pb/examples" repo="$WORK/pb_models"
for m in add_sub pytorch custom_metrics; do
  mkdir -p "$repo/$m/1"; cp "$ex/$m/model.py" "$repo/$m/1/"; cp "$ex/$m/config.pbtxt" "$repo/$m/"
done
for m in sync async; do
  mkdir -p "$repo/bls_$m/1"
  cp "$ex/bls/${m}_model.py" "$repo/bls_$m/1/model.py"; cp "$ex/bls/${m}_config.pbtxt" "$repo/bls_$m/config.pbtxt"
done
for m in nobatch batch; do
  mkdir -p "$repo/${m}_auto_complete/1"; cp "$ex/auto_complete/${m}_model.py" "$repo/${m}_auto_complete/1/model.py"
done
cat > "$WORK/in_namespace.sh" <<INNER
ip link set lo up
"$BUILD/bin/torii-server" --model-repository="$repo" --strict-readiness=false > "$WORK/server_pb.log" 2>&1 &
pid=\$!
for _ in \$(seq 1 300); do
  [ "\$(curl -s -o /dev/null -w '%{http_code}' http://localhost:8000/v2/health/ready)" = 200 ] && break
  sleep 0.1
done
for c in add_sub/client.py pytorch/client.py auto_complete/client.py bls/sync_client.py \
         bls/async_client.py custom_metrics/client.py; do
  name="python_backend_\$(dirname \$c)_\$(basename \$c .py)"
  if (cd "$ex/\$(dirname \$c)" && PYTHONPATH="$WORK/client/src/python/library" timeout 120 \
        /usr/bin/python3 "\$(basename \$c)" > "$WORK/\$name.log" 2>&1); then
    echo "PASS \$name"
  else
    echo "FAIL \$name: \$(tail -1 "$WORK/\$name.log" | cut -c1-200)"
  fi
done
kill \$pid; wait \$pid
INNER
unshare -n bash "$WORK/in_namespace.sh" || echo "SKIP python_backend examples: unshare -n failed (needs root)"
