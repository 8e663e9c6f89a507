#!/usr/bin/env python3
"""End-to-end test of the NumPy trace recorder against the pathkernel binary (no torch needed).

Trains small NumPy MLPs, records them with pathkernel_recorder.TraceRecorder, then runs
`pathkernel analyze TRACE --nodes 4 --quiet`, `pathkernel report TRACE --format json` and
`pathkernel inspect TRACE --json` and checks:

1. full-batch GD, MLP 2-16-16-1 tanh (standard parameterization), logistic loss on two moons,
   30 steps, a checkpoint every step: reconstruction relative residual < 1e-9 (train and held
   out), `inspect` reports no problems, the schema is the one Docs/trace-format.md lists;
2. minibatch SGD with momentum 0.9, a checkpoint every 5 steps with the momentum buffer stored:
   the analyzer replays the steps between checkpoints, largest replay mismatch < 1e-10;
3. Adam, 3-class cross-entropy (relu), checkpoints every 4 steps with Adam's moments: same;
4. MSE regression with 2 outputs, float32 checkpoints, every 3 steps;
5. a recorder process killed with SIGKILL mid-run leaves a valid trace (status running, no
   problems) that `analyze` reads up to its last committed checkpoint.

Usage (from the repository root; needs python3 and numpy only):

    swift build --product pathkernel            # or any build; see PATHKERNEL_BIN
    python3 Tools/recorder/test_numpy_recorder.py

PATHKERNEL_BIN: the binary (default .build/debug/pathkernel, relative to the repository root).
Exit status 0 when every check passes, 1 with a message naming the failed check otherwise.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from pathkernel_recorder import TraceRecorder  # noqa: E402


class Failure(Exception):
    pass


def check(ok: bool, message: str) -> None:
    if not ok:
        raise Failure(message)


def binary() -> str:
    b = os.environ.get("PATHKERNEL_BIN", ".build/debug/pathkernel")
    p = Path(b) if os.path.isabs(b) else REPO / b
    if not p.exists():
        raise Failure(f"pathkernel binary not found at {p}: build it (swift build --product pathkernel) or set PATHKERNEL_BIN")
    return str(p)


def run(*args: str) -> str:
    r = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise Failure(f"`pathkernel {' '.join(args)}` exited {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


# ---------------------------------------------------------------------------------------------
# A small NumPy MLP (standard parameterization), pathkernel's losses, and optimizers
# ---------------------------------------------------------------------------------------------

def act(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if name == "tanh":
        a = np.tanh(z)
        return a, 1 - a * a
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(np.float64)
    raise ValueError(name)


def init(layers: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = {}
    for l in range(len(layers) - 1):
        p[f"layers.{l}.weight"] = rng.normal(0, 1 / np.sqrt(layers[l]), (layers[l + 1], layers[l]))
        p[f"layers.{l}.bias"] = rng.normal(0, 0.1, layers[l + 1])
    return p


def forward_backward(p, x, y, activation: str, loss: str):
    """Mean batch loss (pathkernel's definition) and its gradient."""
    L = len(p) // 2
    acts, derivs = [x], []
    a = x
    for l in range(L):
        z = a @ p[f"layers.{l}.weight"].T + p[f"layers.{l}.bias"]
        if l < L - 1:
            a, d = act(activation, z)
            acts.append(a)
            derivs.append(d)
        else:
            f = z
    n = x.shape[0]
    if loss == "logistic":
        t = y.reshape(-1, 1)
        e = np.exp(-np.abs(f))
        ell = np.maximum(f, 0) - t * f + np.log1p(e)
        g = np.where(f >= 0, 1 / (1 + e), e / (1 + e)) - t
    elif loss == "cross-entropy":
        k = y.astype(int)
        m = f.max(axis=1, keepdims=True)
        ex = np.exp(f - m)
        z = ex.sum(axis=1, keepdims=True)
        ell = (m[:, 0] - f[np.arange(n), k]) + np.log(z[:, 0])
        g = ex / z
        g[np.arange(n), k] -= 1
    else:  # mse: ½‖f − y‖²
        ell = 0.5 * ((f - y) ** 2).sum(axis=1)
        g = f - y
    delta = g / n
    grads = {}
    for l in reversed(range(L)):
        grads[f"layers.{l}.weight"] = delta.T @ acts[l]
        grads[f"layers.{l}.bias"] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ p[f"layers.{l}.weight"]) * derivs[l - 1]
    return float(ell.mean()), grads


