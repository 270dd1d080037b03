#!/usr/bin/env bash
# Compares a 3-node HSDB with a 3-node etcd on loopback (benches/hsdb_vs_etcd).
# Installs Debian's etcd-server and etcd-client when `etcd` is not on PATH, then runs the bench;
# every argument goes to the bench, e.g.:
#   bash bench/hsdb-vs-etcd.sh --writes 20000 --failovers 2
#   bash bench/hsdb-vs-etcd.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    echo "etcd not found on PATH; installing etcd-server and etcd-client with apt-get" >&2
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client
fi

exec cargo bench --bench hsdb_vs_etcd -- "$@"
