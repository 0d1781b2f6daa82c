#!/usr/bin/env bash
# Runs schemathesis (property-based API testing from the OpenAPI document)
# against a real node's https:// API, then stops the node.
#
#   scripts/schemathesis.sh [SCHEMATHESIS OPTIONS...]   e.g. --max-examples 20
#
# Creates a temporary node on a free loopback port with one user, logs in as
# that user with HTTP Basic credentials (from `cairn node user http-auth`,
# kept in a mode-0600 config file, never on a command line or in the
# output), and checks every operation of /v1/openapi.json: no 5xx, status
# codes, content types and bodies as documented, invalid input refused.
# schemathesis is installed from PyPI into target/schemathesis-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

export CARGO_INCREMENTAL=0
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis==4.32.5'
fi
cargo build --quiet -p cairn-cli
cairn=$root/target/debug/cairn

work=$(mktemp -d)
node_pid=
cleanup() {
    if [ -n "$node_pid" ]; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=https://127.0.0.1:$port
"$cairn" node init --dir "$work/node" --listen "$url" >/dev/null
passphrase="schemathesis $(python3 -c 'import secrets; print(secrets.token_hex(8))')"
printf '%s\n' "$passphrase" | "$cairn" node user add --dir "$work/node" --passphrase-stdin tester 2>/dev/null

"$cairn" node run --dir "$work/node" 2>"$work/node.log" &
node_pid=$!
for _ in $(seq 100); do
    if curl -sf --cacert "$work/node/node.crt" "$url/v1/health" >/dev/null 2>&1; then break; fi
    sleep 0.1
done

mkdir -p target/schemathesis-report
curl -sf --cacert "$work/node/node.crt" "$url/v1/openapi.json" >target/schemathesis-report/openapi.json

umask 077
header=$(printf '%s\n' "$passphrase" | "$cairn" node user http-auth --dir "$work/node" --passphrase-stdin tester)
# - Unknown headers and query parameters are ignored, as HTTP servers do
#   (RFC 9110), so schemathesis does not send them as "invalid" input.
# - A valid request may still be refused for what the schema cannot say:
#   422 for a shard whose bytes do not hash to its id; for an index put,
#   400 for a summary_len longer than the body and 413 for a body taken
#   whole as the summary (a folder without summary_len) past 8 KiB, since
#   OpenAPI cannot bound a query parameter by the body's length.
cat >"$work/schemathesis.toml" <<TOML
[headers]
Authorization = "${header#Authorization: }"

[generation]
allow-extra-parameters = false

[checks.positive_data_acceptance]
expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 422, 429, "5XX"]

[[operations]]
include-operation-id = "put_index"
checks.positive_data_acceptance.expected-statuses = ["2XX", "3XX", 400, 401, 403, 404, 409, 413, 422, 429, "5XX"]
TOML

status=0
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$url/v1/openapi.json" \
    --tls-verify "$work/node/node.crt" --checks all \
    --report junit --report-dir "$root/target/schemathesis-report" "$@" || status=$?
if grep -qE 'panicked|ERROR' "$work/node.log"; then
    echo "== the node logged errors:" >&2
    grep -E 'panicked|ERROR' "$work/node.log" | head -20 >&2
    status=1
fi
exit "$status"
