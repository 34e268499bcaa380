#!/bin/bash
# Long-history measurements of issue 16 item 5 (BENCHMARKS.md "Long history
# with snapshots"): for each history size, a log written offline by `chorus
# log generate` (100-byte payloads, 1,000 rooms), then one node (no peers)
# started on it:
#   a) first start, no snapshot (full replay); the leader's no-op is the
#      first delivery, which saves a snapshot (delivered >= snapshot_every);
#   b) restart from that snapshot (+ the log after it);
# each with the default dedup window (10,000,000 ids) and with
# dedup_window_ids = 1000000 (b) starts from the snapshot its own window saved),
# and c) window 1M with retain_entries = RETAIN (a first start that deletes
# the segments behind its snapshot, then a restart). Printed per start: spawn -> "listening on"
# (the node's own UTC timestamps against the spawn time), VmHWM and VmRSS
# (3 s after listening), the snapshot line, and the log_dir's bytes.
# Then InstallSnapshot: a 3-node cluster where n1 and n2 hold copies of the
# INSTALL_N log with retain_entries set (segments deleted behind the
# snapshot), and n3 starts empty: time from n3's spawn to its STATUS
# snapshot_installs >= 1 and log_commit = the leader's.
# Then, if BASE_CHORUS is set, the 64x16 throughput run alternating the two
# binaries (3 rounds each).
#
# usage: scripts/history_bench.sh [SIZE...]          (default: 1000000 10000000 50000000)
# env:   CHORUS (binary, default target/release/chorus), BASE_CHORUS (optional),
#        WORK (scratch dir, default /tmp/history_bench.$$, deleted at the end),
#        PORT (base port, default 28000; uses PORT+1..PORT+3 and PORT+101..PORT+103),
#        INSTALL_N (default 10000000; 0 skips), RETAIN (default 100000),
#        ROUNDS (default 3), TIMEOUT (seconds per wait, default 600).
# Needs disk for the largest log (~182 B per entry) plus 2 copies of INSTALL_N.
set -u
CHORUS=$(realpath "${CHORUS:-target/release/chorus}")
WORK=${WORK:-/tmp/history_bench.$$}
PORT=${PORT:-28000}
INSTALL_N=${INSTALL_N:-10000000}
RETAIN=${RETAIN:-100000}
ROUNDS=${ROUNDS:-3}
TIMEOUT=${TIMEOUT:-600}
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(1000000 10000000 50000000)
mkdir -p "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
# UTC timestamp of a node log line (2026-12-05T18:32:29.670412Z ...) in ns.
line_ns() { date -d "$(cut -d' ' -f1 <<<"$1")" +%s%N; }

# wait_line FILE REGEX: the first matching line, or fails after TIMEOUT s.
wait_line() {
    local end=$((SECONDS + TIMEOUT)) l
    while [ $SECONDS -lt $end ]; do
        l=$(grep -m1 -E "$2" "$1" 2>/dev/null) && { echo "$l"; return 0; }
        sleep 0.05
    done
    echo "TIMEOUT waiting for /$2/ in $1" >&2
    return 1
}

# config FILE ID DIR EXTRA: a node config (peers and extra keys in EXTRA).
config() {
    cat >"$1" <<EOF
node_id = $2
host = "127.0.0.1"
port = $((PORT + $2))
http_port = $((PORT + 100 + $2))
log_dir = "$3"
cluster_secret = "history-bench"
$4
EOF
}

