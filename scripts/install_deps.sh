#!/usr/bin/env bash
# Installs every build, test and reference dependency of illada from Debian packages.
# Idempotent; run as root (or with sudo). Skips apt entirely when everything is present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git libdnnl-dev nlohmann-json3-dev libpcre2-dev
      libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
      libopenmpi-dev openmpi-bin python3 python3-numpy time
)
[ "${ILLADA_WITH_TORCH:-0}" = 1 ] && pkgs+=(python3-torch)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# node + npm run the JavaScript tokenizer reference in tests (the machine image ships them).
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
echo "install_deps: all dependencies present"
