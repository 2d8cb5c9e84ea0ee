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
# shellcheck source=scripts/private-redis.sh
source scripts/private-redis.sh
REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-test-redis.XXXXXX")
PG_DIR=""
stop_postgres() {
  [[ -n $PG_DIR ]] || return 0
  private_postgres_stop "$PG_DIR" || true
  rm -rf "$PG_DIR"
}
trap 'private_redis_stop "$REDIS_DIR"; rm -rf "$REDIS_DIR"; stop_postgres' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

private_redis_start "$REDIS_DIR"
export SESSIOND_TEST_REDIS_URL=$PRIVATE_REDIS_URL
echo "== redis-server $(redis-server --version | grep -o 'v=[^ ]*') on $SESSIOND_TEST_REDIS_URL"

# A private PostgreSQL 15 cluster for the PostgreSQL suites (label "postgres"): initdb in a temporary
# directory (run as the postgres user when we are root: initdb refuses root), a free loopback port,
# fsync off; stopped when this script exits (pg_ctl stop -m fast, then SIGKILL by PID). Each test
# creates a database of its own in it and drops it.
# shellcheck source=scripts/private-postgres.sh
source scripts/private-postgres.sh
PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-test-postgres.XXXXXX")
private_postgres_start "$PG_DIR" >/dev/null
export SESSIOND_TEST_DATABASE_URL=$PRIVATE_POSTGRES_URL
echo "== $("$SESSIOND_PGBIN/postgres" --version) on $SESSIOND_TEST_DATABASE_URL"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j"$JOBS"
echo "== tests (ASan/UBSan)"
ctest --test-dir build-asan --output-on-failure -j"$JOBS"
