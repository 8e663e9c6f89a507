#!/usr/bin/env python3
"""Time neural-tangents' empirical NTK on pathkernel's W1 workload and check it against
pathkernel's kernel.

Usage:
    python neural_tangents_w1.py EXPORT_DIR [--repeats 7] [--json] [--all]

EXPORT_DIR is what `pathkernel bench --workload W1 --export DIR` writes (or what
`make_fake_export.py` writes for testing):

    w1.json                      the model and the workload sizes, pathkernel's timings (optional)
    x_query.npy, x_train.npy     float64 (queries, d_0), (train, d_0)
    layers.{l}.weight.npy        float64 (out, in), PyTorch's convention
    layers.{l}.bias.npy          float64 (out,), when "bias" is true
    kernel_f64.npy               float64 (queries, train): pathkernel's NTK Θ(x_query, x_train),
                                 summed over the outputs
    kernel_f32.npy               float32, the same computed in single precision (optional)

The network is rebuilt with neural_tangents.stax (Dense with W = W_l.T, the pathkernel
activation between the layers, the last layer linear), and its empirical NTK is computed with
the implementations STRUCTURED_DERIVATIVES and JACOBIAN_CONTRACTION (and NTK_VECTOR_PRODUCTS
with --all), each jitted, in float64 and in float32 (parameters and inputs cast): one call to
compile and warm up, then the median of --repeats calls (each ends with block_until_ready).

Checks (relative Frobenius error ||K - K_ref||_F / ||K_ref||_F):
  * every float64 kernel against kernel_f64.npy: at most --f64-tol (1e-10); a failure makes
    the exit status 1;
  * every float32 kernel against kernel_f64.npy, and against kernel_f32.npy when present: at
    most --f32-tol (1e-4) is reported as agreeing; a failure only warns, unless --strict-f32.

Normalisation: neural-tangents divides an empirical kernel by the size of the traced output
axes (trace_axes=(-1,) by default, so a C-output network gets the mean over its C logits), while
pathkernel's kernel is the sum over the outputs. This script multiplies by C, so the two agree
for any C; for W1 (C = 1) the factor is 1.

Exit status: 0 when the float64 kernels agree, 1 when one does not, 2 on bad input.
Never part of CI. Needs the venv made by setup-peers.sh (jax 0.4.23, neural-tangents 0.6.5).
"""

from machine_load import busy_cpu_seconds  # the same /proc/stat reading as the quiet-machine wait
import argparse
import json
import os
import platform
import statistics
import sys
import time

