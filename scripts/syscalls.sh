#!/usr/bin/env bash
# System calls srs-proxy makes per RTMP play session, counted by `strace -c`
# while srs-load opens sessions at a steady rate through it (the bench's
# session-setup load: handshake, connect, createStream, play, first media,
# close) against an nginx-rtmp origin.
#
#   bash scripts/syscalls.sh                      # target/release/srs-proxy
#   bash scripts/syscalls.sh /path/to/srs-proxy   # another build
#   RATE=50 SECONDS_=8 WORKERS=2 bash scripts/syscalls.sh
#
# Prints one line per system call seen: calls in the window, and per session.
# strace slows what it traces, so use the counts, not the time column.
#
#   COUNT_LIBC=1 bash scripts/syscalls.sh         # libc calls instead
#
# counts calls of malloc, realloc, free and clock_gettime (the clock reads
# of Instant::now) with perf's uprobes on the proxy's libc (needs perf and
# root), in the same window, instead of system calls.
#
#   SPLIT=1 bash scripts/syscalls.sh              # where the CPU goes
#
# samples the relay with `perf record -e cpu-clock` in the same window and
# prints CPU ms per session in the kernel and in each user-space object,
# then the hottest user-space symbols. perf's own cost inflates every
# figure alike: compare relays, not absolute values.
#
#   PROXY=nginx bash scripts/syscalls.sh          # nginx's stream module,
#   PROXY=copy  bash scripts/syscalls.sh          # or the bare glommio copy
#                                                 # loop, in the proxy's place
#
# The L4 relays pass the same sessions to the same origin, so their counts
# and profiles stand beside srs-proxy's (any mode but COUNT_LIBC).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/target/release/srs-proxy}"
RATE="${RATE:-50}"
WINDOW="${SECONDS_:-8}"
WORKERS="${WORKERS:-2}"
LOAD="$ROOT/target/release/srs-load"
COUNT_LIBC="${COUNT_LIBC:-0}"
SPLIT="${SPLIT:-0}"
PROXY="${PROXY:-srs}"
case "$PROXY" in srs|nginx|copy) ;; *) echo "syscalls.sh: PROXY=$PROXY: srs, nginx or copy" >&2; exit 2 ;; esac
LIBC_FUNCS="malloc realloc free clock_gettime"
if [ "$COUNT_LIBC" = 1 ] || [ "$SPLIT" = 1 ]; then
    command -v perf >/dev/null || { echo "syscalls.sh: perf is needed (apt-get install linux-perf)" >&2; exit 2; }
else
    command -v strace >/dev/null || { echo "syscalls.sh: strace is needed (apt-get install strace)" >&2; exit 2; }
fi
if [ $# -eq 0 ]; then
    (cd "$ROOT" && cargo build --release -q -p srs-proxy -p srs-bench)
else
    (cd "$ROOT" && cargo build --release -q -p srs-bench)
fi
[ -x "$BIN" ] || { echo "syscalls.sh: $BIN is not an executable" >&2; exit 2; }

WORK="$(mktemp -d /tmp/srs-syscalls.XXXXXX)"
PIDS=()
ADDED_PROBES=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    # Only the uprobes this run added; ones that were there stay.
    for p in "${ADDED_PROBES[@]:-}"; do [ -n "$p" ] && perf probe -q -d "probe_libc:$p" 2>/dev/null || true; done
    sleep 0.3
    rm -rf "$WORK"
}
trap cleanup EXIT

read -r P_ORIGIN P_RTMP P_API P_HTTP P_HTTPAPI <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(5)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"

wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "syscalls.sh: nothing listens on $1" >&2; exit 1
}

mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid $WORK/nginx.pid; error_log $WORK/logs/error.log warn;
events { worker_connections 4096; }
rtmp { server { listen 127.0.0.1:$P_ORIGIN; chunk_size 4096; application live { live on; record off; } } }
EOF
nginx -p "$WORK" -e "$WORK/logs/error.log" -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_port "$P_ORIGIN"

case "$PROXY" in
srs)
    env PROXY_RTMP_SERVER="127.0.0.1:$P_RTMP" PROXY_SYSTEM_API="127.0.0.1:$P_API" \
        PROXY_HTTP_SERVER="127.0.0.1:$P_HTTP" PROXY_HTTP_API="127.0.0.1:$P_HTTPAPI" \
        PROXY_WORKERS="$WORKERS" PROXY_ORIGIN_SERVER_TTL=3600s RUST_LOG=warn "$BIN" >"$WORK/proxy.log" 2>&1 &
    PX=$!
    PIDS+=("$PX")
    wait_port "$P_RTMP"
    wait_port "$P_API"
    curl -sf -m 5 -XPOST "127.0.0.1:$P_API/api/v1/srs/register" -H 'Content-Type: application/json' \
        -d "{\"device_id\":\"o\",\"ip\":\"127.0.0.1\",\"server\":\"o1\",\"service\":\"s1\",\"pid\":\"1\",\"rtmp\":[\"$P_ORIGIN\"]}" >/dev/null
    SHOWN="$BIN" ;;
nginx)
    mkdir -p "$WORK/stream/logs"
    cat >"$WORK/stream/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process on; worker_processes $WORKERS;
pid $WORK/stream/nginx.pid; error_log $WORK/stream/logs/error.log warn;
events { worker_connections 4096; }
stream { server { listen 127.0.0.1:$P_RTMP reuseport; proxy_pass 127.0.0.1:$P_ORIGIN; } }
EOF
    nginx -p "$WORK/stream" -e "$WORK/stream/logs/error.log" -c "$WORK/stream/nginx.conf" &
    PX=$!
    PIDS+=("$PX")
    wait_port "$P_RTMP"
    SHOWN="nginx stream, $WORKERS workers" ;;
