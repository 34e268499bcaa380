#!/bin/bash
# The long swarm soak: SEEDS swarm seeds (default 1,000,000) from START,
# in chunks, on JOBS worker threads; prints each chunk's verdict as it goes,
# every failure's one-line reproduction, and a summary (seeds, violations,
# wall time, node steps per second, summed coverage counters).
# usage: scripts/sim_soak.sh [SEEDS] [START] [JOBS]
# env:   CHORUS=path to the chorus binary (default: builds target/release/chorus)
#        CHUNK=seeds per chunk (default 50000)
# Exit status 0 only with zero violations.
set -u
cd "$(dirname "$0")/.."
SEEDS=${1:-1000000}; START=${2:-0}; JOBS=${3:-2}; CHUNK=${CHUNK:-50000}
if [ -z "${CHORUS:-}" ]; then
  cargo build --release -q -p chorus-cli || exit 2
  CHORUS=target/release/chorus
fi
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
t0=$(date +%s.%N); s=$START; left=$SEEDS; k=0
while [ "$left" -gt 0 ]; do
  n=$(( left < CHUNK ? left : CHUNK ))
  # A chunk's own exit status also counts coverage gaps; only violations
  # (FAIL lines) and a crash of the command fail the soak.
  "$CHORUS" sim explore --start "$s" --seeds "$n" --jobs "$JOBS" >"$OUT/$k.txt" 2>&1
  rc=$?
  fails=$(grep -c '^FAIL' "$OUT/$k.txt")
  if ! grep -q '^runs:' "$OUT/$k.txt"; then
    echo "chunk $s+$n: chorus sim explore exited $rc without a summary"; tail -5 "$OUT/$k.txt"; exit 2
  fi
  printf 'seeds %d..%d: %s, %d failed\n' "$s" "$((s + n - 1))" "$(grep '^node steps' "$OUT/$k.txt" | cut -d= -f2)" "$fails"
  grep -A2 '^FAIL' "$OUT/$k.txt"
  s=$((s + n)); left=$((left - n)); k=$((k + 1))
done
t1=$(date +%s.%N)
cat "$OUT"/*.txt | awk -v t0="$t0" -v t1="$t1" -v seeds="$SEEDS" -v start="$START" '
  /^FAIL/ { fails++ }
  /^node steps:/ { steps += $3 }
  /^coverage:/ { cov = 1; next }
  cov && /^  [a-z_]+ +[0-9]+$/ { c[$1] += $2; if (!($1 in order)) { order[$1] = ++no; names[no] = $1 }; next }
  { cov = 0 }
  END {
    wall = t1 - t0
    printf "\nsoak: %d seeds from %d, %d violations, %.0f s wall, %.0f node steps = %.0f steps/s\n", seeds, start, fails, wall, steps, steps / wall
    print "coverage (summed):"
    for (i = 1; i <= no; i++) printf "  %-32s %.0f\n", names[i], c[names[i]]
    exit fails > 0
  }'
