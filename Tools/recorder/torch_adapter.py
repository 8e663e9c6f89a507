"""Record a PyTorch training run as a pathkernel trace: a thin adapter over pathkernel_recorder.

Supports a `torch.nn.Sequential` of `nn.Linear` layers with one hidden activation (ReLU, Tanh,
Sigmoid, GELU (exact), Softplus (beta 1), LeakyReLU(slope), Identity, or none), trained with
`torch.optim.SGD` (momentum, dampening, Nesterov, weight_decay), `Adam`, `AdamW` or `RMSprop`
(not centered). Use float64 everywhere (`model.double()`, float64 data) so that pathkernel's
replay of your steps matches the recorded checkpoints.

    from torch_adapter import TorchRecorder

    with TorchRecorder("run.sqlite", model, optimizer, loss="cross-entropy",
                       x_train=X, y_train=y, x_test=Xt, y_test=yt, checkpoint_every=10) as rec:
        for t in range(T):
            batch = torch.randint(0, len(X), (32,))
            optimizer.zero_grad()
            loss = rec.loss_fn(model(X[batch]), y[batch])   # pathkernel's loss (½‖f−y‖² for mse)
            loss.backward()
            rec.before_step(t, batch, loss=loss)            # checkpoint w_t (every k), step row
            optimizer.step()
            rec.after_step(t)                               # checkpoint w_{t+1} (every k)
    # leaving the block stores the final weights and marks the run finished

What is mapped how:
- model: `Linear` l → `layers.l.weight` [out, in] and `layers.l.bias` [out] (nn.Linear's own
  layout), flat order weight then bias per layer; spec `{"layers": [in, h1, …, out],
  "activation": …, "parameterization": "standard", "bias": …}` (nn.Linear has no forward scale).
- optimizer: hyper-parameters of the single parameter group → the optimizer spec of
  Docs/config.md; its state (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `square_avg`, Adam's
  `step`) → the buffers of pathkernel's chain (`"1.momentum_buffer"`, `"0.exp_avg"`, …), stored
  with every checkpoint.
- loss: `loss_fn` is pathkernel's loss written in torch: mse = mean over the batch of ½‖f − y‖²
  (= 0.5·C·F.mse_loss), logistic = F.binary_cross_entropy_with_logits, cross-entropy =
  F.cross_entropy, all means over the batch. Train on exactly this expression (the analyzer's
  replay and decomposition differentiate pathkernel's loss; F.mse_loss alone would be off by 2/C).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

try:
    from pathkernel_recorder import RecorderError, TraceRecorder
except ImportError:  # imported as part of a package
    from .pathkernel_recorder import RecorderError, TraceRecorder  # type: ignore

__all__ = ["TorchRecorder", "model_spec", "optimizer_spec", "pathkernel_loss", "RecorderError"]


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

def _activation(m: nn.Module) -> tuple[str, float | None] | None:
    """(pathkernel activation, leaky slope) for a supported activation module, else None."""
    if isinstance(m, nn.ReLU):
        return "relu", None
    if isinstance(m, nn.Tanh):
        return "tanh", None
    if isinstance(m, nn.Sigmoid):
        return "sigmoid", None
    if isinstance(m, nn.GELU):
        if m.approximate != "none":
            raise RecorderError("nn.GELU(approximate='tanh') is not supported: pathkernel's gelu is the exact x·Φ(x) (use nn.GELU())")
        return "gelu", None
    if isinstance(m, nn.Softplus):
        if m.beta != 1:
            raise RecorderError(f"nn.Softplus(beta={m.beta}) is not supported: pathkernel's softplus is log(1 + eˣ) (beta 1)")
        return "softplus", None
    if isinstance(m, nn.LeakyReLU):
        return "leaky-relu", float(m.negative_slope)
    return None


def model_spec(model: nn.Module, sigma_w: float = 1.0, sigma_b: float = 0.1) -> tuple[dict, list[tuple[str, torch.nn.Parameter]]]:
    """The pathkernel model spec of a Sequential MLP and its parameters in pathkernel's order,
    `[("layers.0.weight", p), ("layers.0.bias", p), …]`.

    `sigma_w`, `sigma_b` only describe the initialization (under the standard parameterization
    they do not enter the forward pass, and the trace's checkpoint 0 holds the actual initial
    weights); they are stored as given."""
    if not isinstance(model, nn.Sequential):
        raise RecorderError(f"the model must be a torch.nn.Sequential of Linear layers and activations, got {type(model).__name__}")
    modules = [m for m in model if not isinstance(m, nn.Identity)]
    linears: list[nn.Linear] = []
    acts: list[tuple[str, float | None]] = []
    pending: tuple[str, float | None] | None = None
    for i, m in enumerate(modules):
        if isinstance(m, nn.Linear):
            if linears:
                acts.append(pending or ("identity", None))
            linears.append(m)
            pending = None
            continue
        a = _activation(m)
        if a is None:
            raise RecorderError(f"module {type(m).__name__} is not supported (supported: Linear, ReLU, Tanh, Sigmoid, GELU, Softplus, LeakyReLU, Identity)")
        if not linears:
            raise RecorderError(f"the model starts with {type(m).__name__}: pathkernel's MLP starts with a Linear layer")
        if pending is not None:
            raise RecorderError("two activations in a row: pathkernel's MLP applies one activation between Linear layers")
        pending = a
    if not linears:
        raise RecorderError("the model has no Linear layer")
    if pending is not None:
        raise RecorderError(f"the model ends with an activation ({pending[0]}): pathkernel's output layer is linear; "
                            "train on logits with loss='logistic' or 'cross-entropy' instead of a final Sigmoid/Softmax")
    kinds = {a for a in acts}
    if len(kinds) > 1:
        names = sorted(a if s is None else f"{a}({s})" for a, s in kinds)
        raise RecorderError(f"pathkernel's MLP uses one activation for every hidden layer, the model mixes {', '.join(names)}")
    activation, slope = acts[0] if acts else ("identity", None)
    biases = {l.bias is not None for l in linears}
    if len(biases) > 1:
        raise RecorderError("some Linear layers have a bias and some do not: pathkernel's model.bias is one setting for all layers")
    bias = biases.pop()
    layers = [linears[0].in_features]
    for i, l in enumerate(linears):
        if l.in_features != layers[-1]:
            raise RecorderError(f"Linear layer {i} takes {l.in_features} inputs but the previous layer gives {layers[-1]}")
        layers.append(l.out_features)
    spec = {"kind": "mlp", "layers": layers, "activation": activation, "parameterization": "standard",
            "sigmaW": float(sigma_w), "sigmaB": float(sigma_b), "bias": bias}
    if slope is not None:
        spec["leakySlope"] = slope
    params: list[tuple[str, torch.nn.Parameter]] = []
    for i, l in enumerate(linears):
        params.append((f"layers.{i}.weight", l.weight))
        if bias:
            params.append((f"layers.{i}.bias", l.bias))
    return spec, params


# ----------------------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------------------

def _group(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> dict:
    """The hyper-parameters shared by every parameter group; checks the groups hold exactly the
    model's parameters."""
    groups = optimizer.param_groups
    ids = [id(p) for g in groups for p in g["params"]]
    want = {id(p) for p in params}
    if set(ids) != want or len(ids) != len(want):
        raise RecorderError("the optimizer must hold exactly the model's parameters, each once")
    if not all(p.requires_grad for p in params):
        raise RecorderError("every parameter must be trained (requires_grad); pathkernel has no frozen parameters")
    first = {k: v for k, v in groups[0].items() if k != "params"}
    for g in groups[1:]:
        other = {k: v for k, v in g.items() if k != "params"}
        if other.keys() != first.keys() or any(_value(other[k]) != _value(first[k]) for k in first):
            raise RecorderError("the optimizer's parameter groups have different settings: pathkernel's optimizer has one setting for all parameters")
    return first


