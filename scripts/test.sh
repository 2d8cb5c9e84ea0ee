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

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j"$JOBS"
echo "== tests (ASan/UBSan)"
ctest --test-dir build-asan --output-on-failure -j"$JOBS"
