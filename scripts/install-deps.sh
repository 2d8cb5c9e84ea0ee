#!/usr/bin/env bash
# Installs the Debian packages sessiond needs to build, test and benchmark.
# Skips apt entirely when every package is already present.
set -euo pipefail

packages=(
  g++ cmake pkg-config make
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libhiredis-dev libpq-dev libsodium-dev libssl-dev libsqlite3-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev googletest libbenchmark-dev
  redis-server postgresql nginx wrk curl jq python3 clang-format
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
