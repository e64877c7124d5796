#!/usr/bin/env bash
# Benchmarks srs-proxy against the origin itself (direct) and three L4
# relays, HAProxy in TCP mode, nginx's stream module and a bare glommio copy
# loop (srs-load copy: what the runtime alone costs), all in one run on
# loopback, and prints one table (also written to target/bench/results.md).
#
#   bash scripts/bench.sh            # full run (about 8 minutes after the build)
#   bash scripts/bench.sh --quick    # short phases, fewer clients (about 3 minutes)
#   BENCH_ONLY="fan sessions" bash scripts/bench.sh   # some scenarios only
#   BENCH_BASELINE=/path/to/srs-proxy bash scripts/bench.sh
#                                    # adds a column: another srs-proxy build
#                                    # (say, before a change), same load, same run
#   BENCH_ROUNDS=3 bash scripts/bench.sh
#                                    # each fan-out and setup phase 3 times,
#                                    # interleaved; the table shows the median
#                                    # round and the range of the CPU figure
#
# Scenarios (each run once direct, once through each proxy, in an order that
# rotates from scenario to scenario so that drift spreads evenly):
#   * fan-out relay: 1 publisher at 8 Mbit/s straight to the origin, 40
#     players through the proxy under test (RTMP to nginx-rtmp; HTTP-FLV to
#     node-media-server). Proxy CPU (utime+stime of all its processes and
#     threads, from /proc) per GiB the players received, throughput, delay.
#   * connection setup: RTMP play sessions at a steady rate (handshake,
#     connect, createStream, play, first media, close); proxy CPU per session.
#   * idle scale: K idle RTMP play sessions (a stream nobody publishes); the
#     proxy's resident memory over its idle baseline, per connection. Each
#     proxy is started fresh for each size.
#   * per-core scaling: the RTMP fan-out and the session setup with one
#     worker (PROXY_WORKERS=1, HAProxy nbthread 1, nginx worker_processes 1,
#     one copy-loop executor) beside the two-worker runs.
#   * paired setup (with BENCH_BASELINE only): srs-proxy and the baseline
#     at the same time, each under its own session load, in windows whose
#     start order alternates; the ratio of their CPU per session. Whatever
#     else this shared machine does moves both alike and cancels in the
#     ratio, so it shows differences of a few percent that the rounds above
#     (each build alone, one after the other) cannot.
#   * paired setup against the L4 relays: the same, srs-proxy against
#     HAProxy and against nginx stream (pairsess; pairsesscopy, not in the
#     default set, against the copy loop; pairsessrt, not in the default
#     set, the copy loop against nginx stream and HAProxy: what the
#     runtime alone costs, with no RTMP work).
#   * SRT relay (srt): N SRT flows through srs-proxy and N through nginx
#     stream as a UDP proxy (one server per flow; two workers each), both
#     at once: srt-live-transmit callers fed by one paced UDP generator
#     (1316-byte TS-sized datagrams), srt-live-transmit listener origins;
#     in windows, each relay's CPU per GiB and per data packet the origins
#     received, the geometric mean of the per-window ratio, and losses from
#     the origins' SRT statistics. BENCH_ROUNDS does not repeat it.
#   * paired fan-out: the same for the RTMP fan-out, srs-proxy against
#     HAProxy and against nginx stream, half the players through each; the
#     ratio of their CPU per GiB. BENCH_ONLY=pairfanbase and pairfancopy
#     (not in the default set) pair it against the baseline and against
#     the copy loop.
#   * the Redis balancer (BENCH_ONLY=pairredis, not in the default set): the
#     session setup paired, this build with PROXY_LOAD_BALANCER_TYPE=redis
#     (one local redis-server) against itself with the memory balancer; the
#     ratio of their CPU per session and both sides' setup latency p50/p99,
#     and the pick alone (BENCH_ONLY=picklat for just that): request
#     latency p50/p99 of HTTP requests answered right after the pick.
#   * UDP relay (WebRTC media): UDP_SESSIONS sessions of RTP-sized datagrams
#     (1200 bytes) at a steady rate each, echoed by the loader's own origin,
#     straight to it (direct, alone), then through srs-proxy's WebRTC port
#     (each session signalled as WHEP and opened by a STUN check first) and
#     through nginx stream (`listen ... udp`) both at once, in UDP_WINDOWS
#     windows whose start order alternates (the relays' CPU is read after
#     the set-up, so signalling is not counted); relay CPU per packet and
#     per GiB, drops, round-trip delay, and the geometric mean of the
#     per-window ratio of CPU per packet with its range.
#
# Everything listens on 127.0.0.1 (free ports picked at start). Every process
# started here is stopped by its pid on exit; every wait is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown option $a (try --help)" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    FAN_CLIENTS=20; FAN_SECONDS=6; SESS_RATE=50; SESS_SECONDS=5; PAIR_WINDOWS=2
    IDLE_SMALL=200; IDLE_BIG=1000; IDLE_HOLD=3
    SRT_FLOWS=4; SRT_SECONDS=6; SRT_WINDOWS=2
    UDP_SESSIONS=50; UDP_PPS=50; UDP_SECONDS=5; UDP_WINDOWS=2
else
    FAN_CLIENTS=40; FAN_SECONDS=20; SESS_RATE=50; SESS_SECONDS=20; PAIR_WINDOWS=8
    IDLE_SMALL=1000; IDLE_BIG=10000; IDLE_HOLD=4
    SRT_FLOWS=10; SRT_SECONDS=15; SRT_WINDOWS=4
    UDP_SESSIONS=200; UDP_PPS=50; UDP_SECONDS=15; UDP_WINDOWS=6
fi
SRT_MBIT=4
UDP_SIZE=1200
BITRATE=8000k
ROUNDS="${BENCH_ROUNDS:-1}"
case "$ROUNDS" in ''|*[!0-9]*|0) echo "bench.sh: BENCH_ROUNDS=$ROUNDS is not a positive number" >&2; exit 2 ;; esac

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- setup
cd "$ROOT"
log "building (release)"
cargo build --release -q -p srs-proxy -p srs-bench
PROXY_BIN="$ROOT/target/release/srs-proxy"
BASE_BIN="${BENCH_BASELINE:-}"
if [ -n "$BASE_BIN" ] && [ ! -x "$BASE_BIN" ]; then
    echo "bench.sh: BENCH_BASELINE=$BASE_BIN is not an executable" >&2; exit 2
fi
# with_base WORD...: the words, and "base" after "srs" when a baseline is set.
with_base() {
    local w
    for w in "$@"; do
        printf '%s ' "$w"
        if [ "$w" = srs ] && [ -n "$BASE_BIN" ]; then printf 'base '; fi
    done
}
LOAD="$ROOT/target/release/srs-load"

log "installing peers if missing"
bash "$ROOT/scripts/install-peers.sh" >&2
bench_missing=()
[ -x /usr/sbin/haproxy ] || bench_missing+=(haproxy)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || bench_missing+=(libnginx-mod-stream)
if [ "${#bench_missing[@]}" -gt 0 ]; then
    log "installing ${bench_missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${bench_missing[@]}" >&2 ||
    { DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -q -o DPkg::Lock::Timeout=600 >&2 &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${bench_missing[@]}" >&2; }
fi
NMS_APP="$ROOT/tests/peers/node_modules/node-media-server/bin/app.js"

# Descriptors: as many as we may have (the idle scenario needs two per
# connection in each proxy).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDLIM="$(ulimit -n)"
if [ "$FDLIM" = unlimited ]; then FDLIM=1048576; fi
fit=$(( (FDLIM - 1500) / 2 / 100 * 100 ))
if [ "$IDLE_BIG" -gt "$fit" ]; then
    log "descriptor limit $FDLIM: the large idle scenario uses $fit connections, not $IDLE_BIG"
    IDLE_BIG=$fit
fi
# HAProxy needs 2 descriptors per connection and 2 per splice pipe.
HAPROXY_MAXCONN=$(( (FDLIM - 1100) / 2 ))
NGX_CONNS=$(( FDLIM - 100 ))

WORK="$(mktemp -d /tmp/srs-bench.XXXXXX)"
RES="$WORK/results"
mkdir -p "$RES"
HZ="$(getconf CLK_TCK)"

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg NAME CMD... : runs CMD in the background, logs to $WORK/NAME.log,
# remembers its pid in $BG_PID and in PIDS.
start_bg() {
    local name="$1"; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
    local p="$1" i
    kill "$p" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget_pid "$p"
}

# forget_pid PID: no longer stopped on exit (it has ended).
forget_pid() {
    local keep=() q
    for q in "${PIDS[@]}"; do [ "$q" = "$1" ] || keep+=("$q"); done
    PIDS=("${keep[@]:-}")
}

free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_port() {
    local port="$1" i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "bench: nothing listens on $port after 10 s" >&2
    return 1
}

# The pid and its children (nginx: master and workers).
tree_pids() {
    local p="$1"
    echo "$p"
    pgrep -P "$p" 2>/dev/null || true
}

# CPU ticks (utime + stime) of all processes of a tree.
cpu_ticks() {
    local total=0 p t
    for p in $(tree_pids "$1"); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$(( total + ${t:-0} ))
    done
    echo "$total"
}

# Resident memory (kB) of all processes of a tree.
rss_kb() {
    local total=0 p r
    for p in $(tree_pids "$1"); do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=0
        total=$(( total + ${r:-0} ))
    done
    echo "$total"
}

read -r P_NGX_RTMP P_NMS_RTMP P_NMS_HTTP P_NMS_HTTPS P_NMS_RTMPS \
        P_SRS_RTMP P_SRS_API P_SRS_HTTP P_SRS_HTTPAPI P_SRS_RTC P_SRS_SRT \
        P_HA P_NGX_STREAM P_GC \
        P_BASE_RTMP P_BASE_API P_BASE_HTTP P_BASE_HTTPAPI P_BASE_RTC P_BASE_SRT <<<"$(free_ports 20)"
read -r P_RDS P_RS_RTMP P_RS_API P_RS_HTTP P_RS_HTTPAPI P_RS_RTC P_RS_SRT <<<"$(free_ports 7)"
read -r P_NGX_UDP P_UDP_ECHO P_UDP_ECHO2 <<<"$(free_ports 3)"

# ---------------------------------------------------------------- origins
start_nginx_rtmp() {
    local d="$WORK/nginx-rtmp"
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections $NGX_CONNS; }
rtmp {
    server {
        listen 127.0.0.1:$P_NGX_RTMP;
        chunk_size 4096;
        application live { live on; record off; }
    }
}
EOF
    start_bg nginx-rtmp nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf"
    NGX_RTMP_PID=$BG_PID
    wait_port "$P_NGX_RTMP"
}

