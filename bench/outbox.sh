#!/usr/bin/env bash
# make bench, part 2: the audit trail of the Redis store (issue 4), on a private Redis and a
# private PostgreSQL 15 (temporary directories, free loopback ports, stopped by PID at the end).
#  1. Audit throughput: wrk creates sessions through POST /admin/v1/sessions for DURATION (a role
#     with max_sessions 5, so each creation past the fifth also evicts one: two events each);
#     events/s = events written to session_events / the time from the start of the load until the
#     outbox is empty again. The largest outbox backlog seen is recorded.
#  2. Outage: verify under wrk with PostgreSQL up (baseline), then PostgreSQL is stopped for
#     OUTAGE seconds: first the same verify load (the rate must not drop), then, for the rest of
#     the outage, a refresh load (REFRESHERS clients, each rotating its own session's refresh
#     token) whose changes wait in the outbox; the backlog is sampled every 5 s. PostgreSQL is
#     started again and the time until the outbox is empty is measured (the writer's drain rate);
#     every refresh made during the outage must be in session_events once.
# Writes bench/results/outbox-<UTC time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DURATION=${DURATION:-10s}
OUTAGE=${OUTAGE:-30}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
REFRESHERS=${REFRESHERS:-8}

for tool in wrk redis-server redis-cli psql jq; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps)"; exit 1; }
done
# shellcheck source=scripts/private-redis.sh
source scripts/private-redis.sh
# shellcheck source=scripts/private-postgres.sh
source scripts/private-postgres.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-bench-outbox.XXXXXX")
chmod 755 "$tmp"
pid=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  private_postgres_stop "$tmp/pg" || true
  private_redis_stop "$tmp/redis" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

private_postgres_start "$tmp/pg" >/dev/null
psql "$PRIVATE_POSTGRES_URL" -qAt -c "CREATE DATABASE sessiond" >/dev/null
pg_url=${PRIVATE_POSTGRES_URL%/postgres}/sessiond
mkdir -p "$tmp/redis"
private_redis_start "$tmp/redis" >/dev/null
rcli() { redis-cli -h 127.0.0.1 -p "$PRIVATE_REDIS_PORT" "$@"; }
sql() { psql "$pg_url" -qAt -c "$1"; }
backlog() { rcli XLEN sd:outbox | tr -d '\r'; }
now() { date +%s.%N; }

# The refreshers rotate their sessions as fast as they can: far over refresh_per_session, which
# is lifted here (the bench measures the outbox, not the limit).
SESSIOND_RATE_LIMITS_REFRESH_PER_SESSION="1000000/1s" \
  "./$BUILD/sessiond" --data-dir "$tmp/d" --listen 127.0.0.1:0 --store "$PRIVATE_REDIS_URL" \
  --database "$pg_url" 2>"$tmp/sessiond.log" &
pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/sessiond.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "bench: sessiond did not start"; cat "$tmp/sessiond.log"; exit 1; }
base="http://127.0.0.1:$port"
key=$(cat "$tmp/d/admin.key")
new_user() {
  curl -sf -X POST "$base/admin/v1/users" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "{\"email\":\"$1\",\"role\":\"GUEST\"}" | jq -r .id
}
new_session() {
  curl -sf -X POST "$base/admin/v1/sessions" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "{\"user_id\":$1}"
}
wait_empty() {
  while [ "$(backlog)" != 0 ]; do sleep 0.05; done
}

# --- 1. audit throughput ---
creator=$(new_user creator@example.com)
cat >"$tmp/create.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"user_id":$creator}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
EOF
events_before=$(sql "SELECT count(*) FROM session_events")
(
  peak=0
  while [ ! -f "$tmp/stop-sampling" ]; do
    b=$(backlog)
    [ "$b" -gt "$peak" ] && peak=$b
    sleep 0.2
  done
  echo "$peak" >"$tmp/peak"
) &
sampler=$!
start=$(now)
created=$(wrk -t"$THREADS" -c16 -d"$DURATION" -s "$tmp/create.lua" "$base/admin/v1/sessions" |
  awk '/requests in/ {print $1}')
load_end=$(now)
wait_empty
drained=$(now)
touch "$tmp/stop-sampling"
wait "$sampler"
peak=$(cat "$tmp/peak")
events=$(( $(sql "SELECT count(*) FROM session_events") - events_before ))
audit_rps=$(python3 -c "print(f'{$events / ($drained - $start):.0f}')")
create_rps=$(python3 -c "print(f'{$created / ($load_end - $start):.0f}')")
drain_after=$(python3 -c "print(f'{$drained - $load_end:.2f}')")

# --- 2. outage ---
verifier=$(new_user verifier@example.com)
access=$(new_session "$verifier" | jq -r .access_token)
verify_rps() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $access" \
    "$base/api/v1/auth/verify" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
