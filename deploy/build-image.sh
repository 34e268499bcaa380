#!/usr/bin/env bash
# Builds the chorus image from an already built binary:
#   deploy/build-image.sh [BINARY [TAG]]
# BINARY defaults to target/release/chorus (cargo build --release -p chorus-cli),
# TAG to localhost/chorus:latest. CONTAINER_ENGINE=docker uses docker instead
# of podman. A dynamically linked binary gets the libraries `ldd` names copied
# in (glibc's own resolver serves DNS without NSS modules); a static (musl)
# binary gets none.
set -euo pipefail
bin=${1:-target/release/chorus}
tag=${2:-localhost/chorus:latest}
engine=${CONTAINER_ENGINE:-podman}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$bin" ] || { echo "error: $bin is not an executable; run: cargo build --release -p chorus-cli" >&2; exit 2; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root/usr/local/bin" "$root/data" "$root/etc/chorus"
# Without debug info: a smaller image, same code.
strip -o "$root/usr/local/bin/chorus" "$bin" 2>/dev/null || cp "$bin" "$root/usr/local/bin/chorus"
for lib in $(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
  cp --parents -L "$lib" "$root"
done
chmod 0777 "$root/data"  # any runAsUser may write a bind-mounted or fresh /data
"$engine" build -q -t "$tag" -f "$here/Containerfile" "$ctx"