# TensorFlow is imported by neural_tangents; keep its start-up chatter (CUDA plugins, TensorRT)
# out of the output. Must be set before the import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def fail_input(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def load_export(export_dir):
    """Reads EXPORT_DIR into a dict; checks the shapes against w1.json."""
    meta_path = os.path.join(export_dir, "w1.json")
    if not os.path.isfile(meta_path):
        fail_input(f"{meta_path} not found (make it with `pathkernel bench --workload W1 --export DIR`)")
    with open(meta_path) as f:
        meta = json.load(f)

    def get(*names, default=None):
        for name in names:
            if name in meta:
                return meta[name]
        return default

    layers = get("layers")
    if not isinstance(layers, list) or len(layers) < 2 or not all(isinstance(d, int) and d > 0 for d in layers):
        fail_input(f"w1.json: 'layers' must be a list of at least 2 positive integers, got {layers!r}")
    spec = {
        "layers": layers,
        "activation": get("activation", default="relu"),
        "parameterization": get("parameterization", default="ntk"),
        "sigma_w": float(get("sigma_w", "sigmaW", default=1.0)),
        "sigma_b": float(get("sigma_b", "sigmaB", default=0.1)),
        "bias": bool(get("bias", default=True)),
        "leaky_slope": float(get("leaky_slope", "leakySlope", default=0.01)),
    }

    def load(name, shape, required=True):
        path = os.path.join(export_dir, name)
        if not os.path.isfile(path):
            if required:
                fail_input(f"{path} not found")
            return None
        array = np.load(path)
        if shape is not None and tuple(array.shape) != tuple(shape):
            fail_input(f"{name}: shape {array.shape}, expected {tuple(shape)}")
        return array

    x_query = load("x_query.npy", None)
    x_train = load("x_train.npy", None)
    d0 = layers[0]
    for name, x in (("x_query.npy", x_query), ("x_train.npy", x_train)):
        if x.ndim != 2 or x.shape[1] != d0:
            fail_input(f"{name}: shape {x.shape}, expected (n, {d0})")
    for key, x in (("queries", x_query), ("train", x_train)):
        if key in meta and meta[key] != x.shape[0]:
            fail_input(f"w1.json says {key} = {meta[key]} but the array has {x.shape[0]} rows")

    weights, biases = [], []
    for l in range(len(layers) - 1):
        weights.append(load(f"layers.{l}.weight.npy", (layers[l + 1], layers[l])))
        biases.append(load(f"layers.{l}.bias.npy", (layers[l + 1],)) if spec["bias"] else None)

    n_q, n_t = x_query.shape[0], x_train.shape[0]
    kernel_f64 = load("kernel_f64.npy", (n_q, n_t))
    kernel_f32 = load("kernel_f32.npy", (n_q, n_t), required=False)
    for name, array, dtype in (("x_query.npy", x_query, np.float64), ("x_train.npy", x_train, np.float64),
                               ("kernel_f64.npy", kernel_f64, np.float64)):
        if array.dtype != dtype:
            print(f"warning: {name} has dtype {array.dtype}, expected {np.dtype(dtype).name}", file=sys.stderr)

    return {
        "meta": meta,
        "spec": spec,
        "x_query": x_query.astype(np.float64),
        "x_train": x_train.astype(np.float64),
        "weights": [w.astype(np.float64) for w in weights],
        "biases": [None if b is None else b.astype(np.float64) for b in biases],
        "kernel_f64": kernel_f64.astype(np.float64),
        "kernel_f32": kernel_f32,
    }


def pathkernel_timings(meta):
    """{(precision, label): seconds} from w1.json's optional "pathkernel" object."""
    out = {}
    pk = meta.get("pathkernel")
    if not isinstance(pk, dict):
        return out
    for precision in ("f64", "f32"):
        entry = pk.get(precision)
        if not isinstance(entry, dict):
            continue
        for key, label in (("seconds", "pathkernel"), ("reference_seconds", "pathkernel reference")):
            value = entry.get(key)
            if isinstance(value, (int, float)) and value > 0:
                out[(precision, label)] = float(value)
    return out


def activation_layer(stax, jax, name, leaky_slope):
    """The stax layer for a pathkernel activation name (Docs/networks.md)."""
    name = name.lower()
    if name == "relu":
        return stax.Relu()
    if name in ("leaky-relu", "leaky_relu", "leakyrelu"):
        return stax.LeakyRelu(leaky_slope)
    if name == "tanh":
        return stax.Elementwise(fn=jax.numpy.tanh)  # empirical kernels need only fn
    if name == "sigmoid":
        return stax.Elementwise(fn=jax.nn.sigmoid)
    if name == "gelu":
        return stax.Gelu(approximate=False)  # exact x Φ(x), as pathkernel
    if name == "erf":
        return stax.Erf()  # a erf(b x) + c with a = b = 1, c = 0
    if name == "softplus":
        return stax.Elementwise(fn=jax.nn.softplus)
    if name == "identity":
        return stax.Identity()
    fail_input(f"activation '{name}' has no stax counterpart here")


