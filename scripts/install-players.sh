#!/usr/bin/env bash
# Fills players/vendor/ with the browser libraries the player pages load
# (mpegts.js for HTTP-FLV, hls.js for HLS, from npm, never from a CDN), and
# installs what the browser tests need: playwright-core in tests/browser/ and
# Debian's chromium. Idempotent (only what is missing); quiet on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# --libs-only: just the player pages' libraries (what running the proxy needs).
LIBS_ONLY=0
[ "${1:-}" = "--libs-only" ] && LIBS_ONLY=1
export DEBIAN_FRONTEND=noninteractive
NPM_FLAGS=(--no-audit --no-fund --no-progress --loglevel=error)

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi

# npm's own chatter (warnings about the machine's npmrc) goes to a log that is
# printed only when npm fails.
quiet() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "install-players: failed: $*" >&2
        return 1
    fi
    rm -f "$log"
}

# 1. The player libraries (major versions pinned).
NPM_DIR="$ROOT/players/.npm"
VENDOR="$ROOT/players/vendor"
MPEGTS="$NPM_DIR/node_modules/mpegts.js/dist/mpegts.js"
HLSJS="$NPM_DIR/node_modules/hls.js/dist/hls.min.js"
if [ ! -f "$MPEGTS" ] || [ ! -f "$HLSJS" ]; then
    mkdir -p "$NPM_DIR"
    quiet npm install --prefix "$NPM_DIR" "${NPM_FLAGS[@]}" "mpegts.js@^1" "hls.js@^1"
fi
mkdir -p "$VENDOR"
for f in "$MPEGTS" "$HLSJS"; do
    [ -f "$f" ] || { echo "install-players: $f missing after npm install" >&2; exit 1; }
    cmp -s "$f" "$VENDOR/$(basename "$f")" || cp "$f" "$VENDOR/"
done

[ "$LIBS_ONLY" = 1 ] && exit 0

# 2. playwright-core for tests/browser/check.mjs (it drives Debian's chromium;
#    it never downloads a browser of its own).
if [ ! -f "$ROOT/tests/browser/node_modules/playwright-core/package.json" ]; then
    quiet npm install --prefix "$ROOT/tests/browser" "${NPM_FLAGS[@]}"
fi

# 3. Debian's chromium.
if [ ! -x /usr/bin/chromium ]; then
    quiet $SUDO apt-get update -q -o DPkg::Lock::Timeout=600
    quiet $SUDO apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 chromium
fi
[ -x /usr/bin/chromium ] || { echo "install-players: /usr/bin/chromium missing" >&2; exit 1; }
