#!/usr/bin/env python3
"""End-to-end test of the PyTorch adapter: torch.nn.Sequential MLPs, a CNN and a residual net
trained with torch.optim, recorded with TorchRecorder, analyzed by the pathkernel binary.

Skips (exit 0 with a message) when torch does not import. Every case trains in float64 and
stores a checkpoint every k > 1 steps with the optimizer state, so the analyzer replays PyTorch's
updates with its own optimizer implementation and compares them with the stored checkpoints
(replay.largest_mismatch; the analyzer refuses a trace above 1e-8 relative). Checked per case:
`inspect --json` reports no problems, the replay mismatch is below 1e-10, and the reconstruction
residual is small. One full-batch MSE case checks that the recorded loss is pathkernel's
(½‖f − y‖²): step 0's loss equals `inspect`'s initial training loss. Plain MLPs must still be
recorded as `{"kind": "mlp"}`.

Parameter groups that differ only in weight_decay (recorded as `optimizer.groups`): SGD momentum
with decay on the output layer only (top-level decay 0, state "1.momentum_buffer"), Adam (coupled)
and RMSprop with no decay on biases, and the residual net below under AdamW with decay 0.01 on
the weights and none on biases and LayerNorm parameters: optimizer_json's top-level decay and
groups (exact state_dict names) and the state names checked, replay mismatch ≤ 1e-12.
Parameter groups with their own learning rates (`learningRate` in a group): SGD Nesterov under
StepLR (the first layer at 3×, the other biases at 0.2× without decay), AdamW under a warm-up
LambdaLR with clipping (the output layer at 0.25× with its own decay), full-batch plain SGD (the
biases at 4×): optimizer_json's groups, replay mismatch ≤ 1e-12, the kernel named with M (plain
SGD's the preconditioned one) and the kernel form at the quadrature residual.

Layer lists (`{"kind": "sequential"}`, torch_adapter.model_spec):
- refusals: BatchNorm (training mode), Dropout, a custom module, groups ≠ 1, dilation, reflect
  padding, AdaptiveAvgPool2d(1) without Flatten, partial LayerNorm, Linear on an image,
  ceil_mode, GELU(tanh), in-place activations on a residual's or the model's input,
  shape-changing residual blocks, image outputs, a non-Sequential root, and parameter groups with
  different betas are refused before anything is written (no file), naming the module's
  qualified name and type, or the setting; groups with different learning rates are mapped
  (by `initial_lr` under a scheduler; names= required), and a schedule that changes their ratio
  (CosineAnnealingLR with eta_min > 0, a group's lr set by hand) is refused at that step,
  naming the group;
- a "zoo" of every supported module and setting (no training): the spec model_spec writes,
  evaluated by test_numpy_recorder's NumPy interpreter of layer lists, equals torch's outputs
  (1e-12) and gradients (1e-10);
- a CNN (conv, relu, max pool, conv 'same', avg pool, flatten, linear; SGD momentum) and a
  residual net (LayerNorm, GELU, projection shortcut, AdaptiveAvgPool2d + Flatten; AdamW with
  parameter groups), float64, recorded: model_json equals the expected JSON, the layout is the
  model's state_dict (names, shapes, order), checkpoint 0 the initial weights, x stored
  [n, C, H, W], and the recorded spec evaluated in NumPy at the last checkpoint equals torch's
  outputs and gradients; then inspect/analyze as above (a binary that cannot read sequential
  models fails, as in test_numpy_recorder).

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

import sqlite3  # noqa: E402
import warnings  # noqa: E402

from test_numpy_recorder import (Failure, analyze, check, inspect, residuals, binary, np_network,  # noqa: E402
                                 np_outputs, sequential_support, expect_refusal, fail_unsupported)
from pathkernel_recorder import normalize_model, parameter_layout  # noqa: E402
from torch_adapter import Residual, TorchRecorder, model_spec, optimizer_spec  # noqa: E402

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
    """Trains and records every step; returns the recorder (closed)."""
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
    return rec


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


def recorded_optimizer(path: str) -> dict:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    spec = json.loads(db.execute("SELECT optimizer_json FROM run").fetchone()[0])
    names = {r[0] for r in db.execute("SELECT names FROM optimizer_state")}
    db.close()
    spec["stateNames"] = sorted(names)
    return spec


def check_groups(path: str, what: str, weight_decay: float, groups: list, state: list[str]) -> None:
    """optimizer_json's top-level decay and groups (exact names), and the state buffer names."""
    got = recorded_optimizer(path)
    check(got["weightDecay"] == weight_decay and got.get("groups") == groups,
          f"{what}: optimizer_json weightDecay {got['weightDecay']}, groups {got.get('groups')}; expected {weight_decay}, {groups}")
    check(got["stateNames"] == [json.dumps(state, separators=(",", ":"))] if state else got["stateNames"] == [],
          f"{what}: optimizer_state names {got['stateNames']}, expected {state}")