copy)
    "$LOAD" copy --listen "127.0.0.1:$P_RTMP" --to "127.0.0.1:$P_ORIGIN" --threads "$WORKERS" --pin >/dev/null 2>&1 &
    PX=$!
    PIDS+=("$PX")
    wait_port "$P_RTMP"
    SHOWN="glommio copy loop, $WORKERS executors" ;;
esac
# Every process of the relay under test (nginx: its master and workers).
sleep 0.5
PXS="$(echo "$PX" $(pgrep -P "$PX" || true) | tr ' ' ',')"

"$LOAD" publish --url "rtmp://127.0.0.1:$P_ORIGIN/live/sess" --bitrate 8000k --fps 30 --gop 0.25 \
    --seconds 3600 >/dev/null 2>&1 &
PIDS+=($!)
sleep 2

# The load runs two seconds longer than the window on each side.
"$LOAD" sessions --url "rtmp://127.0.0.1:$P_RTMP/live/sess" --rate "$RATE" --seconds $(( WINDOW + 4 )) \
    >"$WORK/sessions.json" 2>/dev/null &
LP=$!
PIDS+=("$LP")
sleep 2
if [ "$SPLIT" = 1 ]; then
    perf record -q -e cpu-clock -F 4000 -p "$PXS" -o "$WORK/perf.data" -- sleep "$WINDOW" >/dev/null 2>&1 || true
    HOW="perf record -e cpu-clock -F 4000"
elif [ "$COUNT_LIBC" = 1 ]; then
    [ "$PROXY" = srs ] || { echo "syscalls.sh: COUNT_LIBC=1 counts srs-proxy only" >&2; exit 2; }
    LIBC="$(ldd "$BIN" | awk '/libc\.so\.6/ {print $3}')"
    EVENTS=()
    for f in $LIBC_FUNCS; do
        if ! perf probe -l 2>/dev/null | grep -q "probe_libc:$f "; then
            perf probe -q -x "$LIBC" "$f" >/dev/null
            ADDED_PROBES+=("$f")
        fi
        EVENTS+=(-e "probe_libc:$f")
    done
    perf stat -x, "${EVENTS[@]}" -p "$PX" -o "$WORK/perf.txt" -- sleep "$WINDOW" >/dev/null 2>&1 || true
    # The same layout as strace -c's table: calls in the fourth column.
    awk -F, '$1 ~ /^[0-9]+$/ {split($3, e, ":"); print "0 0 0", $1, e[2]}' "$WORK/perf.txt" >"$WORK/strace.txt"
    HOW="perf uprobes on $LIBC"
else
    ARGS=()
    for p in ${PXS//,/ }; do ARGS+=(-p "$p"); done
    timeout "$WINDOW" strace -c -f "${ARGS[@]}" -o "$WORK/strace.txt" >/dev/null 2>&1 || true
    HOW="strace -c"
fi
wait "$LP" || true

if [ "$SPLIT" = 1 ]; then
    perf report -i "$WORK/perf.data" --no-children --sort dso,sym -g none -q -F overhead,sample,dso,sym \
        2>/dev/null >"$WORK/report.txt" || true
    python3 - "$WORK/report.txt" "$RATE" "$WINDOW" "$SHOWN" "$HOW" <<'EOF'
import sys
from collections import defaultdict
path, rate, window, shown, how = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
sessions = rate * window
MS = 1000.0 / 4000  # one sample: 0.25 ms of CPU
by_dso, syms, total = defaultdict(int), [], 0
for line in open(path):
    p = line.split(None, 3)
    if len(p) < 4 or not p[0].endswith("%"):
        continue
    n, dso, sym = int(p[1]), p[2], p[3].strip()
    total += n
    kernel = sym.startswith("[k]")
    by_dso["kernel" if kernel else dso] += n
    if not kernel:
        syms.append((n, dso, sym[4:] if sym.startswith("[.]") else sym))
print(f"# {shown}: {rate:.0f} sessions/s, {window:.0f} s under {how} (about {sessions:.0f} sessions)")
print(f"{'where':<28} {'ms/session':>10} {'share':>7}")
user = total - by_dso.get("kernel", 0)
for dso, n in sorted(by_dso.items(), key=lambda kv: -kv[1]):
    print(f"{dso:<28} {n * MS / sessions:>10.3f} {100 * n / max(total, 1):>6.1f}%")
print(f"{'all user space':<28} {user * MS / sessions:>10.3f} {100 * user / max(total, 1):>6.1f}%")
print(f"{'total':<28} {total * MS / sessions:>10.3f}")
print("# hottest user-space symbols, % of all samples")
for n, dso, sym in sorted(syms, key=lambda r: -r[0])[:12]:
    print(f"{100 * n / max(total, 1):>6.2f}%  {dso:<16} {sym[:90]}")
EOF
    exit 0
fi

python3 - "$WORK/strace.txt" "$RATE" "$WINDOW" "$SHOWN" "$HOW" <<'EOF'
import sys
path, rate, window, binary, how = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
sessions = rate * window
rows = []
for line in open(path):
    p = line.split()
    if len(p) >= 5 and p[0][0].isdigit() and p[-1] not in ("total", "syscall"):
        calls = int(p[3])
        rows.append((p[-1], calls))
print(f"# {binary}: {rate:.0f} sessions/s, {window:.0f} s under {how} (about {sessions:.0f} sessions)")
print(f"{'call':<16} {'calls':>8} {'per session':>12}")
for name, calls in sorted(rows, key=lambda r: -r[1]):
    print(f"{name:<16} {calls:>8} {calls / sessions:>12.1f}")
EOF