start_nms() {
    mkdir -p "$WORK/nms"
    start_bg nms node "$NMS_APP" -b 127.0.0.1 --rtmp-port "$P_NMS_RTMP" --http-port "$P_NMS_HTTP" \
        --https-port "$P_NMS_HTTPS" --rtmps-port "$P_NMS_RTMPS" --data-path "$WORK/nms" --no-admin
    NMS_PID=$BG_PID
    wait_port "$P_NMS_RTMP"
    wait_port "$P_NMS_HTTP"
}

# ---------------------------------------------------------------- proxies
# launch_srs BIN LOG RTMP API HTTP HTTPAPI RTC SRT WORKERS ORIGIN_RTMP_PORT [ORIGIN_HTTP_PORT]:
# an srs-proxy with one origin registered; its pid in LAUNCHED.
launch_srs() {
    local bin="$1" logf="$2" rtmp="$3" api="$4" http="$5" httpapi="$6" rtc="$7" srt="$8"
    local workers="$9" ortmp="${10}" ohttp="${11:-}"
    # LAUNCH_ENV: extra VAR=value words (the Redis variant's balancer).
    env ${LAUNCH_ENV:-} PROXY_RTMP_SERVER="127.0.0.1:$rtmp" PROXY_SYSTEM_API="127.0.0.1:$api" \
        PROXY_HTTP_SERVER="127.0.0.1:$http" PROXY_HTTP_API="127.0.0.1:$httpapi" \
        PROXY_WEBRTC_SERVER="$rtc" PROXY_SRT_SERVER="$srt" \
        PROXY_WORKERS="$workers" PROXY_IDLE_TIMEOUT=600s PROXY_ORIGIN_SERVER_TTL=3600s PROXY_STATIC_FILES="$WORK" \
        RUST_LOG=warn "$bin" >"$WORK/$logf" 2>&1 &
    LAUNCHED=$!
    PIDS+=("$LAUNCHED")
    wait_port "$rtmp"
    wait_port "$api"
    local hp='[]'
    [ -n "$ohttp" ] && hp="[\"$ohttp\"]"
    local body="{\"device_id\":\"bench-origin\",\"ip\":\"127.0.0.1\",\"server\":\"bench-$ortmp\",\"service\":\"s1\",\"pid\":\"1\",\"rtmp\":[\"$ortmp\"],\"http\":$hp}"
    # One registration: the TTL outlives every phase, so no heartbeat is needed.
    curl -sf -m 5 -XPOST "127.0.0.1:$api/api/v1/srs/register" \
        -H 'Content-Type: application/json' -d "$body" >/dev/null
}
# start_srs WORKERS ORIGIN_RTMP_PORT [ORIGIN_HTTP_PORT]
start_srs() {
    launch_srs "$PROXY_BIN" srs-proxy.log "$P_SRS_RTMP" "$P_SRS_API" "$P_SRS_HTTP" "$P_SRS_HTTPAPI" \
        "$P_SRS_RTC" "$P_SRS_SRT" "$@"
    SRS_PID=$LAUNCHED
}
# start_base: the same, with the BENCH_BASELINE binary (nothing when unset).
start_base() {
    BASE_PID=""
    [ -n "$BASE_BIN" ] || return 0
    launch_srs "$BASE_BIN" srs-proxy-base.log "$P_BASE_RTMP" "$P_BASE_API" "$P_BASE_HTTP" "$P_BASE_HTTPAPI" \
        "$P_BASE_RTC" "$P_BASE_SRT" "$@"
    BASE_PID=$LAUNCHED
}
stop_base() { [ -z "${BASE_PID:-}" ] || stop_pid "$BASE_PID"; }
# start_redis_srs WORKERS ORIGIN_RTMP_PORT: this build with the Redis
# balancer, on a local redis-server (started once, kept for the run).
start_redis_srs() {
    if [ -z "${RDS_PID:-}" ]; then
        start_bg redis-server redis-server --bind 127.0.0.1 --port "$P_RDS" --save "" --appendonly no --dir "$WORK"
        RDS_PID=$BG_PID
        wait_port "$P_RDS"
    fi
    LAUNCH_ENV="PROXY_LOAD_BALANCER_TYPE=redis PROXY_REDIS_PORT=$P_RDS" launch_srs "$PROXY_BIN" srs-proxy-redis.log \
        "$P_RS_RTMP" "$P_RS_API" "$P_RS_HTTP" "$P_RS_HTTPAPI" "$P_RS_RTC" "$P_RS_SRT" "$@"
    RS_PID=$LAUNCHED
}
stop_redis_srs() { [ -z "${RS_PID:-}" ] || stop_pid "$RS_PID"; }
stop_srs() { stop_pid "$SRS_PID"; }

# start_haproxy THREADS ORIGIN_PORT
start_haproxy() {
    local d="$WORK/haproxy"
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
    maxpipes 500
    nbthread $1
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 10m
    timeout server 10m
listen relay
    bind 127.0.0.1:$P_HA
    server origin 127.0.0.1:$2
EOF
    start_bg haproxy haproxy -db -f "$d/haproxy.cfg"
    HA_PID=$BG_PID
    wait_port "$P_HA"
}
stop_haproxy() { stop_pid "$HA_PID"; }

# nginx_stream NAME WORKERS SERVERS: nginx with the stream module and the
# given `server { ... }` blocks, started in the background (its pid in BG_PID).
nginx_stream() {
    local d="$WORK/$1"
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process on;
worker_processes $2;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections $NGX_CONNS; }
stream {
$3
}
EOF
    start_bg "$1" nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf"
}

# start_nginx_stream WORKERS ORIGIN_PORT
start_nginx_stream() {
    nginx_stream nginx-stream "$1" "    server {
        listen 127.0.0.1:$P_NGX_STREAM reuseport;
        proxy_pass 127.0.0.1:$2;
        proxy_connect_timeout 5s;
        proxy_timeout 10m;
    }"
    NGXS_PID=$BG_PID
    wait_port "$P_NGX_STREAM"
}
stop_nginx_stream() { stop_pid "$NGXS_PID"; }

# start_nginx_udp WORKERS ECHO_PORT: nginx stream as a UDP proxy (one
# upstream socket per client address).
start_nginx_udp() {
    nginx_stream nginx-udp "$1" "    server {
        listen 127.0.0.1:$P_NGX_UDP udp reuseport;
        proxy_pass 127.0.0.1:$2;
        proxy_timeout 30s;
    }"
    NGXU_PID=$BG_PID
    sleep 0.5
}

# udp_load_bg V W: window W's loader for relay V (srs: its sessions
# signalled through srs-proxy to the loader's origin on P_UDP_ECHO2; nginx:
# through nginx stream to the loader's origin on P_UDP_ECHO), in the
# background: it writes $WORK/udp-ready-V.wW when set up and starts sending
# when $WORK/udp-go.wW exists. Its pid in UDP_LP_V.
udp_load_bg() {
    local v="$1" w="$2" args
    case "$v" in
        srs) args=(--to "127.0.0.1:$P_SRS_RTC" --echo-port "$P_UDP_ECHO2" --http-api "127.0.0.1:$P_SRS_HTTPAPI"
                   --system-api "127.0.0.1:$P_SRS_API" --server bench-1) ;;
        nginx) args=(--to "127.0.0.1:$P_NGX_UDP" --echo-port "$P_UDP_ECHO") ;;
    esac
    "$LOAD" udp "${args[@]}" --sessions "$UDP_SESSIONS" --pps "$UDP_PPS" --size "$UDP_SIZE" \
        --seconds "$UDP_SECONDS" --threads 2 --ready-file "$WORK/udp-ready-$v.w$w" --go-file "$WORK/udp-go.w$w" \
        >"$RES/udp_$v.w$w.json.load" 2>"$RES/udp_$v.w$w.json.err" &
    eval "UDP_LP_$v=\$!"
    PIDS+=("$!")
}

