#!/usr/bin/env bash
# Runs srs-proxy on a fresh machine with its embedded defaults (memory
# balancer, no Redis): fetches the player pages' libraries from npm if they
# are missing, builds in release mode, and starts the proxy from the repo root
# so PROXY_STATIC_FILES=./players finds the pages. Any PROXY_* variable set in
# the environment (or in ./.env) applies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if command -v npm >/dev/null 2>&1; then
    bash scripts/install-players.sh --libs-only || echo "run: player libraries not installed; the player pages will not play" >&2
else
    echo "run: npm not found; the player pages' libraries are not installed (the proxy itself does not need them)" >&2
fi
exec cargo run --release --bin srs-proxy -- "$@"
