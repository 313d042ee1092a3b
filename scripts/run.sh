#!/usr/bin/env bash
# Starts a working local Gannet cluster on a fresh machine: installs what is missing, builds, and
# runs three combined nodes on 127.0.0.1 (process.roles=broker,controller): controller listeners
# on ports 19091-19093 (the metadata quorum), Kafka's protocol on 9092-9094 (kcat, librdkafka,
# any Kafka client), gRPC (the gannet CLI, gRPC clients) on 9192-9194, Prometheus metrics on
# 9404-9406 (http://127.0.0.1:9404/metrics), data under
# .gannet/cluster in the repo (formatted on first use with a new cluster id, kept in
# .gannet/cluster/cluster.id). Ctrl-C stops them gracefully (controlled shutdown). Binaries are
# built with optimization (-c opt).
#
#   ./scripts/run.sh                   # foreground; Ctrl-C to stop
#   GANNET_BASE_PORT=29091 GANNET_KAFKA_PORT=29092 GANNET_GRPC_PORT=29192 GANNET_METRICS_PORT=29404 ./scripts/run.sh
#   GANNET_DATA_DIR=/some/dir ./scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

./scripts/install_deps.sh
DISK_CACHE="${HOME}/.cache/gannet/bazel-disk"
mkdir -p "$DISK_CACHE"
# The main job runs optimized binaries (-c opt), as the README's figures are measured; the test
# suite builds its own (fastbuild) copies elsewhere in Bazel's output tree.
bazel build -c opt --disk_cache="$DISK_CACHE" //broker:gannetd //tools:gannet
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"
# A stable name for these optimized binaries (bazel-bin follows whatever was built last, which
# after ./scripts/test.sh is the unoptimized test build): .gannet/bin/tools/gannet.
mkdir -p "$ROOT/.gannet"
ln -sfn "$BIN" "$ROOT/.gannet/bin"

DATA="${GANNET_DATA_DIR:-$ROOT/.gannet/cluster}"
BASE="${GANNET_BASE_PORT:-19091}"
KAFKA="${GANNET_KAFKA_PORT:-9092}"
CLIENT="${GANNET_GRPC_PORT:-9192}"
METRICS="${GANNET_METRICS_PORT:-9404}"
mkdir -p "$DATA"
VOTERS="1@127.0.0.1:${BASE},2@127.0.0.1:$((BASE + 1)),3@127.0.0.1:$((BASE + 2))"
BOOTSTRAP="127.0.0.1:${CLIENT},127.0.0.1:$((CLIENT + 1)),127.0.0.1:$((CLIENT + 2))"
if [[ ! -s "$DATA/cluster.id" ]]; then
  "$BIN/tools/gannet" storage random-uuid > "$DATA/cluster.id"
fi
CLUSTER_ID=$(cat "$DATA/cluster.id")

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping the cluster..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

for i in 1 2 3; do
  cfg="$DATA/node$i.properties"
  cat > "$cfg" <<CFG
node.id=$i
process.roles=broker,controller
controller.quorum.voters=$VOTERS
listeners=CONTROLLER://127.0.0.1:$((BASE + i - 1)),PLAINTEXT://127.0.0.1:$((KAFKA + i - 1)),GRPC://127.0.0.1:$((CLIENT + i - 1))
controller.listener.names=CONTROLLER
metrics.http.listener=127.0.0.1:$((METRICS + i - 1))
log.dirs=$DATA/node$i
num.partitions=3
default.replication.factor=3
CFG
  "$BIN/tools/gannet" storage format --cluster-id "$CLUSTER_ID" --config "$cfg" --ignore-formatted >/dev/null
  "$BIN/broker/gannetd" --config "$cfg" >> "$DATA/node$i.log" 2>&1 &
  pids+=($!)
done

echo "started nodes 1-3 of cluster $CLUSTER_ID (logs: $DATA/node*.log); waiting for the brokers..."
for _ in $(seq 1 150); do
  if "$BIN/tools/gannet" cluster info --bootstrap-server "$BOOTSTRAP" --output json 2>/dev/null \
      | grep -o '"fenced":false' | wc -l | grep -q 3; then
    break
  fi
  sleep 0.2
done
"$BIN/tools/gannet" cluster info --bootstrap-server "$BOOTSTRAP" || true
cat <<MSG

The cluster is running. Try:
  .gannet/bin/tools/gannet topic create clicks --partitions 6 --replication-factor 3 --bootstrap-server $BOOTSTRAP
  .gannet/bin/tools/gannet topic describe clicks --bootstrap-server $BOOTSTRAP
  .gannet/bin/tools/gannet cluster info --bootstrap-server $BOOTSTRAP
  .gannet/bin/tools/gannet quorum status --bootstrap-controller 127.0.0.1:$BASE
  kcat -b 127.0.0.1:$KAFKA -L                  # any Kafka client: Kafka's protocol on $KAFKA-$((KAFKA + 2))
  curl -s 127.0.0.1:$METRICS/metrics | head    # Prometheus metrics on $METRICS-$((METRICS + 2))
Ctrl-C stops it.
MSG
wait