verify_up=$(verify_rps)

# Refreshers: each its own user and session, rotating as fast as it can until told to stop.
refresh_tokens=()
for i in $(seq 1 "$REFRESHERS"); do
  u=$(new_user "refresher$i@example.com")
  refresh_tokens+=("$(new_session "$u" | jq -r .refresh_token)")
done
wait_empty
refreshed_before=$(sql "SELECT count(*) FROM session_events WHERE type = 'session_refreshed'")
private_postgres_stop "$tmp/pg"
outage_start=$(now)
verify_down=$(verify_rps)
python3 - "$port" "$tmp/stop-refresh" "$tmp/refreshes" "${refresh_tokens[@]}" <<'EOF' &
import http.client, json, os, sys, threading
port, stop, out, tokens = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
counts, failures = [0] * len(tokens), [0] * len(tokens)
def run(i):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    token = tokens[i]
    while not os.path.exists(stop):
        conn.request("POST", "/api/v1/auth/refresh", json.dumps({"refresh_token": token}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        if r.status == 200:
            token = json.loads(body)["refresh_token"]
            counts[i] += 1
        else:
            failures[i] += 1
threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tokens))]
for t in threads: t.start()
for t in threads: t.join()
with open(out, "w") as f:
    f.write(f"{sum(counts)} {sum(failures)}\n")
EOF
refresher=$!
samples=()
while :; do
  elapsed=$(python3 -c "print(int($(now) - $outage_start))")
  [ "$elapsed" -ge "$OUTAGE" ] && break
  samples+=("${elapsed}s: $(backlog)")
  sleep 5
done
touch "$tmp/stop-refresh"
wait "$refresher"
read -r refreshes refresh_failures <"$tmp/refreshes"
backlog_end=$(backlog)
private_postgres_start "$tmp/pg" >/dev/null
back=$(now)
wait_empty
recovered=$(python3 -c "print(f'{$(now) - $back:.2f}')")
drain_rps=$(python3 -c "print(f'{$backlog_end / max($recovered, 0.01):.0f}')")
refreshed=$(( $(sql "SELECT count(*) FROM session_events WHERE type = 'session_refreshed'") - refreshed_before ))
verify_ratio=$(python3 -c "print(f'{$verify_down / $verify_up * 100:.1f}')")

stamp=$(date -u +%Y%m%dT%H%M%SZ)
result="bench/results/outbox-$stamp.md"
{
  echo "# sessiond outbox bench, $stamp"
  echo
  echo "Machine: $(nproc) cores; a private redis-server and PostgreSQL 15 (fsync off) on loopback,"
  echo "one sessiond with \`--store redis://... --database postgresql://...\`, all sharing the machine."
  echo
  echo "## Audit throughput"
  echo
  echo "wrk -t$THREADS -c16 -d$DURATION POST /admin/v1/sessions (max_sessions 5: a creation and an eviction each)."
  echo
  echo "| figure | value |"
  echo "|---|---|"
  echo "| sessions created | $created ($create_rps/s) |"
  echo "| events written to session_events | $events |"
  echo "| **audit events/s** (events / time from load start until the outbox is empty) | **$audit_rps** |"
  echo "| largest outbox backlog seen (XLEN, sampled every 0.2 s) | $peak |"
  echo "| outbox empty this long after the load ended | $drain_after s |"
  echo
  echo "## PostgreSQL outage of $OUTAGE s"
  echo
  echo "| figure | value |"
  echo "|---|---|"
  echo "| verify, PostgreSQL up (wrk -t$THREADS -c$CONNECTIONS -d$DURATION) | $verify_up req/s |"
  echo "| verify, PostgreSQL down (the first $DURATION of the outage) | $verify_down req/s (**$verify_ratio %** of up) |"
  echo "| refreshes during the rest of the outage ($REFRESHERS clients) | $refreshes ok, $refresh_failures failed |"
  echo "| outbox backlog when PostgreSQL came back | $backlog_end |"
  echo "| outbox empty after PostgreSQL came back | $recovered s (**$drain_rps events/s** written) |"
  echo "| session_refreshed events written for them | $refreshed (expected $refreshes) |"
  echo
  echo "Backlog during the outage: ${samples[*]}"
  echo
  echo "Command: \`DURATION=$DURATION OUTAGE=$OUTAGE CONNECTIONS=$CONNECTIONS THREADS=$THREADS REFRESHERS=$REFRESHERS bash bench/outbox.sh\`"
} >"$result"
cat "$result"
[ "$refreshed" -eq "$refreshes" ] || { echo "bench: $refreshes refreshes but $refreshed events"; exit 1; }
[ "$refresh_failures" -eq 0 ] || { echo "bench: $refresh_failures refreshes failed during the outage"; exit 1; }
