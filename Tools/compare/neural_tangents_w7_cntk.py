#!/usr/bin/env python3
"""W7-cntk: pathkernel's exact CNTK against neural-tangents' stax kernel_fn, first their
agreement in float64, then their speed measured cleanly (issue 12).

Usage:
    python neural_tangents_w7_cntk.py check --pathkernel BIN [--seed 0] [--skip-without-peers]
        [--perturb-sigma-w F] [--json]
    python neural_tangents_w7_cntk.py time --pathkernel BIN [--gap 20x10] [--flatten 200x100]
        [--readouts gap,flatten] [--rounds 5] [--gap-batch 5] [--flatten-batch 0] [--no-wait]
        [--max-load 0.5] [--max-other 0.2] [--wait-timeout 900] [--keep-openblas-env]
        [--perturb-sigma-w F] [--json]

The net is W7-cntk's (`pathkernel bench --workload W7-cntk`, contract §3): Fashion-MNIST images
28×28×1 (pixels/255, seed 1), 2 blocks of [conv 3×3, stride 1, `same` zero padding, relu], the
`gap` or `flatten` readout, a dense layer; NTK parameterization, σ_w = √2, no bias. In stax:

    stax.serial(stax.Conv(1, (3, 3), padding='SAME', W_std=σ_w, b_std=σ_b or None,
                          parameterization='ntk'), stax.Relu(),   (× L_c)
                stax.GlobalAvgPool() or stax.Flatten(),
                stax.Dense(1, W_std=σ_w, b_std=σ_b or None, parameterization='ntk'))

on the images reshaped to NHWC (a pathkernel row is `(h·W + w)·C + c`, so `x.reshape(n, H, W,
C)`). No constant converts one into the other: neural-tangents' input kernel is the mean over
channels (pathkernel's `K⁰ = (1/C_in) Σ_c`), its conv kernel the window's sum times σ_w²/q² with
zeros outside and the division by q² kept at borders, GlobalAvgPool the mean over all P² pixel
pairs, Flatten (before an NTK-parameterized Dense, whose fan-in is P·channels) the mean over the
P diagonal pairs, Dense `σ_w² K̄ + σ_b²` and `NNGP + σ_w² Θ̄`; out_chan does not enter kernel_fn.

check: (a) on seeded N(0, 1) images, `BIN cntk --data CSV --image H,W,C ... --json` (Gram
matrices, NNGP and NTK) for nine nets — same/valid, gap/flatten, 1–3 layers, 3×3 and 5×5 filters,
relu, erf, gelu, leaky-relu, with and without bias, non-square multi-channel images — against
neural-tangents' kernel_fn(x, None); (b) W7-cntk itself on Fashion-MNIST: `BIN bench --workload
W7-cntk --readout R --images N --queries Q --export DIR` (the cross kernel of Q held-out images
against N training images; gap 2 × 3, flatten 6 × 8) against kernel_fn(x1, x2); skipped with a
message when Fashion-MNIST is not installed. Every entry within TOLERANCE_KERNEL of neural-
tangents' (relative to the matrix's largest entry), except the Gram diagonals of relu and
leaky-relu nets, within TOLERANCE_SELF_PAIRS_KINKED (neural-tangents' self-pair angle, below).
Exit 1 on a miss. About 10 s of CPU after the imports. --skip-without-peers: exit 0 with a SKIP
line when neural_tangents does not import (for ./dev test, where the peers venv may be missing).

time: for each readout, the bench's cross kernel at the timed size (--gap Q×N, --flatten Q×N:
Q held-out images as rows, N training images as columns) exported once (OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed from the bench's environment unless --keep-openblas-env), neural-
tangents' kernel compiled on it (jax.jit of kernel_fn, or nt.batch(kernel_fn, B) when the
readout's batch size B > 0: gap keeps n₁·n₂·P² pixel pairs per array, about 30 MB per image pair
at its peak, so gap is batched by 5 images by default) and checked against the export (exit 1
above TOLERANCE_KERNEL); then a wait for a quiet machine (machine_load.wait_quiet, exit 3 after
--wait-timeout s); then --rounds rounds, each running per readout a fresh `BIN bench --workload
W7-cntk --readout R --images N --queries Q --json` process (its own wall and CPU seconds of the
kernel call, not its data loading) and one warm neural-tangents call (wall and this process's
CPU seconds), which tool goes first alternating; the 1-minute load before each round and the
cores other processes kept busy during each part are printed. Reports per readout the medians,
pathkernel ÷ neural-tangents (wall and CPU), the per-round ratio range, neural-tangents' compile
time (first call − a warm call), XLA's threads, pathkernel's threads and OpenBLAS core, and
whether the run was clean (other load ≤ CLEAN_OTHER_LOAD in every part, after a wait).

--perturb-sigma-w F multiplies σ_w on neural-tangents' side by F: with F = 1.0001 the check must
fail (the check is not vacuous).

neural-tangents' relu computes a self pair's angle as arccos(c/√(q₁q₂)); when that ratio rounds
below 1 the angle is about 2e-8 instead of 0 and E[φ'φ'] is off by about 3e-9 (contract §1,
numerical rules). pathkernel reads an image's own variances from its own pixel-pair matrix, so its
self pairs are exact. A cross kernel of distinct images has no image self pairs; its pixel pairs
with exactly parallel windows are diluted by the readout's average.

Exit status: 0, 1 when the kernels disagree, 2 on bad arguments or a failing pathkernel command,
3 when the machine did not become quiet. Never part of CI (./dev test runs `check` only when the
peers venv imports neural_tangents). Needs the venv made by setup-peers.sh.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.dont_write_bytecode = True   # no __pycache__ in the source tree

import numpy as np  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import machine_load  # noqa: E402

# float64 agreement of every kernel entry: max|pathkernel − neural-tangents| / max|neural-tangents|
# (the contract's measure); both sides evaluate the same closed forms, so round-off is ~1e-15.
TOLERANCE_KERNEL = 1e-10
# Gram diagonals of relu / leaky-relu nets: neural-tangents' self-pair angle (module docstring)
# leaves them a few 1e-9 off; the contract's oracle 3 notes the same for its flatten path.
TOLERANCE_SELF_PAIRS_KINKED = 1e-8
KINKED = ("relu", "leaky-relu")
# A tool's part of a round is clean when other processes kept fewer cores than this busy.
CLEAN_OTHER_LOAD = 0.1
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

# (a) of check: nets on random images (the five of cntk_numpy_check.py, plus gelu, leaky-relu and
# a 3-layer relu with bias).
RANDOM_NETS = [
    dict(shape=(4, 4, 2), layers=2, filter=3, padding="same", readout="gap", activation="relu", sigmaW=2 ** 0.5, sigmaB=0.0),
    dict(shape=(5, 4, 3), layers=1, filter=3, padding="valid", readout="gap", activation="relu", sigmaW=1.3, sigmaB=0.3),
    dict(shape=(6, 5, 1), layers=3, filter=3, padding="same", readout="flatten", activation="erf", sigmaW=1.5, sigmaB=0.1),
    dict(shape=(7, 6, 2), layers=1, filter=5, padding="valid", readout="flatten", activation="relu", sigmaW=2 ** 0.5, sigmaB=0.0),
    dict(shape=(5, 5, 2), layers=2, filter=5, padding="same", readout="gap", activation="erf", sigmaW=1.2, sigmaB=0.2),
    dict(shape=(5, 6, 1), layers=2, filter=3, padding="same", readout="flatten", activation="gelu", sigmaW=1.4, sigmaB=0.1),
    dict(shape=(4, 5, 2), layers=2, filter=3, padding="same", readout="gap", activation="leaky-relu", sigmaW=1.5, sigmaB=0.2,
         leakySlope=0.1),
    dict(shape=(6, 6, 1), layers=3, filter=3, padding="same", readout="flatten", activation="relu", sigmaW=1.5, sigmaB=0.1),
    dict(shape=(6, 6, 1), layers=3, filter=3, padding="same", readout="gap", activation="relu", sigmaW=2 ** 0.5, sigmaB=0.0),
]
RANDOM_IMAGES = 4
# (b) of check: W7-cntk's cross kernels, (held-out, training) images; the bench needs ≥ 3 training.
CHECK_SIZES = {"gap": (2, 3), "flatten": (6, 8)}
# time: the default sizes (held-out × training). gap costs P² = 614,656 pixel pairs per image
# pair, flatten P = 784: sized so that neural-tangents' call takes seconds to about half a minute
# on 2 quiet cores (measured under load: gap ~0.15 s and flatten ~80 µs of its CPU per image pair).
TIME_SIZES = {"gap": (20, 10), "flatten": (200, 100)}
# nt.batch's batch size per readout in `time` (0: jax.jit of kernel_fn, unbatched).
TIME_BATCH = {"gap": 5, "flatten": 0}


def log(message):
    print(message, file=sys.stderr, flush=True)


def fail_input(message):
    log(f"error: {message}")
    sys.exit(2)


def pk_environment(keep):
    env = dict(os.environ)
    if not keep:
        for v in OPENBLAS_VARIABLES:
            env.pop(v, None)
    return env


def run_pk(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        fail_input(f"`{' '.join(cmd)}` exited with status {r.returncode}: {r.stderr.strip()[-2000:]}")
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        fail_input(f"`{' '.join(cmd)}` printed no JSON ({e}): {r.stdout[:200]!r}")


def relative(ours, theirs, mask=None):
    """max|ours − theirs| / max|theirs| (over `mask` when given; the scale over the whole matrix)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    diff = np.abs(ours - theirs)
    if mask is not None:
        diff = diff[mask]
    scale = float(np.max(np.abs(theirs)))
    if not np.all(np.isfinite(diff)):
        return float("inf")
    return float(np.max(diff)) / (scale if scale > 0 else 1.0) if diff.size else 0.0