def _value(v: Any) -> Any:
    if torch.is_tensor(v):
        return v.item() if v.numel() == 1 else tuple(v.tolist())
    if isinstance(v, (tuple, list)):
        return tuple(_value(x) for x in v)
    return v


def optimizer_spec(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                   clip_norm: float | None = None) -> dict:
    """The pathkernel optimizer spec (Docs/config.md) of a torch optimizer over `params`."""
    g = _group(optimizer, params)
    if g.get("maximize"):
        raise RecorderError("maximize=True is not supported")
    lr = float(_value(g.get("initial_lr", g["lr"])))
    wd = float(_value(g.get("weight_decay", 0.0)))
    if isinstance(optimizer, torch.optim.Adam):   # AdamW is Adam(decoupled_weight_decay=True)
        if g.get("amsgrad"):
            raise RecorderError("Adam(amsgrad=True) is not supported")
        b1, b2 = (float(_value(b)) for b in g["betas"])
        decoupled = isinstance(optimizer, torch.optim.AdamW) or bool(g.get("decoupled_weight_decay", False))
        spec = {"kind": "adamw" if decoupled else "adam", "learningRate": lr, "weightDecay": wd,
                "beta1": b1, "beta2": b2, "eps": float(g["eps"])}
    elif isinstance(optimizer, torch.optim.SGD):
        spec = {"kind": "sgd", "learningRate": lr, "weightDecay": wd, "momentum": float(g["momentum"]),
                "dampening": float(g["dampening"]), "nesterov": bool(g["nesterov"])}
    elif isinstance(optimizer, torch.optim.RMSprop):
        if g.get("centered"):
            raise RecorderError("RMSprop(centered=True) is not supported")
        spec = {"kind": "rmsprop", "learningRate": lr, "weightDecay": wd, "alpha": float(g["alpha"]),
                "eps": float(g["eps"]), "momentum": float(g["momentum"])}
    else:
        raise RecorderError(f"optimizer {type(optimizer).__name__} is not supported (supported: SGD, Adam, AdamW, RMSprop)")
    if clip_norm is not None:
        spec["clipNorm"] = float(clip_norm)
    return spec


