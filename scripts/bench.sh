#!/usr/bin/env bash
# Runs the benchmarks (optimized build): storage (log vs raw disk), the 3-voter quorum, and the
# metadata layer on a local 3-node cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
DISK_CACHE="${HOME}/.cache/gannet/bazel-disk"
bazel run -c opt --disk_cache="$DISK_CACHE" //storage:log_bench -- --dir "$PWD/.gannet/bench" "$@"
bazel run -c opt --disk_cache="$DISK_CACHE" //raft:quorum_bench -- --dir "$PWD/.gannet/quorum-bench"
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:cluster_bench -- --dir "$PWD/.gannet/cluster-bench"
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:data_bench -- --dir "$PWD/.gannet/data-bench"
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:group_bench
