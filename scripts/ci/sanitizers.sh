#!/usr/bin/env bash
# Sanitizer builds, each in its own build directory:
#   - ThreadSanitizer: the scheduler tests (queues, workers, batching);
#   - AddressSanitizer + UndefinedBehaviorSanitizer: the unit and end-to-end
#     tests, the server binary included.
# LibTorch and benchmarks are left out: they are not ours to instrument and
# would double the build time.
#
#   bash scripts/ci/sanitizers.sh [tsan|asan|all]     (default all)
set -euo pipefail
cd "$(dirname "$0")/../.."
what="${1:-all}"
common=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTORII_WITH_TORCH=OFF -DTORII_BUILD_BENCH=OFF
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1")

if [ "$what" = tsan ] || [ "$what" = all ]; then
  echo "== ThreadSanitizer: scheduler tests"
  cmake -S . -B build-tsan "${common[@]}" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=thread" "-DCMAKE_C_FLAGS=-fsanitize=thread" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread" "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=thread" >/dev/null
  cmake --build build-tsan -j2 --target torii_scheduler_tests
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/bin/torii_scheduler_tests
fi

if [ "$what" = asan ] || [ "$what" = all ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer: unit and end-to-end tests"
  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S . -B build-asan "${common[@]}" \
    "-DCMAKE_CXX_FLAGS=$san" "-DCMAKE_C_FLAGS=$san" \
    "-DCMAKE_EXE_LINKER_FLAGS=$san" "-DCMAKE_MODULE_LINKER_FLAGS=$san" >/dev/null
  cmake --build build-asan -j2 --target torii_server_unit_tests torii_scheduler_tests \
    torii_sdk_fake_host_tests torii_e2e_tests torii-server \
    torii_isolation_tests torii_isolation_e2e_tests torii-runner-host fault \
    torii_manager_tests torii_ensemble_e2e_tests torii_http_tests generator
  # Runner plugins are dlopen'ed without the ASan runtime linked into them
  # first; the server and tests carry it, so it is always loaded.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/ci/lsan.supp"
  # Tests are discovered only for the executables built above.
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 -L "unit|e2e" -E "clients|install"
fi
