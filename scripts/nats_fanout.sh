#!/bin/bash
# nats_fanout.sh [ARGS...]: the NATS core fan-out figure next to `chorus bench
# --subscribers`, measured the same way (scripts/nats_fanout/main.go, the
# official Go client built offline from Debian's golang-go and
# golang-github-nats-io-go-nats-dev). Starts a 3-server NATS core cluster
# (Debian's nats-server, no JetStream) on 127.0.0.1:2510N (clients) /
# 2520N (routes), runs the program against it, and stops the servers by
# their PIDs. ARGS go to the program: -subs N -msgs M -rate R -size B.
# Example: scripts/nats_fanout.sh -subs 10000 -msgs 500 -rate 50
set -eu
here=$(cd "$(dirname "$0")" && pwd)
W=${NATS_FANOUT_WORK:-${TMPDIR:-/tmp}/chorus-nats-fanout}
mkdir -p "$W/gopath/src/natsfanout"
for tool in nats-server go; do
  command -v $tool >/dev/null || { echo "needs $tool: apt-get install -y nats-server golang-go golang-github-nats-io-go-nats-dev" >&2; exit 2; }
done
[ -d /usr/share/gocode/src/github.com/nats-io/nats.go ] || { echo "needs golang-github-nats-io-go-nats-dev" >&2; exit 2; }
cp "$here/nats_fanout/main.go" "$W/gopath/src/natsfanout/main.go"
(cd "$W/gopath/src/natsfanout" && GOPATH="$W/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS=-mod=mod go build -o "$W/natsfanout" .)
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
ulimit -n "$(ulimit -Hn)"
for n in 1 2 3; do
  cat > "$W/n$n.conf" <<CONF
server_name: fan$n
listen: 127.0.0.1:2510$n
max_payload: 1MB
cluster {
  name: FAN
  listen: 127.0.0.1:2520$n
  routes: [ nats-route://127.0.0.1:25201, nats-route://127.0.0.1:25202, nats-route://127.0.0.1:25203 ]
}
CONF
  nats-server -c "$W/n$n.conf" > "$W/n$n.log" 2>&1 &
  pids+=($!)
done
sleep 2
"$W/natsfanout" -pids "$(IFS=,; echo "${pids[*]}")" "$@"
