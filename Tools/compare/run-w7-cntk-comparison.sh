#!/usr/bin/env bash
# W7-cntk (the exact CNTK of Fashion-MNIST images: 2 × [conv 3×3 same, relu], gap and flatten
# readouts, σ_w = √2, no bias, NNGP and NTK in float64), pathkernel against neural-tangents'
# stax kernel_fn: the agreement first, then the speed measured cleanly. Never part of CI. About
# 4 minutes after the build and the peers venv (which take about 10 minutes and 2 GiB the first
# time), plus the wait for a quiet machine; --check-only about half a minute.
#
# Usage (from anywhere in the repository):
#   Tools/compare/run-w7-cntk-comparison.sh [--check-only [--skip-without-peers]] [--pathkernel BIN]
#       [--rounds N] [--gap QxN] [--flatten QxN] [--readouts gap,flatten] [--no-wait]
#       [--wait-timeout S] [--max-load L] [--keep-openblas-env] [-- ARGS FOR THE PYTHON SCRIPT]
#
#   (default)         swift build -c release --product pathkernel; then neural_tangents_w7_cntk.py
#                     time: per readout, `pathkernel bench --workload W7-cntk --readout R --images N
#                     --queries Q --export DIR` (the cross kernel of Q held-out × N training images;
#                     OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that command alone), neural-
#                     tangents' kernel compiled on the same images and checked against the export
#                     (1e-10 relative, else exit 1), a wait for a quiet machine, then --rounds rounds
#                     alternating a fresh bench process with one warm neural-tangents call per
#                     readout; medians, ratios (wall and CPU), the other load, compile time, threads,
#                     the OpenBLAS core
#   --check-only      only the agreement on small problems (neural_tangents_w7_cntk.py check: nine
#                     nets on random images, and W7-cntk's net on a few Fashion-MNIST images); the
#                     peers venv must already exist (it is not created)
#   --skip-without-peers  with --check-only: exit 0 with a SKIP line when the venv is missing or does
#                     not import neural_tangents (what ./dev test runs)
#   --pathkernel BIN  use this binary instead of building one (a release build for timing)
#   --rounds N        interleaved rounds (default 5)
#   --gap QxN, --flatten QxN  held-out × training images per readout (default 20x10 and 200x100)
#   --readouts LIST   gap,flatten (default both)
#   --no-wait         time at once, quiet machine or not (the report then says "clean: NO")
#   --wait-timeout S  give up (exit 3) when the machine is not quiet after S seconds (default 900)
#   --max-load L      quiet means a 1-minute load average below L (default 0.5) and other
#                     processes below 0.2 cores
#   --keep-openblas-env  leave OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set for pathkernel's commands
#   -- ARGS           passed to neural_tangents_w7_cntk.py, e.g. -- --json, -- --gap-batch 10,
#                     -- --perturb-sigma-w 1.0001 (must fail)
#
# Environment: PATHKERNEL_PEERS_VENV (the venv, default $HOME/.cache/pathkernel/peers-venv),
# SWIFT_BUILD_FLAGS (extra flags for swift build, e.g. "--scratch-path .build-compare").
#
# Standard output carries only the Python script's report (so `-- --json` gives clean JSON); the
# build and the set-up write to standard error. Exit status: the Python script's (1 when the
# kernels disagree, 2 on bad arguments or a failing pathkernel command, 3 when the machine did not
# become quiet), or the failing step's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

check_only=0
skip_without_peers=0
bin=""
keep_env=0
time_args=()
py_args=()
need() { [[ $# -ge 2 && -n "$2" ]] || { echo "error: $1 needs a value (try --help)" >&2; exit 2; }; }
while (($#)); do
  case "$1" in
    --check-only) check_only=1; shift ;;
    --skip-without-peers) skip_without_peers=1; shift ;;
    --pathkernel) need "$@"; bin="$2"; shift 2 ;;
    --rounds|--gap|--flatten|--readouts|--wait-timeout|--max-load) need "$@"; time_args+=("$1" "$2"); shift 2 ;;
    --no-wait) time_args+=(--no-wait); shift ;;
    --keep-openblas-env) keep_env=1; time_args+=(--keep-openblas-env); shift ;;
    --) shift; py_args=("$@"); break ;;
    -h|--help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if ((check_only)) && ((${#time_args[@]})); then
  echo "error: ${time_args[0]} belongs to the timed comparison, not --check-only" >&2
  exit 2
fi
if ((skip_without_peers)) && ((!check_only)); then
  echo "error: --skip-without-peers goes with --check-only (the timed comparison needs the peers)" >&2
  exit 2
fi

if ((check_only)); then
  # The venv is never created here: ./dev test must not install 2 GiB of peers.
  venv="${PATHKERNEL_PEERS_VENV:-$HOME/.cache/pathkernel/peers-venv}"
  python="$venv/bin/python"
  if [[ ! -x "$python" ]]; then
    if ((skip_without_peers)); then
      echo "SKIP: no peers venv at $venv (Tools/compare/setup-peers.sh makes it): the CNTK is not compared with neural-tangents"
      exit 0
    fi
    echo "error: no peers venv at $venv: run Tools/compare/setup-peers.sh first" >&2
    exit 2
  fi
  ((skip_without_peers)) && py_args=(--skip-without-peers "${py_args[@]}")
else
  # The peers first: a missing venv fails before a long build.
  python="$("$here/setup-peers.sh" | tail -n 1)"
fi

if [[ -z "$bin" ]]; then
  cd "$root"
  # shellcheck disable=SC2086  # SWIFT_BUILD_FLAGS is a list of flags
  swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} >&2
  # shellcheck disable=SC2086
  bin="$(swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} --show-bin-path)/pathkernel"
fi
[[ -x "$bin" ]] || { echo "error: --pathkernel $bin: not an executable" >&2; exit 2; }

if ((check_only)); then
  exec "$python" "$here/neural_tangents_w7_cntk.py" check --pathkernel "$bin" "${py_args[@]}"
fi

# The OpenBLAS variables: reported; the Python script removes them for pathkernel's commands.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [[ -n "${!v+x}" ]]; then state="$v=${!v}"; else state="$v unset"; fi
  if ((keep_env)); then echo "openblas: $state (kept for pathkernel)" >&2
  else echo "openblas: $state here; unset for pathkernel's commands" >&2; fi
done
exec "$python" "$here/neural_tangents_w7_cntk.py" time --pathkernel "$bin" "${time_args[@]}" "${py_args[@]}"
