"""Record a PyTorch training run as a pathkernel trace: a thin adapter over pathkernel_recorder.

Supports a `torch.nn.Sequential` of `nn.Linear` layers with one hidden activation (the MLP
kind), and trees of nn.Sequential, nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d,
nn.AdaptiveAvgPool2d(1) + nn.Flatten, nn.Flatten, nn.LayerNorm, the activations ReLU,
LeakyReLU, Tanh, Sigmoid, GELU (exact), Softplus (beta 1), Identity, and this module's
`Residual(block, shortcut=None)` (pathkernel's layer lists: CNNs, residual nets), trained with
`torch.optim.SGD` (momentum, dampening, Nesterov, weight_decay), `Adam`, `AdamW` or `RMSprop`
(not centered), with parameter groups that differ in weight_decay and lr only (the groups'
rates keeping their ratios over the run). Use float64 everywhere
(`model.double()`, float64 data) so that pathkernel's replay of your steps matches the recorded
checkpoints.

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
- model, a plain MLP: `Linear` l → `layers.l.weight` [out, in] and `layers.l.bias` [out]
  (nn.Linear's own layout), flat order weight then bias per layer; spec `{"kind": "mlp",
  "layers": [in, h1, …, out], "activation": …, "parameterization": "standard", "bias": …}`
  (nn.Linear has no forward scale).
- model, anything else supported: `{"kind": "sequential", "input": [C, H, W] or [d],
  "parameterization": "standard", "layers": [...]}`, one layer object per module, parameters
  named as in the model's state_dict (`0.weight`, `2.block.1.bias`; see `model_spec`). The
  input shape comes from x_train (`[n, C, H, W]` → `[C, H, W]`) or `input_shape=`.
- optimizer: hyper-parameters of the parameter groups → the optimizer spec of Docs/config.md.
  The groups must agree in every setting but `weight_decay` and `lr`; groups that differ in
  them (the usual AdamW set-up: no decay on biases and LayerNorm; layers with their own rates)
  → `optimizer.groups`, each tensor by its exact name, the top-level `weightDecay` and
  `learningRate` being the decay and the rate that cover the most scalar parameters
  (`_param_groups`). A group's rate must stay the same multiple of the top level's over the
  run (a schedule scales every group's rate by the same factor; checked at every step). The
  state (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `square_avg`, Adam's `step`) → the
  buffers of pathkernel's chain (`"1.momentum_buffer"`, `"0.exp_avg"`, …), stored with every
  checkpoint.
- loss: `loss_fn` is pathkernel's loss written in torch: mse = mean over the batch of ½‖f − y‖²
  (= 0.5·C·F.mse_loss), logistic = F.binary_cross_entropy_with_logits, cross-entropy =
  F.cross_entropy, all means over the batch. Train on exactly this expression (the analyzer's
  replay and decomposition differentiate pathkernel's loss; F.mse_loss alone would be off by 2/C).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:
    from pathkernel_recorder import RecorderError, TraceRecorder, layer_output_shape, parameter_layout
except ImportError:  # imported as part of a package
    from .pathkernel_recorder import RecorderError, TraceRecorder, layer_output_shape, parameter_layout  # type: ignore

__all__ = ["TorchRecorder", "Residual", "model_spec", "optimizer_spec", "pathkernel_loss", "RecorderError",
           "SUPPORTED_MODULES"]


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

class Residual(nn.Module):
    """A residual block for recorded models: `forward(x) = block(x) + x`, or `block(x) +
    shortcut(x)` with a projection shortcut (He et al. 2016). PyTorch has no residual module;
    this one is what `model_spec` maps to pathkernel's `residual` layer, with the parameters
    named `block.…` then `shortcut.…`, as its state_dict names them.

        Residual(nn.Sequential(nn.LayerNorm([8, 4, 4]), nn.Conv2d(8, 8, 3, padding="same"), nn.GELU()))
        Residual(nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)),
                 shortcut=nn.Conv2d(4, 8, 1, bias=False))

    `block` and `shortcut` are any modules `model_spec` supports (usually an nn.Sequential);
    without a shortcut the block must keep the shape of its input."""

    def __init__(self, block: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.block = block
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + (x if self.shortcut is None else self.shortcut(x))


#: What `model_spec` maps, for its refusal messages.
SUPPORTED_MODULES = ("nn.Sequential, nn.Linear, nn.Conv2d (groups 1, dilation 1, zero padding), nn.AvgPool2d, "
                     "nn.MaxPool2d, nn.AdaptiveAvgPool2d(1) followed by nn.Flatten, nn.Flatten, "
                     "nn.LayerNorm (over the whole example), nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, "
                     "nn.GELU(), nn.Softplus(), nn.Identity, torch_adapter.Residual")


def _type_name(m: nn.Module) -> str:
    t = type(m)
    return f"nn.{t.__name__}" if t.__module__.startswith("torch.nn") else f"{t.__module__}.{t.__qualname__}"


def _activation(m: nn.Module) -> tuple[str, float | None] | None:
    """(pathkernel activation, leaky slope) for a supported activation module, None for any other
    module; refuses an activation in a setting pathkernel computes differently."""
    t = type(m)
    if t is nn.ReLU:
        return "relu", None
    if t is nn.Tanh:
        return "tanh", None
    if t is nn.Sigmoid:
        return "sigmoid", None
    if t is nn.Identity:
        return "identity", None
    if t is nn.GELU:
        if m.approximate != "none":
            raise RecorderError("nn.GELU(approximate='tanh') is not supported: pathkernel's gelu is the exact x·Φ(x) (use nn.GELU())")
        return "gelu", None
    if t is nn.Softplus:
        if m.beta != 1:
            raise RecorderError(f"nn.Softplus(beta={m.beta}) is not supported: pathkernel's softplus is log(1 + eˣ) (beta 1)")
        if m.threshold < 20:
            raise RecorderError(f"nn.Softplus(threshold={m.threshold}) is not supported: PyTorch returns x above the threshold t, "
                                f"pathkernel's softplus has none (they differ by log1p(e^−t), {math.log1p(math.exp(-m.threshold)):.1e} "
                                "here; 2e-9 at the default threshold 20, which is accepted)")
        return "softplus", None
    if t is nn.LeakyReLU:
        return "leaky-relu", float(m.negative_slope)
    return None


def _mlp_spec(model: nn.Sequential, sigma_w: float, sigma_b: float) -> tuple[dict, list[tuple[str, nn.Parameter]]] | None:
    """The `{"kind": "mlp"}` spec when `model` is a plain MLP, else None: Linear layers with one
    activation module between consecutive ones (nn.Identity modules ignored), the same activation
    everywhere, all biases on or all off, widths that chain, a Linear layer last. These models
    keep the spec and the `layers.l.weight` names they always had."""
    modules = [m for m in model if type(m) is not nn.Identity]
    if any(m._forward_hooks or m._forward_pre_hooks for m in modules):
        return None
    linears: list[nn.Linear] = []
    acts: list[tuple[str, float | None]] = []
    pending: tuple[str, float | None] | None = None
    for m in modules:
        if type(m) is nn.Linear:
            if linears:
                acts.append(pending or ("identity", None))
            elif pending is not None:
                return None                                   # starts with an activation
            linears.append(m)
            pending = None
            continue
        try:
            a = _activation(m)
        except RecorderError:
            return None                                       # the layer-list path names the module
        if a is None or not linears or pending is not None:
            return None
        pending = a
    if not linears or pending is not None or len(set(acts)) > 1:
        return None
    if len({l.bias is not None for l in linears}) > 1:
        return None
    for a, b in zip(linears, linears[1:]):
        if b.in_features != a.out_features:
            return None
    activation, slope = acts[0] if acts else ("identity", None)
    bias = linears[0].bias is not None
    layers = [linears[0].in_features] + [l.out_features for l in linears]
    spec = {"kind": "mlp", "layers": layers, "activation": activation, "parameterization": "standard",
            "sigmaW": float(sigma_w), "sigmaB": float(sigma_b), "bias": bias}
    if slope is not None:
        spec["leakySlope"] = slope
    params: list[tuple[str, nn.Parameter]] = []
    for i, l in enumerate(linears):
        params.append((f"layers.{i}.weight", l.weight))
        if bias:
            params.append((f"layers.{i}.bias", l.bias))
    return spec, params


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _compact_pair(v: Any) -> int | list[int]:
    h, w = _pair(v)
    return h if h == w else [h, w]


class _Mapper:
    """Walks a module tree in execution order and builds the layer objects, the parameters in
    pathkernel's order and names, and the shapes, refusing what pathkernel cannot compute."""

    def __init__(self) -> None:
        self.params: list[tuple[str, nn.Parameter]] = []
        self.slopes: set[float] = set()
        self.gap: str | None = None              # an AdaptiveAvgPool2d(1) waiting for its Flatten
        # The next leaf reads a tensor that is used again: the model's input (the caller's batch),
        # or a residual block's input (added by the shortcut), possibly through views.
        self.shared_input = True

    @staticmethod
    def where(qname: str) -> str:
        return f"module '{qname}'" if qname else "the model"

    def refuse(self, m: nn.Module, qname: str, why: str) -> RecorderError:
        return RecorderError(f"{self.where(qname)} ({_type_name(m)}): {why}")

    def unsupported(self, m: nn.Module, qname: str) -> RecorderError:
        return self.refuse(m, qname, f"not supported (supported: {SUPPORTED_MODULES})")

    def map(self, m: nn.Module, qname: str, name: str, shape: list[int]) -> tuple[dict, list[int]]:
        """The layer object of module `m` (torch name `qname`, pathkernel name prefix `name`)
        for inputs of `shape`, and its output shape."""
        if m._forward_hooks or m._forward_pre_hooks:
            raise self.refuse(m, qname, "has forward hooks, which can change what it computes; remove them while recording")
        t = type(m)
        if t is nn.Sequential:
            return self.sequential(m, qname, name, shape)
        if t is Residual:
            return self.residual(m, qname, name, shape)
        if self.gap is not None and t is not nn.Flatten:
            raise RecorderError(f"module '{self.gap}' (nn.AdaptiveAvgPool2d(1)) must be followed by nn.Flatten() "
                                f"(pathkernel's globalavgpool gives [C], not [C, 1, 1]); it is followed by "
                                f"{self.where(qname)} ({_type_name(m)})")
        obj = self.leaf(m, qname, name, shape)
        if t not in (nn.Identity, nn.Flatten):       # these return their input or a view of it
            self.shared_input = False
        return obj, layer_output_shape(obj, shape, f"{self.where(qname)} ({_type_name(m)})")

    def sequential(self, m: nn.Sequential, qname: str, name: str, shape: list[int]) -> tuple[dict, list[int]]:
        children = list(m._modules.items())
        if not children:
            return {"kind": "identity"}, shape
        layers = []
        for i, (key, child) in enumerate(children):
            if child is None:
                raise self.refuse(m, qname, f"child {key!r} is None")
            obj, shape = self.map(child, f"{qname}.{key}" if qname else key, f"{name}{i}.", shape)
            layers.append(obj)
        return {"kind": "sequential", "layers": layers}, shape

    def residual(self, m: Residual, qname: str, name: str, shape: list[int]) -> tuple[dict, list[int]]:
        prefix = f"{qname}." if qname else ""
        self.shared_input = True
        block, out = self.map(m.block, prefix + "block", f"{name}block.", shape)
        if self.gap is not None:
            raise RecorderError(f"module '{self.gap}' (nn.AdaptiveAvgPool2d(1)) ends a residual block: it must be followed by nn.Flatten()")
        obj = {"kind": "residual", "block": block}
        if m.shortcut is None:
            if out != shape:
                raise self.refuse(m, qname, f"the block maps {shape} → {out}; without a shortcut it must keep the shape "
                                            "(give Residual a projection shortcut, e.g. a 1×1 nn.Conv2d)")
        else:
            self.shared_input = True
            obj["shortcut"], sout = self.map(m.shortcut, prefix + "shortcut", f"{name}shortcut.", shape)
            if self.gap is not None:
                raise RecorderError(f"module '{self.gap}' (nn.AdaptiveAvgPool2d(1)) ends a residual shortcut: it must be followed by nn.Flatten()")
            if sout != out:
                raise self.refuse(m, qname, f"the block maps {shape} → {out}, the shortcut {shape} → {sout}; they must agree")
        self.shared_input = False
        return obj, out

    def add(self, name: str, m: nn.Module, *tensors: str) -> None:
        for t in tensors:
            p = getattr(m, t)
            if p is not None:
                self.params.append((name + t, p))

    def leaf(self, m: nn.Module, qname: str, name: str, shape: list[int]) -> dict:
        t = type(m)
        try:
            act = _activation(m)
        except RecorderError as e:
            raise self.refuse(m, qname, str(e)) from None
        if act is not None:
            if getattr(m, "inplace", False) and self.shared_input:
                raise self.refuse(m, qname, "in-place activation on a tensor that is used again (the model's input, or a "
                                            "residual block's input that the shortcut adds): it would overwrite it "
                                            "(use inplace=False)")
            kind, slope = act
            if slope is None:
                return {"kind": kind}
            self.slopes.add(slope)
            return {"kind": kind, "leakySlope": slope}
        if t is nn.Linear:
            if len(shape) != 1:
                raise self.refuse(m, qname, f"gets inputs of shape {shape}: PyTorch applies nn.Linear to the last axis, "
                                            "pathkernel's dense layer needs a feature vector (put nn.Flatten() before it)")
            if m.in_features != shape[0]:
                raise self.refuse(m, qname, f"takes {m.in_features} features but gets {shape[0]}")
            self.add(name, m, "weight", "bias")
            return {"kind": "dense", "out": m.out_features, "bias": m.bias is not None}
        if t is nn.Conv2d:
            if m.groups != 1:
                raise self.refuse(m, qname, f"groups={m.groups}: pathkernel's conv2d is a full convolution (groups 1)")
            if _pair(m.dilation) != (1, 1):
                raise self.refuse(m, qname, f"dilation={m.dilation}: pathkernel's conv2d has dilation 1")
            if m.padding_mode != "zeros":
                raise self.refuse(m, qname, f"padding_mode={m.padding_mode!r}: pathkernel pads with zeros")
            if len(shape) != 3:
                raise self.refuse(m, qname, f"gets inputs of shape {shape}: pathkernel's conv2d needs an image [C, H, W] "
                                            "(give x_train as [n, C, H, W], or input_shape=(C, H, W))")
            if m.in_channels != shape[0]:
                raise self.refuse(m, qname, f"takes {m.in_channels} channels but gets {shape[0]} ({shape})")
            padding = m.padding if isinstance(m.padding, str) else _compact_pair(m.padding)
            if padding == 0:
                padding = "valid"
            self.add(name, m, "weight", "bias")
            return {"kind": "conv2d", "out": m.out_channels, "kernel": _compact_pair(m.kernel_size),
                    "stride": _compact_pair(m.stride), "padding": padding, "bias": m.bias is not None}
        if t in (nn.AvgPool2d, nn.MaxPool2d):
            if m.ceil_mode:
                raise self.refuse(m, qname, "ceil_mode=True: pathkernel's pools use floor (ceil_mode=False)")
            padding = _compact_pair(m.padding)
            if t is nn.AvgPool2d:
                if m.divisor_override is not None:
                    raise self.refuse(m, qname, "divisor_override is not supported: pathkernel divides by the kernel size")
                if not m.count_include_pad and padding != 0:
                    raise self.refuse(m, qname, "count_include_pad=False with padding: pathkernel counts the padding "
                                                "(divides by the kernel size everywhere)")
            else:
                if _pair(m.dilation) != (1, 1):
                    raise self.refuse(m, qname, f"dilation={m.dilation}: pathkernel's maxpool2d has dilation 1")
                if m.return_indices:
                    raise self.refuse(m, qname, "return_indices=True: the module must return the pooled tensor alone")
            stride = m.stride if m.stride is not None else m.kernel_size
            return {"kind": "avgpool2d" if t is nn.AvgPool2d else "maxpool2d", "kernel": _compact_pair(m.kernel_size),
                    "stride": _compact_pair(stride), "padding": "valid" if padding == 0 else padding}
        if t is nn.AdaptiveAvgPool2d:
            size = m.output_size
            if (size if isinstance(size, int) else tuple(size)) not in (1, (1, 1)):
                raise self.refuse(m, qname, f"output_size={size}: only nn.AdaptiveAvgPool2d(1) (global average pooling) "
                                            "is supported")
            self.gap = qname
            return {"kind": "globalavgpool"}
        if t is nn.Flatten:
            if m.start_dim != 1 or m.end_dim != -1:
                raise self.refuse(m, qname, f"start_dim={m.start_dim}, end_dim={m.end_dim}: only nn.Flatten() "
                                            "(start_dim 1, end_dim -1: the whole example) is supported")
            self.gap = None
            return {"kind": "flatten"}
        if t is nn.LayerNorm:
            if list(m.normalized_shape) != list(shape):
                raise self.refuse(m, qname, f"normalized_shape={list(m.normalized_shape)} but its input is {shape}: "
                                            "pathkernel's layernorm normalizes over the whole example (normalized_shape = "
                                            "the input's shape without the batch axis)")
            if m.elementwise_affine and m.bias is None:
                raise self.refuse(m, qname, "bias=False: pathkernel's layernorm has both weight and bias, or neither "
                                            "(elementwise_affine=False)")
            self.add(name, m, "weight", "bias")
            return {"kind": "layernorm", "eps": float(m.eps), "affine": bool(m.elementwise_affine)}
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.training or not m.track_running_stats:
                raise self.refuse(m, qname, "BatchNorm in training mode normalizes with the statistics of the batch, so an "
                                            "example's output depends on the other examples in its batch and the "
                                            "per-example tangent kernel that pathkernel integrates is undefined; use "
                                            "nn.LayerNorm, or no normalization")
            raise self.refuse(m, qname, "BatchNorm in eval mode is a fixed per-channel affine map of running statistics, "
                                        "which pathkernel has no layer for")
        if isinstance(m, nn.modules.dropout._DropoutNd):
            raise self.refuse(m, qname, "dropout draws a random mask at every step, which the trace does not record, so "
                                        "the updates cannot be replayed and the kernel is not that of the network trained; "
                                        "remove it while recording (use nn.Identity())")
        raise self.unsupported(m, qname)


