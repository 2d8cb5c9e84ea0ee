#!/usr/bin/env bash
# make bench: HTTP load on the embedded defaults, and memory per live session.
#  1. starts a Release sessiond on a free loopback port with a temporary data directory;
#  2. signs one session in through the admin API;
#  3. runs wrk against GET /healthz (baseline) and GET /api/v1/auth/verify, alternating, RUNS times,
#     and takes the median requests/s and latencies of each;
#  4. runs bench/store_memory (1,000,000 sessions in the memory store, RSS before and after);
#  5. Redis store: starts a private redis-server (free loopback port, temporary directory, no
#     persistence) and a sessiond on it, then alternates, RUNS times, `redis-benchmark -t get` (the
#     raw baseline, no pipelining, same concurrency) and wrk against GET /api/v1/auth/verify, and
#     takes medians; counts Redis commands per verify (INFO stats) and, when /metrics has the
#     client's counters, commands per pipeline write; then measures Redis memory per live session
#     (INFO memory before and after bench/redis_sessions creates REDIS_SESSIONS sessions);
#  6. writes everything to bench/results/verify-<UTC time>.md and bench/results/latest.md.
# Every server it starts is stopped by PID when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-1000000}
REDIS_SESSIONS=${REDIS_SESSIONS:-100000}

command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps)"; exit 1; }
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps)"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-bench.XXXXXX")
pid=""
stop_sessiond() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
# The private redis-server of step 5 (its files in $tmp/redis).
# shellcheck source=scripts/private-redis.sh
source scripts/private-redis.sh
cleanup() { stop_sessiond; private_redis_stop "$tmp/redis"; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts sessiond with the given extra arguments, its data in $tmp/$1; sets pid, base and key.
start_sessiond() {
  local name=$1 port=""
  shift
  "./$BUILD/sessiond" --data-dir "$tmp/$name" --listen 127.0.0.1:0 "$@" 2>"$tmp/$name.log" &
  pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "bench: sessiond did not start"; cat "$tmp/$name.log"; exit 1; }
  base="http://127.0.0.1:$port"
  key=$(cat "$tmp/$name/admin.key")
}

# Creates one user and one session through the admin API; prints the access token.
create_session() {
  local user user_id tokens
  user=$(curl -sf -X POST "$base/admin/v1/users" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"email":"bench@example.com","role":"GUEST"}')
  user_id=$(printf '%s' "$user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  tokens=$(curl -sf -X POST "$base/admin/v1/sessions" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "{\"user_id\":$user_id}")
  printf '%s' "$tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

start_sessiond memory
access=$(create_session)
curl -sf "$base/api/v1/auth/verify" -H "Authorization: Bearer $access" >/dev/null

# Prints "requests_per_second p50_ms p99_ms requests" for one wrk run.
measure() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  printf '%s\n' "$out" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors:
    sys.exit("bench: wrk saw non-2xx responses: " + errors.group(1))
p50, p99 = ms("50%"), ms("99%")
requests = int(re.search(r"(\d+) requests in", text).group(1))
print("%.0f %.3f %.3f %d" % (rps, p50, p99, requests))'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

wrk -t1 -c8 -d2s "$base/healthz" >/dev/null   # warm-up
health_runs=(); verify_runs=()
for i in $(seq 1 "$RUNS"); do
  health_runs+=("$(measure "$base/healthz")")
  verify_runs+=("$(measure -H "Authorization: Bearer $access" "$base/api/v1/auth/verify")")
  echo "run $i: healthz ${health_runs[-1]} | verify ${verify_runs[-1]}  (req/s p50_ms p99_ms requests)"
done
col() { local n=$1; shift; printf '%s\n' "$@" | awk -v n="$n" '{print $n}' | median; }
h_rps=$(col 1 "${health_runs[@]}"); h_p50=$(col 2 "${health_runs[@]}"); h_p99=$(col 3 "${health_runs[@]}")
v_rps=$(col 1 "${verify_runs[@]}"); v_p50=$(col 2 "${verify_runs[@]}"); v_p99=$(col 3 "${verify_runs[@]}")
ratio=$(python3 -c "print(f'{$v_rps / $h_rps * 100:.1f}')")
stop_sessiond

memory=$("./$BUILD/bench/store_memory" "$SESSIONS")

# ---------------------------------------------------------------------------------------------
# Redis store
mkdir -p "$tmp/redis"
private_redis_start "$tmp/redis" || { echo "bench: redis-server did not start"; exit 1; }
redis_port=$PRIVATE_REDIS_PORT
redis_url=$PRIVATE_REDIS_URL
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
# Prints the value of one INFO field.
info_field() { rcli info "$1" | tr -d '\r' | sed -n "s/^$2://p"; }
# Prints "commands scripts reads" from one INFO call: total_commands_processed (commands run inside
# Lua scripts included), EVAL/EVALSHA calls (what the verify path sends: one per round trip), and
# total_reads_processed (socket reads by Redis).
info_counts() {
  rcli info stats commandstats | tr -d '\r' | python3 -c '
import re, sys
text = sys.stdin.read()
def field(name):
    m = re.search(r"^" + name + r":(\d+)", text, re.M)
    return int(m.group(1)) if m else 0
scripts = sum(int(n) for n in re.findall(r"^cmdstat_eval(?:sha)?(?:_ro)?:calls=(\d+)", text, re.M))
print(field("total_commands_processed"), scripts, field("total_reads_processed"))'
}
# Prints the value of one sessiond /metrics series, or nothing when it is not exposed.
metric() { curl -sf "$base/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

start_sessiond redis-data --store "$redis_url"
access=$(create_session)
curl -sf "$base/api/v1/auth/verify" -H "Authorization: Bearer $access" >/dev/null

# redis-benchmark runs a request count, not a duration: enough for about DURATION at ~85k/s.
case $DURATION in
  *m) seconds=$(( ${DURATION%m} * 60 )) ;;
  *s) seconds=${DURATION%s} ;;
  *) seconds=$DURATION ;;