# udp_sum V: the windows of relay V summed (CPU, packets, bytes, drops);
# the round trip is the median window's (by p50) as UDP_V.json.
udp_sum() {
    python3 - "$RES" "$1" "$UDP_WINDOWS" <<'PY'
import json, os, sys
res, v, windows = sys.argv[1], sys.argv[2], int(sys.argv[3])
rs = []
for w in range(1, windows + 1):
    try:
        r = json.load(open(os.path.join(res, f"udp_{v}.w{w}.json")))
    except (OSError, ValueError):
        continue
    if isinstance(r.get("load"), dict):
        rs.append(r)
if not rs:
    json.dump({"error": f"no window of {v} has a result"}, open(os.path.join(res, f"udp_{v}.json"), "w"))
    sys.exit(0)
load = dict(rs[0]["load"])
for k in ("sent", "received", "drops", "bytes_sent", "bytes_received"):
    load[k] = sum(r["load"][k] for r in rs)
load["seconds"] = rs[0]["load"]["seconds"]
by_p50 = sorted(rs, key=lambda r: r["load"]["rtt"]["p50"])
load["rtt"] = by_p50[(len(by_p50) - 1) // 2]["load"]["rtt"]
out = {"cpu_ticks": sum(r["cpu_ticks"] for r in rs), "hz": rs[0]["hz"], "load": load, "windows": len(rs)}
json.dump(out, open(os.path.join(res, f"udp_{v}.json"), "w"))
PY
}

# udp_relay: the UDP relay scenario. Direct once, alone (the round trip
# without a relay), then srs-proxy and nginx stream both at once, each
# under its own loader with its own echo origin, in UDP_WINDOWS windows:
# both loaders set up (srs-proxy's sessions signalled and opened), the
# relays' CPU is read, both start sending together (a go file) and the
# CPU is read again when both are done. The order in which the loaders
# are started and the CPU read alternates from window to window. Whatever
# else the machine does in a window weighs on both alike, and the ratio
# of their CPU per packet in each window cancels it (as for SRT).
udp_relay() {
    log "UDP relay: $UDP_SESSIONS sessions x $UDP_PPS pkt/s x $UDP_SIZE B, direct for ${UDP_SECONDS}s, then srs-proxy and nginx stream at once, $UDP_WINDOWS windows of ${UDP_SECONDS}s"
    measure "$RES/udp_direct.json" "" "$LOAD" udp --to "127.0.0.1:$P_UDP_ECHO" --echo-port "$P_UDP_ECHO" \
        --sessions "$UDP_SESSIONS" --pps "$UDP_PPS" --size "$UDP_SIZE" --seconds "$UDP_SECONDS" --threads 2
    # srs-proxy registers the bench origin "bench-1"; each srs loader's
    # origin takes its place (same id) with an api and an rtc endpoint.
    start_srs 2 1
    start_nginx_udp 2 "$P_UDP_ECHO"
    local w v i pid c0_srs c0_nginx c1 lp ok
    for w in $(seq 1 "$UDP_WINDOWS"); do
        set -- $(rotate $(( w - 1 )) srs nginx)
        log "  window $w of $UDP_WINDOWS ($1 first)"
        for v in "$@"; do udp_load_bg "$v" "$w"; done
        ok=1
        for i in $(seq 1 1200); do
            [ -e "$WORK/udp-ready-srs.w$w" ] && [ -e "$WORK/udp-ready-nginx.w$w" ] && break
            kill -0 "$UDP_LP_srs" 2>/dev/null && kill -0 "$UDP_LP_nginx" 2>/dev/null || { ok=0; break; }
            sleep 0.1
        done
        [ -e "$WORK/udp-ready-srs.w$w" ] && [ -e "$WORK/udp-ready-nginx.w$w" ] || ok=0
        for v in "$@"; do
            pid=$SRS_PID; [ "$v" = nginx ] && pid=$NGXU_PID
            eval "c0_$v=\$(cpu_ticks $pid)"
        done
        touch "$WORK/udp-go.w$w"
        for v in "$@"; do
            lp=$(eval echo "\$UDP_LP_$v")
            wait "$lp" || ok=0
            forget_pid "$lp"
        done
        for v in "$@"; do
            pid=$SRS_PID; [ "$v" = nginx ] && pid=$NGXU_PID
            c1=$(cpu_ticks "$pid")
            local out="$RES/udp_$v.w$w.json"
            if [ "$ok" = 1 ] && [ -s "$out.load" ]; then
                printf '{"cpu_ticks":%s,"hz":%s,"load":%s}\n' $(( c1 - $(eval echo "\$c0_$v") )) "$HZ" "$(cat "$out.load")" >"$out"
            else
                log "  window $w: a loader failed: $(tail -c 300 "$out.err")"
                printf '{"error":%s}\n' "$(tail -c 300 "$out.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" >"$out"
            fi
        done
    done
    stop_srs
    stop_pid "$NGXU_PID"
    udp_sum srs
    udp_sum nginx
    SCEN=$(( SCEN + 1 ))
}

# start_glommio WORKERS ORIGIN_PORT: the bare glommio copy loop of srs-load,
# the runtime's own floor (perf-notes' reference), pinned like srs-proxy.
start_glommio() {
    start_bg glommio-copy "$LOAD" copy --listen "127.0.0.1:$P_GC" --to "127.0.0.1:$2" --threads "$1" --pin
    GC_PID=$BG_PID
    wait_port "$P_GC"
}
stop_glommio() { stop_pid "$GC_PID"; }

start_proxies() { # WORKERS ORIGIN_PORT [ORIGIN_HTTP_PORT for srs-proxy]
    start_srs "$1" "$2" "${3:-}"
    start_base "$1" "$2" "${3:-}"
    start_haproxy "$1" "${4:-$2}"
    start_nginx_stream "$1" "${4:-$2}"
    start_glommio "$1" "${4:-$2}"
    sleep 0.5
}
stop_proxies() { stop_srs; stop_base; stop_haproxy; stop_nginx_stream; stop_glommio; }

pid_of() {
    case "$1" in
        srs) echo "$SRS_PID" ;;
        base) echo "$BASE_PID" ;;
        redis) echo "$RS_PID" ;;
        haproxy) echo "$HA_PID" ;;
        nginx) echo "$NGXS_PID" ;;
        glommio) echo "$GC_PID" ;;
        *) echo "" ;;
    esac
}
port_of() {
    case "$1" in
        srs) echo "$P_SRS_RTMP" ;;
        base) echo "$P_BASE_RTMP" ;;
        redis) echo "$P_RS_RTMP" ;;
        haproxy) echo "$P_HA" ;;
        nginx) echo "$P_NGX_STREAM" ;;
        glommio) echo "$P_GC" ;;
    esac
}

# rotate K WORD... : the words, starting at index K mod N.
rotate() {
    local k="$1"; shift
    local a=("$@") n=$# i
    for i in $(seq 0 $(( n - 1 ))); do printf '%s ' "${a[$(( (i + k) % n ))]}"; done
}

