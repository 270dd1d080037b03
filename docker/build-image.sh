#!/usr/bin/env bash
# Builds the `vmrm:local` container image without a registry: FROM scratch, with the release
# `vmrmd`, `ksysmgr`, `ksysvmmgr` and `cmappmgr`, the shared libraries `ldd` names (at the same
# paths), and a static busybox (Debian's busybox-static) so VM application scripts have a shell.
# It also issues the container cluster's certificates into cluster-configs/compose-certs.
# Usage: bash docker/build-image.sh   (then: docker-compose up -d)
set -euo pipefail
cd "$(dirname "$0")/.."

bins=(vmrmd ksysmgr ksysvmmgr cmappmgr)
cargo build --release --locked "${bins[@]/#/--bin=}"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"
for bin in "${bins[@]}"; do cp "target/release/$bin" "$root/usr/local/bin/"; done

# The dynamic loader and every library the binaries link, where ldd finds them.
for bin in "${bins[@]}"; do
    ldd "target/release/$bin" | grep -o '/[^ )]*' | sort -u | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done

# A static busybox: from the machine if it has one, else from Debian's package.
busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then busybox=$candidate; fi
done
if [ -z "$busybox" ]; then
    (cd "$ctx" && { apt-get download busybox-static 2>/dev/null || { apt-get update -qq && apt-get download busybox-static; }; })
    dpkg-deb -x "$ctx"/busybox-static_*.deb "$ctx/deb"
    busybox="$ctx/deb/bin/busybox"
fi
cp "$busybox" "$root/bin/busybox"
for applet in sh sleep cat echo kill ps; do ln -sf busybox "$root/bin/$applet"; done

cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin
# Where a server unit keeps its VMs' own files (ksysvmmgr and cmappmgr find them there).
ENV VMRM_GUESTS=/data/guests
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/vmrmd"]
DOCKERFILE

docker build -q -t vmrm:local "$ctx"
echo "built vmrm:local"

# The container cluster's CA and certificates (mutual TLS between every node): issued once on
# this machine, kept out of the image and out of git; an existing CA is kept.
target/release/vmrmd certs compose --out cluster-configs/compose-certs
