#!/usr/bin/env python3
"""pathkernel's analytic MLP kernels against neural-tangents' kernel_fn: a float64 check of
`pathkernel kernel` and `pathkernel predict-linear` on random inputs, and W7's MLP timing.

Usage:
    python neural_tangents_w7.py check --pathkernel BIN [--seed 0] [--tol 1e-10] [--json]
    python neural_tangents_w7.py time  --pathkernel BIN [--points 2000] [--rounds 3]
                                       [--tanh-points 0] [--tanh-deg 64] [--no-wait]
                                       [--max-load 0.5] [--wait-timeout 900] [--json]

check: for each of eight MLPs (relu, erf, gelu, leaky-relu, identity; ntk and standard
parameterization; with and without bias; 1–3 hidden layers of widths 3–40) on seeded N(0, 1)
inputs (7 rows × 5 columns against 6 rows; --seed), runs `BIN kernel --config F --inputs A.csv
--inputs2 B.csv --kind both --json` and the Gram form (no --inputs2), and compares both kernels
with neural-tangents' stax kernel_fn (Dense with W_std = sigmaW, b_std = sigmaB or None,
the same parameterization; Relu, LeakyRelu, Erf, Gelu(approximate=False), Identity) in float64:
the relative error max|pk − nt| / max(max|nt|, 1) at most --tol (TOLERANCE_KERNEL, 1e-10). Then
`BIN predict-linear --config F --kernel analytic --ensemble ntk|nngp --dynamics flow --time 3
40 inf --json` on a CSV data set (8 train, 4 test rows, shuffle off, C = 1) against
`nt.predict.gradient_descent_mse_ensemble(kernel_fn, X, Y, learning_rate=η)`'s mean and
covariance at the same times (`predict_fn(t, X_test, get, compute_cov=True)`, t = None for inf),
same measure, at most --tol (TOLERANCE_PREDICT, 1e-10). Exit 1 when a comparison misses.
The widths matter only for the standard parameterization (stax takes the Dense widths).

time: W7's MLP part (`pathkernel bench --workload W7-mlp`: relu MLP 784-512-512-512-512-1,
σ_w 1.5, σ_b 0.1, NTK parameterization, NNGP and NTK between --points and --points seeded N(0, I)
points, float64). Runs the bench once with --export (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from its environment) for the inputs and kernels, builds the same net in stax, checks
neural-tangents' jitted kernel_fn(x1, x2, ('nngp', 'ntk')) against the export (--tol), waits for a
quiet machine (machine_load.wait_quiet; --no-wait to skip, the report then says clean: NO), then
runs --rounds rounds alternating a fresh `BIN bench --workload W7-mlp --activation relu --points N
--json` process and one warm neural-tangents call, which goes first alternating; each round
prints the 1-minute load before it and the cores other processes kept busy during each part. It
reports the medians and their ratio pathkernel / neural-tangents. --tanh-points P > 0 adds tanh
at P points: pathkernel's trapezoidal rule (bench --activation tanh) against neural-tangents'
stax.ElementwiseNumerical(jnp.tanh, deg=--tanh-deg) (Gauss–Hermite; its memory grows as P²·deg²,
so keep P small), timed once each, with their difference (Gauss–Hermite's error, see
Docs/ntk-family.md) reported, not checked.

Never part of CI. Needs the venv made by setup-peers.sh (jax 0.4.23, neural-tangents 0.6.5).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import machine_load  # noqa: E402

TOLERANCE_KERNEL = 1e-10
TOLERANCE_PREDICT = 1e-10
# neural-tangents computes a self pair's angle from c/sqrt(q q) by arccos: when that ratio rounds
# below 1, theta ~ sqrt(2 eps) ~ 2e-8 instead of 0, and relu's / leaky relu's derivative term
# E[phi' phi'] = (pi - theta)/(2 pi) is off by ~3e-9 (Docs/ntk-family.md, numerical rules; the
# contract §1). pathkernel reads self variances from the Gram's diagonal (theta = 0 exactly). So
# for kinked activations the Gram's diagonal, and every ensemble prediction built on the training
# Gram, is compared at this looser tolerance; off-diagonal kernel entries keep TOLERANCE_KERNEL.
TOLERANCE_SELF_PAIRS_KINKED = 1e-8
KINKED = ("relu", "leaky-relu")
CLEAN_OTHER_LOAD = 0.1
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

CHECK_NETS = [
    dict(activation="relu", parameterization="ntk", layers=[5, 16, 16, 1], bias=True),
    dict(activation="relu", parameterization="standard", layers=[5, 16, 24, 1], bias=True),
    dict(activation="relu", parameterization="ntk", layers=[5, 8, 1], bias=False),
    dict(activation="erf", parameterization="ntk", layers=[5, 16, 16, 16, 1], bias=True),
    dict(activation="erf", parameterization="standard", layers=[5, 40, 3, 1], bias=True),
    dict(activation="gelu", parameterization="ntk", layers=[5, 16, 16, 1], bias=True),
    dict(activation="leaky-relu", parameterization="ntk", layers=[5, 16, 16, 1], bias=True, leakySlope=0.01),
    dict(activation="identity", parameterization="ntk", layers=[5, 16, 1], bias=True),
]
SIGMA_W, SIGMA_B = 1.5, 0.1


def log(message):
    print(message, file=sys.stderr, flush=True)


def fail_input(message):
    log(f"error: {message}")
    sys.exit(2)


def pk_environment():
    env = dict(os.environ)
    for v in OPENBLAS_VARIABLES:
        env.pop(v, None)
    return env


def run_pk(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        log(f"error: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
        sys.exit(1)
    return json.loads(r.stdout)


def relative(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1.0))


def stax_net(stax, jnp, layers, activation, parameterization, bias, slope=0.01, tanh_deg=None):
    act = {"relu": lambda: stax.Relu(), "erf": lambda: stax.Erf(), "gelu": lambda: stax.Gelu(approximate=False),
           "leaky-relu": lambda: stax.LeakyRelu(slope), "identity": lambda: stax.Identity(),
           "tanh": lambda: stax.ElementwiseNumerical(jnp.tanh, deg=tanh_deg)}[activation]
    parts = []
    for i, width in enumerate(layers[1:]):
        parts.append(stax.Dense(width, W_std=SIGMA_W, b_std=SIGMA_B if bias else None,
                                parameterization=parameterization))
        if i < len(layers) - 2:
            parts.append(act())
    return stax.serial(*parts)


def write_csv(path, x, y=None):
    with open(path, "w") as f:
        for i in range(x.shape[0]):
            row = [repr(float(v)) for v in x[i]] + ([repr(float(y[i]))] if y is not None else [])
            f.write(",".join(row) + "\n")


def config_json(path, net, data=None, learning_rate=0.5):
    model = {"kind": "mlp", "layers": net["layers"], "activation": net["activation"],
             "parameterization": net["parameterization"], "sigmaW": SIGMA_W, "sigmaB": SIGMA_B, "bias": net["bias"]}
    if "leakySlope" in net:
        model["leakySlope"] = net["leakySlope"]
    cfg = {"name": "nt-check", "seed": 1,
           "data": data or {"kind": "teacher", "train": 4, "test": 2, "inputDim": net["layers"][0]},
           "model": model, "loss": {"kind": "mse"},
           "optimizer": {"kind": "gd", "learningRate": learning_rate}, "training": {"steps": 40, "checkpointEvery": 10}}
    with open(path, "w") as f:
        json.dump(cfg, f)


def scipy_shim():
    """jax 0.4.23's jax.scipy.linalg (which neural-tangents' predictors import) wraps
    scipy.linalg.tril/triu, which SciPy 1.13 removed; a venv that resolved a newer SciPy fails
    there. NumPy's functions stand in (the wrapper only reads their docstrings)."""
    import scipy.linalg
    for name in ("tril", "triu"):
        if not hasattr(scipy.linalg, name):
            setattr(scipy.linalg, name, getattr(np, name))