esac
REDIS_REQUESTS=${REDIS_REQUESTS:-$(( seconds * 85000 ))}
raw_cmd=(redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get -c "$CONNECTIONS" -n "$REDIS_REQUESTS" --csv)
# Prints "requests_per_second p50_ms p99_ms" for one redis-benchmark run.
measure_raw() {
  "${raw_cmd[@]}" | python3 -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if r and r[0] == "GET"]
if not rows:
    sys.exit("bench: no GET line in the redis-benchmark output")
r = rows[-1]
print("%.0f %.3f %.3f" % (float(r[1]), float(r[4]), float(r[6])))'
}

has_client_counters=no
[ -n "$(metric sessiond_redis_commands_written_total)" ] && [ -n "$(metric sessiond_redis_writes_total)" ] \
  && has_client_counters=yes

redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get -c "$CONNECTIONS" -n 100000 -q >/dev/null  # warm-up
wrk -t1 -c8 -d2s -H "Authorization: Bearer $access" "$base/api/v1/auth/verify" >/dev/null  # warm-up
raw_runs=(); rverify_runs=(); per_verify=(); scripts_per_verify=(); per_read=(); per_write=()
for i in $(seq 1 "$RUNS"); do
  raw_runs+=("$(measure_raw)")
  read -r c0 e0 r0 < <(info_counts)
  if [ "$has_client_counters" = yes ]; then
    w0=$(metric sessiond_redis_writes_total); cw0=$(metric sessiond_redis_commands_written_total)
  fi
  out=$(measure -H "Authorization: Bearer $access" "$base/api/v1/auth/verify")
  read -r c1 e1 r1 < <(info_counts)
  rverify_runs+=("$out")
  requests=$(printf '%s' "$out" | awk '{print $4}')
  # Less the INFO call that read c0 (counted after it answered).
  per_verify+=("$(python3 -c "print(f'{($c1 - $c0 - 1) / $requests:.2f}')")")
  scripts_per_verify+=("$(python3 -c "print(f'{($e1 - $e0) / $requests:.3f}')")")
  per_read+=("$(python3 -c "print(f'{($e1 - $e0) / max($r1 - $r0 - 1, 1):.1f}')")")
  if [ "$has_client_counters" = yes ]; then
    w1=$(metric sessiond_redis_writes_total); cw1=$(metric sessiond_redis_commands_written_total)
    per_write+=("$(python3 -c "print(f'{($cw1 - $cw0) / max($w1 - $w0, 1):.1f}')")")
  fi
  echo "run $i: redis-benchmark GET ${raw_runs[-1]} | verify (redis) ${rverify_runs[-1]}" \
    "| per verify: ${scripts_per_verify[-1]} EVALSHA, ${per_verify[-1]} commands;" \
    "EVALSHA per Redis read ${per_read[-1]}${per_write:+; commands per write ${per_write[-1]}}"
done
raw_rps=$(col 1 "${raw_runs[@]}"); raw_p50=$(col 2 "${raw_runs[@]}"); raw_p99=$(col 3 "${raw_runs[@]}")
rv_rps=$(col 1 "${rverify_runs[@]}"); rv_p50=$(col 2 "${rverify_runs[@]}"); rv_p99=$(col 3 "${rverify_runs[@]}")
redis_ratio=$(python3 -c "print(f'{$rv_rps / $raw_rps * 100:.1f}')")
cmds_per_verify=$(printf '%s\n' "${per_verify[@]}" | median)
scripts_per=$(printf '%s\n' "${scripts_per_verify[@]}" | median)
cmds_per_read=$(printf '%s\n' "${per_read[@]}" | median)
if [ "$has_client_counters" = yes ]; then
  cmds_per_write=$(printf '%s\n' "${per_write[@]}" | median)
