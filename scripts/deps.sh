#!/usr/bin/env bash
# Install the Debian packages Linli needs, only those missing. Non-interactive.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libzmq3-dev libczmq-dev libprotobuf-c-dev protobuf-c-compiler
      libhiredis-dev libpq-dev libevent-dev libjansson-dev libsodium-dev
      libcurl4-openssl-dev libcmocka-dev
      redis-server postgresql-15 postgresql-client-15 curl)
[ "${1:-}" = "--bench" ] && pkgs+=(wrk)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages may start system servers on 6379/5432; Linli never uses those ports.
