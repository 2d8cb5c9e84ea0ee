#!/usr/bin/env bash
# Runs the README's "OTP sign-in" client block as written against a fresh sessiond started as the
# block before it says (SESSIOND_OTP_SENDER=file:$PWD/sms.jsonl). The only change made to the
# text is the port: sessiond listens on a free port instead of 8080.
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
# The server block, with the binary in place of `make run`.
server_line=$(awk '/^## OTP sign-in/ {q=1} q && /^```sh$/ {b=1; next} b {print; exit}' "$readme")
[ "$server_line" = 'SESSIOND_OTP_SENDER=file:$PWD/sms.jsonl make run' ] ||
  { echo "the README's server line changed: $server_line"; exit 1; }
env $(env | sed -n 's/^\(SESSIOND_[A-Za-z0-9_]*\)=.*/-u \1/p') \
  SESSIOND_OTP_SENDER="file:$PWD/sms.jsonl" "$sessiond" --listen 127.0.0.1:0 2>sessiond.log &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' sessiond.log | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "sessiond did not start"; cat sessiond.log; exit 1; }

# The second ```sh block after "## OTP sign-in".
awk '/^## OTP sign-in/ {q=1} q && /^```sh$/ {n++; if (n == 2) {b=1; next}} b && /^```$/ {exit} b {print}' \
  "$readme" | sed "s/localhost:8080/localhost:$port/g" >otp.sh
[ -s otp.sh ] || { echo "no OTP block in $readme"; exit 1; }

output=$(bash -euo pipefail otp.sh 2>&1) || { echo "$output"; echo "the OTP block failed"; exit 1; }
echo "$output"

fail() { echo "FAIL: $*"; exit 1; }
grep -q '{"expires_in":300}' <<<"$output" || fail "send did not answer expires_in"
grep -q '"to": "+4915112345678"' <<<"$output" || fail "the message did not go to the E.164 number"
grep -q '"text": "Your sign-in code is [0-9]\{6\}' <<<"$output" || fail "no code in the message"
grep -q '"mobile_number": "+4915112345678"' <<<"$output" || fail "the user was not registered"
grep -q '"role": "GUEST"' <<<"$output" || fail "the user does not have the default role"
grep -q '^"invalid_otp"$' <<<"$output" || fail "the code worked twice"
echo "otp readme OK"
