#!/usr/bin/env python3
"""Time neural-tangents' empirical NTK on pathkernel's W4 workload (a small CNN) and check it
against pathkernel's kernel.

Usage:
    python neural_tangents_w4.py EXPORT_DIR [--repeats 3] [--json] [--batch-size N]

EXPORT_DIR is what `pathkernel bench --workload W4 --export DIR` writes:

    w4.json                      the layer list ("network"), "input_shape" [C, H, W], the
                                 "defaults" the layers were built with, the tensors, the sizes,
                                 pathkernel's timings
    x_query.npy, x_train.npy     float64 (n, C·H·W): images flattened in NCHW order
    <tensor>.npy                 one per parameter tensor, PyTorch's shapes: conv weight
                                 (O, I, kh, kw), bias (O,); dense weight (out, in), bias (out,)
    kernel_f64.npy               float64 (queries, train): pathkernel's NTK summed over the outputs
    kernel_f32.npy               float32, the same in single precision

The network is rebuilt with neural_tangents.stax in its default NHWC layout: the images are
transposed from NCHW to NHWC, conv weights from OIHW to HWIO, and the dense layer after a
`flatten` gets its input columns permuted from pathkernel's (c, y, x) order to stax's (y, x, c)
order. Supported kinds: conv2d (padding "valid" or "same"), avgpool2d, globalavgpool, flatten,
dense, the activations, layernorm (stax.LayerNorm over every non-batch axis, axis=(1, 2, 3) in
NHWC, the same eps; stax's has no gamma/beta, so with "affine" (pathkernel's default) they are a
three-line elementwise gamma * x + beta layer of this script's own), sequential, and residual
(stax.serial(FanOut(2), parallel(block, Identity() or the shortcut), FanInSum())); nested tensors
keep pathkernel's names ("2.block.1.weight", "3.shortcut.weight"). `pathkernel bench --workload W4
--residual [--affine-layer-norm] --export DIR` writes such a network (a second; the comparison
about half a minute). The empirical NTK is computed with STRUCTURED_DERIVATIVES (and
JACOBIAN_CONTRACTION with --jacobian; its Jacobians take (n·C·P) floats), jitted, in float64 and
float32 (parameters and inputs cast; the float32 run with jax_enable_x64 off, since stax's conv scale is
a NumPy float64 that would promote it): one call to compile and warm up, then the median of
--repeats calls.

Checks (relative Frobenius error): the float64 kernel against kernel_f64.npy, at most --f64-tol
(1e-10, else exit 1); the float32 kernel against both pathkernel kernels, at most --f32-tol
(1e-4, reported; exit 1 only with --strict-f32).

Normalisation: neural-tangents divides an empirical kernel by the size of the traced output axes
(trace_axes=(-1,): the mean over the C logits); pathkernel's trace kernel is the sum, so the
script multiplies by C.

Exit status: 0 when the float64 kernels agree, 1 when one does not, 2 on bad input.
Never part of CI. Needs the venv made by setup-peers.sh (jax 0.4.23, neural-tangents 0.6.5).
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import warnings  # noqa: E402

import numpy as np  # noqa: E402

# stax.parallel(block, Identity()) warns that the branches' channel_axis requirements may differ
# (Identity states none): it concerns the analytic kernel_fn only, not the empirical NTK.
warnings.filterwarnings("ignore", message="Got potentially mismatching `channel_axis`")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neural_tangents_w1 import (activation_layer, blas_line, fail_input, fmt_s, gemm_gflops, rel_fro,  # noqa: E402
                                time_fn)

ACTIVATIONS = ("relu", "leaky-relu", "tanh", "sigmoid", "gelu", "erf", "softplus", "identity")


def pair(value, name):
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    fail_input(f"{name} must be an integer or [h, w], got {value!r}")


def load_export(export_dir):
    meta_path = os.path.join(export_dir, "w4.json")
    if not os.path.isfile(meta_path):
        fail_input(f"{meta_path} not found (make it with `pathkernel bench --workload W4 --export DIR`)")
    with open(meta_path) as f:
        meta = json.load(f)
    net = meta.get("network")
    if not isinstance(net, dict) or net.get("kind") != "sequential" or not isinstance(net.get("layers"), list):
        fail_input("w4.json: 'network' must be a sequential layer list")
    shape = meta.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        fail_input(f"w4.json: 'input_shape' must be [C, H, W], got {shape!r}")

    def load(name, required=True):
        path = os.path.join(export_dir, name)
        if not os.path.isfile(path):
            if required:
                fail_input(f"{path} not found")
            return None
        return np.load(path)

    tensors = {}
    for t in meta.get("tensors", []):
        array = load(f"{t['name']}.npy")
        if tuple(array.shape) != tuple(t["shape"]):
            fail_input(f"{t['name']}.npy: shape {array.shape}, w4.json says {t['shape']}")
        tensors[t["name"]] = array.astype(np.float64)
    x_query, x_train = load("x_query.npy"), load("x_train.npy")
    d = shape[0] * shape[1] * shape[2]
    for name, x in (("x_query.npy", x_query), ("x_train.npy", x_train)):
        if x.ndim != 2 or x.shape[1] != d:
            fail_input(f"{name}: shape {x.shape}, expected (n, {d})")
    kernel_f64 = load("kernel_f64.npy")
    if kernel_f64.shape != (x_query.shape[0], x_train.shape[0]):
        fail_input(f"kernel_f64.npy: shape {kernel_f64.shape}, expected {(x_query.shape[0], x_train.shape[0])}")
    return {"meta": meta, "layers": net["layers"], "input_shape": shape, "tensors": tensors,
            "x_query": x_query.astype(np.float64), "x_train": x_train.astype(np.float64),
            "kernel_f64": kernel_f64.astype(np.float64), "kernel_f32": load("kernel_f32.npy", required=False)}


def to_nhwc(x, shape):
    """(n, C·H·W) rows in NCHW order -> (n, H, W, C)."""
    c, h, w = shape
    return x.reshape(-1, c, h, w).transpose(0, 2, 3, 1)


def elementwise_affine():
    """y = gamma * x + beta with gamma, beta of one example's shape (PyTorch LayerNorm's
    elementwise_affine part, which stax.LayerNorm lacks): a stax-style (init_fn, apply_fn,
    kernel_fn) triple for the empirical NTK only (no analytic kernel)."""
    def init_fn(rng, input_shape):
        import jax.numpy as jnp
        return input_shape, (jnp.ones(input_shape[1:]), jnp.zeros(input_shape[1:]))

    def apply_fn(params, inputs, **kwargs):
        gamma, beta = params
        return gamma * inputs + beta

    def kernel_fn(k, **kwargs):
        raise NotImplementedError("elementwise_affine has no analytic kernel")
    return init_fn, apply_fn, kernel_fn


def build_network(stax, jax, export):
    """(apply_fn, a function dtype -> stax parameter tree, the number of outputs C)."""
    defaults = export["meta"].get("defaults", {})
    tensors = export["tensors"]
    c, h, w = export["input_shape"]

    def tensor(name):
        if name not in tensors:
            fail_input(f"tensor {name!r} is not in the export")
        return tensors[name]

    # shape: the stax-side shape, ("image", H, W, C) or ("features", d); permutation: after a
    # flatten, stax feature j is pathkernel feature permutation[j]. Each converter returns
    # (stax layer, maker: dtype -> its parameter tree, shape, permutation).
    def convert_list(layers, prefix, where, shape, permutation):
        if not isinstance(layers, list) or not layers:
            fail_input(f"{where}: 'layers' must be a non-empty list")
        blocks, makers = [], []
        for i, layer in enumerate(layers):
            block, maker, shape, permutation = convert(layer, f"{prefix}{i}.", f"{where}[{i}]", shape, permutation)
            blocks.append(block)
            makers.append(maker)
        return stax.serial(*blocks), (lambda dtype: [m(dtype) for m in makers]), shape, permutation

    def convert(layer, prefix, where, shape, permutation):
        kind = layer.get("kind")
        where = f"{where} ({kind})"
        if kind == "sequential":
            return convert_list(layer.get("layers"), prefix, where + ".layers", shape, permutation)
        if kind == "conv2d":
            if shape[0] != "image":
                fail_input(f"{where}: needs an image input")
            kh, kw = pair(layer["kernel"], f"{where}.kernel")
            sh, sw = pair(layer.get("stride", 1), f"{where}.stride")
            padding = layer.get("padding", "valid")
            if padding not in ("valid", "same"):
                fail_input(f"{where}: padding {padding!r} has no stax counterpart (only \"valid\" and \"same\")")
            bias = layer.get("bias", True)
            sigma_w = float(layer.get("sigmaW", defaults.get("sigmaW", 1.0)))
            sigma_b = float(layer.get("sigmaB", defaults.get("sigmaB", 0.1)))
            parameterization = layer.get("parameterization", defaults.get("parameterization", "ntk"))
            out = layer["out"]
            block = stax.Conv(out, (kh, kw), strides=(sh, sw), padding=padding.upper(), W_std=sigma_w,
                              b_std=sigma_b if bias else None, parameterization=parameterization)
            W = tensor(f"{prefix}weight")  # (O, I, kh, kw)
            b = tensor(f"{prefix}bias") if bias else None

            def make(dtype, W=W, b=b, out=out):
                import jax.numpy as jnp
                return (jnp.asarray(W.transpose(2, 3, 1, 0).astype(dtype)),   # OIHW -> HWIO
                        None if b is None else jnp.asarray(b.reshape(1, 1, 1, out).astype(dtype)))
            if padding == "same":
                oh, ow = -(-shape[1] // sh), -(-shape[2] // sw)
            else:
                oh, ow = (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1
            return block, make, ("image", oh, ow, out), permutation
        if kind == "avgpool2d":
            kh, kw = pair(layer["kernel"], f"{where}.kernel")
            sh, sw = pair(layer.get("stride", layer["kernel"]), f"{where}.stride")
            padding = layer.get("padding", "valid")
            if padding != "valid":
                fail_input(f"{where}: only \"valid\" padding is compared (stax normalizes padded windows differently)")
            return (stax.AvgPool((kh, kw), strides=(sh, sw), padding="VALID"), lambda dtype: (),
                    ("image", (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1, shape[3]), permutation)
        if kind == "globalavgpool":
            return stax.GlobalAvgPool(), lambda dtype: (), ("features", shape[3]), permutation
        if kind == "flatten":
            if shape[0] == "image":
                _, hh, ww, cc = shape
                permutation = np.arange(cc * hh * ww).reshape(cc, hh, ww).transpose(1, 2, 0).reshape(-1)
                shape = ("features", cc * hh * ww)
            return stax.Flatten(), lambda dtype: (), shape, permutation
        if kind == "dense":
            if shape[0] != "features":
                fail_input(f"{where}: needs a feature input (put a flatten before it)")
            bias = layer.get("bias", True)
            sigma_w = float(layer.get("sigmaW", defaults.get("sigmaW", 1.0)))
            sigma_b = float(layer.get("sigmaB", defaults.get("sigmaB", 0.1)))
            parameterization = layer.get("parameterization", defaults.get("parameterization", "ntk"))
            out = layer["out"]
            block = stax.Dense(out, W_std=sigma_w, b_std=sigma_b if bias else None, parameterization=parameterization)
            W = tensor(f"{prefix}weight")  # (out, in), pathkernel's column order
            if permutation is not None:
                W = W[:, permutation]
            b = tensor(f"{prefix}bias") if bias else None

            def make(dtype, W=W, b=b):
                import jax.numpy as jnp
                return (jnp.asarray(W.T.astype(dtype)), None if b is None else jnp.asarray(b.reshape(1, -1).astype(dtype)))
            return block, make, ("features", out), None
        if kind == "layernorm":
            # pathkernel normalizes over all the features of an example (PyTorch's LayerNorm over
            # [C, H, W]), biased variance, eps inside the root: stax.LayerNorm over every non-batch
            # axis with the same eps. stax's has no gamma/beta: with "affine" (the default) they
            # are the elementwise_affine layer below, gamma and beta transposed CHW -> HWC.
            if permutation is not None:
                fail_input(f"{where}: a layernorm after a flatten is not supported here")
            axis = (1, 2, 3) if shape[0] == "image" else (1,)
            norm = stax.LayerNorm(axis=axis, eps=float(layer.get("eps", 1e-5)))
            if not layer.get("affine", True):
                return norm, lambda dtype: (), shape, permutation
            gamma, beta = tensor(f"{prefix}weight"), tensor(f"{prefix}bias")
            if shape[0] == "image":
                gamma, beta = gamma.transpose(1, 2, 0), beta.transpose(1, 2, 0)

            def make(dtype, gamma=gamma, beta=beta):
                import jax.numpy as jnp
                return [(), (jnp.asarray(gamma.astype(dtype)), jnp.asarray(beta.astype(dtype)))]
            return stax.serial(norm, elementwise_affine()), make, shape, permutation
        if kind == "residual":
            if permutation is not None:
                fail_input(f"{where}: a residual block after a flatten is not supported here")
            if not isinstance(layer.get("block"), dict):
                fail_input(f"{where}: 'block' must be a layer object")
            block, make_block, block_shape, _ = convert(layer["block"], f"{prefix}block.", f"{where}.block", shape, None)
            if "shortcut" in layer:
                shortcut, make_shortcut, shortcut_shape, _ = convert(layer["shortcut"], f"{prefix}shortcut.",
                                                                     f"{where}.shortcut", shape, None)
            else:
                shortcut, make_shortcut, shortcut_shape = stax.Identity(), (lambda dtype: ()), shape
            if block_shape != shortcut_shape:
                fail_input(f"{where}: the block gives {block_shape}, the shortcut {shortcut_shape}")
            # y = F(x) + P(x): neural-tangents' FanOut / parallel / FanInSum.
            residual = stax.serial(stax.FanOut(2), stax.parallel(block, shortcut), stax.FanInSum())
            return (residual, lambda dtype: [(), (make_block(dtype), make_shortcut(dtype)), ()],
                    block_shape, None)
        if kind in ACTIVATIONS:
            return (activation_layer(stax, jax, kind, float(layer.get("leakySlope", defaults.get("leakySlope", 0.01)))),
                    lambda dtype: (), shape, permutation)
        fail_input(f"{where}: kind {kind!r} is not supported by this script")

    network, make_tree, shape, _ = convert_list(export["layers"], "", "layers", ("image", h, w, c), None)
    if shape[0] != "features":
        fail_input("the network must end with feature outputs")
    init_fn, apply_fn, _ = network

    def params(dtype):
        tree = make_tree(dtype)
        # The shapes stax itself would make, checked against the converted tensors, leaf by leaf
        # (None, a bias-free layer's bias, is an empty subtree on both sides).
        _, reference = init_fn(jax.random.PRNGKey(0), (1, h, w, c))
        mine, mine_tree = jax.tree_util.tree_flatten(tree)
        theirs, their_tree = jax.tree_util.tree_flatten(reference)
        if len(mine) != len(theirs) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(mine, theirs)):
            fail_input(f"converted parameter shapes {[tuple(a.shape) for a in mine]} differ from stax's "
                       f"{[tuple(b.shape) for b in theirs]}")
        # Every exported tensor went into the stax tree (none silently left out of the NTK).
        count = sum(int(np.prod(a.shape)) for a in mine)
        if count != sum(int(t.size) for t in tensors.values()):
            fail_input(f"the stax network has {count} parameters, the export {sum(int(t.size) for t in tensors.values())}")
        return jax.tree_util.tree_unflatten(their_tree, mine)
    return apply_fn, params, shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (median taken)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--jacobian", action="store_true", help="also time JACOBIAN_CONTRACTION (memory: n·C·P floats)")
    parser.add_argument("--precisions", default="f64,f32", metavar="LIST", help="comma-separated subset of f64,f32")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="compute the kernel in nt.batch blocks of this many examples (less memory)")
    parser.add_argument("--f64-tol", type=float, default=1e-10)
    parser.add_argument("--f32-tol", type=float, default=1e-4)
    parser.add_argument("--strict-f32", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--no-gemm", action="store_true", help="skip measuring XLA's GEMM rate")
    args = parser.parse_args()
    if args.repeats < 1:
        fail_input("--repeats must be at least 1")
    precisions = args.precisions.split(",")
    if not precisions or any(p not in ("f64", "f32") for p in precisions):
        fail_input("--precisions: choose from f64,f32")

    export = load_export(args.export_dir)
    meta = export["meta"]

    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxlib
    import neural_tangents as nt
    from neural_tangents import stax

    apply_fn, make_params, n_out = build_network(stax, jax, export)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {"python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
           "numpy": np.__version__, "cpu_count": os.cpu_count(), "schedulable_cpus": affinity,
           "xla_flags": os.environ.get("XLA_FLAGS", ""), "jax_backend": jax.default_backend(),
           "load_average_start": [round(v, 2) for v in os.getloadavg()]}
    try:
        import importlib.metadata as md
        env["neural_tangents"] = md.version("neural-tangents")
        env["tensorflow"] = md.version("tensorflow")
    except Exception:  # noqa: BLE001 (versions are informational)
        pass
    gemm = {} if args.no_gemm else {"f64": gemm_gflops(jax, jnp, jnp.float64), "f32": gemm_gflops(jax, jnp, jnp.float32)}

    implementations = [("structured derivatives", nt.NtkImplementation.STRUCTURED_DERIVATIVES)]
    if args.jacobian:
        implementations.append(("jacobian contraction", nt.NtkImplementation.JACOBIAN_CONTRACTION))
    shape = export["input_shape"]
    pk = meta.get("pathkernel", {})
    rows, checks = [], []
    for precision, dtype in (("f64", np.float64), ("f32", np.float32)):
        if precision not in precisions:
            continue
        # stax's conv scales by a NumPy float64 (W_std / sqrt(fan in)), which under x64 would promote a
        # float32 network's activations to float64: run the float32 kernel with x64 off.
        jax.config.update("jax_enable_x64", precision == "f64")
        params = make_params(dtype)
        x1 = jnp.asarray(to_nhwc(export["x_query"], shape).astype(dtype))
        x2 = jnp.asarray(to_nhwc(export["x_train"], shape).astype(dtype))
        for label, implementation in implementations:
            ntk_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=implementation))
            if args.batch_size:
                ntk_fn = nt.batch(ntk_fn, batch_size=args.batch_size)
            first, median, times, other, kernel = time_fn(ntk_fn, (x1, x2, params), args.repeats, args.max_seconds)
            kernel = np.asarray(kernel).astype(np.float64) * n_out  # mean over the outputs -> sum
            pk_seconds = (pk.get(precision) or {}).get("seconds")
            rows.append({"implementation": f"neural-tangents {label}", "precision": precision, "seconds": median,
                         "first_call_seconds": first, "times": times, "other_load_cores": other,
                         "pathkernel_seconds": pk_seconds,
                         "pathkernel_over_this": None if not pk_seconds else pk_seconds / median})
            err = rel_fro(kernel, export["kernel_f64"])
            tol = args.f64_tol if precision == "f64" else args.f32_tol
            checks.append({"kernel": f"neural-tangents {label} {precision}", "against": "pathkernel f64", "rel_fro": err,
                           "tolerance": tol, "ok": err <= tol, "fatal": precision == "f64" or args.strict_f32})
            if precision == "f32" and export["kernel_f32"] is not None:
                err = rel_fro(kernel, export["kernel_f32"])
                checks.append({"kernel": f"neural-tangents {label} f32", "against": "pathkernel f32", "rel_fro": err,
                               "tolerance": args.f32_tol, "ok": err <= args.f32_tol, "fatal": args.strict_f32})
    if export["kernel_f32"] is not None:
        err = rel_fro(export["kernel_f32"], export["kernel_f64"])
        checks.append({"kernel": "pathkernel f32", "against": "pathkernel f64", "rel_fro": err,
                       "tolerance": args.f32_tol, "ok": err <= args.f32_tol, "fatal": args.strict_f32})
    env["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    ok = all(c["ok"] for c in checks if c["fatal"])
    result = {"workload": {"network": export["layers"], "input_shape": shape, "outputs": n_out,
                           "parameters": meta.get("parameters"), "queries": int(export["x_query"].shape[0]),
                           "train": int(export["x_train"].shape[0])},
              "repeats": args.repeats, "environment": env,
              "gemm_gflops": {"xla": gemm, "pathkernel": meta.get("gemm_gflops")},
              "pathkernel_blas": meta.get("blas"),
              "pathkernel": pk, "rows": rows, "checks": checks, "ok": ok}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0 if ok else 1


def print_report(r):
    w, env = r["workload"], r["environment"]
    kinds = "-".join(layer["kind"] + (f"({layer['out']})" if "out" in layer else "") for layer in w["network"])
    print(f"W4: CNN {kinds} on {w['input_shape']}, {w['parameters']:,} parameters, {w['outputs']} outputs; "
          f"NTK (summed over the outputs) of {w['queries']} queries × {w['train']} training points")
    print(f"jax {env['jax']} (jaxlib {env['jaxlib']}), neural-tangents {env.get('neural_tangents', '?')}, "
          f"tensorflow {env.get('tensorflow', '?')}, numpy {env['numpy']}, Python {env['python']}; "
          f"XLA CPU threads {env['schedulable_cpus']} of {env['cpu_count']} CPUs")
    g = r["gemm_gflops"]
    parts = []
    if g["xla"]:
        parts.append("XLA (n = 2048) " + ", ".join(f"{k} {v:.1f}" for k, v in g["xla"].items()))
    if isinstance(g["pathkernel"], dict):
        parts.append("pathkernel " + ", ".join(f"{k} {v:.1f}" for k, v in g["pathkernel"].items()))
    if parts:
        print("GEMM GFLOP/s: " + "; ".join(parts))
    if blas_line(r.get("pathkernel_blas")):
        print(blas_line(r["pathkernel_blas"]))
    print(f"load average {env['load_average_start'][0]:.2f} at the start, {env['load_average_end'][0]:.2f} at the end")
    print()
    for row in r["rows"]:
        ratio = "—" if row["pathkernel_over_this"] is None else f"{row['pathkernel_over_this']:.3g}"
        other = "—" if row["other_load_cores"] is None else f"{row['other_load_cores']:.2f}"
        print(f"  {row['implementation']:<40} {row['precision']}  median {fmt_s(row['seconds'])} s of "
              f"{len(row['times'])} (first call {fmt_s(row['first_call_seconds'])} s, other load {other}); "
              f"pathkernel {fmt_s(row['pathkernel_seconds'])} s; pathkernel s / this s = {ratio}")
    for precision in ("f64", "f32"):
        entry = r["pathkernel"].get(precision) if isinstance(r["pathkernel"], dict) else None
        if entry:
            print(f"  pathkernel {precision}: {fmt_s(entry['seconds'])} s (Jacobians {fmt_s(entry['jacobian_seconds'])} s, "
                  f"GEMMs {fmt_s(entry['gemm_seconds'])} s)")
    print("(pathkernel s / this s > 1: this is faster than pathkernel; other load: cores other processes "
          "kept busy during the timed calls)")
    print()
    print("Kernel agreement (relative Frobenius error)")
    width = max(len(c["kernel"]) for c in r["checks"])
    for c in r["checks"]:
        verdict = f"ok (≤ {c['tolerance']:.0e})" if c["ok"] else f"{'FAIL' if c['fatal'] else 'warn'} (> {c['tolerance']:.0e})"
        print(f"  {c['kernel'].ljust(width)}  vs  {c['against']:<15}  {c['rel_fro']:.2e}  {verdict}")
    print()
    print("result: " + ("the float64 kernels agree" if r["ok"] else "MISMATCH"))


if __name__ == "__main__":
    sys.exit(main())
