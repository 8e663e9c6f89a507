#!/usr/bin/env bash
# Times neural-tangents' empirical NTK on pathkernel's W4 workload (a CNN: conv 3x3 x2 with 64
# channels, average pooling, dense 10, on 28x28 inputs; NTK of 100 queries x 500 training points)
# and checks its kernel against pathkernel's. Never part of CI. Takes about 10 minutes on 2 cores
# (pathkernel about 1.5, neural-tangents' float64 call about 7 of them), plus the peers venv the
# first time.
#
# Usage (from anywhere in the repository):
#   Tools/compare/run-w4-comparison.sh [--export-dir DIR] [--keep] [--channels N] [--residual]
#                                      [--affine-layer-norm] [--no-wait] [--wait-timeout S]
#                                      [--max-load L] [--keep-openblas-env]
#                                      [-- ARGS FOR neural_tangents_w4.py]
#
#   (default)         swift build -c release --product pathkernel, then
#                     .build/release/pathkernel bench --workload W4 --export TMPDIR
#   --export-dir DIR  use an export already written to DIR (no build, no bench)
#   --keep            keep the temporary export folder (its path is printed)
#   --channels N      passed to pathkernel bench (both convolutions' channels; default 64)
#   --residual        passed to pathkernel bench: the small residual CNN (two residual blocks with
#                     layer norm, 1x8x8 inputs, 20 x 30 points; about a minute in all after the build)
#   --affine-layer-norm  passed on: with --residual, layer norms with gamma, beta
#   --no-wait         time at once, quiet machine or not
#   --wait-timeout S  before the bench and before neural-tangents, wait for a quiet machine
#                     (machine_load.py wait: 1-minute load below --max-load, default 0.5, other
#                     processes below 0.2 cores) at most S seconds (default 900), else exit 3
#   --max-load L      see --wait-timeout
#   --keep-openblas-env  leave OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set for the bench
#   -- ARGS           passed to neural_tangents_w4.py, e.g. -- --repeats 3 --json
#
# Environment: PATHKERNEL_PEERS_VENV (the venv, default $HOME/.cache/pathkernel/peers-venv),
# SWIFT_BUILD_FLAGS (extra flags for swift build). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are
# removed for the bench command only (it prints the OpenBLAS core it got, and fails when its
# float32 kernel is off its float64 one); this shell, the tests and CI keep them.
# The two tools run one after the other, not interleaved (one W4 call takes minutes); both
# report the other load during their timed calls.
#
# Standard output carries only neural_tangents_w4.py's report; the build, the bench and the
# set-up write to standard error. Exit status: that of neural_tangents_w4.py (1 when the float64
# kernels disagree, 3 when the machine did not become quiet), or the failing step's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

export_dir=""
keep=0
no_wait=0
keep_env=0
wait_timeout=900
max_load=0.5
bench_args=()
py_args=()
while (($#)); do
  case "$1" in
    --export-dir) export_dir="${2:?--export-dir needs a folder}"; shift 2 ;;
    --keep) keep=1; shift ;;
    --channels) bench_args+=(--channels "${2:?--channels needs a number}"); shift 2 ;;
    --residual) bench_args+=(--residual); shift ;;
    --affine-layer-norm) bench_args+=(--affine-layer-norm); shift ;;
    --no-wait) no_wait=1; shift ;;
    --wait-timeout) wait_timeout="${2:?--wait-timeout needs seconds}"; shift 2 ;;
    --max-load) max_load="${2:?--max-load needs a number}"; shift 2 ;;
    --keep-openblas-env) keep_env=1; shift ;;
    --) shift; py_args=("$@"); break ;;
    -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [[ -n "${!v+x}" ]]; then state="$v=${!v}"; else state="$v unset"; fi
  if ((keep_env)); then echo "openblas: $state (kept for the bench)" >&2
  else echo "openblas: $state here; unset for the bench" >&2; fi
done
pk_env=(env)
((keep_env)) || pk_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)

wait_quiet() {
  ((no_wait)) && return 0
  python3 "$here/machine_load.py" wait --max-load "$max_load" --timeout "$wait_timeout" >&2
}

# The peers first: a missing venv fails before a long build.
python="$("$here/setup-peers.sh" | tail -n 1)"

if [[ -z "$export_dir" ]]; then
  export_dir="$(mktemp -d "${TMPDIR:-/tmp}/pathkernel-w4.XXXXXX")"
  if ((keep)); then
    echo "export folder (kept): $export_dir" >&2
  else
    trap 'rm -rf "$export_dir"' EXIT
  fi
  cd "$root"
  # shellcheck disable=SC2086  # SWIFT_BUILD_FLAGS is a list of flags
  swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} >&2
  # shellcheck disable=SC2086
  bin="$(swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} --show-bin-path)/pathkernel"
  wait_quiet || exit 3
  "${pk_env[@]}" "$bin" bench --workload W4 "${bench_args[@]}" --export "$export_dir" >&2
fi

status=0
wait_quiet || exit 3
"$python" "$here/neural_tangents_w4.py" "$export_dir" "${py_args[@]}" || status=$?
exit "$status"
