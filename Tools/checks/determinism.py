#!/usr/bin/env python3
"""Same trace, same analysis, same bits — checked on the release binary.

For every optimizer the analyzer has a kernel form for (and (S)GD on relu nets, whose exact
quadrature gives queries nodes of their own), with one output and with three, and for a relu
CNN on SGD momentum (exact quadrature by the event sweep on the backward route), this
trains a small run (sparse checkpoints, minibatches), analyzes it four times with
PATHKERNEL_THREADS=1, 2, 1, 2 and requires:
  * the stored analysis (`report --format json`, run time removed) identical byte for byte;
  * the kernel-form residual at round-off (KERNEL_FORM_TOLERANCE, output units).
Release builds matter here: the optimizer moves buffer lifetimes, and a read of a released
scratch buffer (Nesterov with three outputs, fixed in the preconditioned route) showed only
there. The same check runs inside the test suite through `swift test` (DeterminismTests).

Usage: PATHKERNEL_BIN=.build/release/pathkernel python3 Tools/checks/determinism.py
Prints one line per case and a closing 'N passed, N failed' line; exits 1 on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ.get("PATHKERNEL_BIN", ".build/release/pathkernel")
KERNEL_FORM_TOLERANCE = 1e-10  # output units; smooth (tanh) nets sit near 1e-15

OPTIMIZERS = {
    "gd": {"kind": "gd", "learningRate": 0.2},
    "sgd-clip": {"kind": "sgd", "learningRate": 0.2, "clipNorm": 0.5},
    "momentum": {"kind": "sgd", "learningRate": 0.05, "momentum": 0.9, "weightDecay": 0.01},
    "nesterov": {"kind": "sgd", "learningRate": 0.05, "momentum": 0.9, "nesterov": True, "weightDecay": 0.01},
    "adam": {"kind": "adam", "learningRate": 0.01, "weightDecay": 0.01, "clipNorm": 1.0},
    "adamw": {"kind": "adamw", "learningRate": 0.01, "weightDecay": 0.05},
    "rmsprop": {"kind": "rmsprop", "learningRate": 0.003, "momentum": 0.5, "weightDecay": 0.01},
    # relu: (S)GD's exact quadrature through the kinks (per-query nodes, Docs/path-kernel.md §1.1).
    "gd-relu": {"kind": "gd", "learningRate": 0.2},
    "sgd-relu": {"kind": "sgd", "learningRate": 0.2, "weightDecay": 0.01},
}


def config(name, optimizer, outputs, activation="tanh"):
    if outputs == 1:
        data = {"kind": "moons", "train": 60, "test": 30}
        loss = "logistic"
    else:
        data = {"kind": "spirals", "train": 60, "test": 30, "classes": 3}
        loss = "cross-entropy"
    return {
        "name": name, "seed": 3, "data": data,
        "model": {"kind": "mlp", "layers": [2, 16, 16, outputs], "activation": activation},
        "loss": {"kind": loss}, "optimizer": optimizer,
        "training": {"steps": 40, "checkpointEvery": 4, **({} if optimizer["kind"] == "gd" else {"batchSize": 16})},
    }


def cnn_config(name):
    """A relu CNN shaped like the fmnist-cnn preset on a few Fashion-MNIST images, SGD momentum:
    exact quadrature by the event sweep on the backward route (every query its own J̄)."""
    return {
        "name": name, "seed": 4,
        "data": {"kind": "idx", "directory": "/usr/share/datasets/fashion-mnist", "train": 24, "test": 8,
                 "normalize": "unit"},
        "model": {"kind": "sequential", "input": [1, 28, 28], "parameterization": "ntk",
                  "sigmaW": 1.4142135623730951, "sigmaB": 0.1,
                  "layers": [{"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
                             {"kind": "maxpool2d", "kernel": 2},
                             {"kind": "conv2d", "out": 4, "kernel": 3, "padding": "same"}, {"kind": "relu"},
                             {"kind": "maxpool2d", "kernel": 2},
                             {"kind": "flatten"}, {"kind": "dense", "out": 10}]},
        "loss": {"kind": "cross-entropy"},
        "optimizer": {"kind": "sgd", "learningRate": 0.5, "momentum": 0.9},
        "training": {"steps": 6, "batchSize": 8, "checkpointEvery": 3},
    }


def strip_times(obj):
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


def run(args, env=None):
    return subprocess.run([BIN] + args, env=env, check=True, capture_output=True, text=True).stdout


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"{name} C={outputs}", f"{name}{outputs}",
                  config(f"{name}{outputs}", opt, outputs, "relu" if name.endswith("relu") else "tanh"))
                 for name, opt in OPTIMIZERS.items() for outputs in (1, 3)]
        cases.append(("cnn-momentum C=10 (event sweep)", "cnn10", cnn_config("cnn10")))
        for case, stem, config_json in cases:
            cfg = os.path.join(tmp, f"{stem}.json")
            trace = os.path.join(tmp, f"{stem}.sqlite")
            with open(cfg, "w") as f:
                json.dump(config_json, f)
            run(["train", "--config", cfg, "--out", trace, "--force", "--quiet"])
            prints, worst = [], 0.0
            for threads in (1, 2, 1, 2, 1, 2):
                env = dict(os.environ, PATHKERNEL_THREADS=str(threads))
                run(["analyze", trace, "--force"], env)
                report = json.loads(run(["report", trace, "--format", "json"]))
                rec = report["reconstruction"]
                for split in ("train", "test"):
                    if rec.get(split):
                        worst = max(worst, rec[split]["kernel_form_max_abs"])
                prints.append(json.dumps(strip_times(report), sort_keys=True))
            same = all(p == prints[0] for p in prints)
            ok = same and worst < KERNEL_FORM_TOLERANCE
            if stem.startswith("cnn"):
                # The case exists for the event sweep: it must have run, and crossed kinks.
                exact = report["reconstruction"].get("exact") or {}
                swept = (exact.get("sweep_events_per_query_step") or 0) > 0
                ok = ok and swept
                case += f" swept={swept}"
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {case}: identical={same} kernel-form max abs {worst:.1e}")
    print(f"determinism: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
