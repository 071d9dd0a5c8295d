#!/usr/bin/env bash
# The runner kit, end to end, from an install prefix alone (issue 6, "done
# when"): what an ML engineer outside this repository does with a Torii
# release.
#
#   bash scripts/ci/runner-kit.sh [BUILD_DIR]      (default: build)
#
# BUILD_DIR must be a configured and built Torii tree. The script
#   1. installs it into a fresh prefix (cmake --install),
#   2. copies sdk/template into a clean directory outside the repository and
#      builds it with -DCMAKE_PREFIX_PATH=<prefix> only,
#   3. runs the template's unit tests,
#   4. runs <prefix>/bin/torii-runner check on the template's model, with the
#      built library copied into it (the documented way), and on the installed
#      Python model template (share/torii/python-model-template), which runs in
#      <prefix>/bin/torii-runner-host processes as the Python runner's manifest
#      asks (skipped when the build has no Python runner),
#   5. starts <prefix>/bin/torii-server on a repository holding that model and
#      one of a bundled runner (loopback, a free port, no flag for the backend
#      directory: bundled runners must be found in <prefix>/lib/torii),
#   6. calls ModelMetadata and ModelInfer with Python grpcio (stubs generated
#      from proto/ by protoc + grpc_python_plugin) and asserts the four
#      provenance keys runner, runner_version, runner_build, runner_abi,
#   7. always stops the server and removes the temporary directory
#      (KEEP_WORK=1 keeps it for debugging).
# Exit status 0 only if every step passed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
python="${TORII_CLIENT_PYTHON:-/usr/bin/python3}"
jobs="${JOBS:-2}"

if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "runner-kit: $build is not a configured build directory" >&2
  exit 2
fi
for tool in protoc grpc_python_plugin; do
  command -v "$tool" >/dev/null || { echo "runner-kit: $tool not found (apt: protobuf-compiler-grpc)" >&2; exit 2; }
done
"$python" -c 'import grpc, google.protobuf' 2>/dev/null ||
  { echo "runner-kit: $python lacks grpcio/protobuf (apt: python3-grpcio python3-protobuf)" >&2; exit 2; }

work="$(mktemp -d /tmp/torii-runner-kit.XXXXXX)"
prefix="$work/prefix"
server_pid=""

stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "runner-kit: torii-server ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
cleanup() {
  local rc=$?
  stop_server
  if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "runner-kit: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
fail() { echo "runner-kit: FAIL: $*" >&2; exit 1; }

step "1. install $build into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log" >&2; fail "cmake --install failed"; }
for f in bin/torii-server bin/torii-runner bin/torii-runner-host lib/torii/libtorii_identity.so \
         include/torii/runner_abi.h include/torii/runner.h include/torii/testing/fake_host.h \
         lib/cmake/ToriiSdk/ToriiSdkConfig.cmake lib/cmake/ToriiSdk/ToriiSdkConfigVersion.cmake \
         lib/cmake/ToriiSdk/ToriiRunner.cmake lib/cmake/ToriiSdk/runner.map; do
  [ -e "$prefix/$f" ] || fail "the install has no $f"
done
diff -r -x build -x repo -x 'libtorii_*.so' "$root/sdk/template" "$prefix/share/torii/runner-template" ||
  fail "the installed template differs from sdk/template"
[ -f "$prefix/share/torii/proto/inference.proto" ] || fail "the install has no share/torii/proto"
echo "installed: $(cd "$prefix" && find bin lib/torii lib/cmake share -type f | sort | tr '\n' ' ')"

step "2. build a clean copy of sdk/template against the prefix only"
project="$work/scale"
cp -r "$root/sdk/template" "$project"
rm -rf "$project/build" "$project"/model/libtorii_*.so  # whatever a developer left behind
cmake -S "$project" -B "$project/build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configuring the template failed"; }
grep -q "ToriiSdk" "$project/build/CMakeCache.txt" || fail "the template did not use ToriiSdk"
grep -q "^ToriiSdk_DIR:PATH=$prefix/lib/cmake/ToriiSdk" "$project/build/CMakeCache.txt" ||
  fail "ToriiSdk was not found in the prefix: $(grep ToriiSdk_DIR "$project/build/CMakeCache.txt")"
cmake --build "$project/build" -j"$jobs" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "building the template failed"; }
library="$project/build/libtorii_scale.so"
[ -f "$library" ] || fail "the build produced no libtorii_scale.so"
exported="$(nm -D --defined-only "$library" | awk '{print $3}' | sort | tr '\n' ' ')"
[ "$exported" = "torii_runner_info torii_runner_instance_create torii_runner_instance_destroy torii_runner_instance_execute torii_runner_model_load torii_runner_model_unload " ] ||
  fail "libtorii_scale.so exports more than the ABI entry points: $exported"
echo "built $library (exports only the six torii_runner_* entry points)"

step "3. the template's unit tests"
"$project/build/scale_test" || fail "the template's unit tests failed"

