#!/usr/bin/env bash
# W1 (MLP 64-512-512-512-1 relu, NTK of 200 queries x 1000 training points), pathkernel against
# neural-tangents, measured cleanly. Never part of CI. About 3 minutes after the build and the
# peers venv (which take about 10 minutes and 3 GiB the first time), plus the wait for a quiet
# machine.
#
# Usage (from anywhere in the repository):
#   Tools/compare/run-w1-comparison.sh [--export-dir DIR | --fake] [--keep] [--with-torch]
#       [--rounds N] [--repeats N] [--no-wait] [--wait-timeout S] [--max-load L]
#       [--keep-openblas-env | --openblas-core NAME] [--sequential] [-- ARGS FOR THE PYTHON SCRIPT]
#
#   (default)         swift build -c release --product pathkernel; then, with OPENBLAS_CORETYPE and
#                     OPENBLAS_L2_SIZE unset for that command alone,
#                     pathkernel bench --workload W1 --export TMPDIR (its correctness check of the
#                     structured kernel against the explicit Jacobian contraction, on the OpenBLAS
#                     core it prints, must pass); then interleave_w1.py: neural-tangents compiled,
#                     its kernel checked against the export's, a wait for a quiet machine, and
#                     --rounds rounds alternating `pathkernel bench --workload W1 --kernels-only`
#                     (the variables unset again) with neural-tangents' structured derivatives;
#                     medians, ratios, the other load, the OpenBLAS core
#   --export-dir DIR  use an export already written to DIR (no export bench; the binary is still
#                     built for the rounds, except with --fake or --sequential)
#   --fake            no Swift: a fake export (make_fake_export.py) and a NumPy stand-in for
#                     pathkernel's rounds (fake_pathkernel_kernels.py): tests this tooling
#   --keep            keep the temporary export folder (its path is printed)
#   --with-torch      pass --with-torch to setup-peers.sh
#   --rounds N        interleaved rounds (default 7)
#   --repeats N       timed calls per tool and precision in a round (default 3)
#   --no-wait         time at once, quiet machine or not (the report says so)
#   --wait-timeout S  give up (exit 3) when the machine is not quiet after S seconds (default 900)
#   --max-load L      quiet means a 1-minute load average below L (default 0.5) and other
#                     processes below 0.2 cores
#   --keep-openblas-env  leave OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set for pathkernel's commands
#   --openblas-core NAME  set OPENBLAS_CORETYPE=NAME for pathkernel's commands instead of unsetting
#                     it (OPENBLAS_L2_SIZE is still unset): for a CPU this OpenBLAS does not know,
#                     where it falls back to its pre-AVX2 Prescott kernels and pathkernel warns
#                     with the value to use (Debian's 0.3.21 on Intel's Emerald Rapids: SkylakeX)
#   --sequential      the older, fuller table instead: neural_tangents_w1.py on the export (both
#                     neural-tangents implementations, one after the other, against the export
#                     bench's own timings), after a wait for a quiet machine
#   -- ARGS           passed to interleave_w1.py (or with --sequential to neural_tangents_w1.py),
#                     e.g. -- --json
#
# Environment: PATHKERNEL_PEERS_VENV (the venv, default $HOME/.cache/pathkernel/peers-venv),
# SWIFT_BUILD_FLAGS (extra flags for swift build, e.g. "--scratch-path .build-compare").
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed for the pathkernel commands only (OpenBLAS
# reads them when it loads, so they cannot be changed from inside the process); this shell's
# environment, the tests and CI keep them.
#
# Standard output carries only the Python script's report (so `-- --json` gives clean JSON); the
# build, the bench, the wait and the set-up write to standard error. Exit status: the Python
# script's (1 when the float64 kernels disagree, 3 when the machine did not become quiet), or the
# failing step's (the export bench exits 1 when its correctness check fails).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

export_dir=""
fake=0
keep=0
sequential=0
no_wait=0
keep_env=0
core=""
wait_timeout=900
max_load=0.5
setup_args=()
driver_args=()
py_args=()
while (($#)); do
  case "$1" in
    --export-dir) export_dir="${2:?--export-dir needs a folder}"; shift 2 ;;
    --fake) fake=1; shift ;;
    --keep) keep=1; shift ;;
    --with-torch) setup_args+=(--with-torch); shift ;;
    --rounds) driver_args+=(--rounds "${2:?--rounds needs a number}"); shift 2 ;;
    --repeats) driver_args+=(--repeats "${2:?--repeats needs a number}"); shift 2 ;;
    --no-wait) no_wait=1; shift ;;
    --wait-timeout) wait_timeout="${2:?--wait-timeout needs seconds}"; shift 2 ;;
    --max-load) max_load="${2:?--max-load needs a number}"; shift 2 ;;
    --keep-openblas-env) keep_env=1; shift ;;
    --openblas-core) core="${2:?--openblas-core needs a core name, e.g. SkylakeX}"; shift 2 ;;
    --sequential) sequential=1; shift ;;
    --) shift; py_args=("$@"); break ;;
    -h|--help) sed -n '2,53p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if ((keep_env)) && [[ -n "$core" ]]; then
  echo "error: --keep-openblas-env and --openblas-core: choose one" >&2
  exit 2
