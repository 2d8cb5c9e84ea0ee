#!/usr/bin/env bash
# make bench: HTTP load on the embedded defaults, and memory per live session.
#  1. starts a Release sessiond on a free loopback port with a temporary data directory;
#  2. signs one session in through the admin API;
#  3. runs wrk against GET /healthz (baseline) and GET /api/v1/auth/verify, alternating, RUNS times,
#     and takes the median requests/s and latencies of each;
#  4. runs bench/store_memory (1,000,000 sessions in the memory store, RSS before and after);
#  5. writes everything to bench/results/verify-<UTC time>.md and bench/results/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-1000000}

command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps)"; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"./$BUILD/sessiond" --data-dir "$tmp/data" --listen 127.0.0.1:0 2>"$tmp/sessiond.log" &
pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/sessiond.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "bench: sessiond did not start"; cat "$tmp/sessiond.log"; exit 1; }
base="http://127.0.0.1:$port"
key=$(cat "$tmp/data/admin.key")

user=$(curl -sf -X POST "$base/admin/v1/users" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"email":"bench@example.com","role":"GUEST"}')
user_id=$(printf '%s' "$user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tokens=$(curl -sf -X POST "$base/admin/v1/sessions" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d "{\"user_id\":$user_id}")
access=$(printf '%s' "$tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf "$base/api/v1/auth/verify" -H "Authorization: Bearer $access" >/dev/null

# Prints "requests_per_second p50_ms p99_ms" for one wrk run.
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
print("%.0f %.3f %.3f" % (rps, p50, p99))'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

wrk -t1 -c8 -d2s "$base/healthz" >/dev/null   # warm-up
health_runs=(); verify_runs=()
for i in $(seq 1 "$RUNS"); do
  health_runs+=("$(measure "$base/healthz")")
  verify_runs+=("$(measure -H "Authorization: Bearer $access" "$base/api/v1/auth/verify")")
  echo "run $i: healthz ${health_runs[-1]} | verify ${verify_runs[-1]}  (req/s p50_ms p99_ms)"
done
col() { local n=$1; shift; printf '%s\n' "$@" | awk -v n="$n" '{print $n}' | median; }
h_rps=$(col 1 "${health_runs[@]}"); h_p50=$(col 2 "${health_runs[@]}"); h_p99=$(col 3 "${health_runs[@]}")
v_rps=$(col 1 "${verify_runs[@]}"); v_p50=$(col 2 "${verify_runs[@]}"); v_p99=$(col 3 "${verify_runs[@]}")
ratio=$(python3 -c "print(f'{$v_rps / $h_rps * 100:.1f}')")
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

memory=$("./$BUILD/bench/store_memory" "$SESSIONS")

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
} > "$result"
cp "$result" bench/results/latest.md
cat "$result"