# measure OUT PID CMD... : runs the loader CMD, with the CPU of the process
# tree PID (if any) read before and after; writes
# {"cpu_ticks":N,"hz":HZ,"load":<loader json>} to OUT.
measure() {
    local out="$1" pid="$2"; shift 2
    local c0=0 c1=0 rc=0
    [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
    "$@" >"$out.load" 2>"$out.err" || rc=$?
    [ -n "$pid" ] && c1=$(cpu_ticks "$pid")
    if [ "$rc" != 0 ] || [ ! -s "$out.load" ]; then
        log "  loader failed ($rc): $(tail -c 300 "$out.err")"
        printf '{"error":%s}\n' "$(tail -c 300 "$out.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" >"$out"
        return 0
    fi
    local cpu="null"
    [ -n "$pid" ] && cpu=$(( c1 - c0 ))
    printf '{"cpu_ticks":%s,"hz":%s,"load":%s}\n' "$cpu" "$HZ" "$(cat "$out.load")" >"$out"
}

# An origin that died (say, because a proxy sent it something it choked
# on) is restarted before the next phase, and the table notes it.
check_origins() { # WHAT-RAN-BEFORE
    if ! kill -0 "$NGX_RTMP_PID" 2>/dev/null; then
        log "  nginx-rtmp origin died (after: $1); restarting it"
        echo "the nginx-rtmp origin died after: $1 (restarted)" >>"$RES/notes.txt"
        start_nginx_rtmp
    fi
    if ! kill -0 "$NMS_PID" 2>/dev/null; then
        log "  node-media-server origin died (after: $1); restarting it"
        echo "node-media-server died after: $1 (restarted)" >>"$RES/notes.txt"
        start_nms
    fi
}

# Before each phase: the origin and the publisher are alive.
ensure_publisher() { # URL GOP WHAT-RAN-BEFORE
    if ! kill -0 "$PUB_PID" 2>/dev/null; then
        check_origins "$3"
        log "  publisher exited; starting it again"
        start_publisher "$1" "$2"
    fi
}

start_publisher() { # URL GOP
    start_bg "publisher-$RANDOM" "$LOAD" publish --url "$1" --bitrate "$BITRATE" --fps 30 --gop "$2" --seconds 3600
    PUB_PID=$BG_PID
    sleep 2.5
    if ! kill -0 "$PUB_PID" 2>/dev/null; then
        echo "bench: the publisher to $1 exited" >&2
        return 1
    fi
}

# median PREFIX VARIANT... : of the rounds PREFIX_V.rN.json of each variant,
# keeps the one with the median proxy CPU (per GiB the players got, or per
# session) as PREFIX_V.json, with every round's figure under "rounds". For
# the direct runs (no proxy CPU) the figure is the p99 delay of a fan-out or
# of a session's setup, so the delays added by proxies are taken against a
# typical direct round, not an outlier.
median() {
    local prefix="$1"; shift
    python3 - "$prefix" "$ROUNDS" "$@" <<'EOF'
import json, sys
prefix, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def figure(r):
    try:
        L = r["load"]
        if r.get("cpu_ticks") is None:
            d = L["delay_ms"] if "delay_ms" in L else L["setup_ms"]
            return d["p99"]
        s = r["cpu_ticks"] / r["hz"]
        if "bytes" in L:
            return s / (L["bytes"] / 1024 ** 3) if L["bytes"] else None
        return s / L["ok"] * 1000 if L.get("ok") else None
    except (KeyError, TypeError):
        return None
for v in variants:
    rs = []
    for i in range(1, rounds + 1):
        try:
            rs.append(json.load(open(f"{prefix}_{v}.r{i}.json")))
        except (OSError, ValueError):
            pass
    if not rs:
        continue
    figs = [figure(r) for r in rs]
    ok = sorted((f, i) for i, f in enumerate(figs) if f is not None)
    pick = rs[ok[(len(ok) - 1) // 2][1]] if ok else rs[0]
    pick["rounds"] = [round(f, 3) if f is not None else None for f in figs]
    json.dump(pick, open(f"{prefix}_{v}.json", "w"))
EOF
}

# in_rounds TAG PUB GOP URL_OF LOAD VARIANTS...: each variant once a round
# (BENCH_ROUNDS), in an order that rotates from round to round and is
# reversed in every second round, the
# publisher to PUB kept up; `URL_OF VARIANT` (word-split, so it may carry
# arguments) prints the URL the load goes to; LOAD is play (fan-out) or
# sessions. Each variant's median round becomes TAG_VARIANT.json.
in_rounds() {
    local tag="$1" pub="$2" gop="$3" url_of="$4" load="$5"; shift 5
    local prev="start of $tag" v r url order
    for r in $(seq 1 "$ROUNDS"); do
        # Even rounds take the variants in reverse, so that no variant
        # always runs right after the same other one.
        order="$*"
        [ $(( r % 2 )) = 0 ] && order="$(printf '%s\n' "$@" | tac | tr '\n' ' ')"
        for v in $(rotate $(( SCEN + r - 1 )) $order); do
            ensure_publisher "$pub" "$gop" "$prev"
            prev="$tag $v"
            url="$($url_of "$v")"
            log "  $v (round $r of $ROUNDS)"
            case "$load" in
                play) measure "$RES/${tag}_$v.r$r.json" "$(pid_of "$v")" \
                    "$LOAD" play --url "$url" --clients "$FAN_CLIENTS" --seconds "$FAN_SECONDS" ;;
                sessions) measure "$RES/${tag}_$v.r$r.json" "$(pid_of "$v")" \
                    "$LOAD" sessions --url "$url" --rate "$SESS_RATE" --seconds "$SESS_SECONDS" ;;
            esac
        done
    done
    median "$RES/$tag" "$@"
}

# rtmp_url STREAM VARIANT: the origin itself for direct, else the relay.
rtmp_url() {
    if [ "$2" = direct ]; then echo "rtmp://127.0.0.1:$P_NGX_RTMP/live/$1"
    else echo "rtmp://127.0.0.1:$(port_of "$2")/live/$1"; fi
}

# flv_url VARIANT
flv_url() {
    case "$1" in
        direct) echo "http://127.0.0.1:$P_NMS_HTTP/live/fan.flv" ;;
        srs) echo "http://127.0.0.1:$P_SRS_HTTP/live/fan.flv" ;;
        base) echo "http://127.0.0.1:$P_BASE_HTTP/live/fan.flv" ;;
        *) echo "http://127.0.0.1:$(port_of "$1")/live/fan.flv" ;;
    esac
}

# ---------------------------------------------------------------- scenarios
start_nginx_rtmp
start_nms
SCEN=0

fanout_rtmp() { # TAG WORKERS VARIANTS...
    local tag="$1" workers="$2"; shift 2
    log "RTMP fan-out ($tag): $FAN_CLIENTS players x ${FAN_SECONDS}s, workers=$workers"
    start_proxies "$workers" "$P_NGX_RTMP"
    local pub="rtmp://127.0.0.1:$P_NGX_RTMP/live/fan"
    start_publisher "$pub" 2
    in_rounds "$tag" "$pub" 2 "rtmp_url fan" play $(with_base "$@")
    stop_pid "$PUB_PID"
    stop_proxies
    SCEN=$(( SCEN + 1 ))
}

fanout_flv() {
    log "HTTP-FLV fan-out: $FAN_CLIENTS players x ${FAN_SECONDS}s (origin node-media-server)"
    start_srs 2 "$P_NMS_RTMP" "$P_NMS_HTTP"
    start_base 2 "$P_NMS_RTMP" "$P_NMS_HTTP"
    start_haproxy 2 "$P_NMS_HTTP"
    start_nginx_stream 2 "$P_NMS_HTTP"
    start_glommio 2 "$P_NMS_HTTP"
    local pub="rtmp://127.0.0.1:$P_NMS_RTMP/live/fan"
    start_publisher "$pub" 2
    local variants="direct haproxy nginx glommio"
    curl -s -m 2 -o "$WORK/flv-probe" "http://127.0.0.1:$P_SRS_HTTP/live/fan.flv" >/dev/null 2>&1 || true
    if [ "$(head -c 3 "$WORK/flv-probe" 2>/dev/null || true)" = FLV ]; then
        variants="$(with_base direct srs haproxy nginx glommio)"
    else
        log "  srs-proxy: HTTP-FLV not implemented yet (GET /live/fan.flv gave no FLV)"
        echo '{"na":"not implemented"}' >"$RES/flv_srs.json"
    fi
    in_rounds flv "$pub" 2 flv_url play $variants
    stop_pid "$PUB_PID"
    stop_proxies
    SCEN=$(( SCEN + 1 ))
}

sessions() { # TAG WORKERS VARIANTS...
    local tag="$1" workers="$2"; shift 2
    log "RTMP session setup ($tag): $SESS_RATE/s x ${SESS_SECONDS}s, workers=$workers"
    start_proxies "$workers" "$P_NGX_RTMP"
    # A short GOP, so that "first media" does not wait long for a keyframe.
    local pub="rtmp://127.0.0.1:$P_NGX_RTMP/live/sess"
    start_publisher "$pub" 0.25
    in_rounds "$tag" "$pub" 0.25 "rtmp_url sess" sessions $(with_base "$@")
    stop_pid "$PUB_PID"
    stop_proxies
    SCEN=$(( SCEN + 1 ))
}

# idle TAG K: each proxy started fresh, K idle play sessions through it.
idle() {
    local tag="$1" k="$2" v
    log "idle scale: $k connections"
    for v in $(rotate "$SCEN" $(with_base srs haproxy nginx glommio)); do
        check_origins "before idle $tag $v"
        start_variant "$v" 2 "$P_NGX_RTMP"
        sleep 1
        local pid; pid=$(pid_of "$v")
        local r0; r0=$(rss_kb "$pid")
        local ready="$WORK/ready-$tag-$v.json"
        rm -f "$ready"
        log "  $v"
        start_bg "idle-$tag-$v" "$LOAD" idle --url "rtmp://127.0.0.1:$(port_of "$v")/live/idle" \
            --clients "$k" --hold "$IDLE_HOLD" --threads 2 --ready-file "$ready"
        local lp=$BG_PID i
        for i in $(seq 1 1500); do
            [ -s "$ready" ] && break
            kill -0 "$lp" 2>/dev/null || break
            sleep 0.1
        done
        sleep 1
        local r1; r1=$(rss_kb "$pid")
        local st=0
        wait "$lp" || st=$?
        forget_pid "$lp"
        local load='null'
        [ "$st" = 0 ] && load=$(cat "$WORK/idle-$tag-$v.log" | tail -n 1)
        [ -s "$ready" ] || echo '{"open":0}' >"$ready"
        printf '{"rss0_kb":%s,"rss1_kb":%s,"ready":%s,"load":%s}\n' "$r0" "$r1" "$(cat "$ready")" "$load" \
            >"$RES/idle${tag}_$v.json"
        stop_variant "$v"
    done
    SCEN=$(( SCEN + 1 ))
}

# start_variant V WORKERS ORIGIN_PORT / stop_variant V: one relay of the table.
start_variant() {
    case "$1" in
        srs) start_srs "$2" "$3" ;;
        base) start_base "$2" "$3" ;;
        redis) start_redis_srs "$2" "$3" ;;
        haproxy) start_haproxy "$2" "$3" ;;
        nginx) start_nginx_stream "$2" "$3" ;;
        glommio) start_glommio "$2" "$3" ;;
    esac
}
stop_variant() {
    case "$1" in
        srs) stop_srs ;;
        base) stop_base ;;
        redis) stop_redis_srs ;;
        haproxy) stop_haproxy ;;
        nginx) stop_nginx_stream ;;
        glommio) stop_glommio ;;
    esac
}