# ----------------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------------

def pathkernel_loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """pathkernel's mean batch loss (PKOptim/Loss.swift) as a torch expression of the network's
    outputs `f` [n, C] and the targets: mse `½‖f − y‖²` summed over outputs, averaged over the
    batch; logistic `softplus(f) − y f` (one logit); cross-entropy `logsumexp(f) − f_k`."""
    if kind == "mse":
        def mse(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return 0.5 * (f - y.to(f.dtype).reshape(f.shape)).pow(2).sum(dim=1).mean()
        return mse
    if kind == "logistic":
        def logistic(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(f.reshape(-1), y.to(f.dtype).reshape(-1))
        return logistic
    if kind == "cross-entropy":
        def cross_entropy(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(f, y.reshape(-1).long())
        return cross_entropy
    raise RecorderError(f"loss {kind!r} is not supported (supported: mse, logistic, cross-entropy)")


# ----------------------------------------------------------------------------------------------
# The recorder
# ----------------------------------------------------------------------------------------------

class TorchRecorder:
    """Records a torch.nn.Sequential MLP trained by a torch optimizer (see the module docstring).

    Call order per update t: compute the loss at the current weights (with `loss_fn`),
    `backward()`, optionally `clip_grad_norm_()`, `before_step(t, batch, loss=loss)`,
    `optimizer.step()`, `after_step(t)`. Create the recorder before the optimizer's first step.

    Keyword arguments: `loss` ("mse", "logistic", "cross-entropy"), `x_train`, `y_train`,
    `x_test`, `y_test` (tensors or arrays; class indices for classification), `name` (default:
    the file name), `seed` (default `torch.initial_seed()`), `checkpoint_every`, `precision`,
    `planned_steps`, `batch_size` (for config_json only), `clip_norm` (global-norm clipping done
    by `clip_grad_norm_`), `sigma_w`, `sigma_b` (descriptive), `schedule` (a pathkernel schedule
    spec describing your scheduler, descriptive: the rate each update used is in its step row and
    is what the analyzer uses; default constant), `task`, `description`, `overwrite`.
    """

    def __init__(self, path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 loss: str, x_train: Any, y_train: Any, x_test: Any = None, y_test: Any = None,
                 name: str | None = None, seed: int | None = None, checkpoint_every: int = 1,
                 precision: str = "float64", planned_steps: int | None = None, batch_size: int | None = None,
                 clip_norm: float | None = None, sigma_w: float = 1.0, sigma_b: float = 0.1,
                 schedule: dict | None = None, task: str | None = None, description: str | None = None,
                 overwrite: bool = False):
        self.model = model
        self.optimizer = optimizer
        spec, named = model_spec(model, sigma_w, sigma_b)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        if any(p.dtype != torch.float64 for p in self.params):
            # The analyzer recomputes every step in float64 and compares it with the stored weights
            # (1e-8 relative for float64 traces, 1e-4 for float32 ones): refused here, at the start,
            # rather than after the whole run by `pathkernel analyze`.
            if precision != "float32":
                raise RecorderError("the model's parameters are not float64, but precision='float64': pathkernel checks "
                                    "every recorded step in float64 to 1e-8, which float32 training misses; train in "
                                    "float64 (model.double(), the default dtype torch.float64) or record with "
                                    "precision='float32' and checkpoint_every=1 (steps checked to 1e-4)")
            if checkpoint_every != 1:
                raise RecorderError(f"float32 training with checkpoint_every={checkpoint_every}: the analyzer replays the "
                                    "steps between checkpoints in float64, and float32 rounding drifts past its 1e-4 "
                                    "tolerance over a few steps; use checkpoint_every=1, or train in float64 (model.double())")
        self.spec = optimizer_spec(optimizer, self.params, clip_norm)
        if any(len(optimizer.state.get(p, {})) for p in self.params):
            raise RecorderError("the optimizer has already taken steps: create the TorchRecorder before the first optimizer.step()")
        if schedule is not None:
            self.spec["schedule"] = dict(schedule)
        self.clip_norm = clip_norm
        self.loss_fn = pathkernel_loss(loss)
        self.recorder = TraceRecorder(
            path, name=name or os.path.splitext(os.path.basename(os.fspath(path)))[0] or "torch-run",
            seed=torch.initial_seed() % 2 ** 64 if seed is None else seed, model=spec, loss=loss,
            optimizer=self.spec, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, task=task,
            checkpoint_every=checkpoint_every, precision=precision, planned_steps=planned_steps,
            batch_size=batch_size, description=description, framework=f"torch {torch.__version__}",
            overwrite=overwrite)
        self._bare = [n.split(".", 1)[1] for n in self.recorder.buffer_names]
        self._n = self.recorder.train_count
        self._seen = 0
        self._pending_step: int | None = None
        self._clip_scale: float | None = None
        self._updates = 0

    # --- reading torch ----------------------------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        """The current weights as pathkernel-named float64 arrays."""
        return {n: p.detach().cpu().double().numpy() for n, p in zip(self.names, self.params)}

    def optimizer_state(self) -> tuple[dict[str, Any] | None, int | None]:
        """The optimizer's buffers in pathkernel's names (bare PyTorch keys; the recorder maps
        them onto the chain) and its update count (Adam's/RMSprop's `step`, else None)."""
        if not self._bare:
            return None, None
        state: dict[str, dict[str, Any]] = {}
        steps = set()
        for n, p in zip(self.names, self.params):
            s = self.optimizer.state.get(p, {})
            if "step" in s:
                steps.add(int(_value(s["step"])))
            for b in self._bare:
                v = s.get(b)
                state.setdefault(b, {})[n] = (torch.zeros_like(p) if v is None else v).detach().cpu().double().numpy()
        if len(steps) > 1:
            raise RecorderError(f"the optimizer's parameters have different step counts {sorted(steps)}")
        return state, (steps.pop() if steps else None)

    # --- recording --------------------------------------------------------------------------

    def _checkpoint(self, step: int) -> None:
        state, count = self.optimizer_state()
        if count is None and state is not None:
            count = self._updates
        self.recorder.checkpoint(step, self.parameters(), optimizer_state=state, optimizer_count=count)

    def clip_grad_norm_(self) -> float:
        """Scales the gradients to global norm ≤ clip_norm exactly as pathkernel does
        (κ = c/‖g‖ when ‖g‖ > c, else 1; PyTorch's clip_grad_norm_ uses c/(‖g‖ + 1e-6), which
        replay would not reproduce) and returns κ, recorded with the next `before_step`."""
        if self.clip_norm is None:
            raise RecorderError("clip_grad_norm_ needs clip_norm= when the recorder is created")
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            raise RecorderError("clip_grad_norm_: a parameter has no gradient (call backward() first)")
        with torch.no_grad():
            norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
            kappa = self.clip_norm / norm if math.isfinite(norm) and norm > self.clip_norm else 1.0
            if kappa != 1.0:
                for g in grads:
                    g.mul_(kappa)
        self._clip_scale = kappa
        return kappa

    def before_step(self, step: int, batch: Any = None, lr: float | None = None, loss: Any = None,
                    epoch: int | None = None) -> None:
        """Call after `backward()` and before `optimizer.step()`: checkpoints `w_step` when
        `step` is a multiple of checkpoint_every (always 0) and records the step row.

        `batch`: the row indices of x_train used (None = the full batch); `lr`: default the
        optimizer's current rate; `loss`: the batch loss at the current weights (from `loss_fn`);
        `epoch`: default `examples seen so far // n_train`."""
        if self._pending_step is not None:
            raise RecorderError(f"before_step({step}) without after_step({self._pending_step})")
        if loss is None:
            raise RecorderError(f"before_step({step}): give loss= (the batch loss at the current weights)")
        if self.recorder.wants_checkpoint(step) or (step == 0 and not self.recorder.has_checkpoint(0)):
            self._checkpoint(step)
        if lr is None:
            lr = float(_value(self.optimizer.param_groups[0]["lr"]))
        size = self._n if batch is None else int(torch.as_tensor(batch).numel())
        if epoch is None:
            epoch = self._seen // self._n
        clip = None
        if self.clip_norm is not None:
            if self._clip_scale is None:
                raise RecorderError(f"step {step}: the recorder clips (clip_norm={self.clip_norm}); call rec.clip_grad_norm_() after backward()")
            clip, self._clip_scale = self._clip_scale, None
        self.recorder.step(step, epoch, lr, batch, loss, clip_scale=clip)
        self._seen += size
        self._pending_step = step

    def after_step(self, step: int) -> None:
        """Call after `optimizer.step()`: checkpoints `w_{step+1}` when step + 1 is a multiple of
        checkpoint_every."""
        if self._pending_step != step:
            raise RecorderError(f"after_step({step}) does not follow before_step({step})")
        self._pending_step = None
        self._updates += 1
        if self.recorder.wants_checkpoint(step + 1):
            self._checkpoint(step + 1)

    def finish(self, status: str = "finished", message: str | None = None) -> None:
        """Stores the final weights (after the last update) unless stored, sets the status, closes."""
        if self.recorder._conn is None:
            return
        final = self.recorder.last_step + 1
        if self._pending_step is None and final > 0 and not self.recorder.has_checkpoint(final):
            self._checkpoint(final)
        self.recorder.finish(status, message)

    def __enter__(self) -> "TorchRecorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.recorder._conn is None:
            return
        if exc_type is None:
            self.finish("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.recorder.finish("aborted", f"stopped by the user after step {self.recorder.last_step}")
        else:
            self.recorder.finish("aborted", f"{exc_type.__name__}: {exc}".splitlines()[0][:500])
