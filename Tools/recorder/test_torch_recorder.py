#!/usr/bin/env python3
"""End-to-end test of the PyTorch adapter: torch.nn.Sequential MLPs trained with torch.optim,
recorded with TorchRecorder, analyzed by the pathkernel binary.

Skips (exit 0 with a message) when torch does not import. Every case trains in float64 and
stores a checkpoint every k > 1 steps with the optimizer state, so the analyzer replays PyTorch's
updates with its own optimizer implementation and compares them with the stored checkpoints
(replay.largest_mismatch; the analyzer refuses a trace above 1e-8 relative). Checked per case:
`inspect --json` reports no problems, the replay mismatch is below 1e-10, and the reconstruction
residual is small. One full-batch MSE case checks that the recorded loss is pathkernel's
(½‖f − y‖²): step 0's loss equals `inspect`'s initial training loss.

Usage (from the repository root):

    /path/to/venv-with-torch/bin/python Tools/recorder/test_torch_recorder.py

PATHKERNEL_BIN: the binary (default .build/debug/pathkernel, relative to the repository root).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    import torch
    from torch import nn
except Exception as e:  # ImportError, or a broken install
    print(f"SKIP: torch does not import ({type(e).__name__}: {e}); nothing tested")
    sys.exit(0)

import numpy as np  # noqa: E402

from test_numpy_recorder import Failure, analyze, check, inspect, residuals, binary  # noqa: E402
from torch_adapter import TorchRecorder  # noqa: E402

torch.set_default_dtype(torch.float64)


def moons(n: int, g: torch.Generator, noise: float = 0.15):
    k = torch.randint(0, 2, (n,), generator=g)
    t = torch.rand(n, generator=g) * torch.pi
    a = torch.stack([torch.cos(t), torch.sin(t)], 1)
    b = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.where(k[:, None] == 0, a, b) + noise * torch.randn(n, 2, generator=g)
    return x, k.double()


def blobs(n: int, g: torch.Generator, classes: int = 3):
    k = torch.randint(0, classes, (n,), generator=g)
    ang = 2 * torch.pi * k.double() / classes
    return 2 * torch.stack([torch.cos(ang), torch.sin(ang)], 1) + 0.6 * torch.randn(n, 2, generator=g), k


def sine(n: int, g: torch.Generator, outputs: int = 2):
    x = torch.rand(n, 1, generator=g) * 4 - 2
    return x, torch.cat([torch.sin(2 * x), torch.cos(x)], 1)[:, :outputs]


def train(path: str, model: nn.Sequential, optimizer, *, loss: str, x, y, xt, yt, steps: int,
          batch_size: int | None, checkpoint_every: int, clip_norm: float | None = None, seed: int = 0,
          scheduler=None):
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    with TorchRecorder(path, model, optimizer, loss=loss, x_train=x, y_train=y, x_test=xt, y_test=yt,
                       seed=seed, checkpoint_every=checkpoint_every, planned_steps=steps,
                       batch_size=batch_size, clip_norm=clip_norm) as rec:
        order, pos = torch.randperm(n, generator=g), 0
        for t in range(steps):
            if batch_size is None:
                batch = None
                xb, yb = x, y
            else:
                if pos + batch_size > n:
                    order, pos = torch.randperm(n, generator=g), 0
                batch = order[pos:pos + batch_size]
                pos += batch_size
                xb, yb = x[batch], y[batch]
            optimizer.zero_grad()
            value = rec.loss_fn(model(xb), yb)
            value.backward()
            if clip_norm is not None:
                rec.clip_grad_norm_()
            rec.before_step(t, batch, loss=value)
            optimizer.step()
            rec.after_step(t)
            if scheduler is not None:
                scheduler.step()


def mlp(layers, act: nn.Module, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(len(layers) - 1):
        mods.append(nn.Linear(layers[i], layers[i + 1]))
        if i < len(layers) - 2:
            mods.append(act)
    return nn.Sequential(*mods).double()


CASES = []


def case(f):
    CASES.append(f)
    return f


@case
def sgd_momentum(tmp: Path):
    g = torch.Generator().manual_seed(1)
    x, y = moons(64, g)
    xt, yt = moons(32, g)
    model = mlp([2, 16, 16, 1], nn.Tanh(), 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    path = str(tmp / "sgd-momentum.sqlite")
    train(path, model, opt, loss="logistic", x=x, y=y, xt=xt, yt=yt, steps=30, batch_size=16, checkpoint_every=5)
    return path, "SGD momentum 0.9, weight decay 1e-3, logistic, tanh, batch 16"


@case
def sgd_nesterov_steplr(tmp: Path):
    g = torch.Generator().manual_seed(2)
    x, y = moons(64, g)
    model = mlp([2, 16, 1], nn.LeakyReLU(0.1), 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.8, nesterov=True)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    path = str(tmp / "nesterov.sqlite")
    train(path, model, opt, loss="logistic", x=x, y=y, xt=x[:16], yt=y[:16], steps=30, batch_size=32,
          checkpoint_every=6, scheduler=sched)
    return path, "SGD Nesterov 0.8 + StepLR, logistic, leaky-relu 0.1"


@case
def adam(tmp: Path):
    g = torch.Generator().manual_seed(3)
    x, y = sine(48, g)
    xt, yt = sine(16, g)
    model = mlp([1, 16, 16, 2], nn.GELU(), 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    path = str(tmp / "adam.sqlite")
    train(path, model, opt, loss="mse", x=x, y=y, xt=xt, yt=yt, steps=30, batch_size=16, checkpoint_every=5)
    return path, "Adam, mse (2 outputs), gelu, batch 16"


@case
def adamw_clip(tmp: Path):
    g = torch.Generator().manual_seed(4)
    x, y = blobs(60, g)
    xt, yt = blobs(30, g)
    model = mlp([2, 16, 3], nn.Tanh(), 4)
    opt = torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.05)
    path = str(tmp / "adamw.sqlite")
    train(path, model, opt, loss="cross-entropy", x=x, y=y, xt=xt, yt=yt, steps=30, batch_size=20,
          checkpoint_every=5, clip_norm=0.5)
    return path, "AdamW wd 0.05 + clip 0.5, cross-entropy (3 classes), tanh"


@case
def rmsprop(tmp: Path):
    g = torch.Generator().manual_seed(5)
    x, y = moons(48, g)
    model = mlp([2, 12, 1], nn.Softplus(), 5)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5, weight_decay=1e-3)
    path = str(tmp / "rmsprop.sqlite")
    train(path, model, opt, loss="logistic", x=x, y=y, xt=x[:8], yt=y[:8], steps=20, batch_size=16, checkpoint_every=4)
    return path, "RMSprop momentum 0.5, wd 1e-3, logistic, softplus"


@case
def gd_mse_full_batch(tmp: Path):
    g = torch.Generator().manual_seed(6)
    x, y = sine(40, g, outputs=1)     # one output: F.mse_loss would be 2× pathkernel's loss
    model = mlp([1, 16, 1], nn.Sigmoid(), 6)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    path = str(tmp / "gd-mse.sqlite")
    train(path, model, opt, loss="mse", x=x, y=y, xt=x[:10], yt=y[:10], steps=20, batch_size=None, checkpoint_every=4)
    info = inspect(path)
    first, initial = info["firstLoss"], info["train"]["initial"]["loss"]
    check(abs(first - initial) <= 1e-12 * abs(initial),
          f"step 0's recorded loss {first} differs from pathkernel's loss at checkpoint 0 {initial}: loss mapping broken")
    return path, "full-batch SGD, mse (1 output), sigmoid; recorded loss == pathkernel's"


def main() -> int:
    started = time.time()
    print(f"PyTorch adapter → pathkernel (torch {torch.__version__})")
    worst = 0.0
    try:
        binary()
        with tempfile.TemporaryDirectory(prefix="pk-torch-recorder-") as d:
            tmp = Path(d)
            for f in CASES:
                path, what = f(tmp)
                inspect(path)
                report = analyze(path)
                replay = report["replay"]
                mismatch = float(replay["largest_mismatch"])
                check(replay["mode"].startswith("replayed"), f"{what}: replay mode {replay['mode']}")
                check(mismatch < 1e-10, f"{what}: largest replay mismatch {mismatch:.3g} (≥ 1e-10)")
                res = residuals(report)
                # The optimizer's own kernel, named, and its kernel form rebuilding the network
                # (PyTorch's updates and Adam/RMSprop state against the analyzer's kernel sums).
                kernel = report["settings"].get("path_kernel") or ""
                want = ("preconditioned" if ("Adam" in what or "RMSprop" in what)
                        else "two-time" if ("momentum" in what or "Nesterov" in what) else "path kernel")
                check(kernel.startswith(want), f"{what}: kernel {kernel!r}, expected {want}")
                for split, r in report["reconstruction"].items():
                    if isinstance(r, dict) and r.get("kernel_form_max_abs") is not None:
                        km, mx = float(r["kernel_form_max_abs"]), float(r["max_abs_residual"])
                        check(km <= max(1e-9, 10 * mx), f"{what}: {split} kernel form off by {km:.3g} (quadrature {mx:.3g})")
                worst = max(worst, mismatch)
                print(f"  {what}: replay mismatch {mismatch:.2e}, residual "
                      + ", ".join(f"{k} {v:.1e}" for k, v in sorted(res.items())))
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"OK: largest replay mismatch {worst:.2e} (analyzer tolerance 1e-8) ({time.time() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