# pair_load LOAD V: one side's loader in a paired run.
pair_load() {
    case "$1" in
        sessions) "$LOAD" sessions --url "$(rtmp_url sess "$2")" --rate "$SESS_RATE" --seconds "$SESS_SECONDS" ;;
        play) "$LOAD" play --url "$(rtmp_url fan "$2")" --clients $(( FAN_CLIENTS / 2 )) --seconds "$FAN_SECONDS" ;;
    esac
}

# paired TAG LOAD A B: relays A and B (two workers each) at once, each under
# its own load (LOAD: sessions, at the setup rate, or play, half the
# fan-out's players each, so that the machine carries the fan-out's load),
# for PAIR_WINDOWS windows; which load starts first alternates (by hand,
# srs-proxy against itself, the load started second showed about 3% more
# CPU in both windows). Each window's two results are TAG_A.wN.json and
# TAG_B.wN.json.
paired() {
    local tag="$1" load="$2" a="$3" b="$4" w lp pub gop stream
    case "$load" in
        sessions) stream=sess; gop=0.25
            log "RTMP session setup, $a and $b at once: $PAIR_WINDOWS windows of ${SESS_SECONDS}s, $SESS_RATE/s each" ;;
        play) stream=fan; gop=2
            log "RTMP fan-out, $a and $b at once: $PAIR_WINDOWS windows of ${FAN_SECONDS}s, $(( FAN_CLIENTS / 2 )) players each" ;;
    esac
    check_origins "start of $tag"
    start_variant "$a" 2 "$P_NGX_RTMP"
    start_variant "$b" 2 "$P_NGX_RTMP"
    sleep 0.5
    pub="rtmp://127.0.0.1:$P_NGX_RTMP/live/$stream"
    start_publisher "$pub" "$gop"
    for w in $(seq 1 "$PAIR_WINDOWS"); do
        ensure_publisher "$pub" "$gop" "$tag window $(( w - 1 ))"
        set -- $(rotate $(( w - 1 )) "$a" "$b")
        log "  window $w of $PAIR_WINDOWS ($1 first)"
        measure "$RES/${tag}_$1.w$w.json" "$(pid_of "$1")" pair_load "$load" "$1" &
        lp=$!
        PIDS+=("$lp")
        measure "$RES/${tag}_$2.w$w.json" "$(pid_of "$2")" pair_load "$load" "$2"
        wait "$lp" || true
        forget_pid "$lp"
    done
    stop_pid "$PUB_PID"
    stop_variant "$a"
    stop_variant "$b"
    SCEN=$(( SCEN + 1 ))
}

# picklat: the balancer's pick alone, memory against Redis. The bench origin
# is registered without an HTTP endpoint, so GET /live/pick.flv is a pick of
# a pinned stream and an immediate 502 (no origin connection): wrk's
# request latency is the HTTP exchange plus the pick, the same but for the
# balancer on both sides (4 keep-alive connections, one thread).
picklat() {
    local v
    log "pick latency: HTTP requests that stop after the pick, srs (memory) and redis"
    for v in srs redis; do
        start_variant "$v" 2 "$P_NGX_RTMP"
        sleep 0.5
        local port=$P_SRS_HTTP
        [ "$v" = redis ] && port=$P_RS_HTTP
        curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/live/pick.flv" || true
        local c0 c1; c0=$(cpu_ticks "$(pid_of "$v")")
        wrk -t1 -c4 -d"${SESS_SECONDS}s" --latency "http://127.0.0.1:$port/live/pick.flv" >"$RES/picklat_$v.txt" 2>&1 || true
        c1=$(cpu_ticks "$(pid_of "$v")")
        echo "$(( c1 - c0 ))" >"$RES/picklat_$v.cpu"
        stop_variant "$v"
    done
    SCEN=$(( SCEN + 1 ))
}

# pair: the setup paired against the baseline (with BENCH_BASELINE only).
pair() {
    if [ -z "$BASE_BIN" ]; then
        log "paired setup: skipped (it compares against BENCH_BASELINE)"
        return 0
    fi
    paired pair sessions srs base
}