def stax_cntk(stax, net, sigma_w_factor=1.0):
    """neural-tangents' net for a pathkernel CNTK architecture (module docstring)."""
    sw = net["sigmaW"] * sigma_w_factor
    sb = net["sigmaB"] if net["sigmaB"] > 0 else None
    act = {"relu": lambda: stax.Relu(), "erf": lambda: stax.Erf(), "gelu": lambda: stax.Gelu(approximate=False),
           "leaky-relu": lambda: stax.LeakyRelu(net.get("leakySlope", 0.01)), "identity": lambda: stax.Identity()}
    if net["activation"] not in act:
        fail_input(f"no stax counterpart here for the activation {net['activation']}")
    q = net["filter"]
    parts = []
    for _ in range(net["layers"]):
        parts += [stax.Conv(1, (q, q), padding=net["padding"].upper(), W_std=sw, b_std=sb, parameterization="ntk"),
                  act[net["activation"]]()]
    parts.append(stax.GlobalAvgPool() if net["readout"] == "gap" else stax.Flatten())
    parts.append(stax.Dense(1, W_std=sw, b_std=sb, parameterization="ntk"))
    return stax.serial(*parts)[2]


def w7_net(meta):
    """The export's architecture (w7cntk.json) in this script's net form."""
    return dict(shape=(meta["height"], meta["width"], meta["channels"]), layers=meta["conv_layers"], filter=meta["filter"],
                padding=meta["padding"], readout=meta["readout"], activation=meta["activation"],
                sigmaW=meta["sigma_w"], sigmaB=meta["sigma_b"])


