#!/usr/bin/env bash
# Installs exactly what Torii's build and tests need on Debian 12 (bookworm).
# Idempotent: packages already present are left alone. Run as root (or with sudo).
#
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --runtime  only the shared libraries torii-server needs to run
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

runtime_pkgs=(
  libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623
  libtorch1.13 libopenblas0-pthread libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  libsimdjson14 zlib1g
  ca-certificates
  # The Python runner: the interpreter it embeds, numpy, venvs for EXECUTION_ENV_PATH.
  libpython3.11 python3 python3-numpy python3-venv
)
build_pkgs=(
  build-essential cmake pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libtorch-dev libopenblas0-pthread libdlpack-dev nlohmann-json3-dev
  prometheus-cpp-dev
  python3-dev python3-numpy python3-venv
  # HTTP frontend: Boost.Beast/Asio (header-only), simdjson, zlib (docs/http.md).
  libboost-dev libsimdjson-dev zlib1g-dev
  catch2
  # Tests: an independent v2 client (Python grpcio), promtool, TLS certificates, fuzzing.
  python3 python3-grpcio python3-protobuf python3-torch
  # HTTP end-to-end tests and docs/clients.md's examples: curl as the client.
  curl
  prometheus
  openssl
  clang-14 libclang-rt-14-dev
  # The instruction-count regression gate (scripts/ci/perf-gate.sh).
  valgrind
)

if [ "${1:-}" = "--runtime" ]; then pkgs=("${runtime_pkgs[@]}"); else pkgs=("${build_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Fresh containers ship without package lists; refresh them when missing or when an install fails.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
  $SUDO apt-get update -qq
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
