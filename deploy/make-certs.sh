#!/usr/bin/env bash
# Makes the cluster CA and the node certificates the shipped deployments
# mount (chorus certs; ECDSA P-256, TLS on every link):
#   deploy/make-certs.sh compose [DIR]   # DIR defaults to deploy/certs: the
#                                        # names chat_node1..3 (compose.yaml)
#   deploy/make-certs.sh k8s [DIR]       # DIR defaults to deploy/certs-k8s: the
#                                        # names chorus-N.chorus-peers and chorus
# CHORUS=path/to/chorus picks the binary (default target/release/chorus, then
# `chorus` on PATH); NAMESPACE (k8s, default "default") adds the
# cluster-local names. Existing files are kept (chorus certs never
# overwrites), so running it again is harmless. DIR/ca.key can mint node
# certificates: keep it out of the deployment (neither file below mounts it).
set -euo pipefail
kind=${1:?usage: deploy/make-certs.sh compose|k8s [DIR]}
chorus=${CHORUS:-target/release/chorus}
[ -x "$chorus" ] || chorus=$(command -v chorus) || {
  echo "error: no chorus binary; run: cargo build --release -p chorus-cli" >&2
  exit 2
}
case "$kind" in
  compose) dir=${2:-deploy/certs} ;;
  k8s) dir=${2:-deploy/certs-k8s}; ns=${NAMESPACE:-default} ;;
  *) echo "error: compose or k8s, not $kind" >&2; exit 2 ;;
esac
[ -f "$dir/ca.pem" ] || "$chorus" certs init "$dir"
for n in 1 2 3; do
  [ -f "$dir/node$n.pem" ] && continue
  if [ "$kind" = compose ]; then
    "$chorus" certs node "$n" --dir "$dir" --host "chat_node$n"
  else
    pod="chorus-$((n - 1)).chorus-peers"
    "$chorus" certs node "$n" --dir "$dir" --host "$pod" --host "$pod.$ns.svc" \
      --host "$pod.$ns.svc.cluster.local" --host chorus --host "chorus.$ns.svc" \
      --host "chorus.$ns.svc.cluster.local"
  fi
done
if [ "$kind" = k8s ]; then
  echo "now: kubectl create secret generic chorus-tls --from-file=$dir/ca.pem" \
    "--from-file=$dir/node1.pem --from-file=$dir/node1.key" \
    "--from-file=$dir/node2.pem --from-file=$dir/node2.key" \
    "--from-file=$dir/node3.pem --from-file=$dir/node3.key"
fi
