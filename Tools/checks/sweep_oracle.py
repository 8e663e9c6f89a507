#!/usr/bin/env python3
"""Contract oracle 5 (ntk-family §5, statistical) through `pathkernel sweep` on the release binary.

The setting is the preset sweep-relu: §2a's six points, relu [3, m, m, 1], ntk, σ_w = 1.5,
σ_b = 0.1, full-batch GD η = 1, 200 steps, seeds 1–4 of the project's initialization. The
contract's test: the log–log slopes of the seed means of τ₀, τ₂ and the pattern flips of both
hidden layers in [−0.75, −0.3], of τ₁ and the total travel in [−1.3, −0.75], of the kernel change
below −0.3, and the training loss below 1e-8 at every width and seed.

Widths: the preset's default sweep, 64, 256, 1024 (about 11 CPU seconds); with
PATHKERNEL_FULL_ORACLES=1 the contract's 64, 256, 1024, 4096 (measured 3.6 CPU minutes, 202 s user
and 14 s system: a run at width 4096 trains 16.8 M parameters for 200 steps; it passes with slopes
τ₀ −0.53, τ₁ −1.02, τ₂ −0.54, total −1.01, flips −0.52/−0.54, kernel change −0.76). A debug build trains width 1024 too slowly
for `swift test`, hence a check on the release binary like the others in this folder.

Usage: PATHKERNEL_BIN=.build/release/pathkernel python3 Tools/checks/sweep_oracle.py
Prints each slope against its bounds and a closing 'N passed, N failed' line; exits 1 on a failure.
"""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ.get("PATHKERNEL_BIN", ".build/release/pathkernel")
FULL = os.environ.get("PATHKERNEL_FULL_ORACLES") == "1"
WIDTHS = "64,256,1024,4096" if FULL else "64,256,1024"
# The contract's bounds on the slopes (§5, "Test oracle 5").
HALF = (-0.75, -0.3)      # τ₀, τ₂, flips: m^(-1/2)
ONE = (-1.3, -0.75)       # τ₁ (hidden to hidden), total travel: m^(-1)
KERNEL_CHANGE_BELOW = -0.3
TRAINING_LOSS_BELOW = 1e-8
BOUNDS = {
    "travel.layers.0.weight": HALF,
    "travel.layers.2.weight": HALF,
    "flips.1": HALF,
    "flips.2": HALF,
    "travel.layers.1.weight": ONE,
    "totalTravel": ONE,
    "kernelChange": (float("-inf"), KERNEL_CHANGE_BELOW),
}


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "sweep")
        r = subprocess.run([BIN, "sweep", "--preset", "sweep-relu", "--widths", WIDTHS, "--seeds", "4",
                            "--out", out, "--json", "--quiet"], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL sweep exited {r.returncode}: {r.stderr.strip()}")
            print("0 passed, 1 failed")
            return 1
        sweep = json.loads(r.stdout)
    quantities = {q["key"]: q for q in sweep["quantities"]}
    print(f"widths {sweep['widths']}, seeds {sweep['seeds']}")
    for key, (lo, hi) in BOUNDS.items():
        slope = quantities.get(key, {}).get("slope")
        ok = slope is not None and lo <= slope <= hi
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} slope of {key}: {slope} in [{lo}, {hi}]")
    for run in sweep["runs"]:
        loss = run.get("trainingLoss")
        ok = loss is not None and loss < TRAINING_LOSS_BELOW
        passed += ok
        failed += not ok
        if not ok:
            print(f"FAIL training loss of m = {run['width']}, seed {run['seed']}: {loss} (bound {TRAINING_LOSS_BELOW})")
    print(f"ok   training loss below {TRAINING_LOSS_BELOW} in every run" if all(
        r.get("trainingLoss") is not None and r["trainingLoss"] < TRAINING_LOSS_BELOW for r in sweep["runs"]) else "")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
