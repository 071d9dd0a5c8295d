#!/usr/bin/env bash
# CI: the libFuzzer targets of tests/fuzz/ (see docs/fuzzing.md).
#
#   bash scripts/ci/fuzz.sh [ignored]
#
# 1. Configures and builds the standalone fuzz project (clang-14, ASan+UBSan)
#    in build-fuzz/; the gcc build in build/ is not touched.
# 2. Replays every saved crash under tests/fuzz/regressions/<target>/ once.
# 3. Runs each target for FUZZ_SECONDS (default 60) on a COPY of its seed
#    corpus in a temporary directory: the committed corpus never grows here.
# Fails on any crash, sanitizer report, broken invariant, timeout or OOM; the
# crashing input is kept in build-fuzz/fuzz-artifacts/ and printed in hex.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_TARGETS (space-separated
# subset), FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TORII_ROOT (the source
# tree whose server code is fuzzed; default this checkout; e.g. a copy with a
# candidate fix, or with a deliberate bug to check that the targets catch it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
SECS="${FUZZ_SECONDS:-60}"
TORII_ROOT="${FUZZ_TORII_ROOT:-$ROOT}"
read -r -a TARGETS <<< "${FUZZ_TARGETS:-fuzz_validate_request fuzz_config_parse fuzz_bytes}"
FUZZ_DIR=tests/fuzz

for tool in clang++-14 clang-14 cmake; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz: $tool is missing (scripts/install-deps.sh installs clang-14)" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== fuzz: build ($BUILD, server sources from $TORII_ROOT)"
t0=$(date +%s)
cmake -S "$FUZZ_DIR" -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 \
  -DTORII_ROOT="$TORII_ROOT" > "$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target "${TARGETS[@]}" > "$work/build.log" 2>&1 \
  || { tail -n 80 "$work/build.log" >&2; exit 1; }
echo "built in $(( $(date +%s) - t0 ))s"

# Sanitizer reports are fatal; leaks count (libFuzzer checks them per input).
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

artifacts="$BUILD/fuzz-artifacts"
failed=0
passed=0
summary=()

show_failure() {  # target log artifact_dir
  local t="$1" log="$2" dir="$3"
  mkdir -p "$artifacts/$t"
  cp "$log" "$artifacts/$t/"
  echo "---- $t: last lines of the log ($artifacts/$t/$(basename "$log"))" >&2
  tail -n 60 "$log" >&2
  local f
  for f in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
    [ -e "$f" ] || continue
    cp "$f" "$artifacts/$t/"
    echo "---- $t: input $artifacts/$t/$(basename "$f") ($(stat -c %s "$f") bytes), hex:" >&2
    head -c 1024 "$f" | od -An -tx1 -v | tr -d ' \n' | fold -w 128 >&2
    echo >&2
    echo "     replay: $BUILD/$t $artifacts/$t/$(basename "$f")" >&2
  done
}

echo "== fuzz: regressions (tests/fuzz/regressions/<target>/, each run once)"
for t in "${TARGETS[@]}"; do
  shopt -s nullglob
  files=("$FUZZ_DIR/regressions/$t"/*)
  shopt -u nullglob
  if [ ${#files[@]} -eq 0 ]; then
    echo "$t: no saved inputs"
    continue
  fi
  log="$work/$t.regressions.log"
  mkdir -p "$work/$t.regressions"
  if "$BUILD/$t" -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$work/$t.regressions/" \
      "${files[@]}" > "$log" 2>&1; then
    n=$(grep -c '^Executed ' "$log" || true)
    if [ "$n" -ne ${#files[@]} ]; then
      echo "$t: replayed $n of ${#files[@]} inputs" >&2
      failed=$((failed + 1))
      summary+=("$t regressions: FAILED (replayed $n of ${#files[@]})")
      continue
    fi
    echo "$t: ${#files[@]} inputs replayed, ok"
    passed=$((passed + 1))
    summary+=("$t regressions: ${#files[@]} inputs ok")
  else
    echo "$t: a saved crash crashes again" >&2
    show_failure "$t" "$log" "$work/$t.regressions"
    failed=$((failed + 1))
    summary+=("$t regressions: FAILED")
  fi
done

echo "== fuzz: ${SECS}s per target on a copy of the seed corpus"
for t in "${TARGETS[@]}"; do
  dir="$work/$t"
  mkdir -p "$dir/corpus"
  seeds=$(find "$FUZZ_DIR/corpus/$t" -type f | wc -l)
  if [ "$seeds" -eq 0 ]; then
    echo "$t: no seed corpus in $FUZZ_DIR/corpus/$t" >&2
    failed=$((failed + 1))
    summary+=("$t: FAILED (no seed corpus)")
    continue
  fi
  cp "$FUZZ_DIR/corpus/$t"/* "$dir/corpus/"
  args=(-max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$dir/")
  [ -f "$FUZZ_DIR/dict/$t.dict" ] && args+=(-dict="$FUZZ_DIR/dict/$t.dict")
  log="$work/$t.log"
  rc=0
  timeout --kill-after=10 $((SECS + 120)) "$BUILD/$t" "${args[@]}" "$dir/corpus" > "$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1 || true)
  line="$t: ${execs:-?} executions (${rate:-?}/s), ${cov:-no coverage line}, from $seeds seeds"
  if [ "$rc" -eq 0 ]; then
    echo "$line"
    passed=$((passed + 1))
    summary+=("$line")
  else
    echo "$line: FAILED (exit $rc)" >&2
    show_failure "$t" "$log" "$dir"
    failed=$((failed + 1))
    summary+=("$line: FAILED (exit $rc)")
  fi
done

echo "== fuzz: summary"
printf '  %s\n' "${summary[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
