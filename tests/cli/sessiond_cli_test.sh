#!/usr/bin/env bash
# sessiond's command line: configuration errors name the key and exit 2, `migrate` applies the
# schema and exits 0, a port already taken is refused.
set -uo pipefail
sessiond=$1
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_exit STATUS PATTERN -- COMMAND...: runs the command, checks its status and stderr.
expect_exit() {
  local want=$1 pattern=$2; shift 3
  local err status
  err=$("$@" 2>&1 >/dev/null); status=$?
  [ "$status" -eq "$want" ] || fail "'$*' exited $status, expected $want: $err"
  grep -q -- "$pattern" <<<"$err" || fail "'$*' did not say '$pattern': $err"
}

cd "$tmp"
printf '[server]\nbogus = 1\n' > unknown-key.toml
expect_exit 2 'server.bogus' -- "$sessiond" --config unknown-key.toml --data-dir d1
printf '[tokens]\naccess_ttl = "soon"\n' > bad-duration.toml
expect_exit 2 'tokens.access_ttl' -- "$sessiond" --config bad-duration.toml --data-dir d1
printf '[roles.GUEST]\non_limit = "sometimes"\n' > bad-policy.toml
expect_exit 2 'roles.GUEST.on_limit' -- "$sessiond" --config bad-policy.toml --data-dir d1
expect_exit 2 'missing.toml' -- "$sessiond" --config missing.toml
expect_exit 2 'SESSIOND_TOKENS_REFRESH_GRACE' -- env SESSIOND_TOKENS_REFRESH_GRACE=never "$sessiond" --data-dir d1
expect_exit 2 'SESSIOND_BOGUS' -- env SESSIOND_BOGUS=1 "$sessiond" --data-dir d1
expect_exit 2 'listen' -- "$sessiond" --listen nowhere --data-dir d1
expect_exit 2 'tokens.signing_key_file' -- env SESSIOND_TOKENS_SIGNING_KEY_FILE="$tmp/none.key" "$sessiond" --data-dir d1 --listen 127.0.0.1:0
expect_exit 2 'not expected' -- "$sessiond" --no-such-flag

# migrate: creates the data directory 0700 and the schema, then exits 0.
out=$("$sessiond" migrate --data-dir d2 2>&1) || fail "migrate failed: $out"
[ -f d2/sessiond.db ] || fail "migrate did not create d2/sessiond.db"
[ "$(stat -c %a d2)" = 700 ] || fail "data_dir is $(stat -c %a d2), expected 700"
"$sessiond" migrate --data-dir d2 >/dev/null 2>&1 || fail "a second migrate failed"

# Keys are generated 0600 at first start; a port that is taken is refused (exit 1).
"$sessiond" --data-dir d3 --listen 127.0.0.1:0 2>d3.log &
pids+=($!)
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' d3.log | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "sessiond did not start: $(cat d3.log)"
[ "$(stat -c %a d3/admin.key)" = 600 ] || fail "admin.key is not 0600"
[ "$(stat -c %a d3/signing.key)" = 600 ] || fail "signing.key is not 0600"
expect_exit 1 'cannot listen' -- "$sessiond" --data-dir d4 --listen "127.0.0.1:$port"

# SIGTERM: exits 0.
kill -TERM "${pids[0]}"
wait "${pids[0]}"; status=$?
[ "$status" -eq 0 ] || fail "SIGTERM exit status $status"
pids=()

# Secrets never reach the log: a store URL with a password (Redis down at start is not fatal).
free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$sessiond" --data-dir d5 --listen 127.0.0.1:0 \
  --store "redis://sessiond:s3cret-Pw@127.0.0.1:$free_port/0" 2>d5.log &
pids+=($!)
for _ in $(seq 1 200); do
  grep -q 'listening on' d5.log && break
  sleep 0.05
done
grep -q 'listening on' d5.log || fail "sessiond on an absent Redis did not start: $(cat d5.log)"
sleep 0.3
if grep -q 's3cret-Pw' d5.log; then fail "the Redis password is in the log: $(grep s3cret-Pw d5.log)"; fi
kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null
pids=()

[ "$failures" -eq 0 ] && echo "sessiond CLI OK"
exit "$failures"