def describe_net(net):
    h, w, c = net["shape"]
    slope = f" {net['leakySlope']}" if "leakySlope" in net else ""
    return (f"{h}×{w}×{c} L_c={net['layers']} q={net['filter']} {net['padding']} {net['readout']} "
            f"{net['activation']}{slope} σ_w={net['sigmaW']:.4g} σ_b={net['sigmaB']:g}")


def bench_command(args, readout, queries, images, export=None):
    cmd = [args.pathkernel, "bench", "--workload", "W7-cntk", "--readout", readout, "--images", str(images),
           "--queries", str(queries), "--json"]
    return cmd + (["--export", export] if export else [])


def load_export(directory):
    with open(os.path.join(directory, "w7cntk.json")) as f:
        meta = json.load(f)
    arrays = {name: np.load(os.path.join(directory, f"{name}.npy")) for name in ("x1", "x2", "nngp", "ntk")}
    h, w, c = meta["height"], meta["width"], meta["channels"]
    for name in ("x1", "x2"):
        arrays[name] = arrays[name].reshape(-1, h, w, c)   # rows (h·W + w)·C + c → NHWC
    return meta, arrays


def import_peers(skip_without_peers):
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp  # noqa: F401
        import neural_tangents as nt
        from neural_tangents import stax
    except Exception as e:  # ImportError, or a broken install
        if skip_without_peers:
            print(f"SKIP: neural_tangents does not import with {sys.executable} ({type(e).__name__}: {e}); "
                  "nothing compared (Tools/compare/setup-peers.sh makes the venv)")
            sys.exit(0)
        fail_input(f"neural_tangents does not import ({type(e).__name__}: {e}); run this with the venv's python "
                   "(Tools/compare/setup-peers.sh prints it)")
    return jax, nt, stax


# MARK: - check