def check(args):
    scipy_shim()
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    rng = np.random.default_rng(args.seed)
    rows = []
    misses = []
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="pk-nt-w7-") as tmp:
        for k, net in enumerate(CHECK_NETS):
            d = net["layers"][0]
            x1, x2 = rng.standard_normal((7, d)), rng.standard_normal((6, d))
            a, b, cfg = (os.path.join(tmp, f"{n}{k}") for n in ("a.csv", "b.csv", "c.json"))
            write_csv(a, x1)
            write_csv(b, x2)
            config_json(cfg, net)
            _, _, kernel_fn = stax_net(stax, jnp, net["layers"], net["activation"], net["parameterization"],
                                       net["bias"], net.get("leakySlope", 0.01))
            for form, second in (("cross", [b]), ("gram", [])):
                cmd = [args.pathkernel, "kernel", "--config", cfg, "--inputs", a, "--kind", "both", "--json"]
                if second:
                    cmd += ["--inputs2", second[0]]
                pk = run_pk(cmd)
                ref = kernel_fn(jnp.asarray(x1), jnp.asarray(x2) if second else None, ("nngp", "ntk"))
                errs, diag = {}, {}
                for g in ("nngp", "ntk"):
                    ours, theirs = np.asarray(pk[g], dtype=np.float64), np.asarray(getattr(ref, g))
                    if form == "gram":   # off-diagonal at --tol, the self pairs apart (see KINKED)
                        scale = max(np.max(np.abs(theirs)), 1.0)
                        off = ~np.eye(ours.shape[0], dtype=bool)
                        errs[g] = float(np.max(np.abs(ours - theirs)[off]) / scale)
                        diag[g] = float(np.max(np.abs(np.diag(ours) - np.diag(theirs))) / scale)
                    else:
                        errs[g] = relative(ours, theirs)
                limit = TOLERANCE_SELF_PAIRS_KINKED if net["activation"] in KINKED else args.tol
                if diag and max(diag.values()) > limit:
                    misses.append(f"{net['activation']} gram diagonal {max(diag.values()):.1e} > {limit:g}")
                worst = max(worst, *errs.values())
                rows.append({"diag": diag, "what": "kernel", "net": f"{net['activation']} {net['parameterization']} "
                             f"{'-'.join(map(str, net['layers']))}{'' if net['bias'] else ' no bias'}", "form": form,
                             "nngp": errs["nngp"], "ntk": errs["ntk"]})
        # predict-linear: the infinite ensemble on a CSV data set.
        for net in (CHECK_NETS[0], CHECK_NETS[3]):
            d, n, m = net["layers"][0], 8, 4
            x = rng.standard_normal((n + m, d))
            y = rng.standard_normal(n + m)
            data_csv = os.path.join(tmp, f"data-{net['activation']}.csv")
            write_csv(data_csv, x, y)
            cfg = os.path.join(tmp, f"p-{net['activation']}.json")
            eta = 0.5
            config_json(cfg, net, data={"kind": "csv", "path": data_csv, "train": n, "test": m, "shuffle": False},
                        learning_rate=eta)
            _, _, kernel_fn = stax_net(stax, jnp, net["layers"], net["activation"], net["parameterization"], net["bias"])
            xtr, ytr, xte = jnp.asarray(x[:n]), jnp.asarray(y[:n, None]), jnp.asarray(x[n:])
            predict_fn = nt.predict.gradient_descent_mse_ensemble(kernel_fn, xtr, ytr, learning_rate=eta)
            # The training Gram both predictors start from: its diagonal apart (see KINKED).
            train_csv = os.path.join(tmp, f"train-{net['activation']}.csv")
            write_csv(train_csv, x[:n])
            gram = run_pk([args.pathkernel, "kernel", "--config", cfg, "--inputs", train_csv, "--kind", "ntk", "--json"])
            ours, theirs = np.asarray(gram["ntk"], dtype=np.float64), np.asarray(kernel_fn(xtr, None, "ntk"))
            scale = max(np.max(np.abs(theirs)), 1.0)
            off = ~np.eye(n, dtype=bool)
            rows.append({"what": "train-gram", "net": f"{net['activation']} {net['parameterization']} "
                         f"{'-'.join(map(str, net['layers']))}", "form": "NTK(X, X)",
                         "offdiag": float(np.max(np.abs(ours - theirs)[off]) / scale),
                         "diag": float(np.max(np.abs(np.diag(ours) - np.diag(theirs))) / scale)})
            worst = max(worst, rows[-1]["offdiag"])
            for get in ("ntk", "nngp"):
                pk = run_pk([args.pathkernel, "predict-linear", "--config", cfg, "--kernel", "analytic",
                             "--ensemble", get, "--dynamics", "flow", "--time", "3", "40", "inf", "--json"])
                for p in pk["points"]:
                    t = None if p["time"] == "inf" else float(p["time"])
                    ref = predict_fn(t, xte, get, compute_cov=True)
                    em = relative(p["ensembleMean"], np.asarray(ref.mean))
                    ec = relative(p["ensembleCovariance"], np.asarray(ref.covariance))
                    if net["activation"] in KINKED:
                        if max(em, ec) > TOLERANCE_SELF_PAIRS_KINKED:
                            misses.append(f"{net['activation']} {get} t={p['time']} {max(em, ec):.1e} > {TOLERANCE_SELF_PAIRS_KINKED:g}")
                    else:
                        worst = max(worst, em, ec)
                    rows.append({"what": "predict-linear", "net": f"{net['activation']} {net['parameterization']} "
                                 f"{'-'.join(map(str, net['layers']))}", "form": f"{get} t={p['time']}",
                                 "mean": em, "cov": ec})
    ok = worst <= args.tol and not misses
    out = {"jax": jax.__version__, "neural_tangents": nt.__version__, "seed": args.seed, "tolerance": args.tol,
           "tolerance_self_pairs_kinked": TOLERANCE_SELF_PAIRS_KINKED, "rows": rows, "worst": worst,
           "misses": misses, "ok": ok}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"neural-tangents {nt.__version__}, jax {jax.__version__}, float64, seed {args.seed}; "
              f"relative error max|pk − nt| / max(max|nt|, 1), tolerance {args.tol:g}")
        for r in rows:
            if r["what"] == "kernel":
                d = (f"  (diagonal NNGP {r['diag']['nngp']:.1e}, NTK {r['diag']['ntk']:.1e})" if r["diag"] else "")
                print(f"  kernel          {r['net']:<34} {r['form']:<6} NNGP {r['nngp']:.1e}  NTK {r['ntk']:.1e}{d}")
            elif r["what"] == "train-gram":
                print(f"  training Gram   {r['net']:<34} {r['form']:<12} off-diagonal {r['offdiag']:.1e}  diagonal {r['diag']:.1e}")
            else:
                print(f"  predict-linear  {r['net']:<34} {r['form']:<12} mean {r['mean']:.1e}  cov {r['cov']:.1e}")
        for m in misses:
            print(f"  MISS: {m}")
        print(f"worst at tolerance {args.tol:g} (kernels, Gram off-diagonal; predict-linear of smooth activations) "
              f"{worst:.1e}; Gram diagonals and relu/leaky-relu predictions at {TOLERANCE_SELF_PAIRS_KINKED:g} "
              f"(neural-tangents' self-pair angle): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


cpu_seconds = machine_load.cpu_seconds   # (this process's CPU seconds, its waited-for children's)
OtherLoad = machine_load.OtherLoad


def time_w7(args):
    """The timing; the bench's exports go to temporary folders removed at the end."""
    made = []
    try:
        return time_w7_in(args, made)
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)


