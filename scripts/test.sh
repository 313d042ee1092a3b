#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what is missing, then `bazel test //...`.
# Ends with one line of its own, "N passed, M failed" (Bazel test targets), and exits non-zero if
# anything failed or did not build.
set -uo pipefail
cd "$(dirname "$0")/.."

./scripts/install_deps.sh || { echo "0 passed, 1 failed"; exit 1; }

# Reuse compiled actions across fresh clones on the same machine.
DISK_CACHE="${HOME}/.cache/gannet/bazel-disk"
mkdir -p "$DISK_CACHE"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# kafkajs (for tests/kafka_client_test), installed from npm by install_deps.sh.
NPM_DIR="${HOME}/.cache/gannet/npm"
bazel test //... --keep_going --disk_cache="$DISK_CACHE" --test_env=GANNET_NPM_DIR="$NPM_DIR" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Bazel prints one status line per test target: "//pkg:target   PASSED in 1.2s", "(cached) PASSED",
# "FAILED", "TIMEOUT", "FLAKY", "NO STATUS", "FAILED TO BUILD", "INCOMPLETE".
passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)' "$log")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # the build failed before any test ran
fi
echo "${passed} passed, ${failed} failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
