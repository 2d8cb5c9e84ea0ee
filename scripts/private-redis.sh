# shellcheck shell=bash
# A throwaway redis-server for scripts (scripts/test.sh, bench/run.sh): source this file, then
#
#   private_redis_start DIR [ARG...]   starts redis-server as a daemon on a free loopback port, with
#                                      its pidfile (redis.pid), log (redis.log) and data in DIR (an
#                                      existing directory, e.g. from mktemp -d), without persistence
#                                      (ARGs come after and may turn it on); sets PRIVATE_REDIS_PORT,
#                                      PRIVATE_REDIS_PID and PRIVATE_REDIS_URL (redis://127.0.0.1:PORT)
#   private_redis_stop DIR             stops it by the PID in DIR/redis.pid and waits for it to exit
#                                      (SIGTERM, SIGKILL after 5 s); DIR is kept for the caller to
#                                      remove
#
# Only the server of DIR is touched: nothing is stopped by name. Another process may take the port
# between choosing it and the bind, so start returns only once the server answering on the port
# reports the process id of DIR/redis.pid (else it tries another port, 5 times).

_private_redis_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True when the server answering on port $2 is the one whose PID is in $1/redis.pid.
_private_redis_is_ours() {
  local pid info
  pid=$(cat "$1/redis.pid" 2>/dev/null) || return 1
  [[ -n $pid ]] || return 1
  info=$(redis-cli -h 127.0.0.1 -p "$2" info server 2>/dev/null) || return 1
  info=${info//$'\r'/}
  [[ $'\n'$info$'\n' == *$'\n'"process_id:$pid"$'\n'* ]]
}

private_redis_start() {
  local dir=${1:?usage: private_redis_start DIR [redis-server arguments...]}
  shift
  local port tool
  for tool in redis-server redis-cli python3; do
    if ! command -v "$tool" >/dev/null; then
      echo "private-redis: $tool not found: run scripts/install-deps.sh (make deps)" >&2
      return 1
    fi
  done
  if [[ ! -d $dir ]]; then
    echo "private-redis: $dir is not a directory" >&2
    return 1
  fi
  if [[ -s $dir/redis.pid ]] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    echo "private-redis: a server of $dir is running already" >&2
    return 1
  fi
  for _ in 1 2 3 4 5; do
    port=$(_private_redis_free_port) || return 1
    # A bad argument fails here; a port taken since it was chosen fails in the daemon (its log).
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" "$@" || break
    for _ in $(seq 100); do
      if _private_redis_is_ours "$dir" "$port"; then
        # shellcheck disable=SC2034  # for the caller
        PRIVATE_REDIS_PORT=$port
        # shellcheck disable=SC2034
        PRIVATE_REDIS_PID=$(cat "$dir/redis.pid")
        # shellcheck disable=SC2034
        PRIVATE_REDIS_URL="redis://127.0.0.1:$port"
        return 0
      fi
      sleep 0.05
    done
    private_redis_stop "$dir"
  done
  echo "private-redis: could not start redis-server; its log:" >&2
  cat "$dir/redis.log" >&2 2>/dev/null || true
  return 1
}

private_redis_stop() {
  local dir=${1:?usage: private_redis_stop DIR}
  local pid
  pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/redis.pid"
}