#: Cases recorded with parameter groups: their replay must match to 1e-12 (else 1e-10).
GROUP_CASES = set()


@case
def sgd_groups_head_decay(tmp: Path):
    g = torch.Generator().manual_seed(7)
    x, y = moons(64, g)
    model = mlp([2, 16, 16, 1], nn.Tanh(), 7)
    body = [p for n, p in model.named_parameters() if not n.startswith("4.")]
    head = [p for n, p in model.named_parameters() if n.startswith("4.")]
    opt = torch.optim.SGD([{"params": body, "weight_decay": 0.0}, {"params": head, "weight_decay": 0.05}],
                          lr=0.1, momentum=0.9)
    path = str(tmp / "sgd-groups.sqlite")
    train(path, model, opt, loss="logistic", x=x, y=y, xt=x[:16], yt=y[:16], steps=30, batch_size=16, checkpoint_every=5)
    # the body has 337 - 17 scalars: top-level 0; the chain still has the (coupled) decay component
    check_groups(path, "SGD groups", 0.0, [{"parameters": ["layers.2.weight", "layers.2.bias"], "weightDecay": 0.05}],
                 ["1.momentum_buffer"])
    GROUP_CASES.add(path)
    return path, "SGD momentum 0.9, param groups: wd 0.05 on the output layer only (top level 0), logistic"


