#!/usr/bin/env bash
# make test: builds Release and ASan/UBSan, runs every test in both, stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSESSIOND_SANITIZE=ON \
  -DSESSIOND_BENCH=OFF >/dev/null
cmake --build build-asan -j"$JOBS"

# A private redis-server for the Redis suites (label "redis"): a free loopback port and a temporary
# directory, stopped by PID when this script exits, whether the tests pass or not.
if ! command -v redis-server >/dev/null; then
  echo "redis-server not found: run scripts/install-deps.sh (make deps)" >&2
  exit 1
fi
REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-test-redis.XXXXXX")
stop_redis() {
  local pid
  pid=$(cat "$REDIS_DIR/redis.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  fi
  rm -f "$REDIS_DIR/redis.pid"
}
trap 'stop_redis; rm -rf "$REDIS_DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# True when the server answering on the port is the one whose PID is in our pidfile (another
# process may have taken the port between free_port and the bind).
redis_is_ours() {
  local pid info
  pid=$(cat "$REDIS_DIR/redis.pid" 2>/dev/null) || return 1
  info=$(redis-cli -h 127.0.0.1 -p "$1" info server 2>/dev/null) || return 1
  info=${info//$'\r'/}
  [[ $'\n'$info$'\n' == *$'\n'"process_id:$pid"$'\n'* ]]
}
start_redis() {
  local port
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log"
    for _ in $(seq 100); do
      if redis_is_ours "$port"; then
        REDIS_PORT=$port
        return 0
      fi
      sleep 0.05
    done
    stop_redis
  done
  echo "could not start redis-server; its log:" >&2
  cat "$REDIS_DIR/redis.log" >&2 || true
  return 1
}
start_redis
export SESSIOND_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
echo "== redis-server $(redis-server --version | grep -o 'v=[^ ]*') on $SESSIOND_TEST_REDIS_URL"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j"$JOBS"
echo "== tests (ASan/UBSan)"
ctest --test-dir build-asan --output-on-failure -j"$JOBS"
