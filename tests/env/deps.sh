#!/usr/bin/env bash
# Install the Debian packages Yunhan needs to build and test, if missing.
# Idempotent: does nothing (and needs no network) when all are present.
set -euo pipefail
pkgs=(gcc make pkg-config clang libclang-rt-14-dev clang-format
      libraft-dev libuv1-dev liblmdb-dev lmdb-utils libmsgpack-dev
      libjansson-dev libssl-dev libcmocka-dev liblz4-dev libxxhash-dev libzstd-dev
      python3-msgpack iproute2 iptables faketime netcat-openbsd procps)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
