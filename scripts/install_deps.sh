#!/usr/bin/env bash
# Installs, idempotently, every Debian package Gannet's build and tests need (Bazel included).
# Safe to rerun: when everything is present it does nothing and returns in well under a second.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap
  g++
  pkg-config
  libgrpc++-dev
  protobuf-compiler-grpc
  libprotobuf-dev
  protobuf-compiler
  librocksdb-dev
  libgoogle-glog-dev
  libgflags-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libzstd-dev
  liblz4-dev
  libsnappy-dev
  libabsl-dev
  python3
  # Kafka's own clients, the judges of the Kafka listener (tests/kafka_client_test.cc).
  kcat
  python3-confluent-kafka
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
