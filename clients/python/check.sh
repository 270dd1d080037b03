#!/usr/bin/env bash
# The admin API from another language: generates a Python client from proto/ alone (grpcio in
# a virtualenv of its own), starts the local datacenter and runs check.py against it.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/python-client
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r clients/python/requirements.txt
work=$(mktemp -d)
"$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$work" --grpc_python_out="$work" proto/vmrm/v1/*.proto
cargo build -q --release --locked --bin vmrmd
target/release/vmrmd local --data-dir "$work/dc" >"$work/local.log" 2>&1 &
dc=$!
stop() {
    kill -INT "$dc" 2>/dev/null && wait "$dc" || true
    rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 300); do
    grep -q "The local datacenter is up" "$work/local.log" && break
    kill -0 "$dc" 2>/dev/null || { cat "$work/local.log"; exit 1; }
    sleep 1
done
grep -q "The local datacenter is up" "$work/local.log" || { echo "the local datacenter did not come up"; exit 1; }
PYTHONPATH="$work" "$venv/bin/python" clients/python/check.py "$work/dc/certs" 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003