def moons(n: int, rng: np.random.Generator, noise: float = 0.15):
    k = rng.integers(0, 2, n)
    t = rng.uniform(0, np.pi, n)
    x = np.where(k[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    return x + noise * rng.normal(size=(n, 2)), k.astype(np.float64)


def blobs(n: int, rng: np.random.Generator, classes: int = 3):
    k = rng.integers(0, classes, n)
    centers = np.array([[np.cos(2 * np.pi * c / classes), np.sin(2 * np.pi * c / classes)] for c in range(classes)])
    return centers[k] * 2 + 0.6 * rng.normal(size=(n, 2)), k.astype(np.float64)


def train_and_record(path, *, name, layers, activation, loss, optimizer, x, y, xt, yt, steps, batch_size,
                     checkpoint_every, precision="float64", seed=0, kill_after=None):
    """Trains with `optimizer` (NumPy, PyTorch's update rules) and records every step."""
    rng = np.random.default_rng(seed)
    p = init(layers, rng)
    kind, lr = optimizer["kind"], optimizer["learningRate"]
    mu = optimizer.get("momentum", 0.0)
    b1, b2, eps = optimizer.get("beta1", 0.9), optimizer.get("beta2", 0.999), optimizer.get("eps", 1e-8)
    state: dict[str, dict[str, np.ndarray]] = {}      # buffer name → {tensor name → array}
    n = x.shape[0]
    rec = TraceRecorder(path, name=name, seed=seed,
                        model={"layers": layers, "activation": activation, "parameterization": "standard"},
                        loss=loss, optimizer=optimizer, x_train=x, y_train=y, x_test=xt, y_test=yt,
                        checkpoint_every=checkpoint_every, precision=precision, planned_steps=steps,
                        batch_size=batch_size)
    with rec:
        order, pos, epoch = rng.permutation(n), 0, 0
        for t in range(steps):
            if rec.wants_checkpoint(t):
                rec.checkpoint(t, p, optimizer_state=state or None)
            if batch_size is None:
                batch = np.arange(n)
                epoch = t
            else:
                if pos + batch_size > n:
                    order, pos, epoch = rng.permutation(n), 0, epoch + 1
                batch = order[pos:pos + batch_size]
                pos += batch_size
            value, g = forward_backward(p, x[batch], y[batch], activation, loss)
            rec.step(t, epoch, lr, batch, value)
            for k in p:
                if kind in ("gd", "sgd"):
                    if mu:
                        buf = state.setdefault("momentum_buffer", {})
                        buf[k] = g[k].copy() if t == 0 else mu * buf[k] + g[k]
                        p[k] = p[k] - lr * buf[k]
                    else:
                        p[k] = p[k] - lr * g[k]
                elif kind == "adam":
                    m = state.setdefault("exp_avg", {}).get(k, np.zeros_like(p[k]))
                    v = state.setdefault("exp_avg_sq", {}).get(k, np.zeros_like(p[k]))
                    m = b1 * m + (1 - b1) * g[k]
                    v = b2 * v + (1 - b2) * g[k] ** 2
                    state["exp_avg"][k], state["exp_avg_sq"][k] = m, v
                    denom = np.sqrt(v) / np.sqrt(1 - b2 ** (t + 1)) + eps
                    p[k] = p[k] - lr * (m / denom) / (1 - b1 ** (t + 1))
            if kill_after is not None and t + 1 == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        rec.finish(params=p, optimizer_state=state or None)


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

def analyze(path: str) -> dict:
    run("analyze", path, "--nodes", "4", "--quiet")
    return json.loads(run("report", path, "--format", "json"))


def inspect(path: str) -> dict:
    info = json.loads(run("inspect", path, "--json"))
    check(info["problems"] == [], f"{path}: inspect reports problems: {info['problems']}")
    return info


def residuals(report: dict) -> dict:
    rec = report["reconstruction"]
    out = {}
    for split in ("train", "test"):
        r = rec.get(split)
        if r and r.get("relative_residual") is not None:
            out[split] = float(r["relative_residual"])
    check(bool(out), "the report has no reconstruction residual")
    return out


def check_schema(path: str) -> None:
    """The trace's CREATE statements are the ones Docs/trace-format.md documents (the same
    comparison as Tests/CLITests' schemaMatchesTheDocs), and the pragmas are set."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    check(db.execute("PRAGMA application_id").fetchone()[0] == 0x504B5452, "application_id is not PKTR")
    check(db.execute("PRAGMA page_size").fetchone()[0] == 65536, "page_size is not 65536")
    check(db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal", "journal_mode is not WAL")
    rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    check(rows == [(1, "v1-initial"), (2, "v2-optimizer-state"), (3, "v3-analysis-basis")], f"schema_migrations rows are {rows}")
    actual = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")]
    db.close()
    doc_path = REPO / "Docs" / "trace-format.md"
    if not doc_path.exists():
        print("  (Docs/trace-format.md not found: schema text not compared)")
        return

    def statements(text: str) -> list[str]:
        return [s for s in (" ".join(part.split()) for part in text.split(";")) if s.startswith("CREATE")]

    documented = set(statements(doc_path.read_text()))
    got = [s for sql in actual for s in statements(sql)]
    check(len(got) == 8, f"expected 8 tables, found {len(got)}")
    for s in got:
        check(s in documented, f"undocumented schema statement: {s}")


def case_gd(tmp: Path) -> None:
    rng = np.random.default_rng(1)
    x, y = moons(64, rng)
    xt, yt = moons(64, rng)
    path = str(tmp / "gd.sqlite")
    train_and_record(path, name="numpy-moons-gd", layers=[2, 16, 16, 1], activation="tanh", loss="logistic",
                     optimizer={"kind": "gd", "learningRate": 0.5}, x=x, y=y, xt=xt, yt=yt,
                     steps=30, batch_size=None, checkpoint_every=1)
    check_schema(path)
    info = inspect(path)
    check(info["status"] == "finished" and info["steps"] == 30 and info["checkpoints"] == 31,
          f"inspect: status {info['status']}, {info['steps']} steps, {info['checkpoints']} checkpoints")
    first, initial = info["firstLoss"], info["train"]["initial"]["loss"]
    check(abs(first - initial) <= 1e-12 * abs(initial),
          f"gd: step 0's recorded loss {first} is not pathkernel's full-batch loss at checkpoint 0 ({initial})")
    report = analyze(path)
    res = residuals(report)
    for split, r in res.items():
        check(r < 1e-9, f"gd: reconstruction relative residual on {split} is {r:.3g} (≥ 1e-9)")
    print(f"  gd (full batch, checkpoint every step): residual {fmt(res)}, accuracy {info['train']['final'].get('accuracy')}")


def case_momentum(tmp: Path) -> None:
    rng = np.random.default_rng(2)
    x, y = moons(64, rng)
    xt, yt = moons(32, rng)
    path = str(tmp / "momentum.sqlite")
    train_and_record(path, name="numpy-moons-momentum", layers=[2, 16, 16, 1], activation="tanh", loss="logistic",
                     optimizer={"kind": "sgd", "learningRate": 0.1, "momentum": 0.9}, x=x, y=y, xt=xt, yt=yt,
                     steps=30, batch_size=16, checkpoint_every=5, seed=3)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = [json.loads(r[0]) for r in db.execute("SELECT names FROM optimizer_state ORDER BY step")]
    counts = [r[0] for r in db.execute("SELECT count FROM optimizer_state ORDER BY step")]
    db.close()
    check(names and all(n == ["0.momentum_buffer"] for n in names), f"momentum state names {names}")
    check(counts == [0, 5, 10, 15, 20, 25, 30], f"momentum state counts {counts}")
    inspect(path)
    report = analyze(path)
    mismatch = float(report["replay"]["largest_mismatch"])
    check(report["replay"]["mode"].startswith("replayed"), f"replay mode {report['replay']['mode']}")
    check(mismatch < 1e-10, f"momentum: largest replay mismatch {mismatch:.3g} (≥ 1e-10)")
    res = residuals(report)
    for split, r in res.items():
        check(r < 1e-9, f"momentum: reconstruction relative residual on {split} is {r:.3g} (≥ 1e-9)")
    print(f"  sgd momentum 0.9 (checkpoint every 5, state stored): replay mismatch {mismatch:.2e}, residual {fmt(res)}")


def case_adam(tmp: Path) -> None:
    rng = np.random.default_rng(4)
    x, y = blobs(60, rng)
    xt, yt = blobs(30, rng)
    path = str(tmp / "adam.sqlite")
    train_and_record(path, name="numpy-blobs-adam", layers=[2, 12, 3], activation="relu", loss="cross-entropy",
                     optimizer={"kind": "adam", "learningRate": 0.01}, x=x, y=y, xt=xt, yt=yt,
                     steps=20, batch_size=20, checkpoint_every=4, seed=5)
    inspect(path)
    report = analyze(path)
    mismatch = float(report["replay"]["largest_mismatch"])
    check(mismatch < 1e-10, f"adam: largest replay mismatch {mismatch:.3g} (≥ 1e-10)")
    print(f"  adam, cross-entropy (checkpoint every 4, moments stored): replay mismatch {mismatch:.2e}, residual {fmt(residuals(report))}")


def case_regression_f32(tmp: Path) -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(-2, 2, (40, 1))
    y = np.c_[np.sin(2 * x[:, 0]), np.cos(x[:, 0])]
    path = str(tmp / "mse.sqlite")
    train_and_record(path, name="numpy-sine-mse", layers=[1, 16, 2], activation="tanh", loss="mse",
                     optimizer={"kind": "gd", "learningRate": 0.2}, x=x, y=y, xt=x[:10], yt=y[:10],
                     steps=12, batch_size=None, checkpoint_every=3, precision="float32")
    info = inspect(path)
    check(info["precision"] == "float32", f"precision {info['precision']}")
    report = analyze(path)
    mismatch = float(report["replay"]["largest_mismatch"])
    check(mismatch < 1e-4, f"mse float32: replay mismatch {mismatch:.3g} (float32 tolerance 1e-4)")
    print(f"  mse, 2 outputs, float32 checkpoints every 3: replay mismatch {mismatch:.2e} (float32 rounding)")


def case_killed(tmp: Path) -> None:
    path = str(tmp / "killed.sqlite")
    child = f"""
import sys, numpy as np
sys.path.insert(0, {str(HERE)!r})
import test_numpy_recorder as t
rng = np.random.default_rng(7)
x, y = t.moons(32, rng)
t.train_and_record({path!r}, name="killed", layers=[2, 8, 1], activation="tanh", loss="logistic",
                   optimizer={{"kind": "sgd", "learningRate": 0.1, "momentum": 0.5}}, x=x, y=y, xt=x, yt=y,
                   steps=40, batch_size=8, checkpoint_every=4, kill_after=14)
"""
    r = subprocess.run([sys.executable, "-B", "-c", child], capture_output=True, text=True, timeout=120)
    check(r.returncode == -signal.SIGKILL, f"the recording child was not killed (exit {r.returncode}): {r.stderr.strip()}")
    check(os.path.exists(path + "-wal"), "the killed writer left no -wal file (was the trace closed?)")
    info = inspect(path)
    check(info["status"] == "running", f"a killed run should stay 'running', got {info['status']}")
    check(info["steps"] == 14 and info["lastCheckpoint"] == 12, f"killed run: {info['steps']} steps, last checkpoint {info['lastCheckpoint']}")
    report = analyze(path)
    check(any("still being written" in n or "killed" in n for n in report["run"].get("notes", [])),
          f"the report does not say the trace is a prefix: {report['run'].get('notes')}")
    print(f"  killed with SIGKILL after 14 steps: valid, status running, analyzed steps 0..<12, replay mismatch {float(report['replay']['largest_mismatch']):.2e}")


def fmt(res: dict) -> str:
    return ", ".join(f"{k} {v:.1e}" for k, v in sorted(res.items()))


def main() -> int:
    started = time.time()
    try:
        binary()
        with tempfile.TemporaryDirectory(prefix="pk-recorder-") as d:
            tmp = Path(d)
            print("NumPy recorder → pathkernel")
            for case in (case_gd, case_momentum, case_adam, case_regression_f32, case_killed):
                case(tmp)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"OK ({time.time() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
