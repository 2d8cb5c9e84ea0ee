#!/usr/bin/env bash
# The outbox through a PostgreSQL outage and a node crash (SPEC §6, §8): two sessiond nodes share
# one Redis and one PostgreSQL, both private to this test. Sessions are signed in; PostgreSQL is
# stopped; while it is down, verify, refresh, list and revoke go on answering on both nodes (a
# verify load runs meanwhile and counts anything but 200), sign-in answers 503
# database_unavailable, and the changes wait in the Redis outbox. The node holding the outbox
# writer's lease is then killed with SIGKILL, PostgreSQL comes back, and the other node takes the
# writing over: every event reaches session_events exactly once, the user_sessions rows follow,
# and the outbox empties.
set -uo pipefail
sessiond=$(realpath "$1")
here=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/private-postgres.sh
source "$here/scripts/private-postgres.sh"
# shellcheck source=scripts/private-redis.sh
source "$here/scripts/private-redis.sh"

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
load_pid=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  [[ -n $load_pid ]] && kill "$load_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  private_postgres_stop "$tmp/pg"
  private_redis_stop "$tmp/redis"
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

private_postgres_start "$tmp/pg" >/dev/null || exit 1
pg_admin=$PRIVATE_POSTGRES_URL
psql "$pg_admin" -qAt -c "CREATE DATABASE sessiond" >/dev/null || exit 1
pg_url=${pg_admin%/postgres}/sessiond
mkdir -p "$tmp/redis"
private_redis_start "$tmp/redis" >/dev/null || exit 1
redis_url=$PRIVATE_REDIS_URL
rcli() { redis-cli -h 127.0.0.1 -p "$PRIVATE_REDIS_PORT" "$@"; }
sql() { psql "$pg_url" -qAt -c "$1"; }

# Node N (0 or 1): data in $tmp/nN, its port in port[N]. Node 1 gets node 0's signing and admin
# keys, so a token from one is good on the other.
cat >"$tmp/sessiond.toml" <<'TOML'
[roles.KIOSK]
idle_timeout = "2s"
absolute_timeout = "1h"
max_sessions = 5
on_limit = "evict_oldest"

[jobs]
cleanup_interval = "1s"
activity_flush_interval = "1s"
outbox_claim_after = "3s"
TOML
declare -a port
start_node() {
  local n=$1 log="$tmp/n$1.log"
  [[ -f $log ]] && mv "$log" "$log.before"
  mkdir -p "$tmp/n$n"
  chmod 700 "$tmp/n$n"
  if [[ $n -eq 1 ]]; then
    cp -p "$tmp/n0/signing.key" "$tmp/n0/admin.key" "$tmp/n1/"
  fi
  "$sessiond" --config "$tmp/sessiond.toml" --data-dir "$tmp/n$n" --listen 127.0.0.1:0 \
    --store "$redis_url" --database "$pg_url" 2>"$log" &
  pids[n]=$!
  port[n]=""
  for _ in $(seq 1 200); do
    port[n]=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
    [[ -n ${port[n]} ]] && return 0
    sleep 0.05
  done
  echo "FAIL: node $n did not start: $(cat "$log")"
  exit 1
}
start_node 0
start_node 1
key=$(cat "$tmp/n0/admin.key")
base() { echo "http://127.0.0.1:${port[$1]}"; }

# status URL-suffix node [curl args...]: prints the HTTP status.
status() {
  local path=$1 n=$2
  shift 2
  curl -s -o "$tmp/body" -w '%{http_code}' "$(base "$n")$path" "$@"
}
login() {
  curl -s -X POST "$(base "$1")/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"ada@example.com","password":"correct horse battery staple"}'
}