# start_node LABEL CONFIG [REGEX]: spawns, waits for "listening on" (and
# then REGEX, e.g. the snapshot it saves), prints the figures 3 s later.
start_node() {
    local label=$1 cfg=$2 log="$WORK/$1.log" t0 l ms
    t0=$(now_ns)
    "$CHORUS" node --config "$cfg" >"$log" 2>&1 &
    NODE=$!
    PIDS+=("$NODE")
    l=$(wait_line "$log" "listening on") || { tail -5 "$log"; return 1; }
    ms=$((($(line_ns "$l") - t0) / 1000000))
    [ -n "${3:-}" ] && { wait_line "$log" "$3" >/dev/null || return 1; }
    sleep 3
    echo "$label: to_listening_ms=$ms $(grep -E 'VmHWM|VmRSS' /proc/$NODE/status | tr -s ' \t' ' ' | tr '\n' ' ')"
    grep -E "recovered|from the snapshot|saved a snapshot|retention|ERROR|WARN .*snapshot" "$log" |
        while read -r l; do echo "  $label: +$((($(line_ns "$l") - t0) / 1000000)) ms ${l:28}"; done
}

stop_node() { kill -9 "$NODE" 2>/dev/null; wait "$NODE" 2>/dev/null; }

disk() {
    local d=$1
    echo "  disk: log $(cat "$d"/chorus.log* 2>/dev/null | wc -c) (idx $(cat "$d"/*.idx 2>/dev/null | wc -c)) snapshot $(cat "$d"/snapshot.* 2>/dev/null | wc -c) bytes"
}

W1M="dedup_window_ids = 1000000"
for N in "${SIZES[@]}"; do
    G="$WORK/g$N"
    echo "=== $N entries ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$CHORUS" log generate "$G" --entries "$N" || exit 1
    disk "$G"
    config "$WORK/w1m.toml" 1 "$G" "$W1M"
    config "$WORK/def.toml" 1 "$G" ""
    # a) full replay, window 1M; its snapshot is kept aside (for the b) start
    # with that window) so the next start replays too.
    start_node "a-full-replay-window1M-$N" "$WORK/w1m.toml" "saved a snapshot"
    stop_node
    mkdir -p "$WORK/aside" && mv "$G"/snapshot.* "$WORK/aside/"
    # a) full replay, defaults; it leaves the snapshot that b) starts from.
    start_node "a-full-replay-default-$N" "$WORK/def.toml" "saved a snapshot"
    stop_node
    disk "$G"
    start_node "b-from-snapshot-default-$N" "$WORK/def.toml"
    stop_node
    # b) with the window-1M snapshot (older: the log after it is replayed too).
    rm -f "$G"/snapshot.* && mv "$WORK/aside"/snapshot.* "$G/"
    start_node "b-from-snapshot-window1M-$N" "$WORK/w1m.toml"
    stop_node
    disk "$G"
    # c) window 1M and retention: the first start deletes the segments behind
    # its snapshot (RSS read 3 s after that), then a restart from it.
    config "$WORK/ret.toml" 1 "$G" "$W1M
retain_entries = $RETAIN"
    rm -f "$G"/snapshot.*
    start_node "a-full-replay-window1M-retain-$N" "$WORK/ret.toml" "retention: deleted"
    stop_node
    start_node "b-from-snapshot-window1M-retain-$N" "$WORK/ret.toml"
    stop_node
    disk "$G"
    rm -rf "$G"
done

