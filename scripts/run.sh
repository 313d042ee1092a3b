#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds everything, and runs the
# storage benchmark against a data directory under the repo (.gannet/bench).
# (When the Raft quorum and brokers land, this starts a local cluster instead.)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install_deps.sh
DISK_CACHE="${HOME}/.cache/gannet/bazel-disk"
mkdir -p "$DISK_CACHE"
bazel build //... --disk_cache="$DISK_CACHE"
bazel run -c opt --disk_cache="$DISK_CACHE" //storage:log_bench -- --dir "$PWD/.gannet/bench" "$@"