# ---------------------------------------------------------------- SRT relay
# srt_gen SECONDS MBIT PORT...: paced 1316-byte datagrams (a TS sync byte
# and zeros) to each port at MBIT each; prints what it sent as JSON.
srt_gen() {
    python3 - "$@" <<'EOF'
import json, socket, sys, time
secs, mbit, ports = float(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"\x47" + bytes(1315)
per_sec = mbit * 1e6 / 8 / len(payload)
t0, sent = time.monotonic(), 0
while True:
    now = time.monotonic() - t0
    if now >= secs:
        break
    while sent < int(now * per_sec):
        for p in ports:
            s.sendto(payload, ("127.0.0.1", p))
        sent += 1
    time.sleep(0.002)
n = sent * len(ports)
print(json.dumps({"sent_packets": n, "sent_bytes": n * len(payload), "flows": len(ports), "seconds": secs}))
EOF
}

# srt_sum OUT WINDOWS STATS...: the relay's CPU over the windows and the
# origins' last statistics line per flow, summed (what they received, lost
# and dropped), with what the generator sent to this relay's flows.
srt_sum() {
    python3 - "$@" <<'EOF'
import json, os, sys
out, windows, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
v = os.path.basename(out)[len("srt_"):-len(".json")]
res = os.path.dirname(out)
cpu, hz, sent, flows_sent = 0, 100, 0, 0
for w in range(1, windows + 1):
    try:
        c = json.load(open(os.path.join(res, f"srt_{v}.w{w}.json")))
        g = json.load(open(os.path.join(res, f"srt_gen.w{w}.json")))
    except (OSError, ValueError):
        continue
    cpu += c["cpu_ticks"]; hz = c["hz"]
    # The generator fed both relays' flows alike: half of it is this one's.
    sent += g["sent_packets"] // 2; flows_sent = g["flows"] // 2
tot = {"packets": 0, "packetsUnique": 0, "packetsLost": 0, "packetsDropped": 0, "bytesUnique": 0}
flows = 0
for f in files:
    last = None
    for line in open(f):
        line = line.strip().lstrip(",")
        if line.startswith("{"):
            try:
                last = json.loads(line)
            except ValueError:
                pass
    if last:
        flows += 1
        for k in tot:
            tot[k] += last["recv"].get(k, 0)
json.dump({"cpu_ticks": cpu, "hz": hz, "load": {"sent_packets": sent, "flows": flows_sent, "recv": tot,
           "recv_flows": flows}}, open(out, "w"))
EOF
}

# srt_relay_srs ORIGIN_PORT...: srs-proxy with one origin id whose SRT
# endpoint is registered again for each flow before its caller starts, so
# every stream picks that origin at the address of the moment.
srt_relay_srs() {
    env PROXY_RTMP_SERVER="127.0.0.1:$P_SRS_RTMP" PROXY_SYSTEM_API="127.0.0.1:$P_SRS_API" \
        PROXY_HTTP_SERVER="127.0.0.1:$P_SRS_HTTP" PROXY_HTTP_API="127.0.0.1:$P_SRS_HTTPAPI" \
        PROXY_WEBRTC_SERVER="$P_SRS_RTC" PROXY_SRT_SERVER="127.0.0.1:$P_SRS_SRT" PROXY_WORKERS=2 \
        PROXY_ORIGIN_SERVER_TTL=3600s PROXY_STATIC_FILES="$WORK" RUST_LOG=info \
        "$PROXY_BIN" >"$WORK/srs-proxy-srt.log" 2>&1 &
    RELAY=$!
    PIDS+=("$RELAY")
    wait_port "$P_SRS_API"
}

# srt_relay_nginx ORIGIN_PORT...: nginx stream, one UDP server per flow on
# the ports in SRT_LPORTS.
srt_relay_nginx() {
    local servers="" i=0 o
    for o in "$@"; do
        servers+="    server { listen 127.0.0.1:${SRT_LPORTS[$i]} udp reuseport; proxy_pass 127.0.0.1:$o; proxy_timeout 30s; }"$'\n'
        i=$(( i + 1 ))
    done
    nginx_stream nginx-srt 2 "$servers"
    RELAY=$BG_PID
    sleep 0.5
}

# srt_setup V: V's origins, relay and callers (SRT_FLOWS of each); the
# callers' UDP feed ports go in SRT_FEEDS_V, every process in SRT_PROCS_V.
srt_setup() {
    local v="$1" i k to origins feeds procs=()
    read -r -a origins <<<"$(free_ports "$SRT_FLOWS")"
    read -r -a feeds <<<"$(free_ports "$SRT_FLOWS")"
    read -r -a SRT_LPORTS <<<"$(free_ports "$SRT_FLOWS")"
    for i in $(seq 0 $(( SRT_FLOWS - 1 ))); do
        start_bg "srt-origin-$v-$i" srt-live-transmit -q -s:100 -f -pf:json \
            -statsout:"$WORK/srt-stats-$v-$i.json" "srt://127.0.0.1:${origins[$i]}?mode=listener" file://con
        procs+=("$BG_PID")
    done
    "srt_relay_$v" "${origins[@]}"
    eval "SRT_RELAY_$v=\$RELAY"
    for i in $(seq 0 $(( SRT_FLOWS - 1 ))); do
        if [ "$v" = srs ]; then
            curl -sf -m 5 -XPOST "127.0.0.1:$P_SRS_API/api/v1/srs/register" \
                -H 'Content-Type: application/json' \
                -d "{\"device_id\":\"srt\",\"ip\":\"127.0.0.1\",\"server\":\"srt\",\"service\":\"s1\",\"pid\":\"1\",\"rtmp\":[\"1935\"],\"srt\":[\"udp://0.0.0.0:${origins[$i]}\"]}" >/dev/null
            to="srt://127.0.0.1:$P_SRS_SRT?streamid=#!::r=live/srtbench$i,m=publish"
        else
            to="srt://127.0.0.1:${SRT_LPORTS[$i]}"
        fi
        start_bg "srt-caller-$v-$i" srt-live-transmit -q "udp://127.0.0.1:${feeds[$i]}" "$to"
        procs+=("$BG_PID")
        if [ "$v" = srs ]; then
            for k in $(seq 1 100); do
                [ "$(grep -c 'srt session started' "$WORK/srs-proxy-srt.log")" -gt "$i" ] && break
                sleep 0.1
            done
        fi
    done
    eval "SRT_FEEDS_$v=\"\${feeds[*]}\""
    eval "SRT_PROCS_$v=\"\${procs[*]}\""
}

# srt_relay: the SRT scenario. Both relays carry their flows at once, fed
# by one generator, in SRT_WINDOWS windows: whatever else the machine does
# in a window weighs on both alike, and the ratio of their CPU per window
# cancels it (as the paired RTMP runs do).
srt_relay() {
    log "SRT relay: $SRT_FLOWS flows x ${SRT_MBIT} Mbit/s through srs-proxy and as many through nginx stream (UDP), at once, $SRT_WINDOWS windows of ${SRT_SECONDS}s"
    local v w c0s c0n pid
    srt_setup srs
    srt_setup nginx
    sleep 1
    for w in $(seq 1 "$SRT_WINDOWS"); do
        log "  window $w of $SRT_WINDOWS"
        c0s=$(cpu_ticks "$SRT_RELAY_srs"); c0n=$(cpu_ticks "$SRT_RELAY_nginx")
        # shellcheck disable=SC2086
        srt_gen "$SRT_SECONDS" "$SRT_MBIT" $SRT_FEEDS_srs $SRT_FEEDS_nginx >"$RES/srt_gen.w$w.json"
        printf '{"cpu_ticks":%s,"hz":%s}\n' $(( $(cpu_ticks "$SRT_RELAY_srs") - c0s )) "$HZ" >"$RES/srt_srs.w$w.json"
        printf '{"cpu_ticks":%s,"hz":%s}\n' $(( $(cpu_ticks "$SRT_RELAY_nginx") - c0n )) "$HZ" >"$RES/srt_nginx.w$w.json"
    done
    sleep 1
    for v in srs nginx; do
        for pid in $(eval echo "\$SRT_PROCS_$v"); do stop_pid "$pid"; done
        stop_pid "$(eval echo "\$SRT_RELAY_$v")"
        srt_sum "$RES/srt_$v.json" "$SRT_WINDOWS" "$WORK"/srt-stats-"$v"-*.json
    done
    SCEN=$(( SCEN + 1 ))
}

# BENCH_ONLY="fan flv sessions idle scale1 sessions1 srt pair pairsess pairfan udp"
# (the default: all) picks scenarios.
ONLY=" ${BENCH_ONLY:-fan flv sessions idle scale1 sessions1 srt pair pairsess pairfan udp} "
T_START=$(date +%s)
[[ "$ONLY" == *" fan "* ]] && fanout_rtmp fan 2 direct srs haproxy nginx glommio
[[ "$ONLY" == *" flv "* ]] && fanout_flv
[[ "$ONLY" == *" sessions "* ]] && sessions sess 2 direct srs haproxy nginx glommio
[[ "$ONLY" == *" idle "* ]] && idle small "$IDLE_SMALL"
[[ "$ONLY" == *" idle "* ]] && idle big "$IDLE_BIG"
[[ "$ONLY" == *" scale1 "* ]] && fanout_rtmp scale1 1 srs haproxy nginx glommio
[[ "$ONLY" == *" sessions1 "* ]] && sessions sess1 1 srs haproxy nginx glommio
[[ "$ONLY" == *" srt "* ]] && srt_relay
[[ "$ONLY" == *" pair "* ]] && pair
[[ "$ONLY" == *" pairsess "* ]] && paired pshaproxy sessions srs haproxy
[[ "$ONLY" == *" pairsess "* ]] && paired psnginx sessions srs nginx
[[ "$ONLY" == *" pairfan "* ]] && paired pfhaproxy play srs haproxy
[[ "$ONLY" == *" pairfan "* ]] && paired pfnginx play srs nginx
# Not in the default set: the fan-out paired against the baseline, and
# the fan-out and the setup against the copy loop.
[[ "$ONLY" == *" pairfanbase "* ]] && [ -n "$BASE_BIN" ] && paired pfbase play srs base
[[ "$ONLY" == *" pairfancopy "* ]] && paired pfglommio play srs glommio
[[ "$ONLY" == *" pairsesscopy "* ]] && paired psglommio sessions srs glommio
# The runtime alone: the copy loop's setup against the L4 relays.
[[ "$ONLY" == *" pairsessrt "* ]] && paired pcnginx sessions glommio nginx
[[ "$ONLY" == *" pairsessrt "* ]] && paired pchaproxy sessions glommio haproxy
# The Redis balancer against the memory balancer, the same build at once
# (not in the default set): every session of the pinned stream is one
# Redis round trip (EVALSHA) on top of the memory balancer's work.
# (picklat first: right after a setup run, closing connections can still
# hold the proxies' ports for a moment.)
[[ "$ONLY" == *" pairredis "* || "$ONLY" == *" picklat "* ]] && picklat
[[ "$ONLY" == *" pairredis "* ]] && paired psredis sessions redis srs
[[ "$ONLY" == *" udp "* ]] && udp_relay
T_END=$(date +%s)

# ---------------------------------------------------------------- report
cat >"$RES/meta.json" <<EOF
{"clients":$FAN_CLIENTS,"seconds":$FAN_SECONDS,"srt_flows":$SRT_FLOWS,"srt_seconds":$SRT_SECONDS,"srt_windows":$SRT_WINDOWS,"srt_mbit":$SRT_MBIT,"udp_windows":$UDP_WINDOWS,"bitrate":"$BITRATE","rate":$SESS_RATE,
 "sess_seconds":$SESS_SECONDS,"idle_small":$IDLE_SMALL,"idle_big":$IDLE_BIG,"fdlimit":$FDLIM,
 "quick":$QUICK,"wall_seconds":$(( T_END - T_START )),"baseline":"$BASE_BIN","rounds":$ROUNDS,
 "pair_windows":$PAIR_WINDOWS}
EOF

OUT_DIR="$ROOT/target/bench"
# Only this run's results: an earlier run's files left beside them would
# enter a report rebuilt from the raw directory.
rm -rf "$OUT_DIR/raw"
mkdir -p "$OUT_DIR/raw"
cp "$RES"/*.json "$OUT_DIR/raw/"
TABLE="$(python3 - "$RES" <<'EOF'
import json, os, sys
res = sys.argv[1]
meta = json.load(open(os.path.join(res, "meta.json")))

def load(name):
    p = os.path.join(res, name + ".json")
    if not os.path.exists(p):
        return None
    try:
        return json.load(open(p))
    except Exception:
        return None

GIB = 1024 ** 3
cols = ["direct", "srs"] + (["base"] if meta.get("baseline") else []) + ["haproxy", "nginx", "glommio"]
names = {"direct": "direct", "srs": "srs-proxy", "base": "srs-proxy baseline", "redis": "srs-proxy (Redis balancer)", "haproxy": "HAProxy (TCP)",
         "nginx": "nginx stream", "glommio": "glommio copy loop (L4)"}
rows = []
notes = []

def cell_na(r):
    if r is None:
        return "—"
    if "na" in r:
        return "n/a (" + r["na"] + ")"
    if "error" in r:
        return "failed"
    return None

def spread(r):
    # With BENCH_ROUNDS > 1 a cell is the median round; the range follows.
    f = [x for x in r.get("rounds") or [] if x is not None]
    return f" ({min(f):.2f}–{max(f):.2f})" if len(f) > 1 else ""

def cpu_s_per_gib(r):
    # Proxy CPU seconds per GiB the players received (None: nothing received).
    gib = r["load"]["bytes"] / GIB
    return r["cpu_ticks"] / r["hz"] / gib if gib > 0 else None

def cpu_per_gib(r):
    s = cpu_s_per_gib(r)
    return f"{s:.2f}{spread(r)}" if s is not None else "n/a"

def ms_per_session(r):
    # Proxy CPU milliseconds per session that reached first media (None: none did).
    ok = r["load"]["ok"]
    return r["cpu_ticks"] / r["hz"] / ok * 1000 if ok else None

def cpu_per_session(r):
    ms = ms_per_session(r)
    return f"{ms:.2f}{spread(r)}" if ms is not None else "n/a"

def errs(tag, v, r):
    if r and "load" in r and isinstance(r["load"], dict):
        L = r["load"]
        e = L.get("errors", L.get("failed", 0)) or 0
        if e:
            notes.append(f"{tag} {names[v]}: {e} errors, e.g. {L.get('error_samples', [])[:2]}")
    if r and "error" in r:
        notes.append(f"{tag} {names[v]}: loader failed: {r['error'][:200]}")

def fan(tag, short, label, variants=cols):
    d = {v: load(f"{tag}_{v}") for v in variants}
    base = d.get("direct")
    cpu, thr, dly = [], [], []
    for v in cols:
        r = d.get(v)
        na = cell_na(r) if v in variants else "—"
        if v in variants:
            errs(short, v, r)
        if na:
            cpu.append("—" if v == "direct" else na); thr.append(na); dly.append(na); continue
        L = r["load"]
        if not L.get("connected") or L.get("errors", 0) >= L.get("clients", 1):
            cpu.append("failed"); thr.append("failed"); dly.append("failed"); continue
        if v == "direct" or r.get("cpu_ticks") is None:
            cpu.append("—")
        else:
            cpu.append(cpu_per_gib(r))
        thr.append(f"{L['throughput_mbit']:.0f}" + (f" ({L['errors']} players failed)" if L.get("errors") else ""))
        p50, p99 = L["delay_ms"]["p50"], L["delay_ms"]["p99"]
        if not L["delay_ms"]["n"]:
            dly.append("n/a")
        elif v == "direct" or not base or "load" not in base or not base["load"].get("delay_ms", {}).get("n"):
            dly.append(f"{p50:.2f} / {p99:.2f}")
        else:
            b = base["load"]["delay_ms"]
            dly.append(f"{p50 - b['p50']:+.2f} / {p99 - b['p99']:+.2f}")
    rows.append((label, "proxy CPU s per GiB to players", cpu))
    rows.append(("", "throughput to players, Mbit/s", thr))
    rows.append(("", "delay p50 / p99, ms (proxies: added to direct)", dly))

c, s = meta["clients"], meta["seconds"]
fan("fan", "RTMP fan-out", label=f"RTMP fan-out: 1 x {meta['bitrate']}bit/s → {c} players, {s} s (nginx-rtmp origin)")
fan("flv", "HTTP-FLV fan-out", label=f"HTTP-FLV fan-out: 1 x {meta['bitrate']}bit/s → {c} players, {s} s (node-media-server origin)")

d = {v: load(f"sess_{v}") for v in cols}
cpu, lat, st = [], [], []
for v in cols:
    r = d[v]
    errs("sessions", v, r)
    na = cell_na(r)
    if na:
        cpu.append(na); lat.append(na); st.append(na); continue
    L = r["load"]
    ok = L["ok"]
    if v == "direct" or r.get("cpu_ticks") is None:
        cpu.append("—")
    else:
        cpu.append(cpu_per_session(r))
    lat.append(f"{L['play_start_ms']['p50']:.1f} / {L['play_start_ms']['p99']:.1f}")
    st.append(f"{L['setup_ms']['p50']:.0f} / {L['setup_ms']['p99']:.0f} ({ok} ok, {L['failed']} failed)")
label = f"RTMP session setup, {meta['rate']}/s for {meta['sess_seconds']} s"
rows.append((label, "proxy CPU ms per session", cpu))
rows.append(("", "connect → Play.Start p50 / p99, ms", lat))
rows.append(("", "connect → first media p50 / p99, ms", st))

for tag, k in (("small", meta["idle_small"]), ("big", meta["idle_big"])):
    vals = []
    for v in cols:
        if v == "direct":
            vals.append("—"); continue
        r = load(f"idle{tag}_{v}")
        if r is None:
            vals.append("—"); continue
        n = (r.get("ready") or {}).get("open", 0)
        if r.get("load") is None:
            notes.append(f"idle {k} {names[v]}: loader failed")
        elif r["load"].get("failed"):
            notes.append(f"idle {k} {names[v]}: {r['load']['failed']} of {k} did not open, e.g. {r['load'].get('error_samples', [])[:2]}")
        if n <= 0:
            vals.append("failed"); continue
        kib = (r["rss1_kb"] - r["rss0_kb"]) / n
        extra = "" if n == k else f" ({n} open)"
        vals.append(f"{kib:.1f}{extra}")
    rows.append((f"idle scale: {k} idle RTMP play connections", "proxy RSS KiB per connection (over idle baseline)", vals))

# Per-core scaling: each load with one worker beside the two-worker run.
def per_core(what, one_tag, two_tag, metric, cell):
    one = {v: load(f"{one_tag}_{v}") for v in cols[1:]}
    two = {v: load(f"{two_tag}_{v}") for v in cols[1:]}
    for n, d in (("1 worker", one), ("2 workers", two)):
        vals = ["—"]
        for v in cols[1:]:
            r = d[v]
            vals.append(cell_na(r) or cell(r))
        rows.append((f"per-core: {what}, {n}", metric, vals))
    for v in cols[1:]:
        errs(f"per-core {what} (1 worker)", v, one[v])

def fan_cell(r):
    d = r["load"]["delay_ms"]
    return f"{cpu_per_gib(r)}; {d['p50']:.2f} / {d['p99']:.2f}"

per_core("RTMP fan-out", "scale1", "fan", "proxy CPU s per GiB; delay p50 / p99 ms", fan_cell)
per_core("RTMP session setup", "sess1", "sess", "proxy CPU ms per session", cpu_per_session)

# SRT relay: srs-proxy and nginx stream (UDP) only.
srt_line = None
srt = {v: load(f"srt_{v}") for v in ("srs", "nginx")}
if any(srt.values()):
    g, us, loss = [], [], []
    for v in cols:
        if v not in srt:
            g.append("—"); us.append("—"); loss.append("—"); continue
        r = srt[v]
        errs("SRT relay", v, r)
        na = cell_na(r)
        if na or "recv" not in r.get("load", {}):
            g.append(na or "failed"); us.append(na or "failed"); loss.append(na or "failed"); continue
        L, R = r["load"], r["load"]["recv"]
        cpu = r["cpu_ticks"] / r["hz"]
        g.append(f"{cpu / (R['bytesUnique'] / GIB):.2f}" if R["bytesUnique"] else "n/a")
        us.append(f"{cpu / R['packetsUnique'] * 1e6:.2f}" if R["packetsUnique"] else "n/a")
        sent = L["sent_packets"] or 1
        loss.append(f"{100 * R['packetsUnique'] / sent:.2f} / {100 * R['packetsLost'] / sent:.3f} / "
                    f"{100 * R['packetsDropped'] / sent:.3f} ({L.get('recv_flows', 0)} of {L['flows']} flows)")
    label = (f"SRT relay: {meta.get('srt_flows')} flows x {meta.get('srt_mbit')} Mbit/s through each, both at once, "
             f"{meta.get('srt_windows')} x {meta.get('srt_seconds')} s (srt-live-transmit callers and origins)")
    rows.append((label, "proxy CPU s per GiB to origins", g))
    rows.append(("", "proxy CPU µs per data packet", us))
    rows.append(("", "received / lost (recovered) / dropped, % of sent packets", loss))
    ws = []
    for w in range(1, (meta.get("srt_windows") or 0) + 1):
        a, b = load(f"srt_srs.w{w}"), load(f"srt_nginx.w{w}")
        if a and b and b.get("cpu_ticks"):
            ws.append(a["cpu_ticks"] / b["cpu_ticks"])
    if ws and min(ws) > 0:
        import math
        gm = math.exp(sum(math.log(x) for x in ws) / len(ws))
        srt_line = (f"SRT relay, both at once ({len(ws)} windows of {meta.get('srt_seconds')} s, "
                    f"{meta.get('srt_flows')} flows x {meta.get('srt_mbit')} Mbit/s through each, the same packets): "
                    f"srs-proxy's CPU is {gm:.3f}x nginx stream's (geometric mean; windows {min(ws):.3f}–{max(ws):.3f}).")

# Paired runs: per window, A's CPU (per session or per GiB) over B's; the
# geometric mean over the windows, and the range.
def paired_line(tag, a, b, b_name, title, secs, detail, figure, unit):
    runs = [(w, load(f"{tag}_{a}.w{w}"), load(f"{tag}_{b}.w{w}")) for w in range(1, meta.get("pair_windows", 0) + 1)]
    if all(ra is None and rb is None for _, ra, rb in runs):
        return None  # this pairing was not run
    ws = []
    for w, ra, rb in runs:
        for v, r in ((a, ra), (b, rb)):
            errs(f"{title} window {w}", v, r)
            if r is None:
                notes.append(f"{title} window {w} {names[v]}: no result")
        try:
            f = [figure(r) for r in (ra, rb)]
        except (TypeError, KeyError):
            continue  # a window whose loader failed
        if None not in f and f[1] > 0:
            ws.append((f[0] / f[1], f[0], f[1]))
    if not ws:
        return None
    import math, statistics
    ratios = [x[0] for x in ws]
    gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if min(ratios) > 0 else float("nan")
    # The windows counted, not the windows run: one whose loader failed is
    # left out (and reported among the notes).
    what = f"{title} ({len(ws)} windows of {secs} s, {detail})"
    return (f"{what}: {names[a]}'s CPU per {unit} is {gm:.3f}x {b_name}'s (geometric mean; "
            f"windows {min(ratios):.3f}–{max(ratios):.3f}); medians {statistics.median(x[1] for x in ws):.2f} "
            f"and {statistics.median(x[2] for x in ws):.2f} {'ms per session' if unit == 'session' else 's per GiB'}.")

def sess_pair(tag, b, b_name, who="both at once", a="srs"):
    return paired_line(tag, a, b, b_name, "Paired setup", meta["sess_seconds"],
                       f"{meta['rate']} sessions/s to each, {who}", ms_per_session, "session")

def setup_latency(tag, a, b):
    # Session setup latency (connect to first media, as the loader sees it)
    # of both sides of a paired setup run: the median over the windows of
    # each window's p50 and p99; their difference is what the balancer adds.
    import statistics
    got = {}
    for v in (a, b):
        ls = [load(f"{tag}_{v}.w{w}") for w in range(1, meta.get("pair_windows", 0) + 1)]
        ls = [r["load"]["setup_ms"] for r in ls if r and "load" in r and "setup_ms" in r["load"]]
        if not ls:
            return None
        got[v] = (statistics.median(x["p50"] for x in ls), statistics.median(x["p99"] for x in ls))
    return (f"Session setup latency in the same windows (p50 / p99, ms): {names[a]} "
            f"{got[a][0]:.2f} / {got[a][1]:.2f}, {names[b]} {got[b][0]:.2f} / {got[b][1]:.2f}.")

def pick_latency():
    # wrk's latency distribution of requests that end right after the pick.
    import re
    got = {}
    for v in ("redis", "srs"):
        p = os.path.join(res, f"picklat_{v}.txt")
        if not os.path.exists(p):
            return None
        txt = open(p).read()
        unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        pct = {m.group(1): float(m.group(2)) * unit[m.group(3)]
               for m in re.finditer(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$", txt, re.M)}
        rps = re.search(r"Requests/sec:\s+([0-9.]+)", txt)
        cpu = open(os.path.join(res, f"picklat_{v}.cpu")).read().strip()
        if "50" not in pct or "99" not in pct or not rps:
            notes.append(f"pick latency {names[v]}: no wrk result")
            return None
        done = re.search(r"(\d+) requests in", txt)
        n = int(done.group(1)) if done else 0
        got[v] = (pct["50"], pct["99"], float(rps.group(1)),
                  int(cpu) / os.sysconf("SC_CLK_TCK") * 1e6 / n if n else float("nan"))
    r, m = got["redis"], got["srs"]
    return (f"Pick latency (HTTP requests answered right after the pick, 4 connections, {meta['sess_seconds']} s; "
            f"p50 / p99 ms, requests/s, proxy CPU µs per request): Redis balancer {r[0]:.3f} / {r[1]:.3f}, "
            f"{r[2]:.0f}/s, {r[3]:.0f} µs; memory balancer {m[0]:.3f} / {m[1]:.3f}, {m[2]:.0f}/s, {m[3]:.0f} µs; "
            f"the Redis pick adds {r[0] - m[0]:.3f} ms at p50 and {r[1] - m[1]:.3f} ms at p99.")

def fan_pair(tag, b, b_name, who="both at once"):
    return paired_line(tag, "srs", b, b_name, "Paired RTMP fan-out", meta["seconds"],
                       f"{meta['clients'] // 2} players through each, {who}", cpu_s_per_gib, "GiB")

pair_lines = [l for l in (
    sess_pair("pair", "base", "the baseline", "both builds at once"),
    sess_pair("pshaproxy", "haproxy", "HAProxy"),
    sess_pair("psnginx", "nginx", "nginx stream"),
    sess_pair("psglommio", "glommio", "the copy loop"),
    sess_pair("pcnginx", "nginx", "nginx stream", a="glommio"),
    sess_pair("pchaproxy", "haproxy", "HAProxy", a="glommio"),
    fan_pair("pfhaproxy", "haproxy", "HAProxy"),
    fan_pair("pfnginx", "nginx", "nginx stream"),
    fan_pair("pfbase", "base", "the baseline", "both builds at once"),
    fan_pair("pfglommio", "glommio", "the copy loop"),
    sess_pair("psredis", "srs", "the memory balancer", "both at once, one redis-server on loopback", a="redis"),
    setup_latency("psredis", "redis", "srs"),
    pick_latency(),
) if l]

# A scenario this run did not take has only "—" cells: its rows are left
# out, and the table too when no row is left (a paired run alone).
rows = [r for r in rows if any(v != "—" for v in r[2])]
out = []
if rows:
    out = ["| Scenario | Metric | " + " | ".join(names[v] for v in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
for label, metric, vals in rows:
    out.append(f"| {label} | {metric} | " + " | ".join(vals) + " |")
if out:
    print("\n".join(out))
if srt_line:
    pair_lines.append(srt_line)
if pair_lines:
    if out:
        print()
    print("\n\n".join(pair_lines))
# The UDP relay: its own small table (its columns are not the TCP relays').
udp = {v: load(f"udp_{v}") for v in ("direct", "srs", "nginx")}
if any(r is not None for r in udp.values()):
    ucols = [v for v in ("direct", "srs", "nginx") if udp[v] is not None]
    unames = {"direct": "direct", "srs": "srs-proxy", "nginx": "nginx stream (udp)"}
    def uget(v):
        r = udp.get(v)
        return r.get("load") if isinstance(r, dict) else None
    first = next((uget(v) for v in ucols if uget(v)), None)
    cells = {}
    for v in ucols:
        l, r = uget(v), udp[v]
        if not l:
            notes.append(f"UDP relay {unames[v]}: {str(r.get('error', 'no result'))[:200]}")
            cells[v] = ["failed"] * 5
            continue
        pk = l["sent"] + l["received"]
        by = l["bytes_sent"] + l["bytes_received"]
        cpu = r["cpu_ticks"] / r["hz"] if r.get("cpu_ticks") is not None else None
        base = uget("direct")
        added = (f"+{l['rtt']['p50'] - base['rtt']['p50']:.2f}" if base and v != "direct" else "—")
        cells[v] = [
            f"{cpu / pk * 1e6:.2f}" if cpu is not None and pk else "—",
            f"{cpu / (by / GIB):.2f}" if cpu is not None and by else "—",
            f"{l['drops']} ({100.0 * l['drops'] / max(1, l['sent']):.2f}%)",
            f"{l['rtt']['p50']:.2f} / {l['rtt']['p99']:.2f}",
            added,
        ]
    metrics = ["CPU µs per packet (both ways)", "CPU s per GiB (both ways)", "drops", "round trip p50 / p99 ms",
               "added p50 ms (vs direct)"]
    if out or pair_lines:
        print()
    if first:
        nw = meta.get("udp_windows") or 0
        print(f"UDP relay (WebRTC media): {first['sessions']} sessions × {first['pps']:.0f} packets/s × "
              f"{first['size']} B through each relay, echoed by the loader's origin; direct alone for "
              f"{first['seconds']:.0f} s, srs-proxy and nginx stream both at once in {nw} windows of "
              f"{first['seconds']:.0f} s (their sums; round trip: the median window's)")
        print()
        # Per window: srs-proxy's CPU per packet over nginx stream's.
        ws = []
        for w in range(1, nw + 1):
            a, b = load(f"udp_srs.w{w}"), load(f"udp_nginx.w{w}")
            try:
                pa = a["load"]["sent"] + a["load"]["received"]
                pb = b["load"]["sent"] + b["load"]["received"]
                if pa and pb and b["cpu_ticks"] and a["cpu_ticks"]:
                    ws.append((a["cpu_ticks"] / pa) / (b["cpu_ticks"] / pb))
            except (TypeError, KeyError):
                notes.append(f"UDP relay window {w}: a loader failed")
        if ws:
            import math
            gm = math.exp(sum(math.log(x) for x in ws) / len(ws))
            print(f"UDP relay, both at once ({len(ws)} windows of {first['seconds']:.0f} s): srs-proxy's CPU per packet "
                  f"is {gm:.3f}x nginx stream's (geometric mean; windows {min(ws):.3f}–{max(ws):.3f}; "
                  f"per window: {', '.join(f'{x:.3f}' for x in ws)}).")
            print()
    print("| Metric | " + " | ".join(unames[v] for v in ucols) + " |")
    print("|---|" + "---|" * len(ucols))
    for i, m in enumerate(metrics):
        print(f"| {m} | " + " | ".join(cells[v][i] for v in ucols) + " |")
np = os.path.join(res, "notes.txt")
if os.path.exists(np):
    notes.extend(l.strip() for l in open(np) if l.strip())
if notes:
    print()
    for n in notes:
        print(f"- {n}")
EOF
)"

{
    echo "# srs-proxy benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`${BENCH_ONLY:+BENCH_ONLY=\"$BENCH_ONLY\" }${BASE_BIN:+BENCH_BASELINE=$BASE_BIN }$([ "$ROUNDS" = 1 ] || echo "BENCH_ROUNDS=$ROUNDS ")bash scripts/bench.sh$([ "$QUICK" = 1 ] && echo ' --quick')\`"
    echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- peers: $(nginx -v 2>&1 | sed 's/.*: //') (rtmp, stream), HAProxy $(haproxy -v | head -1 | awk '{print $3}'), node-media-server $(node -p "require('$ROOT/tests/peers/node_modules/node-media-server/package.json').version" 2>/dev/null || echo '?'), fd limit $FDLIM"
    echo "- wall time: $(( T_END - T_START )) s"
    [ -z "$BASE_BIN" ] || echo "- srs-proxy baseline: \`BENCH_BASELINE=$BASE_BIN\` ($("$BASE_BIN" --version 2>/dev/null || echo '?'))"
    echo
    echo "$TABLE"
} >"$OUT_DIR/results.md"

echo
echo "$TABLE"
echo
echo "written to target/bench/results.md (raw JSON in target/bench/raw/)"
