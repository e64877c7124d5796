#!/usr/bin/env bash
# Installs the real third-party peers the end-to-end tests run, and only the
# ones that are missing: Debian packages (FFmpeg, nginx with the RTMP module,
# redis-server, redis-sentinel, srt-tools, wrk, prometheus) and node-media-server 4 from npm into
# tests/peers/node_modules. Idempotent; no prompt (CI runs it as root, no stdin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

# Debian packages the tests need, and a file each one provides (how we tell
# whether it is already installed without asking dpkg about every name).
declare -A PROBE=(
    [ffmpeg]=/usr/bin/ffprobe
    [nginx-light]=/usr/sbin/nginx
    [libnginx-mod-rtmp]=/usr/lib/nginx/modules/ngx_rtmp_module.so
    [redis-server]=/usr/bin/redis-server
    [redis-sentinel]=/usr/bin/redis-sentinel
    [srt-tools]=/usr/bin/srt-live-transmit
    [wrk]=/usr/bin/wrk
    [prometheus]=/usr/bin/promtool
)
missing=()
for pkg in ffmpeg nginx-light libnginx-mod-rtmp redis-server redis-sentinel srt-tools wrk prometheus; do
    if [ ! -e "${PROBE[$pkg]}" ]; then missing+=("$pkg"); fi
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
# python3 -m venv needs ensurepip (Debian's python3-venv) for the aiortc venv.
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

# Another apt/dpkg run on this machine holds the lock: wait for it (bounded).
wait_dpkg_lock() {
    local i
    for i in $(seq 1 180); do
        if ! fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
            >/dev/null 2>&1; then
            return 0
        fi
        [ "$i" = 1 ] && echo "install-peers: waiting for another apt/dpkg run to finish..."
        sleep 2
    done
    echo "install-peers: dpkg still locked after 6 minutes" >&2
    return 1
}

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-peers: installing Debian packages: ${missing[*]}"
    if command -v fuser >/dev/null 2>&1; then wait_dpkg_lock; fi
    $SUDO apt-get update -q -o DPkg::Lock::Timeout=600
    if command -v fuser >/dev/null 2>&1; then wait_dpkg_lock; fi
    $SUDO apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}"
else
    echo "install-peers: Debian packages present"
fi

# node-media-server 4, local to the tests (tests/peers/node_modules is git-ignored).
NMS_APP="$ROOT/tests/peers/node_modules/node-media-server/bin/app.js"
if [ ! -f "$NMS_APP" ]; then
    echo "install-peers: installing node-media-server into tests/peers"
    (cd "$ROOT/tests/peers" && npm install --no-audit --no-fund --no-progress --loglevel=error)
fi
if [ ! -f "$NMS_APP" ]; then
    echo "install-peers: node-media-server did not install ($NMS_APP missing)" >&2
    exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "install-peers: warning: node $(node --version) is older than node-media-server 4 needs (>= 20)" >&2
fi
echo "install-peers: node-media-server $(node -p "require('$ROOT/tests/peers/node_modules/node-media-server/package.json').version")"
# aiortc and aiohttp (PyPI) for the WebRTC tests: client and origin stand-in
# (tests/rtc/*.py), in a venv under the git-ignored .peers/.
PY="$ROOT/.peers/py/bin/python"
if ! "$PY" -c 'import aiortc, aiohttp' >/dev/null 2>&1; then
    echo "install-peers: installing aiortc and aiohttp into .peers/py"
    python3 -m venv "$ROOT/.peers/py"
    "$PY" -m pip install -q --disable-pip-version-check "aiortc>=1.9,<2" "aiohttp>=3.9,<4"
fi
echo "install-peers: aiortc $("$PY" -c 'import aiortc; print(aiortc.__version__)')"
echo "install-peers: done"
bash "$ROOT/scripts/install-players.sh"  # player libraries, playwright-core, chromium
