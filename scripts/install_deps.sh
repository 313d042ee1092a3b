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
  librdkafka-dev
  # gRPC from Python with nothing of ours but the .proto files (clients/python/).
  python3-grpcio
  python3-protobuf
  # promtool checks the /metrics exposition (tests/metrics_test.cc).
  prometheus
  # TLS and SCRAM (OpenSSL 3); the openssl tool makes the security tests' certificates.
  libssl-dev
  openssl
  # The web console is judged by a real browser (tests/console_test.cc).
  chromium
  # Network namespaces for the multi-host test (tests/multihost_test.cc).
  iproute2
)

# Node.js and npm run kafkajs; Debian's packages when the machine has none of its own.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# From npm, kept out of the repo: kafkajs, a Kafka client (tests/kafka_client_test.cc), and
# gRPC for Node (@grpc/grpc-js, @grpc/proto-loader: clients/node/, tests/grpc_client_test.cc).
NPM_DIR="${HOME}/.cache/gannet/npm"
NPM_PACKAGES=(kafkajs@2.2.4 @grpc/grpc-js@1.14.7 @grpc/proto-loader@0.8.1)
install_kafkajs() {
  local want=()
  for spec in "${NPM_PACKAGES[@]}"; do
    local name="${spec%@*}" version="${spec##*@}"
    if ! [ -f "$NPM_DIR/node_modules/$name/package.json" ] ||
       ! grep -q "\"version\": \"$version\"" "$NPM_DIR/node_modules/$name/package.json"; then
      want+=("$spec")
    fi
  done
  [ ${#want[@]} -eq 0 ] && return 0
  echo "install_deps: installing ${want[*]} into $NPM_DIR" >&2
  mkdir -p "$NPM_DIR"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --silent "${NPM_PACKAGES[@]}" >&2)
}

if [ ${#missing[@]} -eq 0 ]; then
  install_kafkajs
  exit 0
fi

echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
install_kafkajs