def check(args):
    jax, nt, stax = import_peers(args.skip_without_peers)
    env = pk_environment(keep=True)   # checks only: the environment as it is
    rng = np.random.default_rng(args.seed)
    rows, misses = [], []
    with tempfile.TemporaryDirectory(prefix="pk-nt-w7cntk-") as tmp:
        # (a) random images, Gram matrices.
        for k, net in enumerate(RANDOM_NETS):
            h, w, c = net["shape"]
            images = rng.standard_normal((RANDOM_IMAGES, h, w, c))
            path = os.path.join(tmp, f"x{k}.csv")
            np.savetxt(path, np.hstack([images.reshape(RANDOM_IMAGES, -1), np.zeros((RANDOM_IMAGES, 1))]),
                       delimiter=",", fmt="%.17g")
            spec = json.dumps({"kind": "csv", "path": path, "header": False, "test": 0, "shuffle": False})
            cmd = [args.pathkernel, "cntk", "--data", spec, "--image", f"{h},{w},{c}", "--conv-layers", str(net["layers"]),
                   "--filter", str(net["filter"]), "--padding", net["padding"], "--readout", net["readout"],
                   "--activation", net["activation"], "--sigma-w", repr(net["sigmaW"]), "--sigma-b", repr(net["sigmaB"]),
                   "--json"]
            if "leakySlope" in net:
                cmd += ["--leaky-slope", repr(net["leakySlope"])]
            pk = run_pk(cmd, env)
            ref = stax_cntk(stax, net, args.perturb_sigma_w)(images, None, ("nngp", "ntk"))
            off = ~np.eye(RANDOM_IMAGES, dtype=bool)
            row = {"part": "random", "net": describe_net(net), "form": f"Gram {RANDOM_IMAGES}×{RANDOM_IMAGES}"}
            for g in ("nngp", "ntk"):
                ours, theirs = np.asarray(pk[g], dtype=np.float64), np.asarray(getattr(ref, g))
                row[g] = relative(ours, theirs, off)
                row[g + "_diagonal"] = relative(ours, theirs, ~off)
            diag_limit = TOLERANCE_SELF_PAIRS_KINKED if net["activation"] in KINKED else TOLERANCE_KERNEL
            row["tolerance"], row["tolerance_diagonal"] = TOLERANCE_KERNEL, diag_limit
            row["ok"] = max(row["nngp"], row["ntk"]) <= TOLERANCE_KERNEL and \
                max(row["nngp_diagonal"], row["ntk_diagonal"]) <= diag_limit
            rows.append(row)
            if not row["ok"]:
                misses.append(f"{row['net']}: off-diagonal {max(row['nngp'], row['ntk']):.1e} (≤ {TOLERANCE_KERNEL:g}), "
                              f"diagonal {max(row['nngp_diagonal'], row['ntk_diagonal']):.1e} (≤ {diag_limit:g})")
        # (b) W7-cntk's own net and images, cross kernels.
        skipped = None
        if not os.path.isdir(FASHION_MNIST):
            skipped = f"Fashion-MNIST is not installed ({FASHION_MNIST}; apt-get install dataset-fashion-mnist): W7-cntk's cross kernels not compared"
            log(f"note: {skipped}")
        else:
            for readout, (queries, images) in CHECK_SIZES.items():
                d = os.path.join(tmp, f"w7-{readout}")
                run_pk(bench_command(args, readout, queries, images, export=d), env)
                meta, a = load_export(d)
                net = w7_net(meta)
                ref = stax_cntk(stax, net, args.perturb_sigma_w)(a["x1"], a["x2"], ("nngp", "ntk"))
                row = {"part": "w7", "net": describe_net(net) + " (W7-cntk, Fashion-MNIST)",
                       "form": f"cross {queries}×{images}", "tolerance": TOLERANCE_KERNEL}
                for g in ("nngp", "ntk"):
                    row[g] = relative(a[g], np.asarray(getattr(ref, g)))
                row["ok"] = max(row["nngp"], row["ntk"]) <= TOLERANCE_KERNEL
                rows.append(row)
                if not row["ok"]:
                    misses.append(f"{row['net']} {row['form']}: {max(row['nngp'], row['ntk']):.1e} > {TOLERANCE_KERNEL:g}")
    worst = max(max(r["nngp"], r["ntk"]) for r in rows)
    worst_diagonal = max((max(r["nngp_diagonal"], r["ntk_diagonal"]) for r in rows if "nngp_diagonal" in r), default=0.0)
    ok = not misses
    out = {"jax": jax.__version__, "neural_tangents": nt.__version__, "seed": args.seed,
           "perturb_sigma_w": args.perturb_sigma_w, "tolerance": TOLERANCE_KERNEL,
           "tolerance_self_pairs_kinked": TOLERANCE_SELF_PAIRS_KINKED, "rows": rows, "worst": worst,
           "worst_gram_diagonal": worst_diagonal, "w7_skipped": skipped, "misses": misses, "ok": ok}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0 if ok else 1
    print(f"CNTK, pathkernel against neural-tangents {nt.__version__} (jax {jax.__version__}) kernel_fn, float64, "
          f"seed {args.seed}; max|pk − nt| / max|nt|" + (f"; neural-tangents' σ_w × {args.perturb_sigma_w} (perturbed)"
                                                         if args.perturb_sigma_w != 1 else ""))
    for r in rows:
        d = (f"   diagonal NNGP {r['nngp_diagonal']:.1e} NTK {r['ntk_diagonal']:.1e}" if "nngp_diagonal" in r else "")
        print(f"  {r['net']:<60} {r['form']:<12} NNGP {r['nngp']:.1e}  NTK {r['ntk']:.1e}{d}{'' if r['ok'] else '  MISS'}")
    if skipped:
        print(f"  note: {skipped}")
    print(f"worst {worst:.1e} at tolerance {TOLERANCE_KERNEL:g} (cross kernels, Gram off-diagonals); Gram diagonals "
          f"{worst_diagonal:.1e} (relu, leaky-relu at {TOLERANCE_SELF_PAIRS_KINKED:g}, neural-tangents' self-pair angle): "
          + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


# MARK: - time

cpu_seconds = machine_load.cpu_seconds   # (this process's CPU seconds, its waited-for children's)
OtherLoad = machine_load.OtherLoad


def parse_size(text, option):
    try:
        q, n = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        fail_input(f"{option} {text}: give held-out × training images as QxN, e.g. 20x10")
    if not (1 <= q <= 2000 and 3 <= n <= 2000):
        fail_input(f"{option} {text}: the bench takes 1…2000 held-out and 3…2000 training images")
    return q, n


def timed_call(jax, fn, x1, x2):
    """(wall seconds, this process's CPU seconds, result) of one call."""
    c0, t0 = cpu_seconds()[0], time.perf_counter()
    out = fn(x1, x2, ("nngp", "ntk"))
    jax.block_until_ready(out)
    return time.perf_counter() - t0, cpu_seconds()[0] - c0, out


def time_w7(args):
    made = []
    try:
        return time_w7_in(args, made)
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)