def model_spec(model: nn.Module, sigma_w: float = 1.0, sigma_b: float = 0.1,
               input_shape: Any = None) -> tuple[dict, list[tuple[str, torch.nn.Parameter]]]:
    """The pathkernel model spec of an nn.Sequential and its parameters in pathkernel's order and
    names: `(spec, [(name, parameter), …])`.

    A plain MLP (nn.Linear layers with one activation kind between them, all with or all without
    bias, ending with nn.Linear; nn.Identity modules ignored) gives `{"kind": "mlp", "layers":
    [in, h…, out], …}` with names `layers.l.weight`, `layers.l.bias`, as always. Any other
    supported tree (`SUPPORTED_MODULES`) gives a layer list `{"kind": "sequential", "input":
    input_shape, "parameterization": "standard", "layers": […]}` (Docs/networks.md, "The JSON
    form of layer lists") whose parameter names are PyTorch's state_dict names for
    index-named nn.Sequential children (`0.weight`, `3.block.1.bias`); every child keeps its
    index, so nn.Identity and the parameterless modules map to layers of their own.
    `input_shape`, the shape of one example ([C, H, W] or [d]), is needed for layer lists
    (TorchRecorder takes it from x_train).

    nn.AdaptiveAvgPool2d(1) maps to `globalavgpool`, which outputs [C], so it must be followed
    by nn.Flatten() (a no-op on [C]; both keep their indices). Refused, before anything is
    recorded, with the module's qualified name and type: BatchNorm (in training mode an example's
    output depends on its batch, so per-example tangent kernels do not exist), dropout, any other
    module, and unsupported settings (groups ≠ 1, dilation, ceil_mode, GELU(tanh), …).

    `sigma_w`, `sigma_b` only describe the initialization (under the standard parameterization
    they do not enter the forward pass, and the trace's checkpoint 0 holds the actual initial
    weights); they are stored as given."""
    if type(model) is not nn.Sequential:
        raise RecorderError(f"the model must be a torch.nn.Sequential (wrap it: nn.Sequential(model)), got {_type_name(model)}")
    mlp = _mlp_spec(model, sigma_w, sigma_b)
    if mlp is not None:
        return mlp
    if input_shape is None:
        raise RecorderError("model_spec: this model is not a plain MLP, so its layer list needs input_shape= (one example's "
                            "shape, [C, H, W] or [d]); TorchRecorder takes it from x_train")
    shape = [int(d) for d in input_shape]
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise RecorderError(f"input_shape must be [C, H, W] or [d] with positive sizes, got {list(input_shape)}")
    mapper = _Mapper()
    layers, out = mapper.sequential(model, "", "", shape)
    if mapper.gap is not None:
        raise RecorderError(f"module '{mapper.gap}' (nn.AdaptiveAvgPool2d(1)) ends the model: it must be followed by nn.Flatten()")
    if layers["kind"] != "sequential":
        raise RecorderError("the model is an empty nn.Sequential")
    slope = mapper.slopes.pop() if len(mapper.slopes) == 1 else 0.01
    spec = {"kind": "sequential", "input": shape, "parameterization": "standard", "sigmaW": float(sigma_w),
            "sigmaB": float(sigma_b), "leakySlope": slope, "layers": layers["layers"]}
    layout = parameter_layout(spec)                     # also: the output is a vector [C]
    mapped = {id(p) for _, p in mapper.params}
    for qname, p in model.named_parameters():
        if id(p) not in mapped:
            raise RecorderError(f"parameter '{qname}' belongs to no supported layer (a tensor registered on a container?)")
    got = [(n, list(p.shape)) for n, p in mapper.params]
    want = [(n, list(s)) for n, s, *_ in layout]
    if got != want:      # the mapper and the recorder's layout rules disagree: a bug here, not the user's
        raise RecorderError(f"internal error: the parameters {got} do not follow the layout {want}")
    return spec, mapper.params


