#!/usr/bin/env bash
# Installs the Debian packages headroom needs (only those missing).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev libcjson-dev libpcre2-dev libpng-dev zlib1g-dev python3 python3-torch python3-numpy chromium clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