@case
def adam_groups(tmp: Path):
    g = torch.Generator().manual_seed(8)
    x, y = sine(48, g)
    model = mlp([1, 16, 16, 2], nn.Tanh(), 8)
    named = list(model.named_parameters())
    opt = torch.optim.Adam([{"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
                            {"params": [p for n, p in named if n.endswith("weight")], "weight_decay": 1e-2}], lr=0.01)
    path = str(tmp / "adam-groups.sqlite")
    train(path, model, opt, loss="mse", x=x, y=y, xt=x[:8], yt=y[:8], steps=20, batch_size=16, checkpoint_every=5)
    # the weights (304 scalars) outnumber the biases (34): top level 1e-2, a group for the biases
    check_groups(path, "Adam groups", 1e-2, [{"parameters": ["layers.0.bias", "layers.1.bias", "layers.2.bias"],
                                              "weightDecay": 0.0}], ["1.exp_avg", "1.exp_avg_sq"])
    GROUP_CASES.add(path)
    return path, "Adam (coupled L2) param groups: wd 1e-2 on weights, 0 on biases, mse"


@case
def rmsprop_groups(tmp: Path):
    g = torch.Generator().manual_seed(9)
    x, y = blobs(48, g)
    model = mlp([2, 12, 3], nn.Tanh(), 9)
    named = list(model.named_parameters())
    opt = torch.optim.RMSprop([{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": 1e-2},
                               {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0}],
                              lr=0.01, momentum=0.5)
    path = str(tmp / "rmsprop-groups.sqlite")
    train(path, model, opt, loss="cross-entropy", x=x, y=y, xt=x[:8], yt=y[:8], steps=20, batch_size=16, checkpoint_every=4)
    check_groups(path, "RMSprop groups", 1e-2, [{"parameters": ["layers.0.bias", "layers.1.bias"], "weightDecay": 0.0}],
                 ["1.square_avg", "2.momentum_buffer"])
    GROUP_CASES.add(path)
    return path, "RMSprop momentum 0.5, param groups: wd 1e-2 on weights, 0 on biases, cross-entropy"


@case
def sgd_group_rates_steplr(tmp: Path):
    g = torch.Generator().manual_seed(10)
    x, y = moons(64, g)
    xt, yt = moons(24, g)
    model = mlp([2, 16, 16, 1], nn.Tanh(), 10)
    named = list(model.named_parameters())
    first = [p for n, p in named if n.startswith("0.")]
    biases = [p for n, p in named if n.endswith("bias") and not n.startswith("0.")]
    rest = [p for n, p in named if n.endswith("weight") and not n.startswith("0.")]
    opt = torch.optim.SGD([{"params": rest}, {"params": first, "lr": 0.3},
                           {"params": biases, "lr": 0.02, "weight_decay": 0.0}],
                          lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=8, gamma=0.5)
    path = str(tmp / "sgd-group-rates.sqlite")
    train(path, model, opt, loss="logistic", x=x, y=y, xt=xt, yt=yt, steps=24, batch_size=16, checkpoint_every=4,
          scheduler=sched)
    got = recorded_optimizer(path)
    want = [{"parameters": ["layers.0.weight", "layers.0.bias"], "learningRate": 0.3},
            {"parameters": ["layers.1.bias", "layers.2.bias"], "weightDecay": 0.0, "learningRate": 0.02}]
    check(got["learningRate"] == 0.1 and got["weightDecay"] == 1e-3 and got.get("groups") == want,
          f"SGD group rates: optimizer_json {got}")
    GROUP_CASES.add(path)
    return path, "SGD Nesterov 0.9 + StepLR, param groups: group lr 0.3 on the first layer, lr 0.02 and wd 0 on the other biases"


@case
def adamw_group_rates_lambdalr(tmp: Path):
    g = torch.Generator().manual_seed(11)
    x, y = blobs(60, g)
    xt, yt = blobs(30, g)
    model = mlp([2, 16, 16, 3], nn.Tanh(), 11)
    named = list(model.named_parameters())
    head = [p for n, p in named if n.startswith("4.")]
    body = [p for n, p in named if not n.startswith("4.")]
    opt = torch.optim.AdamW([{"params": body}, {"params": head, "lr": 0.005, "weight_decay": 0.2}], lr=0.02, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / 5))   # one warm-up factor for both groups
    path = str(tmp / "adamw-group-rates.sqlite")
    train(path, model, opt, loss="cross-entropy", x=x, y=y, xt=xt, yt=yt, steps=20, batch_size=20, checkpoint_every=5,
          clip_norm=1.0, scheduler=sched)
    got = recorded_optimizer(path)
    want = [{"parameters": ["layers.2.weight", "layers.2.bias"], "weightDecay": 0.2, "learningRate": 0.005}]
    check(got["learningRate"] == 0.02 and got["weightDecay"] == 0.05 and got.get("groups") == want,
          f"AdamW group rates: optimizer_json {got}")
    GROUP_CASES.add(path)
    return path, "AdamW + warm-up LambdaLR + clip 1, param groups: group lr 0.005 and wd 0.2 on the output layer"


@case
def sgd_plain_group_rates(tmp: Path):
    g = torch.Generator().manual_seed(12)
    x, y = sine(40, g)
    model = mlp([1, 12, 2], nn.Tanh(), 12)
    named = list(model.named_parameters())
    opt = torch.optim.SGD([{"params": [p for n, p in named if n.endswith("weight")]},
                           {"params": [p for n, p in named if n.endswith("bias")], "lr": 0.2}], lr=0.05)
    path = str(tmp / "sgd-plain-group-rates.sqlite")
    train(path, model, opt, loss="mse", x=x, y=y, xt=x[:8], yt=y[:8], steps=20, batch_size=None, checkpoint_every=5)
    got = recorded_optimizer(path)
    check(got.get("groups") == [{"parameters": ["layers.0.bias", "layers.1.bias"], "learningRate": 0.2}],
          f"plain SGD group rates: optimizer_json {got}")
    GROUP_CASES.add(path)
    return path, "full-batch SGD (plain), param groups: group lr 0.2 on the biases, mse"


# ---------------------------------------------------------------------------------------------
# Layer lists: a CNN and a residual net ({"kind": "sequential"})
# ---------------------------------------------------------------------------------------------

def shapes_images(n: int, g: torch.Generator, size: int = 8, noise: float = 0.3):
    """1×size×size images of a horizontal bar (class 0), a vertical bar (1) or a diagonal (2)."""
    k = torch.randint(0, 3, (n,), generator=g)
    at = torch.randint(1, size - 1, (n,), generator=g)
    x = noise * torch.randn(n, 1, size, size, generator=g)
    for i in range(n):
        if k[i] == 0:
            x[i, 0, at[i], :] += 1
        elif k[i] == 1:
            x[i, 0, :, at[i]] += 1
        else:
            x[i, 0] += torch.eye(size)
    return x, k


def check_layer_list(path: str, model: nn.Sequential, want_spec: dict, x: torch.Tensor, loss: str, y, what: str,
                     initial: dict) -> str:
    """The recorded spec and layout against the expected JSON and the model's state_dict;
    checkpoint 0 against the initial weights; the test's NumPy interpreter of the recorded
    spec against torch's outputs and gradients at the final weights (the mapping's semantics,
    independent of the Swift side)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    spec = json.loads(db.execute("SELECT model_json FROM run").fetchone()[0])
    rows = [(n, json.loads(sh), o, c) for n, sh, o, c in
            db.execute("SELECT name, shape, offset, count FROM parameter_layout ORDER BY position")]
    blobs = dict(db.execute("SELECT step, params FROM checkpoint"))
    xshape = json.loads(db.execute("SELECT shape FROM data WHERE split = 'train' AND role = 'x'").fetchone()[0])
    db.close()
    check(spec == normalize_model(want_spec), f"{what}: model_json\n  {spec}\n  expected\n  {normalize_model(want_spec)}")
    state = model.state_dict()
    check([(n, s) for n, s, *_ in rows] == [(n, list(t.shape)) for n, t in state.items()],
          f"{what}: layout {[(n, s) for n, s, *_ in rows]} is not the state_dict {[(n, list(t.shape)) for n, t in state.items()]}")
    check([tuple(r) for r in rows] == [tuple(r) for r in parameter_layout(want_spec)], f"{what}: layout rows {rows}")
    check(xshape == list(x.shape), f"{what}: x stored with shape {xshape}, trained on {list(x.shape)}")
    w0 = np.frombuffer(blobs[0], dtype="<f8")
    flat0 = np.concatenate([initial[n].reshape(-1) for n, *_ in rows])
    check(np.array_equal(w0, flat0), f"{what}: checkpoint 0 is not the initial state_dict in layout order")
    last = max(blobs)
    w = np.frombuffer(blobs[last], dtype="<f8")
    p = {n: w[o:o + c].reshape(s) for n, s, o, c in rows}
    current = np.concatenate([t.detach().numpy().reshape(-1) for t in state.values()])
    check(np.array_equal(w, current), f"{what}: the last checkpoint is not the model's final weights")
    xs = x.numpy()
    f_np = np_outputs(spec, p, xs)
    with torch.no_grad():
        f_torch = model(x).numpy()
    err = float(np.abs(f_np - f_torch).max() / max(1.0, np.abs(f_torch).max()))
    check(err < 1e-12, f"{what}: the recorded spec evaluated in NumPy differs from the torch model by {err:.3g}")
    model.zero_grad()
    rec_loss = {"mse": lambda f, t: 0.5 * (f - t).pow(2).sum(1).mean(),
                "logistic": lambda f, t: torch.nn.functional.binary_cross_entropy_with_logits(f[:, 0], t.double()),
                "cross-entropy": lambda f, t: torch.nn.functional.cross_entropy(f, t.long())}[loss]
    rec_loss(model(x), y).backward()
    value, g = np_network(spec)(p, xs, y.numpy().astype(np.float64), loss)
    gerr = max(float(np.abs(g[n] - prm.grad.numpy()).max()) for n, prm in model.named_parameters())
    gscale = max(float(np.abs(prm.grad.numpy()).max()) for _, prm in model.named_parameters())
    check(gerr <= 1e-10 * max(1.0, gscale), f"{what}: NumPy gradient of the recorded spec differs from torch's by {gerr:.3g}")
    model.zero_grad()
    return f"outputs {err:.1e}, gradients {gerr / max(1.0, gscale):.1e}"


LAYER_CASES = []


def layer_case(f):
    LAYER_CASES.append(f)
    return f


@layer_case
def cnn_sgd_momentum(tmp: Path):
    g = torch.Generator().manual_seed(21)
    x, y = shapes_images(48, g)
    xt, yt = shapes_images(24, g)
    torch.manual_seed(21)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding="same"), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(24, 3))
    want = {"kind": "sequential", "input": [1, 8, 8], "parameterization": "standard", "layers": [
        {"kind": "conv2d", "out": 4, "kernel": 3, "stride": 1, "padding": 1, "bias": True}, {"kind": "relu"},
        {"kind": "maxpool2d", "kernel": 2, "stride": 2, "padding": "valid"},
        {"kind": "conv2d", "out": 6, "kernel": 3, "padding": "same"}, {"kind": "relu"},
        {"kind": "avgpool2d", "kernel": 2, "stride": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 3}]}
    initial = {n: t.detach().numpy().copy() for n, t in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = str(tmp / "cnn-momentum.sqlite")
    train(path, model, opt, loss="cross-entropy", x=x, y=y, xt=xt, yt=yt, steps=20, batch_size=16, checkpoint_every=5)
    semantics = check_layer_list(path, model, want, x, "cross-entropy", y, "CNN", initial)
    return path, "CNN (conv, relu, max pool, conv same, avg pool, flatten, linear), SGD momentum 0.9, cross-entropy", semantics


@layer_case
def residual_adamw(tmp: Path):
    g = torch.Generator().manual_seed(22)
    x = torch.randn(40, 1, 6, 6, generator=g)
    y = (x[:, 0, :3].mean((1, 2)) > x[:, 0, 3:].mean((1, 2))).double()
    torch.manual_seed(22)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        Residual(nn.Sequential(nn.LayerNorm([4, 6, 6]), nn.Conv2d(4, 4, 3, padding=1), nn.GELU(),
                               nn.Conv2d(4, 4, 3, padding=1))),
        Residual(nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.GELU()),
                 shortcut=nn.Conv2d(4, 6, 1, stride=2, bias=False)),
        nn.LayerNorm([6, 3, 3], elementwise_affine=False),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 1))
    with torch.no_grad():        # γ ≠ 1, β ≠ 0, so that the affine part is exercised
        model[1].block[0].weight.add_(0.1 * torch.randn(4, 6, 6, generator=g))
        model[1].block[0].bias.add_(0.1 * torch.randn(4, 6, 6, generator=g))
    want = {"kind": "sequential", "input": [1, 6, 6], "parameterization": "standard", "layers": [
        {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"kind": "residual", "block": {"kind": "sequential", "layers": [
            {"kind": "layernorm", "eps": 1e-5, "affine": True}, {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1},
            {"kind": "gelu"}, {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1}]}},
        {"kind": "residual",
         "block": {"kind": "sequential", "layers": [{"kind": "conv2d", "out": 6, "kernel": 3, "stride": 2, "padding": 1},
                                                    {"kind": "gelu"}]},
         "shortcut": {"kind": "conv2d", "out": 6, "kernel": 1, "stride": 2, "bias": False}},
        {"kind": "layernorm", "affine": False},
        {"kind": "globalavgpool"}, {"kind": "flatten"}, {"kind": "dense", "out": 1}]}
    initial = {n: t.detach().numpy().copy() for n, t in model.state_dict().items()}
    # The usual AdamW set-up: weight decay on the conv and linear weights, none on the biases and
    # the LayerNorm parameters.
    norm = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    no_decay = [n for n, p in model.named_parameters() if n.endswith("bias") or id(p) in norm]
    opt = torch.optim.AdamW([
        {"params": [p for n, p in model.named_parameters() if n not in no_decay], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n in no_decay], "weight_decay": 0.0}], lr=0.01)
    path = str(tmp / "residual-adamw.sqlite")
    train(path, model, opt, loss="logistic", x=x, y=y, xt=x[:10], yt=y[:10], steps=16, batch_size=10, checkpoint_every=4)
    semantics = check_layer_list(path, model, want, x, "logistic", y, "residual net", initial)
    # the weights (570 scalars) outnumber the rest (307): top level 0.01, one group with decay 0
    check_groups(path, "residual net", 0.01, [{"parameters": ["0.bias", "1.block.0.weight", "1.block.0.bias", "1.block.1.bias",
                                                             "1.block.3.bias", "2.block.0.bias", "6.bias"], "weightDecay": 0.0}],
                 ["0.exp_avg", "0.exp_avg_sq"])
    GROUP_CASES.add(path)
    return path, ("residual net (LayerNorm, GELU, projection shortcut, AdaptiveAvgPool2d+Flatten), AdamW param groups: "
                  "wd 0.01 on weights, 0 on biases and LayerNorm, logistic"), semantics


def mapping_zoo() -> None:
    """Every supported module in settings the trained cases do not use (even kernel with
    'same', rectangular kernels, strides, explicit and asymmetric padding, pools with padding
    and overlapping windows, every activation, LayerNorm on vectors, nested Sequentials, an
    AdaptiveAvgPool2d(1) whose Flatten sits in the parent): the spec model_spec writes,
    evaluated by the test's NumPy interpreter, against torch's outputs and gradients."""
    torch.manual_seed(23)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 2, padding="same"), nn.LeakyReLU(0.2),
        nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0)), nn.Softplus(),
        nn.AvgPool2d(3, stride=2, padding=1), nn.Identity(),
        nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(4, 5, 1, padding="valid"), nn.Sigmoid()),
        Residual(nn.Sequential(nn.Conv2d(5, 5, 3, padding=1, bias=False), nn.Tanh())),
        nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1))), nn.Flatten(),
        nn.Linear(5, 6), nn.LayerNorm(6), nn.GELU(), Residual(nn.Linear(6, 6), shortcut=nn.Identity()), nn.Linear(6, 2)).double()
    x = torch.randn(5, 2, 9, 7)
    spec, named = model_spec(model, input_shape=x.shape[1:])
    check([n for n, _ in named] == list(model.state_dict().keys()), f"zoo: names {[n for n, _ in named]}")
    p = {n: t.detach().numpy() for n, t in named}
    y = torch.randn(5, 2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")   # torch's note on a copy
        f = model(x)
    (0.5 * (f - y).pow(2).sum(1).mean()).backward()
    err = float(np.abs(np_outputs(spec, p, x.numpy()) - f.detach().numpy()).max())
    _, g = np_network(spec)(p, x.numpy(), y.numpy(), "mse")
    gerr = max(float(np.abs(g[n] - t.grad.numpy()).max() / max(1.0, float(t.grad.abs().max()))) for n, t in named)
    check(err < 1e-12 and gerr < 1e-10, f"zoo: the NumPy evaluation of the spec differs from torch: outputs {err:.3g}, gradients {gerr:.3g}")
    print(f"  every supported module and setting (zoo, no training): spec in NumPy = torch to {err:.1e} (outputs), {gerr:.1e} (gradients)")


def refusals(tmp: Path) -> None:
    """Unsupported models and optimizers are refused before anything is recorded (no file)."""
    path = tmp / "refused.sqlite"
    x = torch.randn(8, 1, 6, 6)
    y = torch.randint(0, 2, (8,)).double()

    class Custom(nn.Module):
        def forward(self, x):
            return x * 2

    def record(model, opt=None):
        opt = opt or torch.optim.SGD(model.parameters(), lr=0.1)
        TorchRecorder(path, model.double(), opt, loss="logistic", x_train=x, y_train=y)

    cases = [
        ("BatchNorm2d (training mode)", nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 1)),
         ["module '1' (nn.BatchNorm2d)", "depends on the other examples in its batch", "per-example tangent kernel"]),
        ("Dropout", nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(36, 1)), ["module '1' (nn.Dropout)", "random mask"]),
        ("a custom module", nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), Custom()), nn.Flatten(), nn.Linear(32, 1)),
         ["module '1.1' (", "Custom): not supported", "nn.Conv2d"]),
        ("groups = 2", nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(8, 1)),
         ["module '1' (nn.Conv2d): groups=2"]),
        ("dilation", nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.Flatten(), nn.Linear(8, 1)), ["dilation="]),
        ("reflect padding", nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(), nn.Linear(72, 1)),
         ["padding_mode='reflect'"]),
        ("AdaptiveAvgPool2d(1) without Flatten", nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Linear(2, 1)),
         ["module '1' (nn.AdaptiveAvgPool2d(1)) must be followed by nn.Flatten()"]),
        ("AdaptiveAvgPool2d(2)", nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8, 1)),
         ["output_size=2"]),
        ("LayerNorm over the last axis", nn.Sequential(nn.Conv2d(1, 2, 3), nn.LayerNorm(4), nn.Flatten(), nn.Linear(32, 1)),
         ["module '1' (nn.LayerNorm): normalized_shape=[4] but its input is [2, 4, 4]"]),
        ("Linear on an image", nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 1)), ["module '1' (nn.Linear)", "nn.Flatten()"]),
        ("ceil_mode", nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(), nn.Linear(9, 1)), ["ceil_mode=True"]),
        ("Softplus(threshold=5)", nn.Sequential(nn.Flatten(), nn.Linear(36, 4), nn.Softplus(threshold=5), nn.Linear(4, 1)),
         ["module '2' (nn.Softplus)", "threshold=5"]),
        ("GELU(tanh)", nn.Sequential(nn.Flatten(), nn.Linear(36, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 1)),
         ["module '2' (nn.GELU)", "approximate='tanh'"]),
        ("in-place ReLU on a residual input",
         nn.Sequential(Residual(nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(1, 1, 3, padding=1))), nn.Flatten(), nn.Linear(36, 1)),
         ["module '0.block.0' (nn.ReLU): in-place"]),
        ("in-place ReLU on a residual input seen through nn.Identity",
         nn.Sequential(nn.Conv2d(1, 2, 3), Residual(nn.Sequential(nn.Identity(), nn.LeakyReLU(0.1, inplace=True))), nn.Flatten(), nn.Linear(32, 1)),
         ["module '1.block.1' (nn.LeakyReLU): in-place"]),
        ("in-place ReLU on the model's input", nn.Sequential(nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(36, 1)),
         ["module '0' (nn.ReLU): in-place", "the model's input"]),
        ("a residual block that changes the shape", nn.Sequential(Residual(nn.Conv2d(1, 2, 3, padding=1)), nn.Flatten(), nn.Linear(72, 1)),
         ["module '0' (torch_adapter.Residual): the block maps [1, 6, 6] → [2, 6, 6]"]),
        ("an image output", nn.Sequential(nn.Conv2d(1, 1, 3)), ["output is [1, 4, 4]"]),
        ("a root that is not nn.Sequential", Residual(nn.Conv2d(1, 1, 3, padding=1)), ["must be a torch.nn.Sequential"]),
    ]
    for what, model, fragments in cases:
        expect_refusal(what, lambda: record(model), *fragments)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 1)).double()
    decay, no_decay = [p for n, p in model.named_parameters() if n.endswith("weight")], [p for n, p in model.named_parameters() if n.endswith("bias")]
    # Groups with different learning rates are recorded (the scheduled ones by their initial_lr) …
    names = [n for n, _ in model_spec(model, input_shape=[1, 6, 6])[1]]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0, "lr": 0.1}], lr=0.01)
    spec = optimizer_spec(opt, decay + no_decay, names=[n for n in names if n.endswith("weight")] + [n for n in names if n.endswith("bias")])
    check(spec["learningRate"] == 0.01 and spec["groups"] == [{"parameters": ["1.bias", "2.bias", "4.bias"], "weightDecay": 0.0, "learningRate": 0.1}],
          f"AdamW groups with their own rates: {spec}")
    opt = torch.optim.SGD([{"params": decay}, {"params": no_decay, "lr": 0.2}], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)          # adds initial_lr to each group
    opt.step()
    sched.step()                                                                  # lr 0.05 and 0.1 now, initial 0.1 and 0.2
    spec = optimizer_spec(opt, decay + no_decay, names=[n for n in names if n.endswith("weight")] + [n for n in names if n.endswith("bias")])
    check(spec["learningRate"] == 0.1 and spec["groups"] == [{"parameters": ["1.bias", "2.bias", "4.bias"], "learningRate": 0.2}],
          f"SGD groups with their own rates under a scheduler: {spec}")
    expect_refusal("group rates without names", lambda: optimizer_spec(opt, decay + no_decay),
                   "the parameter groups differ in lr; give names=")
    # … but a schedule that changes their ratio is refused at the step where it does, naming the group.
    for what, make in [
        ("CosineAnnealingLR with eta_min > 0", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
        ("a group's lr set by hand", None),
    ]:
        torch.manual_seed(0)
        m = nn.Sequential(nn.Flatten(), nn.Linear(36, 1)).double()
        o = torch.optim.SGD([{"params": [m[1].weight]}, {"params": [m[1].bias], "lr": 0.02}], lr=0.1)
        sch = make(o) if make else None

        def run(m=m, o=o, sch=sch):
            with TorchRecorder(path, m, o, loss="logistic", x_train=x, y_train=y) as rec:
                for t in range(4):
                    o.zero_grad()
                    value = rec.loss_fn(m(x), y)
                    value.backward()
                    if sch is None and t == 2:
                        o.param_groups[1]["lr"] = 0.03
                    rec.before_step(t, loss=value)
                    o.step()
                    rec.after_step(t)
                    if sch is not None:
                        sch.step()
        expect_refusal(f"group rates whose ratio changes ({what})", run,
                       "step 1: param group 1's learning rate" if make else "step 2: param group 1's learning rate is 0.03",
                       "base group 0", "constant learning-rate ratio")
        path.unlink()
    opt = torch.optim.Adam([{"params": decay, "weight_decay": 1e-3}, {"params": no_decay, "betas": (0.8, 0.99)}], lr=0.01)
    expect_refusal("parameter groups with different betas (and weight decay)", lambda: record(model, opt),
                   "parameter groups 0 and 1 differ in betas", "(betas: (0.9, 0.999) vs (0.8, 0.99))")
    check(not path.exists(), "a refused TorchRecorder left a file behind")
    # A plain MLP keeps the MLP spec and its names (existing traces and tools unchanged).
    spec, named = model_spec(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Identity(), nn.Linear(5, 2)))
    check(spec["kind"] == "mlp" and spec["layers"] == [3, 5, 2] and [n for n, _ in named] ==
          ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"], f"plain MLP: {spec}, {[n for n, _ in named]}")
    # Anything else with Linear layers becomes a layer list, indices kept.
    spec, named = model_spec(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 1)), input_shape=[3])
    check(spec["kind"] == "sequential" and [n for n, _ in named] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"],
          f"mixed activations: {spec['kind']}, {[n for n, _ in named]}")
    # A final Sigmoid under the logistic loss is allowed (a layer list) but warned about.
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 1), nn.Sigmoid()).double()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = TorchRecorder(path, model, torch.optim.SGD(model.parameters(), lr=0.1), loss="logistic", x_train=x, y_train=y)
    rec.finish("aborted", "warning test")
    path.unlink()
    check(any("ends with nn.Sigmoid" in str(w.message) for w in caught), f"no warning about a final Sigmoid: {[str(w.message) for w in caught]}")
    print(f"  refusals: {len(cases) + 2} unsupported models/optimizers refused before recording (no file), 2 group-rate "
          "schedules that change the ratio refused at their step; plain MLPs keep {\"kind\": \"mlp\"}; group rates mapped")



def check_analysis(path: str, what: str) -> float:
    """inspect (no problems), analyze: replay of PyTorch's updates, the optimizer's own kernel,
    the kernel form against the quadrature. Returns the replay mismatch."""
    inspect(path)
    report = analyze(path)
    replay = report["replay"]
    mismatch = float(replay["largest_mismatch"])
    check(replay["mode"].startswith("replayed"), f"{what}: replay mode {replay['mode']}")
    check(mismatch < 1e-10, f"{what}: largest replay mismatch {mismatch:.3g} (≥ 1e-10)")
    if path in GROUP_CASES:
        check(mismatch <= 1e-12, f"{what}: largest replay mismatch {mismatch:.3g} (> 1e-12 with parameter groups)")
    res = residuals(report)
    # The optimizer's own kernel, named, and its kernel form rebuilding the network
    # (PyTorch's updates and Adam/RMSprop state against the analyzer's kernel sums).
    kernel = report["settings"].get("path_kernel") or ""
    # (Plain SGD with group learning rates: the preconditioned kernel with D = M.)
    want = ("preconditioned" if ("Adam" in what or "RMSprop" in what or ("group lr" in what and "(plain)" in what))
            else "two-time" if ("momentum" in what or "Nesterov" in what) else "path kernel")
    check(kernel.startswith(want), f"{what}: kernel {kernel!r}, expected {want}")
    if "group lr" in what:
        check("group learning rates M" in kernel, f"{what}: kernel {kernel!r} does not name the group rates")
    for split, r in report["reconstruction"].items():
        if isinstance(r, dict) and r.get("kernel_form_max_abs") is not None:
            km, mx = float(r["kernel_form_max_abs"]), float(r["max_abs_residual"])
            check(km <= max(1e-9, 10 * mx), f"{what}: {split} kernel form off by {km:.3g} (quadrature {mx:.3g})")
    print(f"  {what}: replay mismatch {mismatch:.2e}, residual "
          + ", ".join(f"{k} {v:.1e}" for k, v in sorted(res.items())))
    return mismatch


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
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                kind = json.loads(db.execute("SELECT model_json FROM run").fetchone()[0]).get("kind")
                db.close()
                check(kind == "mlp", f"{what}: a plain MLP was recorded as model kind {kind!r}, not 'mlp'")
                worst = max(worst, check_analysis(path, what))
            refusals(tmp)
            mapping_zoo()
            for f in LAYER_CASES:
                path, what, semantics = f(tmp)
                print(f"  {what}: spec, layout (= state_dict), checkpoints written; the recorded spec in NumPy "
                      f"matches torch ({semantics}, relative)")
                reason = sequential_support(tmp)
                if reason is None:
                    worst = max(worst, check_analysis(path, what))
                else:
                    fail_unsupported(f"inspect/analyze of the {what.split(' (')[0]} trace", reason)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    closing = f"largest replay mismatch {worst:.2e} (analyzer tolerance 1e-8) ({time.time() - started:.1f} s)"
    print(f"OK: {closing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
