#!/usr/bin/env bash
# sessionctl driven as its users drive it: the real binary against a real sessiond started on port
# 0, each "device" with its own XDG_CONFIG_HOME.
#
#   sessionctl_test.sh SESSIONCTL SESSIOND MODE
#
# MODE memory: the embedded store. MODE redis: the Redis store on the server of
# SESSIOND_TEST_REDIS_URL (make test starts one; unset is a failure), databases 13 to 15, which
# this test empties first (two sessionds with their own SQLite files must not share user ids in
# one database). MODE https: sessionctl through nginx terminating TLS with a throwaway certificate.
set -uo pipefail
sessionctl=$1
sessiond=$2
mode=$3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessionctl-test.XXXXXX")
pids=()
servers=()  # sessiond processes: stopped (SIGTERM) and their logs checked before the end
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$failures" -eq 0 ]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# The environment of every command: no variable of the caller changes what it does.
unset SESSIONCTL_SERVER SESSIOND_ADMIN_KEY SSL_CERT_FILE SSL_CERT_DIR
export HOME=$tmp/home TZ=UTC
mkdir -p "$HOME"
for tool in jq curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/install-deps.sh"; exit 1; }
done

# ---- helpers ----

# A device: sessionctl with its own configuration folder ($tmp/<name>/sessionctl/session.json).
device=a
ctl() { XDG_CONFIG_HOME="$tmp/$device" "$sessionctl" "$@"; }
session_file() { echo "$tmp/${1:-$device}/sessionctl/session.json"; }
field() { jq -r "$1" "$(session_file "${2:-$device}")"; }

