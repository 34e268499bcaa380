#!/bin/bash
# One side-by-side measurement round (BENCHMARKS.md "Verdict"): disk probe,
# etcd and NATS through the shared peers' quick.sh, chorus with the peers'
# Python client (16 clients over all nodes, 16 and 1 at the leader), then
# `chorus bench` (64x16 closed loop, 1 client, 10k msgs/s open loop).
# usage: scripts/bench_round.sh CHORUS_BINARY OUT_DIR ROUND_NUMBER
# env:   PEERS=path to shared/peers (default ../shared/peers); ports 17101-17103 must be free.
set -u
BIN=$(realpath "$1"); OUT=$2; R=$3; P=$(realpath "${PEERS:-../shared/peers}")
mkdir -p "$OUT"; exec >>"$OUT/round$R.txt" 2>&1
echo "### round $R $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$P" && timeout 20 python3 fsync_bench.py fdatasync 1000000 2 | tail -1)
echo "--- etcd"; (cd "$P" && timeout 60 ./quick.sh etcd 2>/dev/null)
echo "--- nats"; (cd "$P" && timeout 60 ./quick.sh nats 2>/dev/null)
echo "--- chorus python"
D=$(mktemp -d)
"$BIN" up --no-client --data-dir "$D" --base-port 17101 >"$D/up.log" 2>&1 & UP=$!
sleep 3
python3 "$P/chorus_bench.py" --ports 17101,17102,17103 --clients 16 --total 1000000 --seconds 8 | sed 's/^/all /'
python3 "$P/chorus_bench.py" --ports 17103 --clients 16 --total 1000000 --seconds 8 | sed 's/^/leader /'
python3 "$P/chorus_bench.py" --ports 17103 --clients 1 --total 1000000 --seconds 6 | sed 's/^/leader /'
kill -TERM $UP; wait $UP 2>/dev/null; rm -rf "$D"
echo "--- chorus bench"
"$BIN" bench --clients 64 --window 16 --messages 300000 2>&1 | grep -E "committed|send→|^n[123] "
"$BIN" bench --clients 1 --target leader --messages 10000 2>&1 | grep -E "committed|send→"
"$BIN" bench --clients 16 --rate 10000 --messages 100000 2>&1 | grep -E "committed|send→"
echo "### end $(date +%T)"