def build_network(stax, jax, spec):
    """apply_fn of the stax MLP and its parameter tree from the exported (out, in) weights."""
    layers = spec["layers"]
    b_std = spec["sigma_b"] if spec["bias"] else None
    parameterization = spec["parameterization"]
    if parameterization not in ("ntk", "standard"):
        fail_input(f"parameterization '{parameterization}' is neither 'ntk' nor 'standard'")
    blocks = []
    for l in range(len(layers) - 1):
        blocks.append(stax.Dense(layers[l + 1], W_std=spec["sigma_w"], b_std=b_std,
                                 parameterization=parameterization))
        if l < len(layers) - 2:
            blocks.append(activation_layer(stax, jax, spec["activation"], spec["leaky_slope"]))
    _, apply_fn, _ = stax.serial(*blocks)
    return apply_fn


def make_params(spec, weights, biases, dtype):
    """stax's parameter tree: Dense takes W as (in, out) and b as (1, out); activations take ()."""
    import jax.numpy as jnp

    params = []
    n_dense = len(weights)
    for l in range(n_dense):
        W = jnp.asarray(weights[l].T.astype(dtype))
        b = None if biases[l] is None else jnp.asarray(biases[l].reshape(1, -1).astype(dtype))
        params.append((W, b))
        if l < n_dense - 1:
            params.append(())
    # Under 'ntk' stax applies sigma_w/sqrt(n) and sigma_b in the forward pass, as pathkernel does
    # (it stores the raw W, b). Under 'standard' both apply no scale: the stored values are used as
    # they are (pathkernel's standard parameters already carry sigma_w/sqrt(n) and sigma_b).
    return params


