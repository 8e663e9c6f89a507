#!/usr/bin/env python3
"""The heap policy (`AllocatorPolicy`, PKNumerics) on the release binary: freed blocks of every
size are kept for reuse, so a long run does not page-fault its large buffers afresh at each step.

The oracle is the kernel's own count of minor page faults (`os.wait4`'s rusage of the child):
`pathkernel train --no-record` of a wide MLP ([3, 2600, 2600, 1] relu, 6.77 M parameters, so one
weight-sized vector is 54 MB, above glibc's largest mmap threshold of 32 MiB) for SHORT and for
LONG steps of SGD with momentum. The extra steps may fault at most FAULTS_PER_STEP_SHARE of one
weight vector's pages per step. Without the policy's `M_MMAP_MAX = 0` every step maps, faults
and unmaps each weight-sized temporary (measured: 79,000 faults per step, about 6 vectors'
pages); with it, none (measured: 0 per step). The run's training is a few tenths of a second.

glibc only: elsewhere the policy is a no-op and the check prints SKIP.

Usage: PATHKERNEL_BIN=.build/release/pathkernel python3 Tools/checks/heap_policy.py
Prints the counts and a closing 'N passed, N failed' line; exits 1 on a failure.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile

BIN = os.environ.get("PATHKERNEL_BIN", ".build/release/pathkernel")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIDTH = 2600
SHORT, LONG = 4, 12
PAGE = os.sysconf("SC_PAGE_SIZE")
# Extra faults per extra step allowed, as a share of one weight vector's pages (the failure mode
# is ≥ 1 vector's pages per step, in practice about 6; the passing runs measure 0).
FAULTS_PER_STEP_SHARE = 0.05


def config(steps):
    return {
        "name": f"heap-policy-{steps}", "seed": 1,
        "data": {"kind": "csv", "path": os.path.join(ROOT, "Traces/presets/data/sweep-relu.csv"),
                 "train": 6, "test": 0, "shuffle": False},
        "model": {"kind": "mlp", "layers": [3, WIDTH, WIDTH, 1], "activation": "relu",
                  "parameterization": "ntk", "sigmaW": 1.5, "sigmaB": 0.1},
        "loss": {"kind": "mse"},
        "optimizer": {"kind": "sgd", "learningRate": 0.1, "momentum": 0.9},
        "training": {"steps": steps, "batchSize": 6},
    }


def faults(directory, steps):
    path = os.path.join(directory, f"wide{steps}.json")
    with open(path, "w") as f:
        json.dump(config(steps), f)
    child = subprocess.Popen([BIN, "train", "--config", path, "--no-record", "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    err = child.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"heap_policy: `pathkernel train` of {path} failed ({status}): {err.strip()}")
    return usage.ru_minflt, usage.ru_utime + usage.ru_stime


def main():
    if platform.libc_ver()[0] != "glibc":
        print("SKIP heap_policy: not glibc (the policy is a no-op)")
        return 0
    parameters = 3 * WIDTH + WIDTH + WIDTH * WIDTH + WIDTH + WIDTH + 1
    vector_pages = parameters * 8 / PAGE
    with tempfile.TemporaryDirectory() as d:
        short, short_cpu = faults(d, SHORT)
        long, long_cpu = faults(d, LONG)
    per_step = (long - short) / (LONG - SHORT)
    limit = FAULTS_PER_STEP_SHARE * vector_pages
    ok = per_step <= limit
    print(f"heap policy: {parameters:,} parameters ({parameters * 8 / 1e6:.0f} MB per weight vector, "
          f"{vector_pages:,.0f} pages); minor page faults {short:,} after {SHORT} steps ({short_cpu:.2f} CPU s), "
          f"{long:,} after {LONG} ({long_cpu:.2f} CPU s): {per_step:,.0f} per step, at most {limit:,.0f}: "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
