#!/usr/bin/env bash
# Installs the Debian packages listed in Tools/apt-packages.txt (or in the lists given as
# arguments, e.g. Tools/apt-packages-test.txt for ./dev test) that are missing, without their
# recommended packages. Runs apt-get as root, or through sudo when available; otherwise prints the
# command to run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lists=("$@")
((${#lists[@]} > 0)) || lists=("$here/apt-packages.txt")
mapfile -t wanted < <(cat "${lists[@]}" | grep -v '^\s*#' | awk 'NF {print $1}')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "error: missing packages ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
