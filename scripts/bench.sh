#!/usr/bin/env bash
# Runs the benchmarks (optimized build): storage (log vs raw disk), the 3-voter quorum, the
# metadata layer, the data path, consumer groups and the Kafka listener on local 3-node clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
DISK_CACHE="${HOME}/.cache/gannet/bazel-disk"
bazel run -c opt --disk_cache="$DISK_CACHE" //storage:log_bench -- --dir "$PWD/.gannet/bench" "$@"
bazel run -c opt --disk_cache="$DISK_CACHE" //raft:quorum_bench -- --dir "$PWD/.gannet/quorum-bench"
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:cluster_bench -- --dir "$PWD/.gannet/cluster-bench"
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:data_bench -- --dir "$PWD/.gannet/data-bench"
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:group_bench
bazel run -c opt --disk_cache="$DISK_CACHE" //tests:kafka_bench -- --dir "$PWD/.gannet/kafka-bench"
