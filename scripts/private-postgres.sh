# shellcheck shell=bash
# A throwaway PostgreSQL 15 cluster for tests: source this file, then
#
#   private_postgres_start DIR   creates the cluster in DIR (an empty directory) the first time, and
#                                starts it on a free loopback port (the same port again when DIR was
#                                started before); sets PRIVATE_POSTGRES_PORT, PRIVATE_POSTGRES_PID and
#                                PRIVATE_POSTGRES_URL and prints the URL
#   private_postgres_stop DIR    stops it (pg_ctl stop -m fast, then SIGKILL by PID); DIR is kept, so
#                                it can be started again on the same port and data
#
# Only the server in DIR is touched: nothing is stopped by name. The cluster trusts every local
# connection (--auth=trust), listens on 127.0.0.1 and on a Unix socket in DIR, and runs with
# fsync=off: tests only, never data anyone wants to keep.
#
# initdb refuses to run as root, so as root every server command runs as the postgres user
# (runuser) and DIR is handed over to it (its parent directories must let that user through, as
# /tmp does). The binaries come from $SESSIOND_PGBIN, by default
# /usr/lib/postgresql/15/bin (Debian keeps them off PATH).

: "${SESSIOND_PGBIN:=/usr/lib/postgresql/15/bin}"

_private_postgres_run() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

_private_postgres_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

private_postgres_start() {
  local dir=${1:?usage: private_postgres_start DIR}
  local pgbin=$SESSIOND_PGBIN
  if [[ ! -x $pgbin/initdb || ! -x $pgbin/pg_ctl ]]; then
    echo "private-postgres: no PostgreSQL 15 in $pgbin: run scripts/install-deps.sh (make deps)" >&2
    return 1
  fi
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd) || return 1
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$dir" || return 1
  fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    if ! _private_postgres_run "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
      echo "private-postgres: initdb failed; its log:" >&2
      cat "$dir/initdb.log" >&2
      return 1
    fi
  fi
  # The port is kept in DIR so that a restart comes back where the clients look for it. A port
  # picked now may be taken by someone else before the server binds it: then pick another.
  local port attempts=5 fixed=0 i
  if [[ -f $dir/port ]]; then
    port=$(<"$dir/port")
    fixed=1
    attempts=1
  fi
  for ((i = 0; i < attempts; i++)); do
    [[ $fixed -eq 1 ]] || port=$(_private_postgres_free_port) || return 1
    if _private_postgres_run "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null; then
      echo "$port" >"$dir/port"
      # Read by the scripts that source this file.
      # shellcheck disable=SC2034
      PRIVATE_POSTGRES_PORT=$port
      # shellcheck disable=SC2034
      PRIVATE_POSTGRES_PID=$(head -n1 "$dir/data/postmaster.pid")
      PRIVATE_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
      echo "$PRIVATE_POSTGRES_URL"
      return 0
    fi
  done
  echo "private-postgres: could not start PostgreSQL; its log:" >&2
  tail -n 20 "$dir/server.log" >&2 || true
  return 1
}

private_postgres_stop() {
  local dir=${1:?usage: private_postgres_stop DIR}
  local pid
  [[ -f $dir/data/postmaster.pid ]] || return 0
  pid=$(head -n1 "$dir/data/postmaster.pid")
  if _private_postgres_run "$SESSIOND_PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop \
    >/dev/null 2>&1; then
    return 0
  fi
  # pg_ctl could not stop it in time: kill the postmaster by the PID it wrote (its children exit
  # when it is gone).
  if [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; then
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  fi
  rm -f "$dir/data/postmaster.pid"
}
