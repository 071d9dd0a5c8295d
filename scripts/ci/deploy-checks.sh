#!/usr/bin/env bash
# Checks Torii's deploy files with what runs on a machine without Docker or a
# cluster:
#   - renders the kustomize base and the EKS overlay (kubectl kustomize);
#   - validates every object against the Kubernetes schema offline
#     (kubernetes-models), lints deploy/Dockerfile (dockerfile-utils and
#     dockerfilelint), checks the ECS task/service definitions' structure and
#     the ALB target groups' health checks;
#   - validates the KServe ServingRuntime and InferenceServices against our own
#     schema of KServe's fields (deploy/checks/schemas) and the Kubernetes schema;
#   - checks the Prometheus recording rules (promtool check rules, promtool
#     test rules) and the Grafana dashboard (@grafana/schema types, PromQL
#     parsed by promtool);
#   - checks that probe ports, flags, paths and timings in all of them agree
#     with each other and with the built torii-server / torii-health --help;
#   - checks the Dockerfile builds through the scripts README.md and CI use;
#   - with a build: installs it, checks every shared library the installed
#     binaries need comes from `scripts/install-deps.sh --runtime` (or the
#     base image), serves the bundled mlp model (TorchScript; skipped with a
#     reason when the build has no LibTorch) and the installed Python model
#     template from the install alone (bare environment, default backend
#     directory, no library mapped from the build tree), and runs the server
#     on loopback to ask the exact health
#     services the probes ask (and, once torii-server has --http-port, the
#     HTTP health paths the load balancers and KServe ask), compares the metric
#     names the rules and dashboard read with its /metrics, then SIGTERMs it
#     and expects exit 0;
#   - proves the checks can fail (deploy/checks/selftest.mjs mutates copies).
#
#   bash scripts/ci/deploy-checks.sh [BUILD_DIR]     (default: build)
#
# Needs kubectl (with kustomize), node, npm and promtool (Debian: prometheus). npm ci runs only when
# deploy/checks/node_modules does not match package-lock.json, so after one
# install the checks run offline. Exits non-zero if any check failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_ARG="${1:-build}"
case "$BUILD_ARG" in
  /*) BUILD="$BUILD_ARG" ;;
  *) BUILD="$ROOT/$BUILD_ARG" ;;
esac
CHECKS="$ROOT/deploy/checks"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/torii-deploy-checks.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0
failures=()
ok() { passed=$((passed + 1)); echo "PASS $1"; }
bad() { failed=$((failed + 1)); failures+=("$1: $2"); echo "FAIL $1: $2"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $1: $2"; }
T0=$SECONDS
section() { echo; echo "== $1 (at $((SECONDS - T0)) s)"; }

# ------------------------------------------------------------------ tools
section "tools"
tools_ok=1
for t in kubectl node npm promtool; do
  if command -v "$t" >/dev/null 2>&1; then ok "tool $t ($(command -v "$t"))"; else bad "tool $t" "not on PATH"; tools_ok=0; fi
done
if [ "$tools_ok" = 1 ] && ! kubectl kustomize --help >/dev/null 2>&1; then
  bad "tool kubectl kustomize" "this kubectl has no kustomize"; tools_ok=0
fi

# ------------------------------------------------------------------ npm
section "node packages (deploy/checks)"
npm_ok=0
if [ "$tools_ok" = 1 ]; then
  lock_sum="$(sha256sum "$CHECKS/package-lock.json" "$CHECKS/package.json" | sha256sum | cut -d' ' -f1)"
  stamp="$CHECKS/node_modules/.torii-lock-sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    ok "node_modules matches package-lock.json (no network needed)"
    npm_ok=1
  elif (cd "$CHECKS" && npm ci --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1; then
    echo "$lock_sum" >"$stamp"
    ok "npm ci"
    npm_ok=1
  else
    bad "npm ci" "failed (log below)"; sed 's/^/  | /' "$WORK/npm.log" | tail -20
  fi
fi

# ------------------------------------------------------------------ render
section "kustomize"
k8s_args=()
if [ "$tools_ok" = 1 ]; then
  for entry in base:deploy/k8s/base eks:deploy/k8s/overlays/eks root:deploy/k8s; do
    name="${entry%%:*}"; dir="${entry#*:}"
    if kubectl kustomize "$ROOT/$dir" >"$WORK/$name.yaml" 2>"$WORK/$name.err"; then
      ok "kubectl kustomize $dir"
      [ "$name" != root ] && k8s_args+=(--k8s "$name=$WORK/$name.yaml")
    else
      bad "kubectl kustomize $dir" "$(tr '\n' ' ' <"$WORK/$name.err")"
    fi
  done
  if [ -s "$WORK/root.yaml" ] && [ -s "$WORK/base.yaml" ]; then
    if cmp -s "$WORK/root.yaml" "$WORK/base.yaml"; then ok "deploy/k8s renders the same objects as deploy/k8s/base"
    else bad "deploy/k8s" "renders differently from deploy/k8s/base"; fi
  fi
fi

# ------------------------------------------------------------------ binaries' --help
section "built binaries ($BUILD)"
SERVER_BIN="$BUILD/bin/torii-server"
HEALTH_BIN="$BUILD/bin/torii-health"
help_args=()
have_server=0
have_health=0
if [ -x "$SERVER_BIN" ]; then
  have_server=1
  # Some flag libraries exit non-zero after --help; the text is what matters.
  timeout 20 "$SERVER_BIN" --help >"$WORK/server-help.txt" 2>&1 || true
  if grep -q -- '--model-repository' "$WORK/server-help.txt"; then
    ok "torii-server --help"
    help_args+=(--server-help "$WORK/server-help.txt")
  else
    bad "torii-server --help" "output does not list --model-repository: $(head -c 300 "$WORK/server-help.txt" | tr '\n' ' ')"
  fi
else
  skip "torii-server --help" "$SERVER_BIN is not built"
fi
if [ -x "$HEALTH_BIN" ]; then
  have_health=1
  if timeout 20 "$HEALTH_BIN" --help >"$WORK/health-help.txt" 2>&1; then
    ok "torii-health --help"
    help_args+=(--health-help "$WORK/health-help.txt")
  else
    bad "torii-health --help" "exit non-zero"
  fi
else
  skip "torii-health --help" "$HEALTH_BIN is not built"
fi

# ------------------------------------------------------------------ manifests, ECS, Dockerfile
section "deploy files (deploy/checks/check.mjs)"
facts="$WORK/facts.json"
if [ "$npm_ok" = 1 ]; then
  node "$CHECKS/check.mjs" --root "$ROOT" "${k8s_args[@]}" "${help_args[@]}" --facts "$facts" >"$WORK/check.out" 2>&1
  rc=$?
  cat "$WORK/check.out"
  while IFS= read -r line; do
    case "$line" in
      "PASS "*) passed=$((passed + 1)) ;;
      "FAIL "*) failed=$((failed + 1)); failures+=("${line#FAIL }") ;;
      "SKIP "*) skipped=$((skipped + 1)) ;;
    esac
  done <"$WORK/check.out"
  if [ "$rc" != 0 ] && ! grep -q '^FAIL ' "$WORK/check.out"; then
    bad "check.mjs" "exited $rc without reporting a failed check"
  fi
else
  bad "deploy files" "not checked: node packages are missing"
fi

# ------------------------------------------------------------------ the checks can fail
section "self-test: each check fails on a broken copy (deploy/checks/selftest.mjs)"
if [ "$npm_ok" = 1 ]; then
  if node "$CHECKS/selftest.mjs" --root "$ROOT" >"$WORK/selftest.out" 2>&1; then
    ok "selftest ($(grep -c '^  caught' "$WORK/selftest.out") broken copies caught)"
  else
    bad "selftest" "a broken copy went unnoticed (details below)"
    sed 's/^/  | /' "$WORK/selftest.out" | grep -v '^  |   caught' | tail -40
  fi
else
  skip "selftest" "node packages are missing"
fi

# ------------------------------------------------------------------ install + runtime libraries
section "install tree and runtime libraries"
if [ "$have_server" = 1 ]; then
  PREFIX="$WORK/opt/torii"
  if cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1; then
    ok "cmake --install $BUILD_ARG --prefix <tmp>/opt/torii"
    for b in torii-server torii-health; do
      if [ -x "$PREFIX/bin/$b" ]; then ok "installed bin/$b (the deploy files run /opt/torii/bin/$b)"
      else bad "installed bin/$b" "missing from the install tree; the Dockerfile, manifests and task definition run /opt/torii/bin/$b"; fi
    done
    # Runtime package set: install-deps.sh --runtime, plus Debian's required
    # packages (debian:bookworm-slim ships those), with all their dependencies.
    runtime_pkgs="$(sed -n '/^runtime_pkgs=(/,/^)/p' "$ROOT/scripts/install-deps.sh" | sed '1d;$d' | sed 's/#.*//' | tr -s ' \n' '\n' | grep -v '^$')"
    required_pkgs="$(dpkg-query -W -f='${Package} ${Priority}\n' 2>/dev/null | awk '$2=="required"{print $1}')"
    # shellcheck disable=SC2086
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances $runtime_pkgs $required_pkgs 2>/dev/null \
      | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u >"$WORK/allowed-pkgs.txt"
    missing_from_runtime=()
    not_found=()
    : >"$WORK/libs.txt"
    while IFS= read -r elf; do
      [ "$(head -c 4 "$elf" 2>/dev/null | tail -c 3)" = "ELF" ] || continue
      while IFS= read -r line; do
        case "$line" in
          *"=> not found"*) not_found+=("$(basename "$elf"): $(echo "$line" | awk '{print $1}')") ;;
          *"=> /"*)
            lib="$(echo "$line" | sed -E 's/.*=> ([^ ]+) .*/\1/')"
            case "$lib" in "$PREFIX"/*) ;; *) echo "$lib" >>"$WORK/libs.txt" ;; esac ;;
        esac
      done < <(ldd "$elf" 2>/dev/null)
    done < <(find "$PREFIX/bin" "$PREFIX/lib" -type f \( -perm -u+x -o -name '*.so*' \) 2>/dev/null)
    sort -u -o "$WORK/libs.txt" "$WORK/libs.txt"
    n_libs="$(wc -l <"$WORK/libs.txt")"
    # One dpkg -S for all candidates: ldd may print /lib/... where dpkg
    # registered /usr/lib/... (merged /usr), or a symlink of the real file.
    while IFS= read -r lib; do
      printf '%s\n%s\n%s\n%s\n' "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "/usr$lib"
    done <"$WORK/libs.txt" | sort -u >"$WORK/candidates.txt"
    xargs -r dpkg -S <"$WORK/candidates.txt" 2>/dev/null \
      | sed -E 's/^([^:]+)(:[a-z0-9]+)?(, [^:]+)*: (.*)$/\4 \1/' >"$WORK/owners.txt"
    while IFS= read -r lib; do
      pkg=""
      for cand in "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "/usr$lib"; do
        pkg="$(awk -v p="$cand" '$1 == p {print $2; exit}' "$WORK/owners.txt")"
        [ -n "$pkg" ] && break
      done
      if [ -z "$pkg" ]; then missing_from_runtime+=("$lib (no Debian package owns it)")
      elif ! grep -qx "$pkg" "$WORK/allowed-pkgs.txt"; then missing_from_runtime+=("$lib from $pkg")
      fi
    done <"$WORK/libs.txt"
    if [ ${#not_found[@]} -gt 0 ]; then
      bad "runtime libraries resolve" "$(printf '%s; ' "${not_found[@]}" | sort -u)"
    else
      ok "runtime libraries resolve ($n_libs distinct system libraries)"
    fi
    if [ ! -s "$WORK/allowed-pkgs.txt" ]; then
      bad "runtime libraries come from install-deps.sh --runtime" "apt-cache gave no dependency data (run apt-get update)"
    elif [ ${#missing_from_runtime[@]} -gt 0 ]; then
      bad "runtime libraries come from install-deps.sh --runtime" "add these packages to runtime_pkgs: $(printf '%s\n' "${missing_from_runtime[@]}" | sort -u | tr '\n' ';')"
    else
      ok "runtime libraries come from install-deps.sh --runtime (or the base image)"
    fi
  else
    bad "cmake --install $BUILD_ARG" "failed: $(grep -v '^-- ' "$WORK/install.log" | head -8 | tr '\n' ' ')"
  fi
else
  skip "install tree and runtime libraries" "torii-server is not built"
fi

# ------------------------------------------------------------------ the install serves models on its own
# The container image is this install tree: it must serve the bundled mlp
# model (TorchScript runner) and a Python model with nothing from the build
# tree, the source tree or the environment (issue 11).
section "installed prefix alone: serves the bundled mlp (TorchScript) and a Python model"
if [ -n "${PREFIX:-}" ] && [ -x "$PREFIX/bin/torii-server" ]; then
  IREPO="$WORK/installed-models"
  mkdir -p "$IREPO"
  served=()
  if [ -f "$BUILD/lib/torii/libtorii_torchscript.so" ]; then
    if [ -f "$PREFIX/lib/torii/libtorii_torchscript.so" ] && [ -f "$PREFIX/lib/torii/libtorii_torchscript.json" ]; then
      ok "the install has the TorchScript runner (lib/torii/libtorii_torchscript.so and its manifest)"
      cp -r "$ROOT/examples/model_repository/mlp" "$IREPO/"
      served+=(mlp)
    else
      bad "installed TorchScript runner" "the build has libtorii_torchscript.so but cmake --install left it (or its .json manifest) out of $PREFIX/lib/torii"
    fi
  else
    skip "mlp (TorchScript) from the install" "this build has no LibTorch (TORII_WITH_TORCH=OFF or LibTorch not found), so there is no TorchScript runner to install; build with LibTorch to check that the install serves mlp"
  fi
  if [ -f "$BUILD/lib/torii/libtorii_python.so" ]; then
    if [ -f "$PREFIX/lib/torii/libtorii_python.so" ] && [ -f "$PREFIX/lib/torii/python/triton_python_backend_utils.py" ] \
       && [ -d "$PREFIX/share/torii/python-model-template/my_model" ]; then
      ok "the install has the Python runner (lib/torii/libtorii_python.so, lib/torii/python/, the model template)"
      cp -r "$PREFIX/share/torii/python-model-template/my_model" "$IREPO/"
      served+=(my_model)
    else
      bad "installed Python runner" "the build has libtorii_python.so but the install lacks it, lib/torii/python/ or share/torii/python-model-template"
    fi
  else
    skip "a Python model from the install" "this build has no Python runner (TORII_WITH_PYTHON=OFF)"
  fi
  if [ ${#served[@]} -gt 0 ]; then
    # Stubs from the proto/ the install ships, not the source tree's.
    mkdir -p "$WORK/stubs"
    if ! protoc -I "$PREFIX/share/torii/proto" --python_out="$WORK/stubs" --grpc_python_out="$WORK/stubs" \
         --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
         inference.proto model_config.proto >"$WORK/stubs.log" 2>&1; then
      bad "stubs from the installed proto/" "$(tr '\n' ' ' <"$WORK/stubs.log")"
    else
      iport="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
      # A bare environment: no LD_LIBRARY_PATH, no PYTHONPATH, no TORII_* variables.
      env -i PATH=/usr/bin:/bin HOME="$WORK" TMPDIR="$WORK" "$PREFIX/bin/torii-server" \
        --model-repository="$IREPO" --grpc-address=127.0.0.1 --grpc-port="$iport" \
        --allow-metrics=false --allow-http=false --exit-timeout-secs=5 >"$WORK/installed-server.log" 2>&1 &
      SERVER_PID=$!
      up=0
      for _ in $(seq 1 240); do
        if "$PREFIX/bin/torii-health" --address="127.0.0.1:$iport" --timeout-ms=1000 >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
      done
      if [ "$up" = 1 ]; then
        ok "installed torii-server is ready with ${served[*]} (a bare environment, the default --backend-directory)"
        # Every library the server and its runner processes mapped comes from
        # the install or the system, none from the build tree.
        pids="$SERVER_PID $(ps -o pid= --ppid "$SERVER_PID" 2>/dev/null | tr '\n' ' ')"
        from_build="$(for p in $pids; do grep -h "$BUILD/" "/proc/$p/maps" 2>/dev/null | awk '{print $6}'; done | sort -u | tr '\n' ' ')"
        runners="$(for p in $pids; do grep -h 'libtorii_' "/proc/$p/maps" 2>/dev/null | awk '{print $6}'; done | sort -u | tr '\n' ' ')"
        if [ -n "$from_build" ]; then bad "installed server maps only installed runners" "mapped from the build tree: $from_build"
        else ok "the server and its runner processes map runners from the install only: $runners"; fi
        PYTHONPATH="$WORK/stubs" /usr/bin/python3 - "$iport" "${served[@]}" >"$WORK/installed-infer.out" 2>&1 <<'PYEOF'
import math, struct, sys
import grpc, inference_pb2 as pb, inference_pb2_grpc as rpc

stub = rpc.GRPCInferenceServiceStub(grpc.insecure_channel("127.0.0.1:" + sys.argv[1]))

def infer(model, name, rows, cols, values):
    q = pb.ModelInferRequest(model_name=model)
    t = q.inputs.add()
    t.name, t.datatype = name, "FP32"
    t.shape.extend([rows, cols])
    q.raw_input_contents.append(struct.pack("<%df" % len(values), *values))
    return stub.ModelInfer(q, timeout=60)

def floats(b):
    return list(struct.unpack("<%df" % (len(b) // 4), b))

for model in sys.argv[2:]:
    try:
        if model == "mlp":
            one = [((i * 37) % 17) / 17.0 - 0.5 for i in range(64)]
            two = [0.25] * 64
            r1 = infer("mlp", "INPUT__0", 1, 64, one)
            r2 = infer("mlp", "INPUT__0", 2, 64, one + two)
            out1, out2 = floats(r1.raw_output_contents[0]), floats(r2.raw_output_contents[0])
            assert list(r1.outputs[0].shape) == [1, 10], r1.outputs[0].shape
            assert all(math.isfinite(v) for v in out1) and len(set(out1)) > 1, out1
            assert all(abs(a - b) < 1e-5 for a, b in zip(out1, out2[:10])), "batch row 0 differs"
            print("PASS mlp: INPUT__0 [1,64] -> OUTPUT__0 [1,10], the same row batched")
        else:
            r = infer("my_model", "FEATURES", 1, 3, [0.5, 2.5, 4.5])
            got = {o.name: r.raw_output_contents[i] for i, o in enumerate(r.outputs)}
            assert floats(got["SCORES"]) == [0.0, 1.0, 2.0], floats(got["SCORES"])
            assert got["LABEL"][4:] == b"high", got["LABEL"]
            print("PASS my_model (Python): SCORES and LABEL as the template computes them")
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        print("FAIL %s: %s" % (model, e))
PYEOF
        while IFS= read -r line; do
          case "$line" in
            "PASS "*) ok "installed server: ${line#PASS }" ;;
            "FAIL "*) l="${line#FAIL }"; bad "installed server: ${l%%: *}" "${l#*: }" ;;
          esac
        done <"$WORK/installed-infer.out"
        grep -q '^PASS\|^FAIL' "$WORK/installed-infer.out" || bad "inference against the installed server" "$(tail -5 "$WORK/installed-infer.out" | tr '\n' ' ')"
        kill -TERM "$SERVER_PID"
        rc=""
        for _ in $(seq 1 40); do
          if ! kill -0 "$SERVER_PID" 2>/dev/null; then wait "$SERVER_PID"; rc=$?; break; fi
          sleep 0.5
        done
        if [ "$rc" = 0 ]; then ok "installed server: SIGTERM, exit 0"; else bad "installed server: SIGTERM" "exit ${rc:-none after 20 s}"; fi
        SERVER_PID=""
      else
        bad "installed torii-server serves ${served[*]}" "not ready in 120 s: $(grep -E 'error|failed' "$WORK/installed-server.log" | tail -5 | tr '\n' ' ')"
        kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
      fi
    fi
  fi
else
  skip "installed prefix serves models" "no install tree (torii-server is not built)"
fi

# ------------------------------------------------------------------ live: health services the probes ask
section "live server on loopback: the probes' health services"
if [ "$have_server" = 1 ] && [ "$have_health" = 1 ] && [ -s "$facts" ]; then
  live_service="$(node -e 'const f=require(process.argv[1]); process.stdout.write(String(f.livenessService ?? ""))' "$facts")"
  ready_service="$(node -e 'const f=require(process.argv[1]); process.stdout.write(String(f.readinessService ?? ""))' "$facts")"
  free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
  gport="$(free_port)"; mport="$(free_port)"; hport="$(free_port)"
  while [ "$mport" = "$gport" ]; do mport="$(free_port)"; done
  while [ "$hport" = "$gport" ] || [ "$hport" = "$mport" ]; do hport="$(free_port)"; done
  # The HTTP frontend is built in parallel: use its flags once --help has them.
  http_args=()
  http_built="$(node -e 'const f=require(process.argv[1]); process.stdout.write(f.httpFlagsBuilt ? "1" : "0")' "$facts")"
  [ "$http_built" = 1 ] && http_args=(--http-address=127.0.0.1 --http-port="$hport")
  mkdir -p "$WORK/models"
  "$SERVER_BIN" --model-repository="$WORK/models" --grpc-address=127.0.0.1 --grpc-port="$gport" \
    --metrics-address=127.0.0.1 --metrics-port="$mport" "${http_args[@]}" --exit-timeout-secs=5 >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  health() { "$HEALTH_BIN" --address="127.0.0.1:$gport" --timeout-ms=1000 "$@"; }
  up=0
  for _ in $(seq 1 60); do
    if health --service="$ready_service" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$up" = 1 ]; then
    ok "readiness service \"$ready_service\" is SERVING (empty model repository)"
    if out="$(health --service="$live_service" 2>&1)"; then ok "liveness service \"$live_service\" is SERVING"
    else bad "liveness service \"$live_service\"" "the probes ask it, the server answers: $out"; fi
    if out="$(health --service=no.such.Service 2>&1)"; then bad "unknown health service" "reported SERVING: $out"
    else ok "an unknown health service is not SERVING"; fi
    if code="$(curl -s -o "$WORK/metrics.txt" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mport/metrics")" && [ "$code" = 200 ]; then
      ok "metrics answer on --metrics-port at /metrics (the scrape annotations' port and path)"
      if out="$(promtool check metrics <"$WORK/metrics.txt" 2>&1)"; then ok "promtool check metrics accepts the scrape"
      else bad "promtool check metrics" "$(echo "$out" | head -5 | tr '\n' ' ')"; fi
      # The names deploy/prometheus rules and deploy/grafana dashboards read.
      node "$CHECKS/metric-names.mjs" --root "$ROOT" --scrape "$WORK/metrics.txt" >"$WORK/names.out" 2>&1
      while IFS= read -r line; do
        case "$line" in
          "PASS "*) ok "${line#PASS }" ;;
          "FAIL "*) l="${line#FAIL }"; bad "${l%%: *}" "${l#*: }" ;;
          "SKIP "*) l="${line#SKIP }"; skip "${l%%: *}" "${l#*: }" ;;
          *) [ -n "$line" ] && bad "metric-names.mjs" "$line" ;;
        esac
      done <"$WORK/names.out"
    else bad "metrics on --metrics-port" "GET /metrics gave HTTP ${code:-no answer}"; fi
    if [ "$http_built" = 1 ]; then
      # What the ALB target group, KServe's readiness probe and curl users ask.
      for path in /v2/health/ready /v2/health/live; do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$hport$path")"
        if [ "$code" = 200 ]; then ok "HTTP GET $path answers 200 on --http-port"
        else bad "HTTP GET $path" "gave HTTP ${code:-no answer}; the load balancer and KServe health checks expect 200"; fi
      done
    else
      skip "HTTP health paths" "torii-server has no --http-port yet"
    fi
    kill -TERM "$SERVER_PID"
    t0=$SECONDS; rc=""
    for _ in $(seq 1 40); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then wait "$SERVER_PID"; rc=$?; break; fi
      sleep 0.5
    done
    if [ -z "$rc" ]; then bad "SIGTERM" "server still running 20 s after SIGTERM with --exit-timeout-secs=5"
    elif [ "$rc" = 0 ]; then ok "SIGTERM: exit 0 after $((SECONDS - t0)) s"
    else bad "SIGTERM" "exit code $rc"; fi
    SERVER_PID=""
  elif ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID"; rc=$?; SERVER_PID=""
    bad "live server" "torii-server exited ($rc) before it was ready: $(tail -5 "$WORK/server.log" | tr '\n' ' ')"
  else
    bad "live server" "readiness never became SERVING within 30 s; server log: $(tail -5 "$WORK/server.log" | tr '\n' ' ')"
  fi
else
  skip "live server on loopback" "needs built torii-server and torii-health"
fi

# ------------------------------------------------------------------ summary
echo
echo "== summary"
if [ "$failed" -gt 0 ]; then
  echo "Failed checks:"
  printf '  - %s\n' "${failures[@]}"
fi
echo "deploy-checks: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