fi
if ((sequential)) && ((${#driver_args[@]})); then
  echo "error: --rounds and --repeats belong to the interleaved comparison (pass -- --repeats N to neural_tangents_w1.py)" >&2
  exit 2
fi

# The OpenBLAS variables: reported, and removed for pathkernel's commands unless --keep-openblas-env.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [[ -n "${!v+x}" ]]; then state="$v=${!v}"; else state="$v unset"; fi
  if ((keep_env)); then echo "openblas: $state (kept for pathkernel)" >&2
  else echo "openblas: $state here; unset for pathkernel's commands" >&2; fi
done
pk_env=(env)
((keep_env)) || pk_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
if [[ -n "$core" ]]; then
  echo "openblas: OPENBLAS_CORETYPE=$core set for pathkernel's commands (--openblas-core)" >&2
  pk_env+=(OPENBLAS_CORETYPE="$core")
fi

wait_quiet() {
  ((no_wait)) && return 0
  python3 "$here/machine_load.py" wait --max-load "$max_load" --timeout "$wait_timeout" >&2
}

# The peers first: a missing venv fails before a long build.
python="$("$here/setup-peers.sh" "${setup_args[@]}" | tail -n 1)"

bin=""
if ((!fake)) && { [[ -z "$export_dir" ]] || ((!sequential)); }; then
  cd "$root"
  # shellcheck disable=SC2086  # SWIFT_BUILD_FLAGS is a list of flags
  swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} >&2
  # shellcheck disable=SC2086
  bin="$(swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} --show-bin-path)/pathkernel"
fi

if [[ -z "$export_dir" ]]; then
  export_dir="$(mktemp -d "${TMPDIR:-/tmp}/pathkernel-w1.XXXXXX")"
  if ((keep)); then
    echo "export folder (kept): $export_dir" >&2
  else
    trap 'rm -rf "$export_dir"' EXIT
  fi
  if ((fake)); then
    "$python" "$here/make_fake_export.py" "$export_dir" >&2
  else
    # With --sequential this bench's timings are the ones compared: time them on a quiet machine.
    ((sequential)) && wait_quiet
    "${pk_env[@]}" "$bin" bench --workload W1 --export "$export_dir" >&2
  fi
fi

status=0
if ((sequential)); then
  wait_quiet || exit 3
  "$python" "$here/neural_tangents_w1.py" "$export_dir" "${py_args[@]}" || status=$?
else
  ((no_wait)) && driver_args+=(--no-wait)
  ((keep_env)) && driver_args+=(--keep-openblas-env)
  [[ -n "$core" ]] && driver_args+=(--openblas-core "$core")
  driver_args+=(--wait-timeout "$wait_timeout" --max-load "$max_load")
  if ((fake)); then driver_args+=(--fake-pathkernel); else driver_args+=(--pathkernel "$bin"); fi
  "$python" "$here/interleave_w1.py" "$export_dir" "${driver_args[@]}" "${py_args[@]}" || status=$?
fi
exit "$status"
