#!/usr/bin/env bash
# Times neural-tangents' empirical NTK on pathkernel's W1 workload (MLP 64-512-512-512-1 relu,
# NTK of 200 queries x 1000 training points) and checks its kernel against pathkernel's.
# Never part of CI. Takes about 10 minutes and about 3 GiB of disk the first time (the peers
# venv), about 5-7 minutes after that (most of it neural-tangents' Jacobian contraction).
#
# Usage (from anywhere in the repository):
#   Tools/compare/run-w1-comparison.sh [--export-dir DIR | --fake] [--keep] [--with-torch]
#                                      [-- ARGS FOR neural_tangents_w1.py]
#
#   (default)         swift build -c release --product pathkernel, then
#                     .build/release/pathkernel bench --workload W1 --export TMPDIR
#   --export-dir DIR  use an export already written to DIR (no build, no bench)
#   --fake            no Swift: write a fake export with make_fake_export.py (random seeded
#                     weights, NumPy kernel, no pathkernel timings) to test this tooling
#   --keep            keep the temporary export folder (its path is printed)
#   --with-torch      pass --with-torch to setup-peers.sh
#   -- ARGS           passed to neural_tangents_w1.py, e.g. -- --repeats 3 --json --all
#
# Environment: PATHKERNEL_PEERS_VENV (the venv, default $HOME/.cache/pathkernel/peers-venv),
# SWIFT_BUILD_FLAGS (extra flags for swift build, e.g. "--scratch-path .build-compare").
#
# Standard output carries only neural_tangents_w1.py's report (so `-- --json` gives clean JSON);
# the build, the bench and the set-up write to standard error. Exit status: that of
# neural_tangents_w1.py (1 when the float64 kernels disagree), or the failing step's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

export_dir=""
fake=0
keep=0
setup_args=()
py_args=()
while (($#)); do
  case "$1" in
    --export-dir) export_dir="${2:?--export-dir needs a folder}"; shift 2 ;;
    --fake) fake=1; shift ;;
    --keep) keep=1; shift ;;
    --with-torch) setup_args+=(--with-torch); shift ;;
    --) shift; py_args=("$@"); break ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# The peers first: a missing venv fails before a long build.
python="$("$here/setup-peers.sh" "${setup_args[@]}" | tail -n 1)"

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
    cd "$root"
    # shellcheck disable=SC2086  # SWIFT_BUILD_FLAGS is a list of flags
    swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} >&2
    # shellcheck disable=SC2086
    bin="$(swift build -c release --product pathkernel ${SWIFT_BUILD_FLAGS:-} --show-bin-path)/pathkernel"
    "$bin" bench --workload W1 --export "$export_dir" >&2
  fi
fi

status=0
"$python" "$here/neural_tangents_w1.py" "$export_dir" "${py_args[@]}" || status=$?
exit "$status"
