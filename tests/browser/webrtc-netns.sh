#!/bin/sh
# Runs the WebRTC browser check inside a fresh network namespace that has only
# loopback (Chromium drops loopback from ICE otherwise, and no other interface
# address may carry test traffic): the proxy, the aiortc origin stand-in and
# Chromium all live here, on fixed ports (the namespace is this run's alone).
#
#   unshare -n sh tests/browser/webrtc-netns.sh PROXY_BIN PYTHON REPO OUTDIR
#
# Prints webrtc.mjs's JSON line; logs go to OUTDIR.
set -eu
PROXY_BIN="$1"; PY="$2"; REPO="$3"; OUT="$4"
ip link set lo up
cd "$OUT"
env -i PATH="$PATH" HOME="$OUT" NO_COLOR=1 RUST_LOG=info \
    PROXY_RTMP_SERVER=127.0.0.1:11935 PROXY_HTTP_SERVER=127.0.0.1:18080 PROXY_HTTP_API=127.0.0.1:11985 \
    PROXY_WEBRTC_SERVER=127.0.0.1:18000 PROXY_SRT_SERVER=127.0.0.1:20080 PROXY_SYSTEM_API=127.0.0.1:12025 \
    PROXY_WORKERS=2 PROXY_STATIC_FILES="$REPO/players" \
    "$PROXY_BIN" > "$OUT/proxy.log" 2>&1 &
PROXY=$!
"$PY" "$REPO/tests/rtc/origin.py" --api 19850 --register 127.0.0.1:12025 --id browser > "$OUT/origin.log" 2>&1 &
ORIGIN=$!
trap 'kill $PROXY $ORIGIN 2>/dev/null || true' EXIT
i=0
until grep -q "origin registered" "$OUT/proxy.log" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then echo '{"ok":false,"error":"the origin never registered"}'; exit 1; fi
    sleep 0.1
done
node "$REPO/tests/browser/webrtc.mjs" \
    "http://127.0.0.1:18080/whip.html?app=live&stream=cam&api_port=11985" \
    "http://127.0.0.1:18080/whep.html?app=live&stream=cam&api_port=11985" \
    --timeout 45 --min-frames 30
