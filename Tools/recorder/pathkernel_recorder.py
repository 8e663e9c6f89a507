"""Record a gradient-descent run made in Python as a pathkernel trace (Docs/trace-format.md, schema v3).

NumPy-only core (Python >= 3.11, numpy; sqlite3, json, zlib from the standard library). It writes
exactly what pathkernel's Swift writer writes: the pragmas in order (page_size before any table,
WAL, synchronous, application_id), every schema migration as literal SQL, the run row, the four
data rows, the parameter layout, checkpoints (with the optimizer state when the optimizer has
one) and step rows, every blob little-endian with its CRC-32. Every call commits its own
transaction, so a process killed at any moment leaves a valid trace holding every call that
returned (status stays `running`; `pathkernel analyze` uses the committed prefix).

    from pathkernel_recorder import TraceRecorder

    with TraceRecorder("run.sqlite", name="my-run", seed=0,
                       model={"layers": [2, 16, 16, 1], "activation": "tanh",
                              "parameterization": "standard"},
                       loss="logistic", optimizer={"kind": "sgd", "learningRate": 0.1, "momentum": 0.9},
                       x_train=X, y_train=y, x_test=Xt, y_test=yt, checkpoint_every=5) as rec:
        for t in range(T):
            if rec.wants_checkpoint(t):
                rec.checkpoint(t, params, optimizer_state={"momentum_buffer": buf})
            batch = ...; loss = ...                      # the batch loss at the weights before update t
            rec.step(t, epoch, lr, batch, loss)
            params, buf = update(params, buf, batch)
        rec.finish(params=params, optimizer_state={"momentum_buffer": buf})   # final checkpoint

The model is one of pathkernel's two model kinds (Docs/networks.md). `{"kind": "mlp"}`: dense
layers `z = s_W W a + s_b b` (W: [out, in], PyTorch's nn.Linear convention), one activation for
every hidden layer, a linear output layer. `{"kind": "sequential", "input": [C, H, W] or [d],
"layers": [...]}`: a layer list (dense, conv2d, pools, flatten, layernorm, activations, nested
sequential and residual blocks; "The JSON form of layer lists"), whose parameters are named and
ordered like PyTorch's state_dict (`sequential_layout`); images are NCHW. Losses are pathkernel's (Docs/networks.md, "Losses"):
the batch loss is the mean over the batch of `mse` = ½‖f − y‖² (summed over outputs; half of
PyTorch's MSELoss when there is one output), `logistic` = softplus(f) − y f (PyTorch's
binary_cross_entropy_with_logits), `cross-entropy` = logsumexp(f) − f_k (PyTorch's cross_entropy).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sqlite3
import time
import warnings
import zlib
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = [
    "TraceRecorder",
    "RecorderError",
    "normalize_model",
    "normalize_optimizer",
    "optimizer_buffer_names",
    "optimizer_weight_decays",
    "optimizer_learning_rates",
    "group_pattern_matches",
    "parameter_layout",
    "sequential_layout",
    "layer_output_shape",
    "model_shapes",
    "FORMAT_TOOL_VERSION",
]

#: The pathkernel version whose trace format this module writes (`ToolInfo.version`).
FORMAT_TOOL_VERSION = "0.1.0"
#: Written into `run.tool_version`: the format's version plus who wrote the file.
TOOL_VERSION = FORMAT_TOOL_VERSION + "+python-recorder"
RECORDER_VERSION = "1"

APPLICATION_ID = 0x504B5452  # "PKTR"
PAGE_SIZE = 65536

# The schema history, literal SQL exactly as TraceSchema.migrations (Sources/PKTrace/TraceSchema.swift)
# and Docs/trace-format.md list it. Append-only: never edit a released migration.
CREATE_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "v1-initial", """CREATE TABLE run (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    tool_version     TEXT NOT NULL,
    name             TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'aborted')),
    status_message   TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT,
    task             TEXT NOT NULL CHECK (task IN ('regression', 'binary', 'multiclass')),
    num_outputs      INTEGER NOT NULL CHECK (num_outputs >= 1),
    model_json       TEXT NOT NULL,
    loss_json        TEXT NOT NULL,
    optimizer_json   TEXT NOT NULL,
    config_json      TEXT NOT NULL,
    precision        TEXT NOT NULL CHECK (precision IN ('float64', 'float32')),
    checkpoint_every INTEGER NOT NULL CHECK (checkpoint_every >= 1),
    planned_steps    INTEGER NOT NULL CHECK (planned_steps >= 0)
);
CREATE TABLE data (
    split    TEXT NOT NULL CHECK (split IN ('train', 'test')),
    role     TEXT NOT NULL CHECK (role IN ('x', 'y')),
    dtype    TEXT NOT NULL CHECK (dtype = 'float64'),
    shape    TEXT NOT NULL,
    data     BLOB NOT NULL,
    checksum INTEGER NOT NULL,
    PRIMARY KEY (split, role)
);
CREATE TABLE parameter_layout (
    position INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    shape    TEXT NOT NULL,
    offset   INTEGER NOT NULL CHECK (offset >= 0),
    count    INTEGER NOT NULL CHECK (count >= 0)
);
CREATE TABLE checkpoint (
    step       INTEGER PRIMARY KEY CHECK (step >= 0),
    dtype      TEXT NOT NULL CHECK (dtype IN ('float64', 'float32')),
    count      INTEGER NOT NULL,
    params     BLOB NOT NULL,
    checksum   INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE step (
    step          INTEGER PRIMARY KEY CHECK (step >= 0),
    epoch         INTEGER NOT NULL,
    learning_rate REAL NOT NULL,
    batch_size    INTEGER NOT NULL,
    batch         BLOB NOT NULL,
    loss          REAL
);
CREATE TABLE analysis (
    key           TEXT PRIMARY KEY,
    settings_json TEXT NOT NULL,
    result_json   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    tool_version  TEXT NOT NULL
);"""),
    (2, "v2-optimizer-state", """CREATE TABLE optimizer_state (
    step     INTEGER PRIMARY KEY CHECK (step >= 0),
    names    TEXT NOT NULL,
    count    INTEGER NOT NULL CHECK (count >= 0),
    dtype    TEXT NOT NULL CHECK (dtype = 'float64'),
    data     BLOB NOT NULL,
    checksum INTEGER NOT NULL
);
ALTER TABLE step ADD COLUMN clip_scale REAL;"""),
    (3, "v3-analysis-basis", """ALTER TABLE analysis ADD COLUMN basis_status TEXT;
ALTER TABLE analysis ADD COLUMN basis_last_step INTEGER;
ALTER TABLE analysis ADD COLUMN basis_last_checkpoint INTEGER;
ALTER TABLE analysis ADD COLUMN basis_checkpoint_checksum INTEGER;"""),
]

ACTIVATIONS = ("identity", "relu", "leaky-relu", "tanh", "sigmoid", "gelu", "erf", "softplus")
PARAMETERIZATIONS = ("standard", "ntk")
LOSSES = {"mse": "regression", "logistic": "binary", "cross-entropy": "multiclass"}
OPTIMIZER_KINDS = ("gd", "sgd", "adam", "adamw", "rmsprop")
STATUSES = ("running", "finished", "diverged", "aborted")


class RecorderError(ValueError):
    """A bad argument or a trace that cannot be written, in one line naming the problem."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _shape_json(shape: Iterable[int]) -> str:
    return "[" + ",".join(str(int(s)) for s in shape) + "]"


def _compact(obj: Any) -> str:
    """Key-sorted compact JSON, as the Swift recorder writes model/loss/optimizer specs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _number(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise RecorderError(f"{what} must be a number, got {x!r}") from None
    return v


def _to_numpy(a: Any) -> np.ndarray:
    """NumPy view of an array-like; torch tensors are detached and moved to the CPU."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):   # torch.Tensor without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


# ----------------------------------------------------------------------------------------------
# Specs: the JSON the Swift side decodes (ModelSpec, LossSpec, OptimizerSpec)
# ----------------------------------------------------------------------------------------------

_MODEL_KEYS = {"kind", "layers", "activation", "parameterization", "sigmaW", "sigmaB", "bias", "leakySlope"}
_SEQUENTIAL_MODEL_KEYS = {"kind", "input", "parameterization", "sigmaW", "sigmaB", "leakySlope", "layers"}
MODEL_KINDS = ("mlp", "sequential")


def normalize_model(model: Mapping[str, Any]) -> dict:
    """A model spec in the form the Swift side encodes it, checked like its decoder.

    Two kinds (Docs/networks.md): `{"kind": "mlp", "layers": [widths], "activation": …}` (the
    default kind; every key written back, as `ModelSpec` encodes it) and `{"kind": "sequential",
    "input": [C, H, W] or [d], "layers": [layer objects], …}`, a layer list ("The JSON form of
    layer lists"; see `normalize_sequential`).

    `parameterization` is required here (pathkernel's default is `ntk`, but a network written
    in Python is usually `standard`, and the two have different gradients)."""
    if not isinstance(model, Mapping):
        raise RecorderError(f"model must be a dict like {{'layers': [2, 16, 1], 'activation': 'tanh', 'parameterization': 'standard'}}, got {model!r}")
    kind = model.get("kind", "mlp")
    if kind == "sequential":
        return normalize_sequential(model)
    if kind != "mlp":
        raise RecorderError(f"model.kind {kind!r} is not supported (supported: {', '.join(MODEL_KINDS)})")
    unknown = set(model) - _MODEL_KEYS
    if unknown:
        raise RecorderError(f"model: unknown key(s) {sorted(unknown)} (known: {sorted(_MODEL_KEYS)})")
    if "layers" not in model:
        raise RecorderError("model.layers is required, e.g. [2, 16, 16, 1]")
    layers = list(model["layers"])
    if len(layers) < 2:
        raise RecorderError(f"model.layers needs at least an input and an output width, got {layers}")
    for i, w in enumerate(layers):
        if isinstance(w, bool) or int(w) != w or int(w) <= 0:
            raise RecorderError(f"model.layers[{i}] must be a positive integer, got {w!r} in {layers}")
    layers = [int(w) for w in layers]
    activation = model.get("activation")
    if activation not in ACTIVATIONS:
        raise RecorderError(f"model.activation {activation!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
    param, sigma_w, sigma_b, leaky = _network_scales(model)
    bias = model.get("bias", True)
    if not isinstance(bias, bool):
        raise RecorderError(f"model.bias must be true or false, got {bias!r}")
    return {"kind": "mlp", "layers": layers, "activation": activation, "parameterization": param,
            "sigmaW": sigma_w, "sigmaB": sigma_b, "bias": bias, "leakySlope": leaky}


def _network_scales(model: Mapping[str, Any]) -> tuple[str, float, float, float]:
    """`parameterization` (required), `sigmaW`, `sigmaB`, `leakySlope` of a model spec, checked."""
    if "parameterization" not in model:
        raise RecorderError("model.parameterization is required: 'standard' (z = W a + b, PyTorch's nn.Linear) or 'ntk' (z = σ_w/√n · W a + σ_b · b)")
    param = model["parameterization"]
    if param not in PARAMETERIZATIONS:
        raise RecorderError(f"model.parameterization {param!r} is not supported (supported: standard, ntk)")
    sigma_w = _number(model.get("sigmaW", 1.0), "model.sigmaW")
    sigma_b = _number(model.get("sigmaB", 0.1), "model.sigmaB")
    leaky = _number(model.get("leakySlope", 0.01), "model.leakySlope")
    if not (sigma_w > 0 and math.isfinite(sigma_w)):
        raise RecorderError(f"model.sigmaW must be a positive number, got {sigma_w}")
    if not (sigma_b >= 0 and math.isfinite(sigma_b)):
        raise RecorderError(f"model.sigmaB must be ≥ 0, got {sigma_b}")
    if not math.isfinite(leaky):
        raise RecorderError(f"model.leakySlope must be finite, got {leaky}")
    return param, sigma_w, sigma_b, leaky


def parameter_layout(model: Mapping[str, Any]) -> list[tuple[str, list[int], int, int]]:
    """`(name, shape, offset, count)` in storage order (the trace's `parameter_layout` rows).

    `mlp`: `layers.l.weight` [out, in], then `layers.l.bias` [out] (when the model has biases),
    for l = 0 … L−1 (`MLP.layout`). `sequential`: the layer list's tensors in composition order
    (`sequential_layout`)."""
    spec = normalize_model(model)
    if spec["kind"] == "sequential":
        return sequential_layout(spec)[0]
    layers, out, offset = spec["layers"], [], 0
    for l in range(len(layers) - 1):
        n_in, n_out = layers[l], layers[l + 1]
        out.append((f"layers.{l}.weight", [n_out, n_in], offset, n_out * n_in))
        offset += n_out * n_in
        if spec["bias"]:
            out.append((f"layers.{l}.bias", [n_out], offset, n_out))
            offset += n_out
    return out


def model_shapes(model: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """The shape of one input example and of one output (`[d]`, `[C, H, W]`; outputs `[C]`)."""
    spec = normalize_model(model)
    if spec["kind"] == "sequential":
        return list(spec["input"]), sequential_layout(spec)[1]
    return [spec["layers"][0]], [spec["layers"][-1]]


# --- layer lists ("sequential") ---------------------------------------------------------------
# A Python mirror of Sources/PKNetworks/Layers (LayerSpec decoding, `build(input:)`'s shape rules,
# Window2D, and the flattening order of Sequential and Residual), enough to write and check a
# trace's parameter layout without the Swift side. Docs/networks.md, "Layers".

#: Every layer kind of the JSON form, in `LayerRegistry` order.
LAYER_KINDS = ("dense",) + ACTIVATIONS + ("flatten", "conv2d", "avgpool2d", "maxpool2d", "globalavgpool",
                                          "layernorm", "sequential", "residual")
_WEIGHT_KEYS = {"parameterization", "sigmaW", "sigmaB"}
_LAYER_KEYS: dict[str, set[str]] = {
    "dense": {"out", "bias"} | _WEIGHT_KEYS,
    "conv2d": {"out", "kernel", "stride", "padding", "bias"} | _WEIGHT_KEYS,
    "avgpool2d": {"kernel", "stride", "padding"},
    "maxpool2d": {"kernel", "stride", "padding"},
    "globalavgpool": set(),
    "flatten": set(),
    "layernorm": {"eps", "affine"},
    "leaky-relu": {"leakySlope"},
    "sequential": {"layers"},
    "residual": {"block", "shortcut"},
}
_MAX_WIDTH = 1_000_000          # ConfigLimits.maxWidth: the largest out, kernel, stride, padding


def _shape_text(shape: Iterable[int]) -> str:
    """`[1, 8, 8]`, as Swift's TensorShape prints it."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _integer(v: Any, where: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer)) or int(v) != v or not (low <= int(v) <= _MAX_WIDTH):
        raise RecorderError(f"{where} must be an integer in {low}…{_MAX_WIDTH}, got {v!r}")
    return int(v)


def _pair(v: Any, where: str, low: int) -> int | list[int]:
    """One integer or `[height, width]`, written back as one integer when both agree."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise RecorderError(f"{where} must be one integer or [height, width], got {list(v)!r}")
        h, w = _integer(v[0], where, low), _integer(v[1], where, low)
        return h if h == w else [h, w]
    return _integer(v, where, low)


def _padding(v: Any, where: str) -> str | int | list[int]:
    if isinstance(v, str):
        if v not in ("valid", "same"):
            raise RecorderError(f'{where} must be "valid", "same", an integer or [height, width], got "{v}"')
        return v
    return _pair(v, where, 0)


def _hw(p: int | list[int]) -> tuple[int, int]:
    return (p, p) if isinstance(p, int) else (p[0], p[1])


def _normalize_layer(obj: Any, where: str) -> dict:
    """One layer object, checked (kind, keys, values) and written canonically, as the Swift
    specifications encode it: defaults filled in except `stride` of a pool (absent: the kernel)
    and the per-layer `parameterization`/`sigmaW`/`sigmaB`/`leakySlope` (absent: the model's)."""
    if not isinstance(obj, Mapping):
        raise RecorderError(f"{where} must be a layer object like {{'kind': 'relu'}}, got {obj!r}")
    kind = obj.get("kind")
    if kind not in LAYER_KINDS:
        raise RecorderError(f"{where}: unknown layer kind {kind!r} (supported: {', '.join(LAYER_KINDS)})")
    allowed = _LAYER_KEYS.get(kind, set()) | {"kind"}
    unknown = set(obj) - allowed
    if unknown:
        raise RecorderError(f"{where}: unknown key(s) {sorted(unknown)} for a {kind} layer (known: {sorted(allowed)})")
    out: dict[str, Any] = {"kind": kind}

    def flag(key: str) -> bool:
        v = obj.get(key, True)
        if not isinstance(v, bool):
            raise RecorderError(f"{where}.{key} must be true or false, got {v!r}")
        return v

    def weight_keys() -> None:
        if "parameterization" in obj:
            if obj["parameterization"] not in PARAMETERIZATIONS:
                raise RecorderError(f"{where}.parameterization {obj['parameterization']!r} is not supported (supported: standard, ntk)")
            out["parameterization"] = obj["parameterization"]
        if "sigmaW" in obj:
            out["sigmaW"] = _number(obj["sigmaW"], f"{where}.sigmaW")
            if not (out["sigmaW"] > 0 and math.isfinite(out["sigmaW"])):
                raise RecorderError(f"{where}.sigmaW must be a positive number, got {out['sigmaW']}")
        if "sigmaB" in obj:
            out["sigmaB"] = _number(obj["sigmaB"], f"{where}.sigmaB")
            if not (out["sigmaB"] >= 0 and math.isfinite(out["sigmaB"])):
                raise RecorderError(f"{where}.sigmaB must be ≥ 0, got {out['sigmaB']}")

    if kind == "dense":
        if "out" not in obj:
            raise RecorderError(f"{where}: dense needs 'out' (the output width)")
        out["out"] = _integer(obj["out"], f"{where}.out", 1)
        out["bias"] = flag("bias")
        weight_keys()
    elif kind == "conv2d":
        for key in ("out", "kernel"):
            if key not in obj:
                raise RecorderError(f"{where}: conv2d needs '{key}'")
        out["out"] = _integer(obj["out"], f"{where}.out", 1)
        out["kernel"] = _pair(obj["kernel"], f"{where}.kernel", 1)
        out["stride"] = _pair(obj.get("stride", 1), f"{where}.stride", 1)
        out["padding"] = _padding(obj.get("padding", "valid"), f"{where}.padding")
        out["bias"] = flag("bias")
        weight_keys()
    elif kind in ("avgpool2d", "maxpool2d"):
        if "kernel" not in obj:
            raise RecorderError(f"{where}: {kind} needs 'kernel'")
        out["kernel"] = _pair(obj["kernel"], f"{where}.kernel", 1)
        if "stride" in obj:
            out["stride"] = _pair(obj["stride"], f"{where}.stride", 1)
        out["padding"] = _padding(obj.get("padding", "valid"), f"{where}.padding")
    elif kind == "layernorm":
        eps = _number(obj.get("eps", 1e-5), f"{where}.eps")
        if not (eps > 0 and math.isfinite(eps)):
            raise RecorderError(f"{where}.eps must be a positive number, got {eps}")
        out["eps"] = eps
        out["affine"] = flag("affine")
    elif kind == "leaky-relu":
        if "leakySlope" in obj:
            out["leakySlope"] = _number(obj["leakySlope"], f"{where}.leakySlope")
            if not math.isfinite(out["leakySlope"]):
                raise RecorderError(f"{where}.leakySlope must be finite, got {out['leakySlope']}")
    elif kind == "sequential":
        layers = obj.get("layers")
        if not isinstance(layers, (list, tuple)) or not layers:
            raise RecorderError(f"{where}.layers must be a non-empty list of layer objects, got {layers!r}")
        out["layers"] = [_normalize_layer(c, f"{where}.layers[{i}]") for i, c in enumerate(layers)]
    elif kind == "residual":
        if "block" not in obj:
            raise RecorderError(f"{where}: residual needs 'block' (the shortcut defaults to the identity)")
        out["block"] = _normalize_layer(obj["block"], f"{where}.block")
        if obj.get("shortcut") is not None:
            out["shortcut"] = _normalize_layer(obj["shortcut"], f"{where}.shortcut")
    return out


def normalize_sequential(model: Mapping[str, Any]) -> dict:
    """A `{"kind": "sequential"}` model spec, checked and written canonically: `input` (the
    shape of one example, `[d]` or `[C, H, W]`), `parameterization` (required here), `sigmaW`,
    `sigmaB`, `leakySlope` (the defaults of the layers that do not set their own) and `layers`.
    The layers are also built for the input (shapes checked), so a bad list fails here."""
    unknown = set(model) - _SEQUENTIAL_MODEL_KEYS
    if unknown:
        raise RecorderError(f"model: unknown key(s) {sorted(unknown)} for a sequential model (known: {sorted(_SEQUENTIAL_MODEL_KEYS)})")
    shape = model.get("input")
    if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3):
        raise RecorderError(f"model.input must be the shape of one example, [d] or [C, H, W], got {shape!r}")
    shape = [_integer(d, "model.input", 1) for d in shape]
    param, sigma_w, sigma_b, leaky = _network_scales(model)
    layers = model.get("layers")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise RecorderError(f"model.layers must be a non-empty list of layer objects, got {layers!r}")
    spec = {"kind": "sequential", "input": shape, "parameterization": param, "sigmaW": sigma_w,
            "sigmaB": sigma_b, "leakySlope": leaky,
            "layers": [_normalize_layer(c, f"model.layers[{i}]") for i, c in enumerate(layers)]}
    sequential_layout(spec)           # shapes fit, the output is a vector
    return spec


def _window(shape: list[int], kernel: Any, stride: Any, padding: Any, where: str, kind: str) -> list[int]:
    """`Window2D`: the output `[C, Ho, Wo]` of a conv/pool window over an image `shape`
    (`C` kept; a conv replaces it). `valid`: ⌊(H − k)/s⌋ + 1; explicit p: ⌊(H + 2p − k)/s⌋ + 1;
    `same`: ⌈H/s⌉ with total padding max((⌈H/s⌉ − 1)s + k − H, 0)."""
    C, H, W = shape
    (kh, kw), (sh, sw) = _hw(kernel), _hw(stride)

    def total(n: int, k: int, s: int, p: int) -> int:
        if padding == "same":
            o = -(-n // s)
            return max((o - 1) * s + k - n, 0)
        return 2 * p

    ph, pw = (0, 0) if isinstance(padding, str) else _hw(padding)
    Hp, Wp = H + total(H, kh, sh, ph), W + total(W, kw, sw, pw)
    if Hp < kh or Wp < kw:
        pad = padding if isinstance(padding, str) else list(_hw(padding))
        raise RecorderError(f"{where}: {kind}: the {kh}×{kw} kernel does not fit the {Hp}×{Wp} padded input "
                            f"({H}×{W}, padding {pad})")
    return [C, (Hp - kh) // sh + 1, (Wp - kw) // sw + 1]


def _resolve(layer: Mapping[str, Any], shape: list[int], where: str) -> tuple[list[int], list[tuple[str, list[int]]]]:
    """The output shape of a (normalized) layer object for inputs of `shape`, and its tensors
    `(name, shape)` in flattening order, names relative to the layer (`weight`, `0.bias`,
    `block.1.weight`). Mirrors each kind's `build(input:)` and initializer checks."""
    kind = layer["kind"]
    image = len(shape) == 3

    def need_image() -> None:
        if not image:
            raise RecorderError(f"{where}: {kind}: needs an image input [C, H, W], got {_shape_text(shape)}")

    if kind == "dense":
        if len(shape) != 1:
            raise RecorderError(f"{where}: dense: needs a feature vector input [d], got {_shape_text(shape)} (put a flatten layer before it)")
        o = layer["out"]
        return [o], [("weight", [o, shape[0]])] + ([("bias", [o])] if layer["bias"] else [])
    if kind in ACTIVATIONS:
        return list(shape), []
    if kind == "flatten":
        return [int(np.prod(shape))], []
    if kind == "conv2d":
        need_image()
        kh, kw = _hw(layer["kernel"])
        _, Ho, Wo = _window(shape, layer["kernel"], layer["stride"], layer["padding"], where, kind)
        o = layer["out"]
        tensors = [("weight", [o, shape[0], kh, kw])] + ([("bias", [o])] if layer["bias"] else [])
        return [o, Ho, Wo], tensors
    if kind in ("avgpool2d", "maxpool2d"):
        need_image()
        kh, kw = _hw(layer["kernel"])
        if not isinstance(layer["padding"], str):
            ph, pw = _hw(layer["padding"])
            if ph > kh // 2 or pw > kw // 2:
                raise RecorderError(f"{where}: {kind}: padding {layer['padding']} must be at most half the {kh}×{kw} kernel")
        return _window(shape, layer["kernel"], layer.get("stride", layer["kernel"]), layer["padding"], where, kind), []
    if kind == "globalavgpool":
        need_image()
        return [shape[0]], []
    if kind == "layernorm":
        return list(shape), ([("weight", list(shape)), ("bias", list(shape))] if layer["affine"] else [])
    if kind == "sequential":
        tensors: list[tuple[str, list[int]]] = []
        for i, child in enumerate(layer["layers"]):
            shape, own = _resolve(child, shape, f"{where}.layers[{i}]")
            tensors += [(f"{i}.{n}", s) for n, s in own]
        return shape, tensors
    if kind == "residual":
        out, own = _resolve(layer["block"], shape, f"{where}.block")
        tensors = [(f"block.{n}", s) for n, s in own]
        if "shortcut" in layer:
            sout, sown = _resolve(layer["shortcut"], shape, f"{where}.shortcut")
            if sout != out:
                raise RecorderError(f"{where}: residual: the shortcut maps {_shape_text(shape)} → {_shape_text(sout)}, "
                                    f"the block {_shape_text(shape)} → {_shape_text(out)}; they must agree")
            tensors += [(f"shortcut.{n}", s) for n, s in sown]
        elif out != list(shape):
            raise RecorderError(f"{where}: residual: the block maps {_shape_text(shape)} → {_shape_text(out)}; an identity "
                                "shortcut needs equal shapes (add a projection shortcut)")
        return out, tensors
    raise RecorderError(f"{where}: unknown layer kind {kind!r}")   # _normalize_layer lets none through


def layer_output_shape(layer: Mapping[str, Any], input_shape: Iterable[int], where: str = "layer") -> list[int]:
    """The output shape of one layer object (any kind, nested ones included) for inputs of
    `input_shape`; refuses, naming `where`, what its Swift `build(input:)` would refuse."""
    return _resolve(_normalize_layer(layer, where), [int(d) for d in input_shape], where)[0]


def sequential_layout(spec: Mapping[str, Any]) -> tuple[list[tuple[str, list[int], int, int]], list[int]]:
    """The parameter layout `(name, shape, offset, count)` of a normalized sequential model and
    its output shape. Names are PyTorch's state_dict names: a sequential's children by index
    (`0.weight`, `3.bias`, nested `1.block.0.weight`), a residual's `block.…` then `shortcut.…`;
    the order is the composition order (Docs/networks.md, "Composition, names and flattening
    order"). The output must be a feature vector `[C]` (one logit per output)."""
    out, tensors = _resolve({"kind": "sequential", "layers": spec["layers"]}, list(spec["input"]), "model")
    if len(out) != 1:
        raise RecorderError(f"model: the network's output is {_shape_text(out)}; it must be a vector [C] of outputs "
                            "(end with flatten or globalavgpool and a dense layer)")
    layout, offset = [], 0
    for name, shape in tensors:
        count = int(np.prod(shape))
        layout.append((name, list(shape), offset, count))
        offset += count
    return layout, out


_SCHEDULE_DEFAULTS = {"kind": "constant", "warmupSteps": 0, "every": 100, "gamma": 0.1, "minLearningRate": 0.0}
_OPT_DEFAULTS = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "beta1": 0.9, "beta2": 0.999,
                 "alpha": 0.99, "eps": 1e-8}
_OPT_KEYS = {"kind", "learningRate", "weightDecay", "schedule", "clipNorm", "groups"} | set(_OPT_DEFAULTS)
_GROUP_KEYS = {"parameters", "weightDecay", "learningRate"}


def _normalize_groups(groups: Any, base_lr: float) -> list[dict]:
    """`optimizer.groups` as `ParameterGroup` decodes and `OptimizerSpec.validate` checks it: a
    list of `{"parameters": [non-empty names or * patterns], "weightDecay": ≥ 0, "learningRate":
    > 0}` (`parameters` required, at least one of the other two, no other keys; a group's
    `learningRate` is its own base rate, PyTorch's param_group lr, and `learningRate / base_lr`
    must be a finite positive number). Whether every pattern matches a tensor needs the model's
    layout (`optimizer_weight_decays`)."""
    shape = "{'parameters': [names or patterns], 'weightDecay': λ, 'learningRate': η}"
    if isinstance(groups, (str, bytes, Mapping)) or not isinstance(groups, Iterable):
        raise RecorderError(f"optimizer.groups must be a list of {shape}, got {groups!r}")
    out = []
    for i, g in enumerate(groups):
        where = f"optimizer.groups[{i}]"
        if not isinstance(g, Mapping):
            raise RecorderError(f"{where} must be a dict {shape}, got {g!r}")
        unknown = set(g) - _GROUP_KEYS
        if unknown:
            raise RecorderError(f"{where}: unknown key(s) {sorted(unknown)} (known: parameters, weightDecay, learningRate; "
                                "only the weight decay and the learning rate can differ between groups)")
        if "parameters" not in g:
            raise RecorderError(f"{where}.parameters is required")
        if "weightDecay" not in g and "learningRate" not in g:
            raise RecorderError(f"{where} sets neither weightDecay nor learningRate: give the group's tensors at least one "
                                "of them (or remove the group)")
        names = g["parameters"]
        if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
            raise RecorderError(f"{where}.parameters must be a list of tensor names or patterns, got {names!r}")
        names = list(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise RecorderError(f"{where}.parameters must list at least one non-empty tensor name or pattern, got {names!r}")
        group: dict[str, Any] = {"parameters": names}
        if "weightDecay" in g:
            if isinstance(g["weightDecay"], bool):
                raise RecorderError(f"{where}.weightDecay must be a number, got {g['weightDecay']!r}")
            wd = _number(g["weightDecay"], f"{where}.weightDecay")
            if not (wd >= 0 and math.isfinite(wd)):
                raise RecorderError(f"{where}.weightDecay must be ≥ 0, got {wd}")
            group["weightDecay"] = wd
        if "learningRate" in g:
            if isinstance(g["learningRate"], bool):
                raise RecorderError(f"{where}.learningRate must be a number, got {g['learningRate']!r}")
            lr = _number(g["learningRate"], f"{where}.learningRate")
            if not (lr > 0 and math.isfinite(lr)):
                raise RecorderError(f"{where}.learningRate must be a positive number (the group's own base rate, as "
                                    f"PyTorch's param_group lr), got {lr}")
            ratio = lr / base_lr
            if not (ratio > 0 and math.isfinite(ratio)):
                raise RecorderError(f"{where}.learningRate {lr} over learningRate {base_lr} is not a finite positive ratio; "
                                    "bring the two rates closer")
            group["learningRate"] = lr
        out.append(group)
    return out


def group_pattern_matches(pattern: str, name: str) -> bool:
    """Whether tensor `name` matches a group pattern (`ParameterGroup.matches`): `*` matches any
    run of characters, dots included, possibly empty; every other character itself."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), name, re.DOTALL) is not None


def _tensor_groups(optimizer: Mapping[str, Any], layout: Iterable[Any]) -> tuple[dict, dict[str, dict | None]]:
    """The normalized optimizer and each tensor's group (the first with a pattern matching its
    name, None for none), as `OptimizerSpec.settings(ofTensor:)`; a pattern that matches no tensor
    is an error naming it and the model's tensors, as in Swift."""
    o = normalize_optimizer(optimizer)
    names = [row if isinstance(row, str) else row[0] for row in layout]
    groups = o.get("groups", [])
    for i, g in enumerate(groups):
        for pattern in g["parameters"]:
            if not any(group_pattern_matches(pattern, n) for n in names):
                raise RecorderError(f"optimizer.groups[{i}]: \"{pattern}\" matches no parameter tensor "
                                    f"(the model's: {', '.join(names)})")
    return o, {n: next((g for g in groups if any(group_pattern_matches(p, n) for p in g["parameters"])), None)
               for n in names}


def optimizer_weight_decays(optimizer: Mapping[str, Any], layout: Iterable[Any]) -> dict[str, float]:
    """Each parameter tensor's weight decay, `{name: λ}` in layout order, as the Swift side
    places `optimizer.groups` (`OptimizerSpec.transformation(parameters:)`): the decay of the
    first group with a pattern matching the name when that group gives one, else the top-level
    `weightDecay`. `layout`: `parameter_layout(model)` rows (or just the names). A pattern that
    matches no tensor is an error naming it and the model's tensors, as in Swift."""
    o, placed = _tensor_groups(optimizer, layout)
    return {n: o["weightDecay"] if g is None else g.get("weightDecay", o["weightDecay"]) for n, g in placed.items()}


def optimizer_learning_rates(optimizer: Mapping[str, Any], layout: Iterable[Any]) -> dict[str, float]:
    """Each parameter tensor's base learning rate, `{name: η_k}` in layout order: the
    `learningRate` of the first group matching the name when that group gives one, else the
    top-level `learningRate`. The update of a tensor at step t uses `η_t · η_k / learningRate`
    (`η_t` the step row's rate: a schedule scales every group's rate by the same factor)."""
    o, placed = _tensor_groups(optimizer, layout)
    return {n: o["learningRate"] if g is None else g.get("learningRate", o["learningRate"]) for n, g in placed.items()}


def normalize_optimizer(optimizer: Mapping[str, Any]) -> dict:
    """An optimizer spec as `OptimizerSpec` encodes it (kind, learningRate, weightDecay, schedule,
    then only the settings that differ from the defaults), checked like `Transform.make`, so that
    a trace this module writes is one the analyzer's replay can rebuild."""
    if not isinstance(optimizer, Mapping):
        raise RecorderError(f"optimizer must be a dict like {{'kind': 'sgd', 'learningRate': 0.1}}, got {optimizer!r}")
    unknown = set(optimizer) - _OPT_KEYS
    if unknown:
        raise RecorderError(f"optimizer: unknown key(s) {sorted(unknown)} (known: {sorted(_OPT_KEYS)}; Docs/config.md)")
    kind = optimizer.get("kind")
    if kind not in OPTIMIZER_KINDS:
        raise RecorderError(f"optimizer.kind {kind!r} is not supported (supported: {', '.join(OPTIMIZER_KINDS)})")
    if "learningRate" not in optimizer:
        raise RecorderError("optimizer.learningRate is required (the base rate; each step row holds the rate it used)")
    lr = _number(optimizer["learningRate"], "optimizer.learningRate")
    if not (lr > 0 and math.isfinite(lr)):
        raise RecorderError(f"optimizer.learningRate must be a positive number, got {lr}")
    wd = _number(optimizer.get("weightDecay", 0.0), "optimizer.weightDecay")
    s = {k: optimizer.get(k, d) for k, d in _OPT_DEFAULTS.items()}
    for k in ("momentum", "dampening", "beta1", "beta2", "alpha", "eps"):
        s[k] = _number(s[k], f"optimizer.{k}")
    if not isinstance(s["nesterov"], bool):
        raise RecorderError(f"optimizer.nesterov must be true or false, got {s['nesterov']!r}")
    clip = optimizer.get("clipNorm")
    groups = _normalize_groups(optimizer["groups"], lr) if optimizer.get("groups") is not None else []

    def check(ok: bool, message: str) -> None:
        if not ok:
            raise RecorderError("optimizer: " + message)

    check(wd >= 0 and math.isfinite(wd), f"weightDecay must be ≥ 0, got {wd}")
    check(0 <= s["momentum"] < 1, f"momentum must be in [0, 1), got {s['momentum']}")
    check(0 <= s["dampening"] <= 1, f"dampening must be in [0, 1], got {s['dampening']}")
    check(s["eps"] >= 0 and math.isfinite(s["eps"]), f"eps must be ≥ 0, got {s['eps']}")
    if clip is not None:
        clip = _number(clip, "optimizer.clipNorm")
        check(clip > 0 and math.isfinite(clip), f"clipNorm must be positive, got {clip}")
    is_sgd = kind in ("gd", "sgd")
    check(is_sgd or (s["dampening"] == 0 and not s["nesterov"]), f"dampening and nesterov apply to sgd only (kind {kind})")
    check(is_sgd or kind == "rmsprop" or s["momentum"] == 0, f"momentum applies to sgd and rmsprop only (kind {kind})")
    check(not s["nesterov"] or (s["momentum"] > 0 and s["dampening"] == 0),
          "nesterov needs momentum > 0 and zero dampening (PyTorch's rule)")
    if kind in ("adam", "adamw"):
        check(0 <= s["beta1"] < 1, f"beta1 must be in [0, 1), got {s['beta1']}")
        check(0 <= s["beta2"] < 1, f"beta2 must be in [0, 1), got {s['beta2']}")
    if kind == "rmsprop":
        check(0 <= s["alpha"] < 1, f"alpha must be in [0, 1), got {s['alpha']}")

    sched_in = optimizer.get("schedule") or {}
    unknown = set(sched_in) - set(_SCHEDULE_DEFAULTS)
    if unknown:
        raise RecorderError(f"optimizer.schedule: unknown key(s) {sorted(unknown)}")
    sched = dict(_SCHEDULE_DEFAULTS)
    sched.update(sched_in)
    if sched["kind"] not in ("constant", "step", "cosine"):
        raise RecorderError(f"optimizer.schedule.kind {sched['kind']!r} is not one of constant, step, cosine")
    for k in ("warmupSteps", "every"):
        if isinstance(sched[k], bool) or int(sched[k]) != sched[k]:
            raise RecorderError(f"optimizer.schedule.{k} must be an integer, got {sched[k]!r}")
        sched[k] = int(sched[k])
    sched["gamma"] = _number(sched["gamma"], "optimizer.schedule.gamma")
    sched["minLearningRate"] = _number(sched["minLearningRate"], "optimizer.schedule.minLearningRate")

    out = {"kind": kind, "learningRate": lr, "weightDecay": wd, "schedule": sched}
    for k, d in _OPT_DEFAULTS.items():
        if s[k] != d:
            out[k] = s[k]
    if clip is not None:
        out["clipNorm"] = clip
    if groups:
        out["groups"] = groups
    return out


def optimizer_buffer_names(optimizer: Mapping[str, Any]) -> list[str]:
    """The state buffer names pathkernel's chain for this optimizer keeps, in storage order
    (`Transform.make(...).bufferNames`, Docs/optimizers.md): component `i`'s buffer `b` is "i.b",
    components that would do nothing (zero decay, zero momentum) are left out of the chain.
    With parameter groups the decay component is there when any decay (top level or a group's)
    is non-zero (the chain is built with the largest; `OptimizerSpec.transformation`); group
    learning rates change no component (the rate is stateless)."""
    o = normalize_optimizer(optimizer)
    kind = o["kind"]
    wd = max([o["weightDecay"]] + [g.get("weightDecay", o["weightDecay"]) for g in o.get("groups", [])])
    momentum = o.get("momentum", 0.0)
    comps: list[list[str]] = []
    if "clipNorm" in o:
        comps.append([])                                   # clipByGlobalNorm
    if kind in ("gd", "sgd"):
        if wd != 0:
            comps.append([])                               # addDecayedWeights
        if momentum != 0:
            comps.append(["momentum_buffer"])              # scaleByMomentum
        comps.append([])                                   # scaleByLearningRate
    elif kind == "adam":
        if wd != 0:
            comps.append([])
        comps.append(["exp_avg", "exp_avg_sq"])            # scaleByAdam
        comps.append([])
    elif kind == "adamw":
        comps.append(["exp_avg", "exp_avg_sq"])
        comps.append([])                                   # scaleByLearningRate
        if wd != 0:
            comps.append([])                               # addDecoupledWeightDecay
    else:  # rmsprop
        if wd != 0:
            comps.append([])
        comps.append(["square_avg"])                       # scaleByRMS
        if momentum != 0:
            comps.append(["momentum_buffer"])
        comps.append([])
    return [f"{i}.{b}" for i, names in enumerate(comps) for b in names]


# ----------------------------------------------------------------------------------------------
# The recorder
# ----------------------------------------------------------------------------------------------

class TraceRecorder:
    """Writes one pathkernel trace. See the module docstring for an example.

    Arguments (keyword-only after `path`):

    - `name`, `seed`: the run's name and seed (a 64-bit unsigned integer; stored with the same
      bit pattern as a signed one, like the Swift writer).
    - `model`: the model spec (Docs/networks.md): an MLP, `{"layers": [widths], "activation",
      "parameterization" (required), "sigmaW", "sigmaB", "bias", "leakySlope"}`, or a layer list,
      `{"kind": "sequential", "input": [C, H, W] or [d], "parameterization" (required), "sigmaW",
      "sigmaB", "leakySlope", "layers": [layer objects]}` (`normalize_sequential`).
    - `loss`: "mse", "logistic" or "cross-entropy" (or `{"kind": ...}`).
    - `optimizer`: the optimizer spec, the same JSON as a run config's `optimizer` section
      (Docs/config.md): `kind` (gd, sgd, adam, adamw, rmsprop), `learningRate` (the base rate),
      `weightDecay`, `momentum`, `dampening`, `nesterov`, `beta1`, `beta2`, `alpha`, `eps`,
      `clipNorm`, `schedule`, `groups`. The rate each update used goes in its step row.
      `groups` (PyTorch's param_groups): `[{"parameters": [tensor names or * patterns of the
      layout], "weightDecay": λ, "learningRate": η_k}]` (each group gives at least one of the
      two); a tensor takes the settings of the first group matching it, each one it does not
      give from the top level (`rec.weight_decays`, `rec.learning_rates` list each tensor's);
      every pattern must match a tensor. A group's `learningRate` is its own base rate: the step
      rows hold the top level's rate η_t, and a tensor steps with `η_t · η_k / learningRate`
      (one schedule for every group, as PyTorch's LR schedulers with a common factor). Every
      other setting is shared.
    - `x_train` [n, d] (images: [n, C, H, W], or flattened NCHW [n, C·H·W]; stored
      [n, C, H, W]), `y_train`, `x_test`, `y_test` (optional: an empty held-out set): targets
      are [n] or [n, C] reals for mse (stored [n, C]), [n] class indices (0/1 for logistic,
      0 … K−1 for cross-entropy).
    - `task`: "regression", "binary" or "multiclass"; by default the loss's task.
    - `checkpoint_every`: the checkpoint interval k written to the run row (`wants_checkpoint`).
    - `precision`: "float64" or "float32" checkpoints.
    - `planned_steps`: updates the run is asked for; None sets it to the recorded count at `finish`.
    - `batch_size`: the minibatch size, only for `config_json` (None: full batch or varying).
    - `description`, `framework`: free text kept in `config_json`.
    - `overwrite`: replace an existing file (default: refuse, like `pathkernel train`).
    """

    def __init__(self, path: str | os.PathLike, *, name: str, seed: int = 0, model: Mapping[str, Any],
                 loss: str | Mapping[str, Any], optimizer: Mapping[str, Any], x_train: Any, y_train: Any,
                 x_test: Any = None, y_test: Any = None, task: str | None = None, checkpoint_every: int = 1,
                 precision: str = "float64", planned_steps: int | None = None, batch_size: int | None = None,
                 description: str | None = None, framework: str | None = None, overwrite: bool = False):
        self.path = os.fspath(path)
        self._conn: sqlite3.Connection | None = None
        self.status = "running"

        # --- specs ------------------------------------------------------------------------------
        if not isinstance(name, str) or not name:
            raise RecorderError(f"name must be a non-empty string, got {name!r}")
        if isinstance(seed, bool) or int(seed) != seed or not (-(2 ** 63) <= int(seed) < 2 ** 64):
            raise RecorderError(f"seed must be an integer in 0 … 2^64−1, got {seed!r}")
        self.name = name
        self.seed = int(seed) % 2 ** 64
        self.model = normalize_model(model)
        loss_kind = loss.get("kind") if isinstance(loss, Mapping) else loss
        if loss_kind not in LOSSES:
            raise RecorderError(f"loss {loss_kind!r} is not supported (supported: mse, logistic, cross-entropy)")
        self.loss = loss_kind
        self.optimizer = normalize_optimizer(optimizer)
        self.buffer_names = optimizer_buffer_names(self.optimizer)
        self.task = task or LOSSES[loss_kind]
        if self.task not in ("regression", "binary", "multiclass"):
            raise RecorderError(f"task {self.task!r} is not one of regression, binary, multiclass")
        if LOSSES[loss_kind] != self.task:
            raise RecorderError(f"loss {loss_kind} does not fit a {self.task} task (use mse for regression, logistic for binary, cross-entropy for multiclass)")
        if isinstance(checkpoint_every, bool) or int(checkpoint_every) != checkpoint_every or checkpoint_every < 1:
            raise RecorderError(f"checkpoint_every must be an integer ≥ 1, got {checkpoint_every!r}")
        self.checkpoint_every = int(checkpoint_every)
        if precision not in ("float64", "float32"):
            raise RecorderError(f"precision must be 'float64' or 'float32', got {precision!r}")
        self.precision = precision
        if planned_steps is not None and (int(planned_steps) != planned_steps or planned_steps < 0):
            raise RecorderError(f"planned_steps must be an integer ≥ 0, got {planned_steps!r}")
        self.planned_steps = None if planned_steps is None else int(planned_steps)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.description = description
        self.framework = framework or f"numpy {np.__version__}"

        # --- data -------------------------------------------------------------------------------
        self.input_shape, output_shape = model_shapes(self.model)
        self.num_outputs = output_shape[0]
        xtr = self._inputs(x_train, "train")
        ytr = self._targets(y_train, "train", xtr.shape[0])
        if x_test is None and y_test is None:
            xte = np.zeros((0, *self.input_shape))
            yte = np.zeros((0, self.num_outputs)) if self.task == "regression" else np.zeros((0,))
        elif x_test is None or y_test is None:
            raise RecorderError("give both x_test and y_test, or neither (an empty held-out set)")
        else:
            xte = self._inputs(x_test, "test")
            yte = self._targets(y_test, "test", xte.shape[0])
        if xtr.shape[0] < 1:
            raise RecorderError("data train: the training set is empty")
        if self.task == "binary" and self.num_outputs != 1:
            raise RecorderError(f"the model has {self.num_outputs} outputs, but a binary task (logistic loss) has one logit")
        self.train_count = xtr.shape[0]
        self.data = {("train", "x"): xtr, ("train", "y"): ytr, ("test", "x"): xte, ("test", "y"): yte}

        self.layout = parameter_layout(self.model)
        self.parameter_count = sum(c for *_, c in self.layout)
        #: Each tensor's weight decay under `optimizer.groups` (checks every pattern matches one).
        self.weight_decays = optimizer_weight_decays(self.optimizer, self.layout)
        #: Each tensor's base learning rate under `optimizer.groups` (the top level's when no group sets one).
        self.learning_rates = optimizer_learning_rates(self.optimizer, self.layout)
        self._layout_by_name = {n: (shape, off, c) for n, shape, off, c in self.layout}

        self._checkpoints: set[int] = set()
        self._steps: set[int] = set()
        self._last_step = -1
        self._create(overwrite)

    # --- data checks ----------------------------------------------------------------------------

    def _inputs(self, x: Any, split: str) -> np.ndarray:
        """The inputs as stored: `[n, d]` for vector inputs, `[n, C, H, W]` for images (given as
        `[n, C, H, W]`, or flattened NCHW `[n, C·H·W]`, PyTorch's `x.reshape(n, -1)`)."""
        a = _to_numpy(x).astype(np.float64, copy=False)
        shape = self.input_shape
        if len(shape) == 1:
            if a.ndim != 2:
                raise RecorderError(f"data {split} x: inputs must have shape [n, d], got {list(a.shape)}")
            if a.shape[1] != shape[0]:
                source = "model.layers[0]" if self.model["kind"] == "mlp" else "model.input"
                raise RecorderError(f"data {split} x: {a.shape[1]} features, but {source} is {shape[0]}")
        else:
            count = int(np.prod(shape))
            if a.ndim == 2 and a.shape[1] == count:
                a = a.reshape(a.shape[0], *shape)
            if a.ndim != 4 or list(a.shape[1:]) != list(shape):
                raise RecorderError(f"data {split} x: images must have shape [n, {', '.join(map(str, shape))}] (NCHW; or "
                                    f"flattened [n, {count}]) for model.input {list(shape)}, got {list(a.shape)}")
        if not np.all(np.isfinite(a)):
            i = int(np.flatnonzero(~np.isfinite(a.ravel()))[0])
            raise RecorderError(f"data {split} x: value {i} is {a.ravel()[i]} (NaN/Inf are not allowed in data); clean the dataset")
        return np.ascontiguousarray(a)

    def _targets(self, y: Any, split: str, n: int) -> np.ndarray:
        a = _to_numpy(y).astype(np.float64, copy=False)
        C = self.num_outputs
        if self.task == "regression":
            if a.ndim == 1 and C == 1:
                a = a.reshape(-1, 1)
            if a.ndim != 2 or a.shape[1] != C:
                raise RecorderError(f"data {split} y: regression targets must have shape [n, {C}], got {list(a.shape)}")
        else:
            if a.ndim == 2 and a.shape[1] == 1:
                a = a.reshape(-1)
            if a.ndim != 1:
                raise RecorderError(f"data {split} y: {self.task} targets must be class indices of shape [n] (not one-hot), got {list(a.shape)}")
            classes = 2 if self.task == "binary" else C
            bad = (a < 0) | (a >= classes) | (a != np.round(a))
            if np.any(bad):
                i = int(np.flatnonzero(bad)[0])
                raise RecorderError(f"data {split} y: value {i} is {a[i]}, not a class index in 0..<{classes}")
        if a.shape[0] != n:
            raise RecorderError(f"data {split}: x has {n} rows but y has {a.shape[0]}")
        if not np.all(np.isfinite(a)):
            raise RecorderError(f"data {split} y: NaN/Inf are not allowed in data; clean the dataset")
        return np.ascontiguousarray(a)

    # --- run row JSON ---------------------------------------------------------------------------

    def _config_json(self) -> str:
        """The run config as pathkernel's `RunConfig` is laid out (name, description, seed, data,
        model, loss, optimizer, training), pretty and key-sorted like `RunConfig.encoded()`.

        The `data` section cannot be a `DataSpec`: the data came from Python, not from one of
        pathkernel's generators or loaders, and lives in the trace's `data` table. It says so with
        the kind `"recorded"`, which `RunConfig.decode` rejects (so `pathkernel train --config`
        refuses to pretend it can re-run this). Nothing in the analyzer, `inspect` or `report`
        reads `config_json`; they read `model_json`, `loss_json`, `optimizer_json` and the tables."""
        xtr, xte = self.data[("train", "x")], self.data[("test", "x")]
        data = {"kind": "recorded", "train": int(xtr.shape[0]), "test": int(xte.shape[0]),
                "features": int(np.prod(self.input_shape)), "task": self.task,
                "source": "arrays passed to the Python recorder; stored in this trace's data table"}
        if len(self.input_shape) != 1:
            data["inputShape"] = list(self.input_shape)
        cfg = {
            "name": self.name,
            "description": self.description or f"recorded in Python ({self.framework}) by Tools/recorder/pathkernel_recorder.py",
            "seed": self.seed,
            "data": data,
            "model": self.model,
            "loss": {"kind": self.loss},
            "optimizer": self.optimizer,
            "training": {"steps": self.planned_steps or 0, "batchSize": self.batch_size, "dropLast": False,
                         "checkpointEvery": self.checkpoint_every, "precision": self.precision},
            "recorder": {"tool": "Tools/recorder/pathkernel_recorder.py", "version": RECORDER_VERSION,
                         "format": FORMAT_TOOL_VERSION, "framework": self.framework,
                         "python": platform.python_version()},
        }
        return json.dumps(cfg, sort_keys=True, indent=2, allow_nan=False)

    # --- creation -------------------------------------------------------------------------------

    def _create(self, overwrite: bool) -> None:
        path = self.path
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                if not overwrite:
                    raise RecorderError(f"{path + suffix} already exists; a trace is never overwritten (pass overwrite=True, or remove it)")
        if overwrite:
            for suffix in ("", "-wal", "-shm", "-journal"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            raise RecorderError(f"the directory {directory} does not exist; create it first")
        conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)   # autocommit; explicit BEGIN/COMMIT
        try:
            # page_size only takes effect before the first table and before WAL mode.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                raise RecorderError(f"{path}: the file system does not support write-ahead logging")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(CREATE_MIGRATIONS_TABLE)
            for version, mname, sql in MIGRATIONS:
                with _transaction(conn):
                    for statement in sql.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                 (version, mname, _now()))
            now = _now()
            seed_signed = self.seed - 2 ** 64 if self.seed >= 2 ** 63 else self.seed
            with _transaction(conn):
                conn.execute(
                    """INSERT INTO run (id, tool_version, name, seed, status, status_message, created_at, updated_at,
                                        finished_at, task, num_outputs, model_json, loss_json, optimizer_json,
                                        config_json, precision, checkpoint_every, planned_steps)
                       VALUES (1, ?, ?, ?, 'running', NULL, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (TOOL_VERSION, self.name, seed_signed, now, now, self.task, self.num_outputs,
                     _compact(self.model), _compact({"kind": self.loss}), _compact(self.optimizer),
                     self._config_json(), self.precision, self.checkpoint_every, self.planned_steps or 0))
                for (split, role), a in self.data.items():
                    blob = a.astype("<f8").tobytes()
                    conn.execute("INSERT INTO data (split, role, dtype, shape, data, checksum) VALUES (?, ?, 'float64', ?, ?, ?)",
                                 (split, role, _shape_json(a.shape), blob, zlib.crc32(blob)))
                for position, (tname, shape, offset, count) in enumerate(self.layout):
                    conn.execute("INSERT INTO parameter_layout (position, name, shape, offset, count) VALUES (?, ?, ?, ?, ?)",
                                 (position, tname, _shape_json(shape), offset, count))
        except BaseException:
            conn.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.remove(path + suffix)
                except OSError:
                    pass
            raise
        self._conn = conn

    # --- appending ------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RecorderError(f"{self.path}: the recorder is closed")
        return self._conn

    def wants_checkpoint(self, step: int) -> bool:
        """True when `step` is a multiple of `checkpoint_every` (0 included) and not yet stored."""
        return step % self.checkpoint_every == 0 and step not in self._checkpoints

    def has_checkpoint(self, step: int) -> bool:
        return step in self._checkpoints

    @property
    def last_step(self) -> int:
        """The largest step row recorded so far (−1 before the first)."""
        return self._last_step

    def flatten(self, params: Any) -> np.ndarray:
        """The flat parameter vector (length P, float64) in layout order, from a flat array or a
        mapping tensor name → array of the layout's shape (`layers.l.weight` → [out, in] for an
        MLP; PyTorch's state_dict names and shapes for a layer list: `0.weight` → [O, C, kh, kw])."""
        P = self.parameter_count
        if isinstance(params, Mapping):
            missing = [n for n in self._layout_by_name if n not in params]
            extra = [n for n in params if n not in self._layout_by_name]
            if missing or extra:
                raise RecorderError(f"parameters: missing {missing}, unexpected {extra} (the layout holds {list(self._layout_by_name)})")
            w = np.empty(P, dtype=np.float64)
            for tname, (shape, off, count) in self._layout_by_name.items():
                a = _to_numpy(params[tname])
                if list(a.shape) != list(shape):
                    raise RecorderError(f"parameters: {tname} has shape {list(a.shape)}, the layout says {shape}"
                                        + (" ([out, in] for weights)" if len(shape) == 2 else ""))
                w[off:off + count] = a.astype(np.float64, copy=False).reshape(-1)
            return w
        w = _to_numpy(params).astype(np.float64, copy=False).reshape(-1)
        if w.shape[0] != P:
            raise RecorderError(f"parameters: {w.shape[0]} values, the layout has P = {P}")
        return w

    def _state_blob(self, state: Any, step: int) -> bytes:
        """Concatenated buffers in `buffer_names` order. `state` maps each name, either the
        chain's ("1.momentum_buffer") or the bare PyTorch one ("momentum_buffer") when it is
        unique in the chain, to a flat array or a per-tensor mapping like `flatten` takes."""
        if not isinstance(state, Mapping):
            raise RecorderError(f"optimizer state at step {step}: give a dict name → buffer (names {self.buffer_names})")
        bare: dict[str, str] = {}
        for full in self.buffer_names:
            b = full.split(".", 1)[1]
            bare[b] = full if b not in bare else ""       # "" marks an ambiguous bare name
        resolved: dict[str, Any] = {}
        for key, value in state.items():
            full = key if key in self.buffer_names else bare.get(key)
            if not full:
                raise RecorderError(f"optimizer state at step {step}: unknown or ambiguous buffer {key!r} (this optimizer keeps {self.buffer_names})")
            if full in resolved:
                raise RecorderError(f"optimizer state at step {step}: buffer {full} given twice")
            resolved[full] = value
        missing = [n for n in self.buffer_names if n not in resolved]
        if missing:
            raise RecorderError(f"optimizer state at step {step}: missing buffer(s) {missing}")
        parts = []
        for n in self.buffer_names:
            v = self.flatten(resolved[n])
            if not np.all(np.isfinite(v)):
                raise RecorderError(f"optimizer state at step {step}: buffer {n} is not finite")
            parts.append(v.astype("<f8").tobytes())
        return b"".join(parts)

    def checkpoint(self, step: int, params: Any, optimizer_state: Mapping[str, Any] | None = None,
                   optimizer_count: int | None = None) -> None:
        """Stores `w_step`, the weights **before** update `step` (checkpoint 0 is the
        initialization), in one transaction with the optimizer state when given.

        `optimizer_state`: the optimizer's buffers after the updates before `step` (see
        `_state_blob` for the accepted names; bare PyTorch state keys work). `optimizer_count`:
        the optimizer's update counter (Adam's t), default `step`. When the optimizer keeps state
        and none is given at step 0, the initial state (zeros, count 0) is stored, as pathkernel's
        trainer does; elsewhere the state is optional (replay then carries its own)."""
        step = int(step)
        if step < 0:
            raise RecorderError(f"checkpoint step {step} is negative")
        if step in self._checkpoints:
            raise RecorderError(f"a checkpoint at step {step} is already recorded")
        w = self.flatten(params)
        blob = w.astype("<f8" if self.precision == "float64" else "<f4").tobytes()
        state_row = None
        if optimizer_state is None and step == 0 and self.buffer_names:
            optimizer_state = {n: np.zeros(self.parameter_count) for n in self.buffer_names}
            optimizer_count = 0
        if optimizer_state is not None:
            if not self.buffer_names:
                if optimizer_state:
                    raise RecorderError(f"optimizer state at step {step}: the optimizer {self.optimizer['kind']} with these settings keeps no state")
            else:
                sblob = self._state_blob(optimizer_state, step)
                count = step if optimizer_count is None else int(optimizer_count)
                if count < 0:
                    raise RecorderError(f"optimizer state at step {step}: count {count} is negative")
                state_row = (step, json.dumps(self.buffer_names, separators=(",", ":")), count, sblob, zlib.crc32(sblob))
        now = _now()
        conn = self._db()
        try:
            with _transaction(conn):
                conn.execute("INSERT INTO checkpoint (step, dtype, count, params, checksum, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                             (step, self.precision, self.parameter_count, blob, zlib.crc32(blob), now))
                if state_row is not None:
                    conn.execute("INSERT INTO optimizer_state (step, names, count, dtype, data, checksum) VALUES (?, ?, ?, 'float64', ?, ?)",
                                 state_row)
                conn.execute("UPDATE run SET updated_at = ? WHERE id = 1", (now,))
        except sqlite3.IntegrityError:
            raise RecorderError(f"a checkpoint at step {step} is already recorded") from None
        self._checkpoints.add(step)

    def step(self, step: int, epoch: int, lr: float, batch_indices: Any, loss: Any,
             clip_scale: float | None = None) -> None:
        """Records update `step`: its 0-based `epoch`, learning rate, minibatch (row indices into
        `x_train`, in the order used; None = full batch 0 … n−1) and `loss`, the mean batch loss
        **at the weights before the update** (pathkernel's loss definition). `clip_scale`: the
        factor global-norm clipping applied (1 when it did not clip); None when not clipping."""
        step, epoch = int(step), int(epoch)
        if step < 0:
            raise RecorderError(f"step {step}: the step number is negative")
        if epoch < 0:
            raise RecorderError(f"step {step}: the epoch {epoch} is negative")
        lr = _number(lr, f"step {step}: the learning rate")
        if not math.isfinite(lr):
            raise RecorderError(f"step {step}: the learning rate {lr} is not finite")
        if batch_indices is None:
            idx = np.arange(self.train_count, dtype=np.int64)
        else:
            idx = _to_numpy(batch_indices).reshape(-1)
            if idx.size and not np.issubdtype(idx.dtype, np.integer):
                if not np.all(idx == np.round(idx)):
                    raise RecorderError(f"step {step}: batch indices must be integers")
            idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.train_count):
            bad = int(idx[(idx < 0) | (idx >= self.train_count)][0])
            raise RecorderError(f"step {step}: batch index {bad} is outside the training set (0..<{self.train_count})")
        batch = idx.astype("<i4").tobytes()
        loss_value = _number(loss.item() if hasattr(loss, "item") else loss, f"step {step}: the loss")
        loss_db = None if math.isnan(loss_value) else loss_value       # NULL means NaN
        clip = None if clip_scale is None else _number(clip_scale, f"step {step}: clip_scale")
        if clip is None and "clipNorm" in self.optimizer:
            raise RecorderError(f"step {step}: the optimizer clips (clipNorm {self.optimizer['clipNorm']}), give the clip_scale it applied")
        conn = self._db()
        try:
            with _transaction(conn):
                conn.execute("INSERT INTO step (step, epoch, learning_rate, batch_size, batch, loss, clip_scale) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (step, epoch, lr, int(idx.size), batch, loss_db, clip))
        except sqlite3.IntegrityError:
            raise RecorderError(f"step {step} is already recorded") from None
        self._steps.add(step)
        self._last_step = max(self._last_step, step)

    def finish(self, status: str = "finished", message: str | None = None, *, params: Any = None,
               optimizer_state: Mapping[str, Any] | None = None, optimizer_count: int | None = None) -> None:
        """Stores the final checkpoint (`params` = the weights after the last recorded update, at
        step `last_step + 1`, unless already stored), sets the terminal status and closes the file
        (SQLite folds the WAL into it). `status`: finished, diverged or aborted. Idempotent."""
        if self._conn is None:
            return
        if status not in ("finished", "diverged", "aborted"):
            raise RecorderError(f"finish: status {status!r} is not one of finished, diverged, aborted")
        final = self._last_step + 1
        if params is not None and final not in self._checkpoints:
            self.checkpoint(final, params, optimizer_state, optimizer_count)
        if status == "finished" and self._last_step >= 0 and final not in self._checkpoints:
            warnings.warn(f"{self.path}: no checkpoint after the last update (step {final}); the analyzer will use "
                          f"steps up to the last checkpoint only (pass params= to finish)", stacklevel=2)
        now = _now()
        conn = self._conn
        with _transaction(conn):
            if self.planned_steps is None:
                self.planned_steps = len(self._steps)
                conn.execute("UPDATE run SET planned_steps = ?, config_json = ? WHERE id = 1",
                             (self.planned_steps, self._config_json()))
            conn.execute("UPDATE run SET status = ?, status_message = ?, updated_at = ?, finished_at = ? WHERE id = 1",
                         (status, message, now, now))
        self.status = status
        self.close()

    def close(self) -> None:
        """Closes the connection without changing the status (a trace left `running`). Folds the
        WAL into the main file first (best effort), so that the main file alone holds the trace
        even while a reader has it open (Docs/trace-format.md, "Side files")."""
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass   # busy or a full disk: the commits stay in FILE-wal, still valid
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "TraceRecorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._conn is None:
            return
        if exc_type is None:
            self.finish("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("aborted", f"stopped by the user after step {self._last_step}")
        else:
            self.finish("aborted", f"{exc_type.__name__}: {exc}".splitlines()[0][:500])


class _transaction:
    """BEGIN … COMMIT on an autocommit connection; ROLLBACK on an exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return False