code=$(status /admin/v1/users 0 -X POST -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' \
  -d '{"email":"ada@example.com","password":"correct horse battery staple","role":"GUEST"}')
[[ $code == 201 ]] || { fail "create user answered $code: $(cat "$tmp/body")"; exit 1; }
user_id=$(jq -r .id "$tmp/body")

# An entry no writer can read (as a foreign or damaged one would be) is logged and skipped: it
# does not hold up the ones behind it.
rcli XADD sd:outbox '*' k c u "$user_id" >/dev/null

# Five sessions (the GUEST role allows five), signed in on both nodes.
declare -a access refresh sid
for i in 0 1 2 3 4; do
  tokens=$(login $((i % 2)))
  access[i]=$(jq -r .access_token <<<"$tokens")
  refresh[i]=$(jq -r .refresh_token <<<"$tokens")
  sid[i]=$(jq -r .session_id <<<"$tokens")
  [[ ${sid[i]} != null ]] || { fail "sign-in $i: $tokens"; exit 1; }
done

# wait_for SECONDS SQL EXPECTED
wait_for() {
  local deadline=$((SECONDS + $1)) got
  while :; do
    got=$(sql "$2" 2>/dev/null)
    [[ $got == "$3" ]] && return 0
    ((SECONDS >= deadline)) && { echo "$got"; return 1; }
    sleep 0.1
  done
}
got=$(wait_for 10 "SELECT count(*) FROM session_events WHERE type = 'login_succeeded'" 5) ||
  fail "login events before the outage: $got, expected 5"
grep -q "cannot be read: skipped" "$tmp/n0.log" "$tmp/n1.log" || fail "the unreadable entry was not reported"

# A verify load on both nodes for the whole outage: anything but 200 is counted.
(
  bad=0 total=0
  while [[ ! -f $tmp/stop-load ]]; do
    for n in 0 1; do
      c=$(curl -s -o /dev/null -w '%{http_code}' "$(base $n)/api/v1/auth/verify" \
        -H "Authorization: Bearer ${access[0]}")
      total=$((total + 1))
      [[ $c == 200 ]] || bad=$((bad + 1))
    done
  done
  echo "$total $bad" >"$tmp/load-result"
) &
load_pid=$!

private_postgres_stop "$tmp/pg"

# --- PostgreSQL is down ---
for n in 0 1; do
  for i in 0 1 2 3 4; do
    code=$(status /api/v1/auth/verify "$n" -H "Authorization: Bearer ${access[i]}")
    [[ $code == 200 ]] || fail "node $n verify $i during the outage answered $code"
  done
  code=$(status /api/v1/sessions "$n" -H "Authorization: Bearer ${access[0]}")
  [[ $code == 200 ]] || fail "node $n list during the outage answered $code"
  [[ $(jq length "$tmp/body") == 5 ]] || fail "node $n list during the outage: $(cat "$tmp/body")"
  code=$(status /api/v1/auth/login "$n" -X POST -H 'Content-Type: application/json' \
    -d '{"email":"ada@example.com","password":"correct horse battery staple"}')
  [[ $code == 503 && $(jq -r .code "$tmp/body") == database_unavailable ]] ||
    fail "node $n sign-in during the outage answered $code: $(cat "$tmp/body")"
done
# Refresh sessions 1 and 2 (on different nodes), revoke 3 and sign 4 out.
for i in 1 2; do
  code=$(status /api/v1/auth/refresh $((i % 2)) -X POST -H 'Content-Type: application/json' \
    -d "{\"refresh_token\":\"${refresh[i]}\"}")
  [[ $code == 200 ]] || fail "refresh $i during the outage answered $code: $(cat "$tmp/body")"
done
code=$(status "/api/v1/sessions/${sid[3]}" 0 -X DELETE -H "Authorization: Bearer ${access[0]}")
[[ $code == 204 ]] || fail "revoke during the outage answered $code: $(cat "$tmp/body")"
code=$(status /api/v1/auth/logout 1 -X POST -H "Authorization: Bearer ${access[4]}")
[[ $code == 204 ]] || fail "logout during the outage answered $code: $(cat "$tmp/body")"
backlog=$(rcli XLEN sd:outbox)
[[ $backlog -ge 4 ]] || fail "the outbox holds $backlog entries during the outage, expected 4 or more"

touch "$tmp/stop-load"
wait "$load_pid"
load_pid=""
read -r total bad <"$tmp/load-result"
[[ $bad -eq 0 && $total -gt 0 ]] || fail "$bad of $total verify requests failed during the outage"

# The node holding the writer's lease crashes (its taken entries stay unacknowledged).
holder=$(rcli GET sd:outbox:lease)
victim=""
for n in 0 1; do
  [[ $holder == */$(cat "$tmp/n$n/node.id") ]] && victim=$n
done
if [[ -z $victim ]]; then
  fail "no node holds the outbox lease ($holder)"
  victim=0
fi
kill -9 "${pids[victim]}"
wait "${pids[victim]}" 2>/dev/null
survivor=$((1 - victim))

echo "verify during the outage: $total requests, $bad failed; outbox backlog $backlog; node $victim (lease holder) killed"

private_postgres_start "$tmp/pg" >/dev/null || exit 1

# --- PostgreSQL is back: the surviving node writes everything, once ---
got=$(wait_for 30 "SELECT count(*) FROM session_events WHERE type IN ('session_refreshed', 'session_revoked', 'logout')" 4) ||
  fail "events after the outage: $got, expected 4"
got=$(wait_for 10 "SELECT count(*) FROM session_events" 10) ||
  fail "all events: $got, expected 10 (user_created, 5 sign-ins, 2 refreshes, revoke, logout)"
dups=$(sql "SELECT count(*) FROM (SELECT type, session_id FROM session_events GROUP BY type, session_id HAVING count(*) > 1) d")
[[ $dups == 0 ]] || fail "duplicated events: $(sql "SELECT type, session_id, count(*) FROM session_events GROUP BY 1, 2")"
for i in 1 2; do
  [[ $(sql "SELECT count(*) FROM session_events WHERE type = 'session_refreshed' AND session_id = '${sid[i]}'") == 1 ]] ||
    fail "refresh of session $i not recorded once"
done
[[ $(sql "SELECT is_active || ' ' || invalidation_reason FROM user_sessions WHERE id = '${sid[3]}'") == "false revoked_by_user" ]] ||
  fail "revoked session row: $(sql "SELECT is_active, invalidation_reason FROM user_sessions WHERE id = '${sid[3]}'")"
[[ $(sql "SELECT is_active || ' ' || invalidation_reason FROM user_sessions WHERE id = '${sid[4]}'") == "false logout" ]] ||
  fail "signed-out session row: $(sql "SELECT is_active, invalidation_reason FROM user_sessions WHERE id = '${sid[4]}'")"
[[ $(sql "SELECT count(*) FROM user_sessions WHERE user_id = $user_id AND is_active") == 3 ]] ||
  fail "live rows: $(sql "SELECT id, is_active FROM user_sessions")"
deadline=$((SECONDS + 10))
while [[ $(rcli XLEN sd:outbox) != 0 ]] && ((SECONDS < deadline)); do sleep 0.1; done
[[ $(rcli XLEN sd:outbox) == 0 ]] || fail "the outbox still holds $(rcli XLEN sd:outbox) entries"

# The admin routes answer from PostgreSQL: the same events and live sessions.
code=$(status "/admin/v1/events?user_id=$user_id&limit=1000" "$survivor" -H "Authorization: Bearer $key")
[[ $code == 200 && $(jq length "$tmp/body") == $(sql "SELECT count(*) FROM session_events WHERE user_id = $user_id") ]] ||
  fail "admin events answered $code: $(cat "$tmp/body")"
code=$(status "/admin/v1/events?type=session_refreshed" "$survivor" -H "Authorization: Bearer $key")
[[ $code == 200 && $(jq length "$tmp/body") == 2 ]] || fail "admin events by type: $(cat "$tmp/body")"
code=$(status /admin/v1/stats "$survivor" -H "Authorization: Bearer $key")
[[ $code == 200 && $(jq .live_by_role.GUEST "$tmp/body") == 3 ]] || fail "admin stats: $code $(cat "$tmp/body")"

# last_activity reaches the database within activity_flush_interval (1 s here).
before=$(sql "SELECT last_activity FROM user_sessions WHERE id = '${sid[0]}'")
sleep 1.1
code=$(status /api/v1/auth/verify "$survivor" -H "Authorization: Bearer ${access[0]}")
[[ $code == 200 ]] || fail "verify after the outage answered $code"
got=$(wait_for 5 "SELECT last_activity > '$before' FROM user_sessions WHERE id = '${sid[0]}'" t) ||
  fail "last_activity did not move in the database (still $before)"

# Sign-in works again.
tokens=$(login "$survivor")
[[ $(jq -r .session_id <<<"$tokens") != null ]] || fail "sign-in after the outage: $tokens"

# --- the cleanup job on two nodes: each expiry is marked once ---
start_node "$victim"
code=$(status /admin/v1/users 0 -X POST -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' \
  -d '{"email":"kiosk@example.com","password":"correct horse battery staple","role":"KIOSK"}')
[[ $code == 201 ]] || fail "create kiosk user answered $code: $(cat "$tmp/body")"
kiosk_id=$(jq -r .id "$tmp/body")
for n in 0 1 0; do
  code=$(status /api/v1/auth/login "$n" -X POST -H 'Content-Type: application/json' \
    -d '{"email":"kiosk@example.com","password":"correct horse battery staple"}')
  [[ $code == 200 ]] || fail "kiosk sign-in answered $code: $(cat "$tmp/body")"
done
# idle_timeout 2 s, cleanup_interval 1 s: all three are marked within a few seconds.
got=$(wait_for 15 "SELECT count(*) FROM user_sessions WHERE user_id = $kiosk_id AND NOT is_active AND invalidation_reason = 'expired'" 3) ||
  fail "expired kiosk sessions marked in the database: $got, expected 3"
sleep 2.5  # more cleanup rounds on both nodes
[[ $(sql "SELECT count(*) FROM session_events WHERE type = 'session_expired' AND user_id = $kiosk_id") == 3 ]] ||
  fail "session_expired events: $(sql "SELECT session_id, count(*) FROM session_events WHERE type = 'session_expired' GROUP BY 1"), expected one for each of 3 sessions"

# SIGTERM stops both nodes cleanly.
for n in 0 1; do
  kill -TERM "${pids[n]}"
  wait "${pids[n]}"
  status=$?
  [[ $status -eq 0 ]] || fail "node $n: SIGTERM exit status $status"
done
pids=()

[[ $failures -eq 0 ]] && echo "outbox through a PostgreSQL outage and a node crash, expiry on two nodes OK"
exit "$failures"
