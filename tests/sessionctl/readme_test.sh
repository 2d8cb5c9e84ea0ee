#!/usr/bin/env bash
# Runs the README's sessionctl walk-through as written against a fresh sessiond (its embedded
# defaults, data in ./sessiond-data), from a folder that looks like the top of the repository
# (./build/sessionctl). The only change made to the text is the port: sessiond listens on a free
# port instead of 8080, so a `make run` left running does not get in the way.
set -euo pipefail
sessionctl=$1
sessiond=$2
readme=$3
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cd "$tmp"
mkdir build home
ln -s "$sessionctl" build/sessionctl
# The saved session goes to a folder of the test's own; no variable of the caller applies.
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/config
unset SESSIONCTL_SERVER SESSIOND_ADMIN_KEY
"$sessiond" --listen 127.0.0.1:0 2>sessiond.log &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' sessiond.log | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "sessiond did not start"; cat sessiond.log; exit 1; }

# The first ```sh block after "## sessionctl".
awk '/^## sessionctl/ {q=1} q && /^```sh$/ {b=1; next} b && /^```$/ {exit} b {print}' "$readme" \
  | sed "s/localhost:8080/localhost:$port/g" > walkthrough.sh
[ -s walkthrough.sh ] || { echo "no sessionctl block in $readme"; exit 1; }

output=$(bash -euo pipefail walkthrough.sh 2>&1) || { echo "$output"; echo "walk-through failed"; exit 1; }
echo "$output"

fail() { echo "FAIL: $*"; exit 1; }
grep -q '^Created user 1\.' <<<"$output" || fail "user not created"
grep -q "^Signed in to http://localhost:$port as grace@example.com (GUEST)\." <<<"$output" \
  || fail "not signed in"
grep -Eq '^user +grace@example\.com \(id 1, role GUEST\)' <<<"$output" || fail "whoami"
grep -Eq '^\*  [0-9a-f-]{36}  CLI ' <<<"$output" || fail "this session not marked in the list"
grep -q 'iPhone · Safari' <<<"$output" || fail "phone session not listed"
grep -q '^Signed out 1 other session\.' <<<"$output" || fail "revoke --others"
grep -qx 'CLI current=true' <<<"$output" || fail "--json list"
[ "$(grep -c 'current=' <<<"$output")" -eq 1 ] || fail "other sessions still listed"
grep -q 'login_succeeded  user 1' <<<"$output" || fail "events"
grep -Eq '^live sessions +1 \(GUEST 1\)' <<<"$output" || fail "stats"
grep -q "^Signed out of http://localhost:$port\." <<<"$output" || fail "logout"
grep -q 'not signed in' <<<"$output" || fail "whoami after logout"
grep -qx 'exit status 1' <<<"$output" || fail "exit status after logout"
[ ! -e "$XDG_CONFIG_HOME/sessionctl/session.json" ] || fail "session file left after logout"
echo "sessionctl walk-through OK"