if [ "$INSTALL_N" != 0 ]; then
    echo "=== InstallSnapshot: follower $INSTALL_N behind, retain_entries = $RETAIN ($(date -u +%T))"
    G="$WORK/g$INSTALL_N"
    [ -d "$G" ] || "$CHORUS" log generate "$G" --entries "$INSTALL_N" || exit 1
    rm -f "$G"/snapshot.*
    mkdir -p "$WORK/n2" "$WORK/n3"
    cp "$G"/chorus.log* "$WORK/n2/"
    PEERS="seed_nodes = [
  { node_id = 1, host = \"127.0.0.1\", port = $((PORT + 1)) },
  { node_id = 2, host = \"127.0.0.1\", port = $((PORT + 2)) },
  { node_id = 3, host = \"127.0.0.1\", port = $((PORT + 3)) },
]
retain_entries = $RETAIN"
    config "$WORK/i1.toml" 1 "$G" "$PEERS"
    config "$WORK/i2.toml" 2 "$WORK/n2" "$PEERS"
    config "$WORK/i3.toml" 3 "$WORK/n3" "$PEERS"
    start_node install-n1 "$WORK/i1.toml"; N1=$NODE
    start_node install-n2 "$WORK/i2.toml"; N2=$NODE
    wait_line "$WORK/install-n1.log" "retention: deleted" | cut -c28- | sed 's/^/  n1: /'
    wait_line "$WORK/install-n2.log" "retention: deleted" | cut -c28- | sed 's/^/  n2: /'
    disk "$G"
    for p in $N1 $N2; do
        grep -E "VmHWM|VmRSS" /proc/$p/status | tr -s ' \t' ' ' | tr '\n' ' ' | sed "s/^/  pid $p before n3: /"; echo
    done
    t0=$(now_ns)
    "$CHORUS" node --config "$WORK/i3.toml" >"$WORK/install-n3.log" 2>&1 &
    N3=$!
    PIDS+=("$N3")
    # Polls n3's STATUS and n1's log_commit every 50 ms until installed and caught up.
    python3 - "$((PORT + 3))" "$((PORT + 1))" "$TIMEOUT" "$t0" <<'EOF'
import json, socket, sys, time
p3, p1, limit, t0 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
def status(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b'{"type":"HELLO","proto":2,"client":"history_bench"}\n{"type":"STATUS"}\n')
            f = s.makefile()
            while True:
                m = json.loads(f.readline())
                if m.get("type") == "STATUS":
                    return m
    except (OSError, ValueError):
        return None
first_install = None
end = time.time() + limit
while time.time() < end:
    s3, s1 = status(p3), status(p1)
    if s3 and s3.get("snapshot_installs", 0) >= 1 and first_install is None:
        first_install = time.time_ns()
        print(f"  n3: snapshot_installs >= 1 at {(first_install - t0) / 1e6:.0f} ms after spawn")
    if first_install and s1 and s3 and s3.get("log_commit", 0) >= s1.get("log_commit", 1):
        print(f"  n3: caught up (log_commit {s3['log_commit']} = leader's {s1['log_commit']}) at {(time.time_ns() - t0) / 1e6:.0f} ms after spawn")
        print("  n3 STATUS:", json.dumps(s3))
        sys.exit(0)
    time.sleep(0.05)
print("  n3: TIMEOUT", s3)
sys.exit(1)
EOF
    grep -E "install|snapshot|leader|term|ERROR|WARN" "$WORK/install-n3.log" | cut -c28- | sed 's/^/  n3 log: /'
    for n in 1 2 3; do
        p=$N1; [ $n = 2 ] && p=$N2; [ $n = 3 ] && p=$N3
        grep -E "VmHWM|VmRSS" /proc/$p/status | tr -s ' \t' ' ' | tr '\n' ' ' | sed "s/^/  n$n after the install: /"; echo
    done
    disk "$WORK/n3"
    for p in $N1 $N2 $N3; do kill -9 "$p"; wait "$p" 2>/dev/null; done
    rm -rf "$G" "$WORK/n2" "$WORK/n3"
fi

if [ -n "${BASE_CHORUS:-}" ]; then
    BASE=$(realpath "$BASE_CHORUS")
    echo "=== 64x16, --messages 200000 --no-subscribe, base = $BASE ($(date -u +%T))"
    for r in $(seq "$ROUNDS"); do
        for b in "$BASE" "$CHORUS"; do
            name=main; [ "$b" = "$BASE" ] && name=base
            echo "--- round $r $name (load $(cut -d' ' -f1-3 /proc/loadavg))"
            timeout 300 "$b" bench --clients 64 --window 16 --messages 200000 --no-subscribe 2>&1 |
                grep -E "committed|send→|^n[123] "
        done
    done
fi
echo "=== done $(date -u +%T)"