def time_w7_in(args, made):
    readouts = args.readouts.split(",")
    if not readouts or any(r not in TIME_SIZES for r in readouts) or len(set(readouts)) != len(readouts):
        fail_input(f"--readouts {args.readouts}: choose from gap,flatten")
    sizes = {"gap": parse_size(args.gap, "--gap"), "flatten": parse_size(args.flatten, "--flatten")}
    batches = {"gap": args.gap_batch, "flatten": args.flatten_batch}
    for r in readouts:
        b, (q, n) = batches[r], sizes[r]
        if b < 0 or (b > 0 and (q % b or n % b)):
            fail_input(f"--{r}-batch {b}: nt.batch needs a batch size that divides both {q} and {n} (or 0: unbatched)")
    if not os.path.isdir(FASHION_MNIST):
        fail_input(f"Fashion-MNIST is not installed ({FASHION_MNIST}): apt-get install dataset-fashion-mnist")
    jax, nt, stax = import_peers(False)
    import jaxlib
    env = pk_environment(args.keep_openblas_env)
    here_env = {v: os.environ.get(v) for v in OPENBLAS_VARIABLES}
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    xla_flags = os.environ.get("XLA_FLAGS", "")
    # XLA's CPU backend runs its intra-op work (Eigen) on one thread per schedulable core unless
    # --xla_cpu_multi_thread_eigen=false is set (as neural_tangents_w1.py reports it).
    xla_threads = 1 if "xla_cpu_multi_thread_eigen=false" in xla_flags else affinity

    problems, checks = {}, []
    for readout in readouts:
        q, n = sizes[readout]
        d = tempfile.mkdtemp(prefix=f"pk-w7cntk-{readout}-")
        made.append(d)
        log(f"pathkernel: bench --workload W7-cntk --readout {readout} --images {n} --queries {q} --export (the inputs and kernels)")
        first = run_pk(bench_command(args, readout, q, n, export=d), env)["W7-cntk"]
        meta, a = load_export(d)
        kernel_fn = stax_cntk(stax, w7_net(meta), args.perturb_sigma_w)
        b = batches[readout]
        fn = nt.batch(kernel_fn, batch_size=b, store_on_device=False) if b > 0 else jax.jit(kernel_fn, static_argnames="get")
        x1, x2 = jax.numpy.asarray(a["x1"]), jax.numpy.asarray(a["x2"])
        log(f"neural-tangents {readout}: compiling and a first call ({q} × {n}" + (f", nt.batch {b}" if b else ", jax.jit") + ")")
        first_wall, first_cpu, ref = timed_call(jax, fn, x1, x2)
        warm_wall, warm_cpu, _ = timed_call(jax, fn, x1, x2)
        errs = {g: relative(a[g], np.asarray(getattr(ref, g))) for g in ("nngp", "ntk")}
        ok = max(errs.values()) <= TOLERANCE_KERNEL
        checks.append({"readout": readout, "size": f"{q}×{n}", **errs, "tolerance": TOLERANCE_KERNEL, "ok": ok})
        log(f"  agreement {readout} {q}×{n}: NNGP {errs['nngp']:.1e}, NTK {errs['ntk']:.1e} (tolerance {TOLERANCE_KERNEL:g}): "
            + ("ok" if ok else "MISMATCH") + f"; first call {first_wall:.2f} s, a warm call {warm_wall:.2f} s")
        problems[readout] = {"fn": fn, "x1": x1, "x2": x2, "queries": q, "images": n, "batch": b, "export": first,
                             "first_call_seconds": first_wall, "first_warm_seconds": warm_wall,
                             "compile_seconds": first_wall - warm_wall}
    if not all(c["ok"] for c in checks):
        log("error: the float64 kernels disagree; nothing timed")
        if args.json:
            print(json.dumps({"checks": checks, "ok": False}, indent=1))
        return 1

    waited, quiet = None, None
    if args.no_wait:
        log("not waiting for a quiet machine (--no-wait): " + machine_load.describe(machine_load.sample(1.0)))
    else:
        try:
            quiet, waited = machine_load.wait_quiet(args.max_load, args.max_other, args.wait_timeout, log=log)
        except TimeoutError as e:
            log(f"error: {e}; --no-wait times anyway (the times will not be clean), --wait-timeout S waits longer")
            return 3

    meter = OtherLoad()
    rounds = []
    blas = None
    for r in range(args.rounds):
        for readout in readouts:
            p = problems[readout]
            order = ("pathkernel", "neural-tangents") if r % 2 == 0 else ("neural-tangents", "pathkernel")
            row = {"round": r + 1, "readout": readout, "order": list(order), "load_before": round(os.getloadavg()[0], 2)}
            for tool in order:
                meter.start()
                if tool == "pathkernel":
                    out = run_pk(bench_command(args, readout, p["queries"], p["images"]), env)["W7-cntk"]
                    row["pathkernel"] = {"seconds": out["seconds"], "cpu_seconds": out["cpu_seconds"], "threads": out["threads"]}
                    blas = blas or out.get("blas")
                else:
                    wall, cpu, _ = timed_call(jax, p["fn"], p["x1"], p["x2"])
                    row["neural-tangents"] = {"seconds": wall, "cpu_seconds": cpu}
                row[tool]["other_load"] = meter.stop()
            rounds.append(row)
            log(f"round {r + 1}/{args.rounds} {readout} ({order[0]} first): load before {row['load_before']:.2f}; "
                + "; ".join(f"{t} {row[t]['seconds']:.3f} s wall, {row[t]['cpu_seconds']:.3f} s CPU (other load {fmt_load(row[t]['other_load'])})"
                            for t in ("pathkernel", "neural-tangents")))

    summary = []
    for readout in readouts:
        rr = [row for row in rounds if row["readout"] == readout]
        med = {(t, k): statistics.median(row[t][k] for row in rr) for t in ("pathkernel", "neural-tangents")
               for k in ("seconds", "cpu_seconds")}
        # CPU seconds come from os.times (10 ms ticks): a tiny call can read 0, its ratio is then None.
        def ratio(a, b):
            return a / b if b > 0 else None
        per_round = [v for v in (ratio(row["pathkernel"]["seconds"], row["neural-tangents"]["seconds"]) for row in rr)
                     if v is not None] or [float("nan")]
        p = problems[readout]
        summary.append({"readout": readout, "queries": p["queries"], "images": p["images"], "image_pairs": p["queries"] * p["images"],
                        "nt_batch": p["batch"], "pathkernel_seconds": med[("pathkernel", "seconds")],
                        "neural_tangents_seconds": med[("neural-tangents", "seconds")],
                        "ratio": ratio(med[("pathkernel", "seconds")], med[("neural-tangents", "seconds")]),
                        "round_ratio_min": min(per_round), "round_ratio_max": max(per_round),
                        "pathkernel_cpu_seconds": med[("pathkernel", "cpu_seconds")],
                        "neural_tangents_cpu_seconds": med[("neural-tangents", "cpu_seconds")],
                        "cpu_ratio": ratio(med[("pathkernel", "cpu_seconds")], med[("neural-tangents", "cpu_seconds")]),
                        "neural_tangents_first_call_seconds": p["first_call_seconds"],
                        "neural_tangents_compile_seconds": p["compile_seconds"], "rounds": len(rr)})
    loads = [row[t]["other_load"] for row in rounds for t in ("pathkernel", "neural-tangents") if row[t]["other_load"] is not None]
    unclean = sum(1 for v in loads if v > CLEAN_OTHER_LOAD)
    pk_threads = sorted({row["pathkernel"]["threads"] for row in rounds})
    result = {
        "workload": problems[readouts[0]]["export"]["net"].split(", gap")[0].split(", flatten")[0],
        "net": {r: problems[r]["export"]["net"] for r in readouts},
        "rounds": args.rounds,
        "versions": {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "neural_tangents": nt.__version__},
        "xla": {"cpu_threads": xla_threads, "schedulable_cpus": affinity, "flags": xla_flags,
                "devices": [str(d) for d in jax.devices()]},
        "pathkernel_threads": pk_threads,
        "openblas": {"blas": blas, "environment_here": here_env, "unset_for_pathkernel": not args.keep_openblas_env},
        "perturb_sigma_w": args.perturb_sigma_w,
        "wait": {"waited_seconds": waited, "no_wait": args.no_wait, "max_load": args.max_load, "max_other": args.max_other,
                 "quiet_sample": quiet},
        "other_load": {"median": statistics.median(loads) if loads else None, "max": max(loads) if loads else None,
                       "parts_above": unclean, "parts": len(loads), "threshold": CLEAN_OTHER_LOAD,
                       "end": machine_load.sample(1.0)},
        "clean": not args.no_wait and unclean == 0 and len(loads) == 2 * len(rounds),
        "round_rows": rounds, "summary": summary, "checks": checks, "ok": True,
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_report(result)
    return 0


def fmt_ratio(x, width):
    return ("n/a" if x is None else f"{x:.3f}").rjust(width)


def fmt_load(x):
    return "?" if x is None else f"{x:.2f}"


def print_report(r):
    v, x, ob = r["versions"], r["xla"], r["openblas"]
    print(f"W7-cntk interleaved: the exact CNTK, NNGP and NTK in float64, of Fashion-MNIST images (seed 1), "
          f"cross kernels of held-out × training images; {r['rounds']} round{'' if r['rounds'] == 1 else 's'}, "
          "which tool goes first alternating")
    for readout, net in r["net"].items():
        print(f"  {readout}: {net}")
    print(f"neural-tangents {v['neural_tangents']} (jax {v['jax']}, jaxlib {v['jaxlib']}), stax kernel_fn in this process "
          f"(jax.jit, or nt.batch where named), XLA CPU threads {x['cpu_threads']} of {x['schedulable_cpus']} schedulable"
          + (f", XLA_FLAGS={x['flags']}" if x["flags"] else "")
          + f"; pathkernel `bench --workload W7-cntk`, a process per round, {'/'.join(map(str, r['pathkernel_threads']))} threads")
    here_env = ", ".join(f"{k}={val}" if val is not None else f"{k} unset" for k, val in ob["environment_here"].items())
    b = ob["blas"] or {}
    seen = ", ".join(f"{k}={b.get(k.lower())}" if b.get(k.lower()) is not None else f"{k} unset" for k in OPENBLAS_VARIABLES)
    print(f"OpenBLAS core: {b.get('core_name')} ({b.get('config')}); here: {here_env}; "
          f"{'unset' if ob['unset_for_pathkernel'] else 'kept'} for pathkernel, which saw: {seen} (the CNTK recursion calls no BLAS)")
    wt = r["wait"]
    if wt["no_wait"]:
        print("quiet machine: not waited for (--no-wait)")
    else:
        print(f"quiet machine: waited {wt['waited_seconds']:.0f} s for 1-min load < {wt['max_load']} and other processes "
              f"< {wt['max_other']} cores; then {machine_load.describe(wt['quiet_sample'])}")
    if r["perturb_sigma_w"] != 1:
        print(f"PERTURBED: neural-tangents' σ_w × {r['perturb_sigma_w']}")
    print()
    header = ["round", "readout", "first", "load before", "pk wall s", "pk CPU s", "n-t wall s", "n-t CPU s",
              "other load pk", "other load n-t"]
    lines = [[str(row["round"]), row["readout"], "pk" if row["order"][0] == "pathkernel" else "n-t", f"{row['load_before']:.2f}",
              f"{row['pathkernel']['seconds']:.3f}", f"{row['pathkernel']['cpu_seconds']:.3f}",
              f"{row['neural-tangents']['seconds']:.3f}", f"{row['neural-tangents']['cpu_seconds']:.3f}",
              fmt_load(row["pathkernel"]["other_load"]), fmt_load(row["neural-tangents"]["other_load"])] for row in r["round_rows"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(widths[i]) for i, h in enumerate(header)))
    print("  ".join("─" * w for w in widths))
    for line in lines:
        print("  ".join(c.rjust(widths[i]) for i, c in enumerate(line)))
    print("(pathkernel: the bench's own seconds of its kernel call, not the process's start or data loading; "
          "neural-tangents: one warm call, this process's CPU; other load: cores other processes kept busy during that part, "
          f"above {CLEAN_OTHER_LOAD} not clean)")
    print()
    print("readout  held-out × training  pk wall s  n-t wall s  pk ÷ n-t (rounds)      pk CPU s  n-t CPU s  pk ÷ n-t CPU  n-t compile s")
    for s in r["summary"]:
        size = f"{s['queries']} × {s['images']}" + (f" (nt.batch {s['nt_batch']})" if s["nt_batch"] else "")
        print(f"{s['readout']:<7}  {size:>19}  {s['pathkernel_seconds']:9.3f}  {s['neural_tangents_seconds']:10.3f}  "
              f"{fmt_ratio(s['ratio'], 6)} ({s['round_ratio_min']:.3f}–{s['round_ratio_max']:.3f})  {s['pathkernel_cpu_seconds']:8.3f}  "
              f"{s['neural_tangents_cpu_seconds']:9.3f}  {fmt_ratio(s['cpu_ratio'], 12)}  {s['neural_tangents_compile_seconds']:13.2f}")
    ol = r["other_load"]
    print(f"(medians over the rounds; below 1 pathkernel is faster; compile: neural-tangents' first call less a warm one) "
          f"other load: median {fmt_load(ol['median'])}, max {fmt_load(ol['max'])} cores; at the end: {machine_load.describe(ol['end'])}")
    print(machine_load.verdict(r["clean"], r["wait"]["no_wait"], ol))
    print()
    for c in r["checks"]:
        print(f"check: {c['readout']} {c['size']}: NNGP {c['nngp']:.1e}, NTK {c['ntk']:.1e} "
              f"({'ok' if c['ok'] else 'FAIL'}, ≤ {c['tolerance']:g} relative to the largest entry)")
    print("result: the float64 kernels agree")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="the float64 agreement on small problems (seconds)")
    t = sub.add_parser("time", help="the agreement at the timed sizes, then interleaved timed rounds")
    for p in (c, t):
        p.add_argument("--pathkernel", required=True, metavar="BIN", help="the pathkernel binary (release for `time`)")
        p.add_argument("--perturb-sigma-w", type=float, default=1.0, metavar="F",
                       help="multiply σ_w on neural-tangents' side by F (1.0001 must fail the check)")
        p.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    c.add_argument("--seed", type=int, default=0, help="seed of the random images (default 0)")
    c.add_argument("--skip-without-peers", action="store_true",
                   help="exit 0 with a SKIP line when neural_tangents does not import")
    t.add_argument("--gap", default="x".join(map(str, TIME_SIZES["gap"])), metavar="QxN",
                   help=f"gap's held-out × training images (default {'x'.join(map(str, TIME_SIZES['gap']))})")
    t.add_argument("--flatten", default="x".join(map(str, TIME_SIZES["flatten"])), metavar="QxN",
                   help=f"flatten's held-out × training images (default {'x'.join(map(str, TIME_SIZES['flatten']))})")
    t.add_argument("--readouts", default="gap,flatten", help="which readouts to time (default gap,flatten)")
    t.add_argument("--gap-batch", type=int, default=TIME_BATCH["gap"], metavar="B",
                   help=f"nt.batch's batch size for gap (default {TIME_BATCH['gap']}; 0: jax.jit unbatched)")
    t.add_argument("--flatten-batch", type=int, default=TIME_BATCH["flatten"], metavar="B",
                   help=f"nt.batch's batch size for flatten (default {TIME_BATCH['flatten']}: jax.jit unbatched)")
    t.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    t.add_argument("--no-wait", action="store_true", help="time at once, quiet machine or not (the report says so)")
    t.add_argument("--max-load", type=float, default=0.5, help="quiet: 1-minute load average below this (default 0.5)")
    t.add_argument("--max-other", type=float, default=0.2,
                   help="quiet: other processes keep fewer cores busy than this over 2 s (default 0.2)")
    t.add_argument("--wait-timeout", type=float, default=900.0, help="seconds to wait for quiet (default 900)")
    t.add_argument("--keep-openblas-env", action="store_true",
                   help="run pathkernel with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as they are here")
    args = parser.parse_args()
    if not os.path.isfile(args.pathkernel) or not os.access(args.pathkernel, os.X_OK):
        fail_input(f"--pathkernel {args.pathkernel}: not an executable (swift build -c release --product pathkernel)")
    if not (math.isfinite(args.perturb_sigma_w) and args.perturb_sigma_w > 0):
        fail_input(f"--perturb-sigma-w {args.perturb_sigma_w}: give a finite factor > 0")
    if args.command == "time":
        if args.rounds < 1:
            fail_input("--rounds must be at least 1")
        if args.wait_timeout < 0 or args.max_load <= 0 or args.max_other <= 0:
            fail_input("--wait-timeout must be ≥ 0, --max-load and --max-other > 0")
    sys.exit(check(args) if args.command == "check" else time_w7(args))


if __name__ == "__main__":
    main()
