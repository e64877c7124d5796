#!/usr/bin/env bash
# The whole suite: installs the real peers the end-to-end tests need (only
# what is missing), builds every target, runs every unit and e2e test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-peers.sh

cargo build --workspace --all-targets

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: a failing test binary does not hide the others' results.
# The bound (the suite takes a few minutes) turns a hung test into a failure
# instead of a CI run that never ends.
timeout --kill-after=30 1500 cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "test.sh: the suite did not finish within 25 minutes (a test hangs)" >&2
fi

echo
echo "== cargo test summary =="
grep -E '^\s+Running |^\s+Doc-tests |^test result:' "$log" || true
awk '/^test result:/ {
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^passed;?$/) p += $(i - 1)
            if ($i ~ /^failed;?$/) f += $(i - 1)
        }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
