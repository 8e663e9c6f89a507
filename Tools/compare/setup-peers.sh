#!/usr/bin/env bash
# Creates the Python virtualenv that the comparison scripts in Tools/compare/ run in, with the
# peer tools pinned as in the project's peer notes (jax/jaxlib 0.4.23, neural-tangents 0.6.5,
# TensorFlow 2.15.x, NumPy < 2; optionally PyTorch 2.13.0+cpu and captum 0.9.0).
# Never part of CI.
#
# Usage:
#   Tools/compare/setup-peers.sh [--with-torch] [--force]
#
#   --with-torch   also install torch==2.13.0+cpu and captum==0.9.0
#   --force        reinstall into the venv even if it already imports the peers
#
# Environment:
#   PATHKERNEL_PEERS_VENV       the venv folder (default $HOME/.cache/pathkernel/peers-venv)
#   PYTHON                      the interpreter that creates the venv (default python3; needs
#                               3.9–3.11, the versions TensorFlow 2.15 ships wheels for)
#   PATHKERNEL_TORCH_INDEX_URL  extra index for the CPU build of torch (default
#                               https://download.pytorch.org/whl/cpu, unless pip's find-links
#                               already hold a torch-2.13.0+cpu wheel; set it to "" for none)
#
# Idempotent: when the venv already imports neural_tangents (and torch and captum with
# --with-torch) it does nothing. About 2 minutes and 2.1 GiB (3 minutes and 3.1 GiB with torch).
# Prints the venv's python path as its last line of standard output.
set -euo pipefail

with_torch=0
force=0
for arg in "$@"; do
  case "$arg" in
    --with-torch) with_torch=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

venv="${PATHKERNEL_PEERS_VENV:-$HOME/.cache/pathkernel/peers-venv}"
python="${PYTHON:-python3}"
py="$venv/bin/python"

peer_imports="import neural_tangents, jax, jaxlib, tensorflow, numpy"
((with_torch)) && peer_imports+=", torch, captum"

if ((!force)) && [[ -x "$py" ]] && "$py" -c "$peer_imports" >/dev/null 2>&1; then
  echo "peers venv ready: $venv" >&2
  echo "$py"
  exit 0
fi

if [[ ! -x "$py" ]]; then
  command -v "$python" >/dev/null 2>&1 || { echo "error: '$python' not found (set PYTHON)" >&2; exit 1; }
  if ! "$python" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 11) else 1)'; then
    echo "error: $("$python" --version 2>&1) cannot install TensorFlow 2.15 (needs Python 3.9-3.11; set PYTHON)" >&2
    exit 1
  fi
  echo "creating venv $venv with $("$python" --version 2>&1)" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi

pins=(
  "jax==0.4.23"
  "jaxlib==0.4.23"
  "neural-tangents==0.6.5"
  "numpy<2"
  "tensorflow>=2.15,<2.16"
  "tf2jax==0.3.6"     # neural_tangents imports it at import time (through its TF model converter)
)
extra=()
if ((with_torch)); then
  # The local version "+cpu" keeps pip away from the CUDA build (several GiB of wheels).
  pins+=("torch==2.13.0+cpu" "captum==0.9.0")
  if [[ -n "${PATHKERNEL_TORCH_INDEX_URL+set}" ]]; then
    index="$PATHKERNEL_TORCH_INDEX_URL"
  else
    index="https://download.pytorch.org/whl/cpu"
    # A find-links folder that already holds the wheel (as on the project's machines) needs no index.
    links="${PIP_FIND_LINKS:-$("$py" -m pip config get global.find-links 2>/dev/null || true)}"
    for dir in $links; do
      compgen -G "${dir#file://}/torch-2.13.0+cpu-*.whl" >/dev/null && index="" && break
    done
  fi
  [[ -n "$index" ]] && extra+=(--extra-index-url "$index")
fi

echo "installing into $venv: ${pins[*]}" >&2
"$py" -m pip install --quiet "${extra[@]}" "${pins[@]}" >&2

if ! "$py" -c "$peer_imports" >&2; then
  echo "error: the venv $venv was installed but does not import the peers (see above)" >&2
  exit 1
fi
"$py" - >&2 <<'PY'
import importlib.metadata as md
names = ["jax", "jaxlib", "neural-tangents", "tensorflow", "tf2jax", "numpy", "torch", "captum"]
found = []
for n in names:
    try:
        found.append(f"{n} {md.version(n)}")
    except md.PackageNotFoundError:
        pass
print("installed: " + ", ".join(found))
PY
echo "$py"