# expect STATUS PATTERN -- COMMAND...: runs the command with $input (if set) on standard input,
# then checks its exit status and that its output (stdout and stderr) matches PATTERN (grep -E).
# Leaves the output in $out (stdout) and $err (stderr).
expect() {
  local want=$1 pattern=$2
  shift 3
  local status
  out=$("$@" 2>"$tmp/stderr" <<<"${input:-}")
  status=$?
  err=$(cat "$tmp/stderr")
  if [ "$status" -ne "$want" ]; then
    fail "'$*' exited $status, expected $want; stdout: $out; stderr: $err"
  elif ! grep -Eq -- "$pattern" <<<"$out"$'\n'"$err"; then
    fail "'$*' did not say '$pattern'; stdout: $out; stderr: $err"
  fi
}
# check DESCRIPTION TEST...: a condition that must hold.
check() {
  local what=$1
  shift
  "$@" || fail "$what"
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Rewrites a field of a device's session file in place (same inode and mode), as time would.
set_field() {
  local file
  file=$(session_file)
  jq "$1" "$file" >"$tmp/edited.json" && cat "$tmp/edited.json" >"$file"
}
# Polls COMMAND every 0.1 s until it succeeds or 15 s have passed.
eventually() {
  local deadline=$((SECONDS + 15))
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# start_sessiond NAME STORE_URL [EXTRA_TOML]: sessiond on a free port with its data in
# $tmp/NAME; sets $port and $dir.
start_sessiond() {
  dir=$tmp/$1
  mkdir -p "$dir"
  printf 'data_dir = "%s"\n\n[store]\nurl = "%s"\n\n%s\n' "$dir" "$2" "${3:-}" >"$dir/sessiond.toml"
  : >"$dir/sessiond.log"
  env $(env | sed -n 's/^\(SESSIOND_[A-Za-z0-9_]*\)=.*/-u \1/p') \
    "$sessiond" --config "$dir/sessiond.toml" --listen 127.0.0.1:0 >"$dir/sessiond.log" 2>&1 &
  pids+=($!)
  servers+=("$!:$dir/sessiond.log")
  port=""
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/sessiond.log" | head -n1)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "sessiond did not start:"
  cat "$dir/sessiond.log"
  exit 1
}

PW='correct horse battery staple'
PHONE_UA='Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1'

# ---- the user's commands, the admin's commands, exit statuses, the session file ----
main_suite() {
  local store=$1
  start_sessiond main "$store"
  local url=http://127.0.0.1:$port key_file=$dir/admin.key
  local key
  key=$(cat "$key_file")

  # Bad usage: 2, and --help everywhere: 0.
  device=a
  expect 2 'subcommand is required' -- ctl
  expect 2 'not expected' -- ctl whoami --no-such-flag
  expect 2 'login needs --email' -- ctl login
  expect 2 'scheme must be http or https' -- ctl --server ftp://example.com whoami
  expect 2 'not a session id' -- ctl revoke not-a-session-id
  expect 2 'SESSION_ID or --others' -- ctl revoke
  expect 2 'admin-key-file' -- ctl --server "$url" admin stats
  expect 2 'cannot read the admin key file' -- ctl --server "$url" admin --admin-key-file "$tmp/none" stats
  expect 2 'must be a JSON object' -- ctl --server "$url" admin --admin-key-file "$key_file" \
    users create --email x@example.com --role GUEST --attributes '[1]'
  expect 0 'Usage: sessionctl \[OPTIONS\] SUBCOMMAND' -- ctl --help
  expect 0 '--email' -- ctl login --help
  expect 0 '--others' -- ctl revoke --help
  expect 0 '--follow' -- ctl admin events --help
  expect 0 '--password' -- ctl admin users update --help

  # Not signed in: 1. Cannot reach the server: 3 (refused; accepted but never answered).
  expect 1 'not signed in: run `sessionctl login' -- ctl whoami
  local closed silent_port
  closed=$(free_port)
  input=$PW expect 3 'connection refused' -- ctl --server "http://127.0.0.1:$closed" login --email ada@example.com
  expect 3 'connection refused' -- ctl --server "http://127.0.0.1:$closed" admin --admin-key-file "$key_file" stats
  python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$tmp/silent.port" &
  pids+=($!)
  eventually test -s "$tmp/silent.port"
  silent_port=$(cat "$tmp/silent.port")
  input=$PW expect 3 'did not answer within 1 s' -- ctl --timeout 1 --server "http://127.0.0.1:$silent_port" login --email ada@example.com
  check "no session file after failed sign-ins" test ! -e "$(session_file)"

  # Admin: create a user (the password piped in), with the key from a file.
  input=$PW expect 0 'Created user 1' -- ctl --server "$url" admin --admin-key-file "$key_file" \
    users create --email ada@example.com --role GUEST --password
  input=$PW expect 1 'already exists' -- ctl --server "$url" admin --admin-key-file "$key_file" \
    users create --email ada@example.com --role GUEST --password
  expect 1 'does not accept the key in SESSIOND_ADMIN_KEY' -- env SESSIOND_ADMIN_KEY=not-the-key "$sessionctl" --server "$url" admin stats
  local ada
  ada=$(ctl --server "$url" --json admin --admin-key-file "$key_file" users show 1 | jq -r .id)
  check "admin users show --json gives the id" test "$ada" = 1

  # Sign in by pipe: a wrong password is refused (1) and saves nothing.
  input='not the password' expect 1 'email or password is not correct' -- ctl --server "$url" login --email ada@example.com
  check "no session file after a refused sign-in" test ! -e "$(session_file)"
  input=$PW expect 0 "Signed in to $url as ada@example.com \(GUEST\)" -- ctl --server "$url" login --email ada@example.com
  check "session file is 0600" test "$(stat -c %a "$(session_file)")" = 600
  check "session folder is 0700" test "$(stat -c %a "$(dirname "$(session_file)")")" = 700
  check "session file names its server" test "$(field .server)" = "$url"
  local sid_a
  sid_a=$(field .session_id)
  check "no temporary file left" test "$(ls -A "$(dirname "$(session_file)")")" = session.json

  # Later commands use the saved session's server: no --server.
  expect 0 "ada@example\.com \(id 1, role GUEST\)" -- ctl whoami
  expect 0 "device +CLI, 127\.0\.0\.1" -- ctl whoami
  check "whoami --json: the user" test "$(ctl --json whoami | jq -r .user.email)" = ada@example.com
  check "whoami --json: this session" test "$(ctl --json whoami | jq -r .session.session_id)" = "$sid_a"
  expect 2 "you are signed in to $url, not http://127\.0\.0\.1:$closed" -- ctl --server "http://127.0.0.1:$closed" whoami

  # Signing in again replaces the saved session and ends the one it replaces.
  input=$PW expect 0 'Signed in' -- ctl login --email ada@example.com
  check "a new session id after a second sign-in" test "$(field .session_id)" != "$sid_a"
  check "the replaced session has ended" test \
    "$(curl -s "$url/admin/v1/users/1/sessions" -H "Authorization: Bearer $key" | jq length)" = 1
  sid_a=$(field .session_id)

  # A second device (sessionctl elsewhere) and a phone.
  device=b
  input=$PW expect 0 'Signed in' -- ctl --server "$url" login --email ada@example.com
  local sid_b
  sid_b=$(field .session_id)
  curl -s -o /dev/null -X POST "$url/api/v1/auth/login" -H 'Content-Type: application/json' \
    -A "$PHONE_UA" -d "{\"email\":\"ada@example.com\",\"password\":\"$PW\"}"
  device=a

  # The list: a table with the current session marked, and the same as JSON.
  expect 0 "^\*  $sid_a  CLI  " -- ctl sessions
  check "sessions: the phone is listed" grep -q 'iPhone · Safari' <<<"$out"
  check "sessions: the other CLI session is listed unmarked" grep -Eq "^   $sid_b  CLI" <<<"$out"
  local list
  list=$(ctl --json sessions)
  check "sessions --json: three sessions" test "$(jq length <<<"$list")" = 3
  check "sessions --json: one current, this one" test \
    "$(jq -r '[.[] | select(.current)] | map(.session_id) | join(",")' <<<"$list")" = "$sid_a"
  local phone
  phone=$(jq -r '.[] | select(.device_info == "iPhone · Safari") | .session_id' <<<"$list")

  # Revoke one by id; an unknown id is refused.
  expect 0 "Signed out session $phone" -- ctl revoke "$phone"
  check "two sessions left" test "$(ctl --json sessions | jq length)" = 2
  expect 1 'none of your live sessions has the id' -- ctl revoke 00000000-0000-4000-8000-000000000000

  # revoke --others asks on a terminal; "n" ends nothing.
  expect 1 'cancelled: no session was signed out' -- python3 "$here/pty_run.py" \
    --answer 'Sign out this session? [y/N]' n -- env XDG_CONFIG_HOME="$tmp/a" "$sessionctl" revoke --others
  check "the confirmation listed the other session" grep -q "$sid_b" <<<"$out"
  check "still two sessions after no" test "$(ctl --json sessions | jq length)" = 2
  expect 0 'Signed out 1 other session\.' -- ctl revoke --others --yes

  # The other device learns why, and its stale file is removed.
  device=b
  expect 1 "has ended: another of your sessions signed out all the others \(revoked_others\)\. Sign in again: sessionctl --server $url login --email ada@example\.com" -- ctl whoami
  check "stale session file removed (revoked_others)" test ! -e "$(session_file)"
  expect 1 'not signed in' -- ctl whoami

  # Ended elsewhere by an admin (the key from SESSIOND_ADMIN_KEY): --json says so, exit 1.
  input=$PW expect 0 'Signed in' -- ctl --server "$url" login --email ada@example.com
  sid_b=$(field .session_id)
  device=a
  expect 0 "Ended session $sid_b" -- env SESSIOND_ADMIN_KEY="$key" XDG_CONFIG_HOME="$tmp/a" "$sessionctl" admin sessions revoke "$sid_b"
  device=b
  expect 1 'an administrator ended it \(revoked_by_admin\)' -- ctl --json whoami
  check "--json error: code" test "$(jq -r .error.code <<<"$out")" = session_revoked
  check "--json error: reason" test "$(jq -r .error.reason <<<"$out")" = revoked_by_admin
  check "--json error: exit_status" test "$(jq -r .error.exit_status <<<"$out")" = 1
  check "stale session file removed (revoked_by_admin)" test ! -e "$(session_file)"

  # The access token has expired (by this machine's clock): refreshed first, both tokens rotate.
  device=a
  local at rt
  at=$(field .access_token)
  rt=$(field .refresh_token)
  set_field '.access_expires_at = "2000-01-01T00:00:00Z"'
  expect 0 'ada@example\.com' -- ctl whoami
  check "refresh: new access token" test "$(field .access_token)" != "$at"
  check "refresh: new refresh token" test "$(field .refresh_token)" != "$rt"
  check "refresh: same session" test "$(field .session_id)" = "$sid_a"
  check "refresh: still 0600" test "$(stat -c %a "$(session_file)")" = 600
  check "refresh: the access token expiry moved on" test "$(field .access_expires_at | cut -c1-4)" != 2000

  # The file's mode: looser than 0600 is refused with the fix; a folder writable by others too.
  chmod 644 "$(session_file)"
  expect 2 "may read it \(mode 0644, expected 0600\)\. Run \`chmod 600 $(session_file)\`" -- ctl whoami
  expect 2 'mode 0644' -- ctl --json sessions
  check "--json error for the mode: exit_status 2" test "$(jq -r .error.exit_status <<<"$out")" = 2
  chmod 600 "$(session_file)"
  chmod 770 "$(dirname "$(session_file)")"
  expect 2 'writable by other users \(mode 0770\)' -- ctl whoami
  chmod 700 "$(dirname "$(session_file)")"
  expect 0 'ada@example\.com' -- ctl whoami

  # passwd: the other sessions end (password_changed), this one goes on.
  device=b
  input=$PW expect 0 'Signed in' -- ctl --server "$url" login --email ada@example.com
  device=a
  input=$'wrong password\nanother long passphrase' expect 1 'current password is not correct' -- ctl passwd
  input=$'correct horse battery staple\nshort' expect 1 'refused the new password: .*at least 10' -- ctl passwd
  input=$'correct horse battery staple\nanother long passphrase' expect 0 'Password changed' -- ctl passwd
  device=b
  expect 1 "the account's password was changed \(password_changed\)" -- ctl whoami
  device=a
  expect 0 'ada@example\.com' -- ctl whoami
  PW='another long passphrase'

  # Admin: users show/update, sessions list, stats, events (the key from SESSIOND_ADMIN_KEY).
  export SESSIOND_ADMIN_KEY=$key
  expect 0 'email +ada@example\.com' -- ctl admin users show 1
  expect 1 'there is no user with id 999' -- ctl admin users show 999
  expect 0 '"hotel_id":7' -- ctl --json admin users update 1 --attributes '{"hotel_id":7}'
  check "users update --json: attributes" test "$(jq -r .attributes.hotel_id <<<"$out")" = 7
  expect 2 'nothing to change' -- ctl admin users update 1
  expect 0 "$sid_a" -- ctl admin sessions list --user 1
  check "admin sessions list --json: one session" test "$(ctl --json admin sessions list --user 1 | jq length)" = 1
  expect 0 'live sessions +1 \(GUEST 1\)' -- ctl admin stats
  check "admin stats --json" test "$(ctl --json admin stats | jq .live_sessions)" = 1
  expect 0 'login_succeeded +user 1' -- ctl admin events --user 1 --type login_succeeded
  check "admin events --json: only that type" test \
    "$(ctl --json admin events --user 1 --type login_succeeded | jq -r '[.[].type] | unique | join(",")')" = login_succeeded
  expect 2 'expected an RFC 3339 time' -- ctl admin events --since yesterday
  check "admin events --since 1h" test "$(ctl --json admin events --since 1h --limit 1 | jq length)" = 1

  # admin events --follow prints new events as they happen.
  XDG_CONFIG_HOME="$tmp/a" "$sessionctl" --json admin events --follow --interval 100ms \
    --type login_succeeded >"$tmp/follow.out" 2>&1 &
  local follower=$!
  pids+=($follower)
  device=b
  input=$PW expect 0 'Signed in' -- ctl --server "$url" login --email ada@example.com
  sid_b=$(field .session_id)
  check "events --follow shows the new sign-in" eventually grep -q "\"session_id\":\"$sid_b\"" "$tmp/follow.out"
  kill "$follower"
  check "events --follow prints JSON lines" jq -e -s 'all(.[]; .type == "login_succeeded")' "$tmp/follow.out" >/dev/null

  # An admin ends every session of the user: the devices learn it; logout of an ended session is
  # not an error.
  expect 0 'Ended 2 sessions of user 1' -- ctl admin sessions revoke --user 1 --yes
  unset SESSIOND_ADMIN_KEY
  device=a
  expect 0 'had already ended: an administrator ended it \(revoked_by_admin\)' -- ctl logout
  check "stale session file removed by logout" test ! -e "$(session_file)"

  # logout: the session ends on the server too; logging out twice is fine.
  input=$PW expect 0 'Signed in' -- ctl --server "$url" login --email ada@example.com
  at=$(field .access_token)
  expect 0 "Signed out of $url" -- ctl logout
  check "session file removed by logout" test ! -e "$(session_file)"
  check "the access token stops working at logout" test \
    "$(curl -s "$url/api/v1/auth/verify" -H "Authorization: Bearer $at" | jq -r .reason)" = logout
  expect 0 'Not signed in: nothing to do' -- ctl logout
  expect 0 '"signed_out":false' -- ctl --json logout
  expect 1 'not signed in' -- ctl whoami

  # --json of the other commands parses.
  input=$PW expect 0 '' -- ctl --server "$url" --json login --email ada@example.com
  check "login --json: session_id" test "$(jq -r .session_id <<<"$out")" = "$(field .session_id)"
  check "login --json: no token in the output" test "$(jq -r 'has("access_token") or has("refresh_token")' <<<"$out")" = false
  expect 0 '"revoked":0' -- ctl --json revoke --others
  expect 0 '' -- ctl --json revoke "$(field .session_id)"
  check "revoke --json of this session: current" test "$(jq -r .current <<<"$out")" = true
  check "revoking this session removes the file" test ! -e "$(session_file)"

  # The password read from a terminal is not echoed.
  expect 0 'Signed in' -- python3 "$here/pty_run.py" --answer 'Password for ada@example.com: ' "$PW" \
    -- env XDG_CONFIG_HOME="$tmp/a" "$sessionctl" --server "$url" login --email ada@example.com
  check "the password was not echoed" test "$(grep -c "$PW" <<<"$out")" = 0
  expect 0 'Signed out' -- ctl logout
}

# ---- sign-in by SMS code: the code read from the file: sender's outbox, then typed in ----
# mobile_login NUMBER CODE_EDIT: runs `login --mobile NUMBER` with its standard input on a FIFO,
# waits for the code to reach $sms, and answers the code passed through sed CODE_EDIT ('' keeps
# it). Leaves the exit status in $status and the output in $out.
sms_lines() { if [ -e "$sms" ]; then wc -l <"$sms"; else echo 0; fi; }
sms_more_than() { [ "$(sms_lines)" -gt "$1" ]; }
mobile_login() {
  local number=$1 edit=$2 fifo=$tmp/code.fifo lines code
  rm -f "$fifo"
  mkfifo "$fifo"
  lines=$(sms_lines)
  ctl --server "$url" login --mobile "$number" <"$fifo" >"$tmp/mobile.out" 2>&1 &
  local ctl_pid=$!
  exec 7>"$fifo"
  if eventually sms_more_than "$lines"; then
    code=$(tail -n1 "$sms" | jq -r .code)
    [ -n "$edit" ] && code=$(sed "$edit" <<<"$code")
    echo "$code" >&7
  else
    fail "no code was sent to $number"
  fi
  exec 7>&-
  wait "$ctl_pid"
  status=$?
  out=$(cat "$tmp/mobile.out")
}

mobile_suite() {
  local sms=$tmp/sms.jsonl
  start_sessiond mobile "$1" "[otp]
sender = \"file:$sms\"
max_attempts = 2"
  local url=http://127.0.0.1:$port
  device=m

  mobile_login "+1 555 010 0300" ''
  check "login --mobile exits 0 ($out)" test "$status" -eq 0
  check "login --mobile names the user ($out)" grep -q "Signed in to $url as +15550100300 (GUEST)" <<<"$out"
  check "the code went to the E.164 number" test "$(tail -n1 "$sms" | jq -r .to)" = "+15550100300"
  expect 0 '\+15550100300 \(id 1, role GUEST\)' -- ctl whoami
  expect 0 'Signed out' -- ctl logout

  # A wrong code: exit 1, the reason and what to do next; nothing saved.
  mobile_login "+15550100300" 'y/0123456789/1234567890/'
  check "a wrong code exits 1 ($out)" test "$status" -eq 1
  check "a wrong code says what to do ($out)" grep -q 'that code is not right.*login --mobile' <<<"$out"
  check "no session file after a wrong code" test ! -e "$(session_file)"
  expect 1 'refused the number' -- ctl --server "$url" login --mobile "12"
}

# ---- refresh when the server says the access token has expired (access_ttl = 1s) ----
expiry_suite() {
  local store=$1
  start_sessiond short "$store" $'[tokens]\naccess_ttl = "1s"'
  local url=http://127.0.0.1:$port
  device=c
  input=$PW expect 0 'Created user' -- ctl --server "$url" admin --admin-key-file "$dir/admin.key" \
    users create --email grace@example.com --role GUEST --password
  input=$PW expect 0 'Signed in' -- ctl --server "$url" login --email grace@example.com
  local at rt
  at=$(field .access_token)
  rt=$(field .refresh_token)
  token_expired() {
    [ "$(curl -s "$url/api/v1/auth/verify" -H "Authorization: Bearer $at" | jq -r .code)" = token_expired ]
  }
  check "the access token expires on the server" eventually token_expired
  # This machine's clock still believes in it: the server's token_expired makes the refresh.
  set_field '.access_expires_at = "2100-01-01T00:00:00Z"'
  expect 0 'grace@example\.com' -- ctl whoami
  check "token_expired: new access token" test "$(field .access_token)" != "$at"
  check "token_expired: new refresh token" test "$(field .refresh_token)" != "$rt"
  expect 0 'Signed out' -- ctl logout
}

# ---- https through nginx with a throwaway certificate ----
https_suite() {
  command -v nginx >/dev/null || { echo "nginx is missing: run scripts/install-deps.sh"; exit 1; }
  start_sessiond main memory://
  local backend=$port key_file=$dir/admin.key
  # The certificate names localhost only: 127.0.0.1 is not its name.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null ||
    { echo "openssl could not make a certificate"; exit 1; }
  local tls_port
  tls_port=$(free_port)
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log stderr warn;
events {}
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    location / {
      proxy_pass http://127.0.0.1:$backend;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
  nginx -e stderr -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx/log" 2>&1 &
  pids+=($!)
  nginx_ready() { curl -s -o /dev/null --cacert "$tmp/cert.pem" "https://localhost:$tls_port/healthz"; }
  eventually nginx_ready || { echo "nginx did not start:"; cat "$tmp/nginx/log"; exit 1; }
  local url=https://localhost:$tls_port
  device=t
  input=$PW expect 0 'Created user' -- ctl --server "$url" --cacert "$tmp/cert.pem" \
    admin --admin-key-file "$key_file" users create --email ada@example.com --role GUEST --password

  input=$PW expect 3 "not trusted \(self.signed certificate\); if it comes from a private CA, pass that CA's certificate with --cacert FILE" -- \
    ctl --server "$url" login --email ada@example.com
  input=$PW expect 3 'not trusted \([Ii][Pp] address mismatch\)' -- \
    ctl --server "https://127.0.0.1:$tls_port" --cacert "$tmp/cert.pem" login --email ada@example.com
  input=$PW expect 3 'does not speak TLS there' -- ctl --server "https://127.0.0.1:$backend" login --email ada@example.com
  check "no session file after failed TLS" test ! -e "$(session_file)"

  input=$PW expect 0 "Signed in to $url as ada@example\.com" -- ctl --server "$url" --cacert "$tmp/cert.pem" login --email ada@example.com
  expect 0 'ada@example\.com' -- ctl --cacert "$tmp/cert.pem" whoami
  expect 0 'ada@example\.com' -- env SSL_CERT_FILE="$tmp/cert.pem" XDG_CONFIG_HOME="$tmp/t" "$sessionctl" whoami
  check "sessions over https" test "$(ctl --cacert "$tmp/cert.pem" --json sessions | jq -r '.[0].device_info')" = CLI
  expect 3 'not trusted' -- ctl whoami
  check "an untrusted server does not end the session" test -e "$(session_file)"
  expect 0 "Signed out of $url" -- ctl --cacert "$tmp/cert.pem" logout
}

case $mode in
  memory)
    main_suite memory://
    expiry_suite memory://
    mobile_suite memory://
    ;;
  redis)
    if [ -z "${SESSIOND_TEST_REDIS_URL:-}" ]; then
      echo "SESSIOND_TEST_REDIS_URL is not set: the Redis tests need a redis-server (make test" \
        "starts one; or run redis-server and export SESSIOND_TEST_REDIS_URL=redis://127.0.0.1:PORT)"
      exit 1
    fi
    redis_base=${SESSIOND_TEST_REDIS_URL%/}
    redis_base=$(sed -E 's|(redis://[^/]*)/[0-9]+$|\1|' <<<"$redis_base")
    for db in 13 14 15; do
      redis-cli -u "$redis_base/$db" FLUSHDB >/dev/null || { echo "cannot empty $redis_base/$db"; exit 1; }
    done
    main_suite "$redis_base/14"
    expiry_suite "$redis_base/15"
    mobile_suite "$redis_base/13"
    ;;
  https)
    https_suite
    ;;
  *)
    echo "unknown mode $mode (memory, redis or https)"
    exit 2
    ;;
esac

# Every sessiond exits 0 on SIGTERM, and no sanitizer found anything in it (ASan/UBSan builds).
for server in "${servers[@]}"; do
  pid=${server%%:*}
  log=${server#*:}
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  status=$?
  [ "$status" -eq 0 ] || fail "sessiond ($log) exited $status after SIGTERM"
  if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    fail "sanitizer report in $log"
  fi
done

[ "$failures" -eq 0 ] && echo "sessionctl $mode OK"
exit "$failures"