step "4. torii-runner check on the template's model and on the Python model template"
cp "$library" "$project/model/"
"$prefix/bin/torii-runner" check "$project/model" || fail "torii-runner check failed"
if [ -f "$prefix/lib/torii/libtorii_python.so" ]; then
  # A copy outside the prefix, as a user starts from it; the checks run its
  # Python code in torii-runner-host processes, never in torii-runner.
  cp -r "$prefix/share/torii/python-model-template/my_model" "$work/my_model"
  "$prefix/bin/torii-runner" check "$work/my_model" | tee "$work/python-check.log" ||
    fail "torii-runner check failed on the Python model template"
  grep -q "isolation        process_per_instance (the runner's manifest)" "$work/python-check.log" ||
    fail "torii-runner did not run the Python model isolated"
else
  echo "no lib/torii/libtorii_python.so (TORII_WITH_PYTHON=OFF): the Python model check is skipped"
fi

step "5. serve it with the installed torii-server"
repo="$work/repo"
mkdir -p "$repo"
cp -r "$project/model" "$repo/scale"
# A model of a bundled runner, with no library of its own: the installed
# server must find <prefix>/lib/torii/libtorii_identity.so without a flag.
cp -r "$root/examples/model_repository/identity" "$repo/identity"
rm -f "$repo"/identity/libtorii_*.so "$repo"/identity/*/libtorii_*.so
server_flags=(--model-repository="$repo" --grpc-address=127.0.0.1 --grpc-port=0)
if "$prefix/bin/torii-server" --help 2>&1 | grep -q -- '--allow-metrics'; then
  server_flags+=(--allow-metrics=false)  # loopback gRPC only, no fixed metrics port
fi
if "$prefix/bin/torii-server" --help 2>&1 | grep -q -- '--allow-http'; then
  server_flags+=(--allow-http=false)  # nor a fixed HTTP port
fi
"$prefix/bin/torii-server" "${server_flags[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 300); do
  port="$(sed -n 's/.*gRPC server listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "torii-server exited"; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log" >&2; fail "torii-server did not report its port"; }
echo "torii-server pid $server_pid on 127.0.0.1:$port"

step "6. ModelMetadata carries the runner's provenance"
stubs="$work/stubs"
mkdir -p "$stubs"
protoc -I "$root/proto" --python_out="$stubs" --grpc_python_out="$stubs" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  inference.proto model_config.proto
abi="$(sed -n 's/^#define TORII_RUNNER_ABI_VERSION_MAJOR \([0-9]*\).*/\1/p' "$prefix/include/torii/runner_abi.h").$(sed -n 's/^#define TORII_RUNNER_ABI_VERSION_MINOR \([0-9]*\).*/\1/p' "$prefix/include/torii/runner_abi.h")"
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$stubs" "$python" - "127.0.0.1:$port" "$abi" <<'PY' ||
import struct, sys, time
import grpc
import inference_pb2 as pb, inference_pb2_grpc as rpc

address, abi = sys.argv[1], sys.argv[2]
channel = grpc.insecure_channel(address)
stub = rpc.GRPCInferenceServiceStub(channel)
deadline = time.time() + 60
for model in ("scale", "identity"):
    while True:
        try:
            if stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=2).ready:
                break
        except grpc.RpcError:
            pass
        if time.time() > deadline:
            sys.exit("model '%s' never became ready" % model)
        time.sleep(0.2)
bundled = dict(stub.ModelMetadata(pb.ModelMetadataRequest(name="identity"), timeout=10).properties)
print("identity (bundled runner, found in <prefix>/lib/torii):", bundled)
assert bundled.get("runner") == "identity", bundled

meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="scale"), timeout=10)
props = dict(meta.properties)
print("ModelMetadata.properties:", props)
missing = [k for k in ("runner", "runner_version", "runner_build", "runner_abi") if k not in props]
assert not missing, "missing provenance keys: %s" % missing
assert props["runner"] == "scale", props
assert props["runner_version"] == "1.0.0", props
assert props["runner_build"].startswith("sdk 0.1.0; "), props
assert props["runner_abi"] == abi, (props, abi)

req = pb.ModelInferRequest(model_name="scale")
t = req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 3])
req.raw_input_contents.append(struct.pack("<3f", 1.0, -2.0, 0.5))
resp = stub.ModelInfer(req, timeout=10)
out = struct.unpack("<3f", resp.raw_output_contents[0])
print("ModelInfer OUTPUT0:", list(resp.outputs[0].shape), out)
assert list(resp.outputs[0].shape) == [1, 3]
assert out == (2.0, -4.0, 1.0), out
PY
  { echo "--- server log" >&2; cat "$work/server.log" >&2; fail "the served model is not what the template promises"; }
grep -q "model ready.*runner=scale" "$work/server.log" ||
  { cat "$work/server.log" >&2; fail "the server did not log the runner's provenance at load"; }

step "7. stop the server"
kill -TERM "$server_pid"
for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then fail "torii-server did not stop within 15 s of SIGTERM"; fi
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=""
[ "$server_rc" -eq 0 ] || fail "torii-server exited with status $server_rc after SIGTERM"

printf '\nrunner-kit: PASS (install, template build, unit tests, torii-runner check, serve, provenance)\n'
