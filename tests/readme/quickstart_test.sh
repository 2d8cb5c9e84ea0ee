#!/usr/bin/env bash
# Runs the README's quickstart block as written against a fresh sessiond. The only change made to
# the text is the port: sessiond listens on a free port instead of 8080, so a `make run` left
# running does not get in the way.
set -euo pipefail
sessiond=$1
readme=$2
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cd "$tmp"
# Created here: the background job creates it only when it runs, and set -e would end this
# script at a sed that finds no file yet.
: >sessiond.log
"$sessiond" --listen 127.0.0.1:0 2>sessiond.log &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' sessiond.log | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "sessiond did not start"; cat sessiond.log; exit 1; }

# The first ```sh block after "## Quickstart".
awk '/^## Quickstart/ {q=1} q && /^```sh$/ {b=1; next} b && /^```$/ {exit} b {print}' "$readme" \
  | sed "s/localhost:8080/localhost:$port/g" > quickstart.sh
[ -s quickstart.sh ] || { echo "no quickstart block in $readme"; exit 1; }

output=$(bash -euo pipefail quickstart.sh 2>&1) || { echo "$output"; echo "quickstart failed"; exit 1; }
echo "$output"

fail() { echo "FAIL: $*"; exit 1; }
grep -q '"email":"ada@example.com"' <<<"$output" || fail "user not created"
grep -q '^X-Session-Id: ' <<<"$output" || fail "verify did not answer X-Session-Id"
grep -q '"device_info": "iPhone · Safari"' <<<"$output" || fail "phone session not listed"
[ "$(grep -c '^204$' <<<"$output")" -eq 2 ] || fail "revoke and logout should both answer 204"
grep -q '"code": "session_revoked"' <<<"$output" || fail "token still accepted after logout"
grep -q '"reason": "logout"' <<<"$output" || fail "reason missing after logout"
echo "quickstart OK"