else
  cmds_per_write="n/a (/metrics has no sessiond_redis_commands_written_total / sessiond_redis_writes_total)"
fi
stop_sessiond

# Redis memory per live session: sessiond is stopped, so only the bench tool writes.
mem_before=$(info_field memory used_memory)
live_before=$(rcli get sd:live | tr -d '\r')
created=$("./$BUILD/bench/redis_sessions" "$redis_url" "$REDIS_SESSIONS")
mem_after=$(info_field memory used_memory)
live_after=$(rcli get sd:live | tr -d '\r')
[ $(( ${live_after:-0} - ${live_before:-0} )) -eq "$REDIS_SESSIONS" ] \
  || { echo "bench: expected $REDIS_SESSIONS new sessions counted in sd:live, found $(( ${live_after:-0} - ${live_before:-0} ))"; exit 1; }
redis_bytes=$(( (mem_after - mem_before) / REDIS_SESSIONS ))
redis_mib=$(python3 -c "print(f'{($mem_after - $mem_before) / 1048576:.1f}')")
redis_version=$(info_field server redis_version)
private_redis_stop "$tmp/redis"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
result="bench/results/verify-$stamp.md"
{
  echo "# sessiond bench, $stamp"
  echo
  echo "Machine: $(nproc) cores, $(uname -m); wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $RUNS runs,"
  echo "embedded defaults (memory store, SQLite), wrk and sessiond sharing the machine."
  echo
  echo "| endpoint | requests/s | p50 ms | p99 ms |"
  echo "|---|---|---|---|"
  echo "| GET /healthz (baseline) | $h_rps | $h_p50 | $h_p99 |"
  echo "| GET /api/v1/auth/verify | $v_rps | $v_p50 | $v_p99 |"
  echo
  echo "verify / healthz = **$ratio %** (target: at least 60 %)"
  echo
  echo "Memory store: $memory (target: under 1 KiB per live session)"
  echo
  echo "## Redis store"
  echo
  echo "A private redis-server $redis_version (\`--save '' --appendonly no\`) on loopback, sessiond with"
  echo "\`--store redis://127.0.0.1:PORT\`, all sharing the machine; raw baseline and verify alternate, median"
  echo "of $RUNS runs each, both at $CONNECTIONS connections."
  echo
  echo "| what | requests/s | p50 ms | p99 ms |"
  echo "|---|---|---|---|"
  echo "| \`redis-benchmark -t get -c $CONNECTIONS -n $REDIS_REQUESTS\` (raw Redis, no pipelining) | $raw_rps | $raw_p50 | $raw_p99 |"
  echo "| GET /api/v1/auth/verify, Redis store (wrk -t$THREADS -c$CONNECTIONS -d$DURATION) | $rv_rps | $rv_p50 | $rv_p99 |"
  echo
  echo "| figure | value | target |"
  echo "|---|---|---|"
  echo "| verify (Redis store) / raw redis-benchmark GET | **$redis_ratio %** | at least 70 % |"
  echo "| verify p99 at $CONNECTIONS connections | **$rv_p99 ms** | under 5 ms |"
  echo "| commands per pipeline write (client counters) | $cmds_per_write | |"
  echo "| Redis round trips (EVAL/EVALSHA calls, INFO commandstats) per verify | $scripts_per | 1 |"
  echo "| Redis commands executed per verify, those inside the script included (total_commands_processed) | $cmds_per_verify | |"
  echo "| EVALSHA per Redis socket read (server side; a read may carry several client writes) | $cmds_per_read | |"
  echo "| Redis memory per live session (INFO used_memory, +$REDIS_SESSIONS sessions, 5 per user) | **$redis_bytes bytes** (+$redis_mib MiB) | under 600 bytes |"
  echo
  echo "Per run (req/s p50_ms p99_ms [requests]):"
  echo
  for i in $(seq 1 "$RUNS"); do
    r_raw=$(awk '{print $1}' <<<"${raw_runs[$((i-1))]}"); r_ver=$(awk '{print $1}' <<<"${rverify_runs[$((i-1))]}")
    echo "- run $i: redis-benchmark ${raw_runs[$((i-1))]}; verify ${rverify_runs[$((i-1))]} ($(python3 -c "print(f'{$r_ver / $r_raw * 100:.1f}')") % of raw); EVALSHA/verify ${scripts_per_verify[$((i-1))]}; commands/verify ${per_verify[$((i-1))]}; EVALSHA/read ${per_read[$((i-1))]}"
  done
  echo
  echo "Sessions for the memory figure: bench/redis_sessions ($created)."
  echo
  echo "Command: \`RUNS=$RUNS DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS SESSIONS=$SESSIONS REDIS_SESSIONS=$REDIS_SESSIONS bash bench/run.sh\`"
} > "$result"
cp "$result" bench/results/latest.md
cat "$result"
