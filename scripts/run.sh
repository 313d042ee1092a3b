#!/usr/bin/env bash
# Starts a working local Gannet cluster on a fresh machine: installs what is missing, builds, and
# runs three nodes on 127.0.0.1 (the metadata quorum: process.roles=controller, ports 19091-19093)
# with their data under .gannet/cluster in the repo. Ctrl-C stops them (gracefully).
#
#   ./scripts/run.sh                   # foreground; Ctrl-C to stop
#   GANNET_BASE_PORT=29091 ./scripts/run.sh
#   GANNET_DATA_DIR=/some/dir ./scripts/run.sh
#
# (The broker role joins with the metadata layer, issue 4.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

./scripts/install_deps.sh
DISK_CACHE="${HOME}/.cache/gannet/bazel-disk"
mkdir -p "$DISK_CACHE"
bazel build --disk_cache="$DISK_CACHE" //broker:gannetd //tools:gannet
BIN="$ROOT/bazel-bin"

DATA="${GANNET_DATA_DIR:-$ROOT/.gannet/cluster}"
BASE="${GANNET_BASE_PORT:-19091}"
mkdir -p "$DATA"
VOTERS="1@127.0.0.1:${BASE},2@127.0.0.1:$((BASE + 1)),3@127.0.0.1:$((BASE + 2))"

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
process.roles=controller
controller.quorum.voters=$VOTERS
listeners=CONTROLLER://127.0.0.1:$((BASE + i - 1))
controller.listener.names=CONTROLLER
log.dirs=$DATA/node$i
CFG
  "$BIN/broker/gannetd" --config "$cfg" >> "$DATA/node$i.log" 2>&1 &
  pids+=($!)
done

echo "started nodes 1-3 (logs: $DATA/node*.log); waiting for a quorum leader..."
for _ in $(seq 1 100); do
  if "$BIN/tools/gannet" quorum status --bootstrap-controller "127.0.0.1:$BASE" --output json 2>/dev/null \
      | grep -q '"leader":[1-9]'; then
    break
  fi
  sleep 0.1
done
"$BIN/tools/gannet" quorum status --bootstrap-controller "127.0.0.1:$BASE" || true
cat <<MSG

The cluster is running. Try:
  $BIN/tools/gannet quorum status --bootstrap-controller 127.0.0.1:$BASE
  $BIN/tools/gannet quorum append --bootstrap-controller 127.0.0.1:$BASE hello world
Ctrl-C stops it.
MSG
wait