# ----------------------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------------------

#: The param_group keys that may differ between groups (recorded as `optimizer.groups`;
#: `initial_lr` is the `lr` an LRScheduler started from).
PER_GROUP_SETTINGS = ("weight_decay", "lr", "initial_lr")


def _group(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> dict:
    """The hyper-parameters every parameter group shares (all but `weight_decay` and `lr`, which
    `_param_groups` reads per group); checks the groups hold exactly the model's parameters and
    refuses groups that differ in anything else, naming the setting."""
    groups = optimizer.param_groups
    ids = [id(p) for g in groups for p in g["params"]]
    want = {id(p) for p in params}
    if set(ids) != want or len(ids) != len(want):
        raise RecorderError("the optimizer must hold exactly the model's parameters, each once")
    if not all(p.requires_grad for p in params):
        raise RecorderError("every parameter must be trained (requires_grad); pathkernel has no frozen parameters")
    skip = ("params",) + PER_GROUP_SETTINGS
    first = {k: v for k, v in groups[0].items() if k not in skip}
    for i, g in enumerate(groups[1:], 1):
        other = {k: v for k, v in g.items() if k not in skip}
        differ = sorted(k for k in first.keys() | other.keys()
                        if k not in first or k not in other or _value(other[k]) != _value(first[k]))
        if differ:
            k = differ[0]
            raise RecorderError(f"the optimizer's parameter groups 0 and {i} differ in {', '.join(differ)} "
                                f"({k}: {_value(first.get(k))!r} vs {_value(other.get(k))!r}): pathkernel's optimizer "
                                "has one value of every setting for all parameters except the weight decay and the "
                                "learning rate (groups that differ only in weight_decay and lr are recorded as "
                                "optimizer groups)")
    return first


def _group_lr(group: dict) -> float:
    """A param group's base rate: the `lr` an LRScheduler started from (`initial_lr`), else `lr`."""
    return float(_value(group.get("initial_lr", group["lr"])))


def _param_groups(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                  names: list[str] | None) -> tuple[float, float, list[dict]]:
    """The top-level learning rate and weight decay, and pathkernel's `optimizer.groups`, for
    torch param_groups that differ in `lr` and `weight_decay` (Docs/config.md; each tensor listed
    by its exact name).

    The top-level `weightDecay` (`learningRate`) is the decay (base rate) that covers the most
    scalar parameters (summed over the torch groups that have it; on a tie, the one of the
    earliest group), so the usual AdamW set-up reads `weightDecay` 0.01 with one group
    `{"parameters": [biases, norm weights], "weightDecay": 0}`. Every torch group with another
    decay or rate becomes one pathkernel group, in param_groups order, listing its tensors' names
    in layout order and the settings that differ (`weightDecay`, `learningRate`: its base rate,
    `initial_lr` under a scheduler). One decay and one rate for all: no groups."""
    groups = optimizer.param_groups
    decays = [float(_value(g.get("weight_decay", 0.0))) for g in groups]
    rates = [_group_lr(g) for g in groups]

    def top(values: list[float]) -> float:
        cover: dict[float, int] = {}
        for g, v in zip(groups, values):
            cover[v] = cover.get(v, 0) + sum(int(p.numel()) for p in g["params"])
        return max(cover, key=lambda v: cover[v])        # the first (in group order) of the largest

    wd, lr = top(decays), top(rates)
    if len(set(decays)) <= 1 and len(set(rates)) <= 1:
        return lr, wd, []
    if names is None or len(names) != len(params):
        differ = " and ".join(k for k, vs in (("weight_decay", decays), ("lr", rates)) if len(set(vs)) > 1)
        raise RecorderError(f"optimizer_spec: the parameter groups differ in {differ}; give names= (each parameter's "
                            "name in the trace's layout, as model_spec returns them) to record them as optimizer groups")
    out = []
    for g, d, r in zip(groups, decays, rates):
        members = {id(p) for p in g["params"]}
        if (d == wd and r == lr) or not members:
            continue
        entry: dict[str, Any] = {"parameters": [n for n, p in zip(names, params) if id(p) in members]}
        if d != wd:
            entry["weightDecay"] = d
        if r != lr:
            entry["learningRate"] = r
        out.append(entry)
    return lr, wd, out


def _value(v: Any) -> Any:
    if torch.is_tensor(v):
        return v.item() if v.numel() == 1 else tuple(v.tolist())
    if isinstance(v, (tuple, list)):
        return tuple(_value(x) for x in v)
    return v


def optimizer_spec(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                   clip_norm: float | None = None, names: list[str] | None = None) -> dict:
    """The pathkernel optimizer spec (Docs/config.md) of a torch optimizer over `params`.

    Parameter groups must agree in every setting but `weight_decay` and `lr`; groups that differ
    in them give `optimizer.groups` (`_param_groups`; `names`: the parameters' names in the
    layout, in the order of `params`, as `model_spec` returns them). A group's rate is recorded
    as its base rate (`initial_lr` under a scheduler); `TorchRecorder.before_step` checks that
    every group's rate stays the same multiple of the top level's."""
    g = _group(optimizer, params)
    if g.get("maximize"):
        raise RecorderError("maximize=True is not supported")
    lr, wd, decay_groups = _param_groups(optimizer, params, names)
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
    if decay_groups:
        spec["groups"] = decay_groups
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
    by `clip_grad_norm_`), `input_shape` (one example's shape, [C, H, W] or [d]; default: x_train's
    shape without its first axis), `sigma_w`, `sigma_b` (descriptive), `schedule` (a pathkernel schedule
    spec describing your scheduler, descriptive: the rate each update used is in its step row and
    is what the analyzer uses; default constant), `task`, `description`, `overwrite`.
    """

    def __init__(self, path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 loss: str, x_train: Any, y_train: Any, x_test: Any = None, y_test: Any = None,
                 name: str | None = None, seed: int | None = None, checkpoint_every: int = 1,
                 precision: str = "float64", planned_steps: int | None = None, batch_size: int | None = None,
                 clip_norm: float | None = None, sigma_w: float = 1.0, sigma_b: float = 0.1,
                 schedule: dict | None = None, task: str | None = None, description: str | None = None,
                 input_shape: Any = None, overwrite: bool = False):
        self.model = model
        self.optimizer = optimizer
        if input_shape is None:
            dims = tuple(x_train.shape) if hasattr(x_train, "shape") else np.shape(x_train)
            if len(dims) not in (2, 4):
                raise RecorderError(f"x_train must have shape [n, d] or [n, C, H, W] (or give input_shape=), got {list(dims)}")
            input_shape = dims[1:]
        spec, named = model_spec(model, sigma_w, sigma_b, input_shape=input_shape)
        if spec["kind"] == "sequential" and loss in ("logistic", "cross-entropy"):
            last = spec["layers"][-1]
            while last["kind"] == "sequential":
                last = last["layers"][-1]
            if last["kind"] == "sigmoid":
                warnings.warn(f"the model ends with nn.Sigmoid but loss={loss!r} applies its own sigmoid/softmax to the "
                              "outputs: train on logits (drop the final Sigmoid)", stacklevel=2)
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
        self.spec = optimizer_spec(optimizer, self.params, clip_norm, names=self.names)
        # Group learning rates: the base group (the first whose rate is the top level's, whose
        # current lr each step row records) and every group's rate over it, which must not change.
        rates = [_group_lr(g) for g in optimizer.param_groups]
        self._base_group = rates.index(self.spec["learningRate"])
        self._rate_ratios = [r / self.spec["learningRate"] for r in rates]
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
        optimizer's current rate (of the base group, the top level's `learningRate`); `loss`: the
        batch loss at the current weights (from `loss_fn`); `epoch`: default `examples seen so far
        // n_train`. With parameter groups of different rates, every group's current rate must be
        its initial multiple of the base group's (to 1e-9 relative: schedulers round), else the
        step is refused, naming the group: pathkernel's groups keep a constant rate ratio."""
        if self._pending_step is not None:
            raise RecorderError(f"before_step({step}) without after_step({self._pending_step})")
        if loss is None:
            raise RecorderError(f"before_step({step}): give loss= (the batch loss at the current weights)")
        if self.recorder.wants_checkpoint(step) or (step == 0 and not self.recorder.has_checkpoint(0)):
            self._checkpoint(step)
        groups = self.optimizer.param_groups
        base = float(_value(groups[self._base_group]["lr"]))
        for i, (g, ratio) in enumerate(zip(groups, self._rate_ratios)):
            current, want = float(_value(g["lr"])), base * ratio
            if not abs(current - want) <= 1e-9 * max(abs(current), abs(want)):
                raise RecorderError(
                    f"step {step}: param group {i}'s learning rate is {current!r}, but {ratio!r} × the base group "
                    f"{self._base_group}'s {base!r} = {want!r} (its ratio at the start): pathkernel's parameter groups keep "
                    "a constant learning-rate ratio, one schedule factor for every group (StepLR, ExponentialLR, "
                    "LambdaLR with one function, CosineAnnealingLR with eta_min=0, …); a schedule that changes the "
                    "groups' ratios cannot be recorded")
        if lr is None:
            lr = base
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
