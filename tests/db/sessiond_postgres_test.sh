#!/usr/bin/env bash
# sessiond on PostgreSQL, end to end, in a scratch database of the test server
# ($SESSIOND_TEST_DATABASE_URL, a postgresql:// URL): `sessiond migrate --database postgresql://...`
# creates the schema (twice is fine); the server signs a user in on it; the session record and the
# audit events are in PostgreSQL; after a restart the session is restored from PostgreSQL (memory
# store) and signing out is recorded. A bad URL is a configuration error that does not repeat it,
# and an unreachable server stops the start.
set -uo pipefail
sessiond=$(realpath "$1")
if [[ -z ${SESSIOND_TEST_DATABASE_URL:-} ]]; then
  echo "FAIL: SESSIOND_TEST_DATABASE_URL is not set: this test needs a PostgreSQL 15 server on which" \
    "it may create databases (make test starts one)"
  exit 1
fi
admin_url=$SESSIOND_TEST_DATABASE_URL
tmp=$(mktemp -d)
db="sdtest_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
pid=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  psql "$admin_url" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
sql() { psql "$url" -qAt -c "$1"; }

psql "$admin_url" -qAt -c "CREATE DATABASE $db TEMPLATE template0" >/dev/null || exit 1
url=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
  "$admin_url" "$db")
cd "$tmp" || exit 1

# migrate: the schema, then nothing more the second time.
out=$("$sessiond" migrate --database "$url" --data-dir d 2>&1) || fail "migrate failed: $out"
grep -q 'database postgresql schema version' <<<"$out" || fail "migrate did not report: $out"
out=$("$sessiond" migrate --database "$url" --data-dir d 2>&1) || fail "second migrate failed: $out"
[[ $(sql "SELECT count(*) FROM schema_migrations") -ge 1 ]] || fail "no schema_migrations rows"

# A URL libpq cannot parse is a configuration error (2) that does not repeat the URL.
err=$("$sessiond" migrate --database 'postgresql://sessiond:s3cret%zz@127.0.0.1/x' --data-dir d 2>&1)
status=$?
[[ $status -eq 2 ]] || fail "bad URL exited $status, expected 2: $err"
grep -q 'database.url' <<<"$err" || fail "bad URL message does not name database.url: $err"
grep -q 's3cret' <<<"$err" && fail "bad URL message repeats the URL: $err"
# An unreachable server stops the start (1) with libpq's reason.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
err=$("$sessiond" migrate --database "postgresql://postgres@127.0.0.1:$port/x" --data-dir d 2>&1)
status=$?
[[ $status -eq 1 ]] || fail "unreachable server exited $status, expected 1: $err"
grep -q 'cannot connect to PostgreSQL' <<<"$err" || fail "unreachable server message: $err"

start_sessiond() {
  "$sessiond" --database "$url" --data-dir d --listen 127.0.0.1:0 2>"$1" &
  pid=$!
  port=""
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -n1)
    [[ -n $port ]] && return 0
    sleep 0.05
  done
  fail "sessiond did not start: $(cat "$1")"
  exit 1
}
stop_sessiond() {
  kill -TERM "$pid"
  wait "$pid"
  local status=$?
  [[ $status -eq 0 ]] || fail "SIGTERM exit status $status"
  pid=""
}

start_sessiond first.log
grep -q 'database postgresql' first.log || fail "sessiond did not say it uses PostgreSQL"
key=$(cat d/admin.key)
code=$(curl -s -o user.json -w '%{http_code}' -X POST "localhost:$port/admin/v1/users" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"email":"ada@example.com","password":"correct horse battery staple","role":"GUEST"}')
[[ $code == 201 ]] || fail "create user answered $code: $(cat user.json)"
tokens=$(curl -s -X POST "localhost:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"email":"ada@example.com","password":"correct horse battery staple"}')
at=$(jq -r .access_token <<<"$tokens")
sid=$(jq -r .session_id <<<"$tokens")
code=$(curl -s -o /dev/null -w '%{http_code}' "localhost:$port/api/v1/auth/verify" \
  -H "Authorization: Bearer $at")
[[ $code == 200 ]] || fail "verify answered $code"

[[ $(sql "SELECT email FROM users") == ada@example.com ]] || fail "user not in PostgreSQL"
[[ $(sql "SELECT count(*) FROM user_sessions WHERE id = '$sid' AND is_active") == 1 ]] ||
  fail "live session $sid not in PostgreSQL"
[[ $(sql "SELECT count(*) FROM session_events WHERE type = 'login_succeeded' AND session_id = '$sid'") == 1 ]] ||
  fail "login_succeeded event not in PostgreSQL"
stop_sessiond

# The memory store is rebuilt from PostgreSQL: the same access token still works.
start_sessiond second.log
code=$(curl -s -o /dev/null -w '%{http_code}' "localhost:$port/api/v1/auth/verify" \
  -H "Authorization: Bearer $at")
[[ $code == 200 ]] || fail "verify after restart answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "localhost:$port/api/v1/auth/logout" \
  -H "Authorization: Bearer $at")
[[ $code == 204 ]] || fail "logout answered $code"
[[ $(sql "SELECT is_active || ' ' || invalidation_reason FROM user_sessions WHERE id = '$sid'") == "false logout" ]] ||
  fail "logout not recorded: $(sql "SELECT is_active, invalidation_reason FROM user_sessions")"
stop_sessiond

[[ $failures -eq 0 ]] && echo "sessiond on PostgreSQL OK"
exit "$failures"