def blas_line(blas):
    """pathkernel's BLAS as its export recorded it (`"blas"` in w1.json / w4.json), or None."""
    if not isinstance(blas, dict):
        return None
    env = ", ".join(f"{k}={blas.get(k.lower())}" if blas.get(k.lower()) is not None else f"{k} unset"
                    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    return f"pathkernel's BLAS: {blas.get('library', '?')} core {blas.get('core_name') or 'unknown'} ({env})"


def rel_fro(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def time_fn(fn, args, repeats, max_seconds=None):
    """(first-call seconds incl. compile, median seconds, all seconds, other load, result).

    With max_seconds, stops after the call that brings the timed total past it (at least one
    call). `other load` is the CPU time other processes used during the timed calls, in cores
    (0 on an idle machine; 1 means another process kept a whole core busy): the machine is shared."""
    start = time.perf_counter()
    result = fn(*args)
    result.block_until_ready()
    first = time.perf_counter() - start
    times = []
    busy0, own0, wall0 = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    for _ in range(repeats):
        if max_seconds is not None and times and sum(times) >= max_seconds:
            break
        start = time.perf_counter()
        result = fn(*args)
        result.block_until_ready()
        times.append(time.perf_counter() - start)
    busy1, own1, wall1 = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    other = None
    if busy0 is not None and busy1 is not None and wall1 > wall0:
        other = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    return first, statistics.median(times), times, other, result


def gemm_gflops(jax, jnp, dtype, n=2048, repeats=3):
    """XLA's own GEMM rate on this machine, for scale (the XLA CPU backend uses Eigen, not OpenBLAS)."""
    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (n, n), dtype=dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype=dtype)
    mm = jax.jit(jnp.matmul)
    mm(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mm(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls after the warm-up (median taken)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--all", action="store_true", help="also time NTK_VECTOR_PRODUCTS")
    parser.add_argument("--implementations", default=None, metavar="LIST",
                        help="comma-separated subset of structured,jacobian,nvp "
                             "(default structured,jacobian; with --all all three)")
    parser.add_argument("--precisions", default="f64,f32", metavar="LIST",
                        help="comma-separated subset of f64,f32 (default both)")
    parser.add_argument("--f64-tol", type=float, default=1e-10)
    parser.add_argument("--f32-tol", type=float, default=1e-4)
    parser.add_argument("--strict-f32", action="store_true", help="exit 1 when a float32 check fails too")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop timing one configuration once its timed calls took this long "
                             "(at least one call; default: always --repeats calls)")
    parser.add_argument("--no-gemm", action="store_true", help="skip measuring XLA's GEMM rate")
    args = parser.parse_args()
    if args.repeats < 1:
        fail_input("--repeats must be at least 1")

    selected_implementations = (args.implementations.split(",") if args.implementations
                                else ["structured", "jacobian"] + (["nvp"] if args.all else []))
    bad = [k for k in selected_implementations if k not in ("structured", "jacobian", "nvp")]
    if bad or not selected_implementations:
        fail_input(f"--implementations: unknown {bad}; choose from structured,jacobian,nvp")
    precisions = args.precisions.split(",")
    if not precisions or any(p not in ("f64", "f32") for p in precisions):
        fail_input("--precisions: choose from f64,f32")

    export = load_export(args.export_dir)
    spec = export["spec"]
    meta = export["meta"]

    import_start = time.perf_counter()
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxlib
    import neural_tangents as nt
    from neural_tangents import stax
    import_seconds = time.perf_counter() - import_start

    apply_fn = build_network(stax, jax, spec)
    n_out = spec["layers"][-1]

    known = {"structured": ("structured derivatives", nt.NtkImplementation.STRUCTURED_DERIVATIVES),
             "jacobian": ("jacobian contraction", nt.NtkImplementation.JACOBIAN_CONTRACTION),
             "nvp": ("ntk-vector products", nt.NtkImplementation.NTK_VECTOR_PRODUCTS)}
    implementations = [known[k] for k in selected_implementations]

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    xla_flags = os.environ.get("XLA_FLAGS", "")
    # XLA's CPU backend runs its intra-op work (Eigen) on one thread per schedulable core unless
    # --xla_cpu_multi_thread_eigen=false is set.
    xla_threads = 1 if "xla_cpu_multi_thread_eigen=false" in xla_flags else affinity
    env = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "neural_tangents": getattr(nt, "__version__", None),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "schedulable_cpus": affinity,
        "xla_cpu_threads": xla_threads,
        "xla_flags": xla_flags,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_import_seconds": round(import_seconds, 2),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        import importlib.metadata as md
        env["neural_tangents"] = env["neural_tangents"] or md.version("neural-tangents")
        env["tensorflow"] = md.version("tensorflow")
    except Exception:  # noqa: BLE001 (versions are informational)
        pass

    gemm = {}
    if not args.no_gemm:
        gemm["f64"] = gemm_gflops(jax, jnp, jnp.float64)
        gemm["f32"] = gemm_gflops(jax, jnp, jnp.float32)

    references = {"f64": export["kernel_f64"]}
    pk_f32 = export["kernel_f32"]

    rows = []
    checks = []
    kernels = {}
    for precision, dtype in (("f64", np.float64), ("f32", np.float32)):
        if precision not in precisions:
            continue
        params = make_params(spec, export["weights"], export["biases"], dtype)
        x1 = jnp.asarray(export["x_query"].astype(dtype))
        x2 = jnp.asarray(export["x_train"].astype(dtype))
        for label, implementation in implementations:
            # vmap_axes=0: examples are independent (no batch norm), the setting neural-tangents
            # recommends for speed. trace_axes=(-1,): the kernel is the mean over the outputs.
            ntk_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                                 implementation=implementation))
            first, median, times, other, kernel = time_fn(ntk_fn, (x1, x2, params), args.repeats, args.max_seconds)
            kernel = np.asarray(kernel)
            out_dtype = kernel.dtype.name
            if kernel.dtype != dtype:
                print(f"warning: {label} {precision} returned {out_dtype}", file=sys.stderr)
            kernel = kernel.astype(np.float64) * n_out  # mean over outputs -> sum (C = 1: no-op)
            kernels[(label, precision)] = kernel
            rows.append({"implementation": f"neural-tangents {label}", "precision": precision,
                         "seconds": median, "first_call_seconds": first, "times": times,
                         "other_load_cores": other, "output_dtype": out_dtype})
            err = rel_fro(kernel, references["f64"])
            tol = args.f64_tol if precision == "f64" else args.f32_tol
            checks.append({"kernel": f"neural-tangents {label} {precision}", "against": "pathkernel f64",
                           "rel_fro": err, "tolerance": tol, "ok": err <= tol,
                           "fatal": precision == "f64" or args.strict_f32})
            if precision == "f32" and pk_f32 is not None:
                err = rel_fro(kernel, pk_f32)
                checks.append({"kernel": f"neural-tangents {label} f32", "against": "pathkernel f32",
                               "rel_fro": err, "tolerance": args.f32_tol, "ok": err <= args.f32_tol,
                               "fatal": args.strict_f32})
    if pk_f32 is not None and "f32" in precisions:
        err = rel_fro(pk_f32, references["f64"])
        checks.append({"kernel": "pathkernel f32", "against": "pathkernel f64", "rel_fro": err,
                       "tolerance": args.f32_tol, "ok": err <= args.f32_tol, "fatal": args.strict_f32})
    # neural-tangents' implementations against each other (informational).
    base = implementations[0][0]
    for label, _ in implementations[1:]:
        for precision in precisions:
            err = rel_fro(kernels[(label, precision)], kernels[(base, precision)])
            checks.append({"kernel": f"neural-tangents {label} {precision}",
                           "against": f"neural-tangents {base} {precision}", "rel_fro": err,
                           "tolerance": None, "ok": None, "fatal": False})

    pk_times = pathkernel_timings(meta)
    for row in rows:
        pk = pk_times.get((row["precision"], "pathkernel"))
        row["pathkernel_seconds"] = pk
        row["pathkernel_over_this"] = None if pk is None else pk / row["seconds"]
    order = {("f64", "pathkernel"): 0, ("f64", "pathkernel reference"): 1, ("f32", "pathkernel"): 2,
             ("f32", "pathkernel reference"): 3}
    for (precision, label), seconds in sorted(pk_times.items(), key=lambda item: order[item[0]]):
        rows.append({"implementation": label, "precision": precision, "seconds": seconds,
                     "first_call_seconds": None, "times": None, "other_load_cores": None,
                     "pathkernel_seconds": pk_times.get((precision, "pathkernel")),
                     "pathkernel_over_this": (pk_times[(precision, "pathkernel")] / seconds
                                              if (precision, "pathkernel") in pk_times else None)})

    env["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    ok = all(c["ok"] for c in checks if c["fatal"])
    workload = {k: spec[k] for k in ("layers", "activation", "parameterization", "sigma_w", "sigma_b", "bias")}
    workload["queries"] = int(export["x_query"].shape[0])
    workload["train"] = int(export["x_train"].shape[0])
    workload["parameters"] = int(sum(w.size for w in export["weights"])
                                 + sum(0 if b is None else b.size for b in export["biases"]))
    workload["outputs"] = n_out
    result = {
        "workload": workload,
        "repeats": args.repeats,
        "environment": env,
        "gemm_gflops": {"xla": gemm, "pathkernel": meta.get("gemm_gflops")},
        "pathkernel_blas": meta.get("blas"),
        "rows": rows,
        "checks": checks,
        "ok": ok,
    }

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0 if ok else 1


def fmt_s(x):
    if x is None:
        return "—"
    if x >= 0.1:
        return f"{x:.3f}"
    return f"{x * 1e3:.1f} ms" if x >= 1e-3 else f"{x * 1e6:.0f} µs"


def print_report(r):
    w, env = r["workload"], r["environment"]
    print(f"W1: MLP {'-'.join(map(str, w['layers']))} {w['activation']}, {w['parameterization']} "
          f"parameterization (σ_w {w['sigma_w']}, σ_b {w['sigma_b']}, bias {str(w['bias']).lower()}), "
          f"{w['parameters']:,} parameters; NTK of {w['queries']} queries × {w['train']} training points")
    print(f"jax {env['jax']} (jaxlib {env['jaxlib']}), neural-tangents {env['neural_tangents']}, "
          f"tensorflow {env.get('tensorflow', '?')}, numpy {env['numpy']}, Python {env['python']}")
    print(f"devices: {', '.join(env['jax_devices'])} (backend {env['jax_backend']}); "
          f"XLA CPU threads {env['xla_cpu_threads']} of {env['cpu_count']} CPUs"
          + (f"; XLA_FLAGS={env['xla_flags']}" if env["xla_flags"] else ""))
    g = r["gemm_gflops"]
    parts = []
    if g["xla"]:
        parts.append("XLA (n = 2048) " + ", ".join(f"{k} {v:.1f}" for k, v in g["xla"].items()))
    if isinstance(g["pathkernel"], dict):
        parts.append("pathkernel " + ", ".join(f"{k} {v:.1f}" for k, v in g["pathkernel"].items()
                                               if isinstance(v, (int, float))))
    if parts:
        print("GEMM GFLOP/s: " + "; ".join(parts))
    if blas_line(r.get("pathkernel_blas")):
        print(blas_line(r["pathkernel_blas"]))
    print()
    counts = sorted({len(row["times"]) for row in r["rows"] if row["times"]})
    calls = "/".join(map(str, counts)) if counts else str(r["repeats"])
    print(f"Times: median of {calls} calls after one warm-up call (which includes XLA's compile); "
          f"load average {env['load_average_start'][0]:.2f} at the start, {env['load_average_end'][0]:.2f} at the end")
    header = ("implementation", "precision", "seconds", "min", "max", "first call", "other load",
              "pathkernel s / this s")
    lines = [(row["implementation"], row["precision"], fmt_s(row["seconds"]),
              fmt_s(min(row["times"])) if row["times"] else "—", fmt_s(max(row["times"])) if row["times"] else "—",
              fmt_s(row["first_call_seconds"]),
              "—" if row["other_load_cores"] is None else f"{row['other_load_cores']:.2f}",
              "—" if row["pathkernel_over_this"] is None else f"{row['pathkernel_over_this']:.3g}")
             for row in r["rows"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(widths[i]) if i < 2 else h.rjust(widths[i]) for i, h in enumerate(header)))
    print("  ".join("─" * wd for wd in widths))
    for line in lines:
        print("  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(line)))
    print("(other load: cores kept busy by other processes during the timed calls; above about 0.1 "
          "the times are not clean)")
    if not any(row["pathkernel_seconds"] for row in r["rows"]):
        print("(no pathkernel timings in w1.json)")
    else:
        print("(pathkernel s / this s > 1: this is faster than pathkernel)")
    print()
    print("Kernel agreement (relative Frobenius error)")
    width = max(len(c["kernel"]) for c in r["checks"])
    width2 = max(len(c["against"]) for c in r["checks"])
    for c in r["checks"]:
        if c["ok"] is None:
            verdict = ""
        elif c["ok"]:
            verdict = f"ok (≤ {c['tolerance']:.0e})"
        else:
            verdict = f"{'FAIL' if c['fatal'] else 'warn'} (> {c['tolerance']:.0e})"
        print(f"  {c['kernel'].ljust(width)}  vs  {c['against'].ljust(width2)}  {c['rel_fro']:.2e}  {verdict}")
    print()
    ran_f64 = any(row["precision"] == "f64" and row["times"] for row in r["rows"])
    f32_ok = all(c["ok"] for c in r["checks"] if c["ok"] is not None and "f32" in c["kernel"])
    if not r["ok"]:
        verdict = "MISMATCH"
    elif ran_f64:
        verdict = "the float64 kernels agree"
    else:
        verdict = "no float64 kernel computed"
    verdict += "; the float32 kernels agree to the tolerance" if f32_ok else "; a float32 kernel misses the tolerance"
    print("result: " + verdict)


if __name__ == "__main__":
    sys.exit(main())