def time_w7_in(args, made):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    env = pk_environment()
    set_here = {v: os.environ.get(v) for v in OPENBLAS_VARIABLES}
    export = tempfile.mkdtemp(prefix="pk-w7-")
    made.append(export)
    log(f"pathkernel bench --workload W7-mlp --activation relu --points {args.points} --export {export}")
    first = run_pk([args.pathkernel, "bench", "--workload", "W7-mlp", "--activation", "relu", "--points", str(args.points),
                    "--export", export, "--json"], env=env)["W7-mlp"]
    x1 = jnp.asarray(np.load(os.path.join(export, "x1.npy")))
    x2 = jnp.asarray(np.load(os.path.join(export, "x2.npy")))
    layers = [x1.shape[1], 512, 512, 512, 512, 1]
    _, _, kernel_fn = stax_net(stax, jnp, layers, "relu", "ntk", True)
    fn = jax.jit(kernel_fn, static_argnames="get")
    t0 = time.perf_counter()
    ref = fn(x1, x2, get=("nngp", "ntk"))
    jax.block_until_ready(ref)
    compile_seconds = time.perf_counter() - t0
    errs = {g: relative(np.load(os.path.join(export, f"relu_{g}.npy")), np.asarray(getattr(ref, g))) for g in ("nngp", "ntk")}
    log(f"neural-tangents compile + first call {compile_seconds:.2f} s; relative error vs pathkernel: "
        f"NNGP {errs['nngp']:.1e}, NTK {errs['ntk']:.1e} (tolerance {args.tol:g})")
    if max(errs.values()) > args.tol:
        log("error: the float64 kernels disagree")
        return 1
    waited = None
    if not args.no_wait:
        try:
            _, waited = machine_load.wait_quiet(max_load=args.max_load, timeout=args.wait_timeout, log=log)
        except TimeoutError as e:
            log(f"error: {e}")
            return 3
    pk_times, nt_times, rounds = [], [], []
    meter = OtherLoad()
    for r in range(args.rounds):
        load_before = os.getloadavg()[0]
        parts = {}
        order = ("pathkernel", "neural-tangents") if r % 2 == 0 else ("neural-tangents", "pathkernel")
        for tool in order:
            meter.start()
            if tool == "pathkernel":
                out = run_pk([args.pathkernel, "bench", "--workload", "W7-mlp", "--activation", "relu",
                              "--points", str(args.points), "--json"], env=env)["W7-mlp"]
                seconds = out["runs"][0]["seconds"]
                pk_times.append(seconds)
            else:
                t0 = time.perf_counter()
                jax.block_until_ready(fn(x1, x2, get=("nngp", "ntk")))
                seconds = time.perf_counter() - t0
                nt_times.append(seconds)
            parts[tool] = {"seconds": seconds, "other": meter.stop()}
        rounds.append({"load_before": load_before, **parts})
        log(f"round {r + 1}: load {load_before:.2f}; " + "; ".join(
            f"{t} {p['seconds']:.3f} s (other {p['other'] if p['other'] is None else round(p['other'], 2)})"
            for t, p in parts.items()))
    clean = (not args.no_wait) and all(p["other"] is not None and p["other"] < CLEAN_OTHER_LOAD
                                       for rr in rounds for k, p in rr.items() if k != "load_before")
    pk_med, nt_med = statistics.median(pk_times), statistics.median(nt_times)
    out = {"points": args.points, "net": first["net"], "pathkernel_threads": first["threads"],
           "xla_devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "neural_tangents": nt.__version__,
           "check": errs, "compile_seconds": compile_seconds, "rounds": rounds,
           "pathkernel_median": pk_med, "neural_tangents_median": nt_med, "ratio": pk_med / nt_med,
           "openblas_here": set_here, "openblas_unset_for_pathkernel": True, "waited_seconds": waited, "clean": clean}
    if args.tanh_points > 0:
        tdir = tempfile.mkdtemp(prefix="pk-w7-tanh-")
        made.append(tdir)
        pk = run_pk([args.pathkernel, "bench", "--workload", "W7-mlp", "--activation", "tanh",
                     "--points", str(args.tanh_points), "--export", tdir, "--json"], env=env)["W7-mlp"]["runs"][0]
        tx1 = jnp.asarray(np.load(os.path.join(tdir, "x1.npy")))
        tx2 = jnp.asarray(np.load(os.path.join(tdir, "x2.npy")))
        _, _, tanh_fn = stax_net(stax, jnp, layers, "tanh", "ntk", True, tanh_deg=args.tanh_deg)
        tanh_jit = jax.jit(tanh_fn, static_argnames="get")
        jax.block_until_ready(tanh_jit(tx1, tx2, get=("nngp", "ntk")))
        meter.start()
        t0 = time.perf_counter()
        tref = tanh_jit(tx1, tx2, get=("nngp", "ntk"))
        jax.block_until_ready(tref)
        nt_tanh = time.perf_counter() - t0
        other = meter.stop()
        terr = {g: relative(np.load(os.path.join(tdir, f"tanh_{g}.npy")), np.asarray(getattr(tref, g))) for g in ("nngp", "ntk")}
        out["tanh"] = {"points": args.tanh_points, "pathkernel_seconds": pk["seconds"], "pathkernel_quadrature": pk["quadrature"],
                       "neural_tangents_seconds": nt_tanh, "neural_tangents_deg": args.tanh_deg,
                       "difference": terr, "other_during_nt": other}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"W7-mlp relu, float64, {args.points} × {args.points} points, {out['net']}")
        print(f"  neural-tangents {nt.__version__} (jax {jax.__version__}, {out['xla_devices']}), "
              f"pathkernel on {first['threads']} threads; check NNGP {errs['nngp']:.1e}, NTK {errs['ntk']:.1e}")
        for i, rr in enumerate(rounds):
            def other(v):
                return "?" if v is None else f"{v:.2f}"
            print(f"  round {i + 1}: load before {rr['load_before']:.2f}; pathkernel {rr['pathkernel']['seconds']:.3f} s "
                  f"(other load {other(rr['pathkernel']['other'])}), neural-tangents {rr['neural-tangents']['seconds']:.3f} s "
                  f"(other load {other(rr['neural-tangents']['other'])})")
        print(f"  medians: pathkernel {pk_med:.3f} s, neural-tangents {nt_med:.3f} s, ratio {pk_med / nt_med:.2f}")
        print(f"  OpenBLAS variables here: {set_here}; unset for pathkernel; clean: {'yes' if clean else 'NO'}")
        if "tanh" in out:
            t = out["tanh"]
            q = t["pathkernel_quadrature"]
            print(f"  tanh, {t['points']} × {t['points']} points: pathkernel (trapezoid, M = {q['min_nodes']}…{q['max_nodes']}) "
                  f"{t['pathkernel_seconds']:.3f} s, {q['evaluations']:.3g} activation evaluations; neural-tangents "
                  f"ElementwiseNumerical deg {t['neural_tangents_deg']} {t['neural_tangents_seconds']:.3f} s "
                  f"(other load {t['other_during_nt'] if t['other_during_nt'] is None else round(t['other_during_nt'], 2)}); difference NNGP {t['difference']['nngp']:.1e}, NTK {t['difference']['ntk']:.1e}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    t = sub.add_parser("time")
    for p in (c, t):
        p.add_argument("--pathkernel", required=True, metavar="BIN")
        p.add_argument("--tol", type=float, default=TOLERANCE_KERNEL)
        p.add_argument("--json", action="store_true")
    c.add_argument("--seed", type=int, default=0)
    t.add_argument("--points", type=int, default=2000)
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--tanh-points", type=int, default=0)
    t.add_argument("--tanh-deg", type=int, default=64)
    t.add_argument("--no-wait", action="store_true")
    t.add_argument("--max-load", type=float, default=0.5)
    t.add_argument("--wait-timeout", type=float, default=900)
    args = parser.parse_args()
    if not os.access(args.pathkernel, os.X_OK):
        fail_input(f"--pathkernel {args.pathkernel}: not an executable")
    if args.command == "time" and (args.rounds < 1 or args.points < 3):
        fail_input("--rounds must be at least 1 and --points at least 3")
    sys.exit(check(args) if args.command == "check" else time_w7(args))


if __name__ == "__main__":
    main()
