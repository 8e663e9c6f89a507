#!/usr/bin/env python3
"""W1, pathkernel against neural-tangents' structured derivatives, measured cleanly: both tools
timed in one script, their repeats interleaved, on a quiet machine, with the other load printed.

Usage:
    python interleave_w1.py EXPORT_DIR --pathkernel BIN [--rounds 7] [--repeats 3] [--json]
        [--no-wait] [--max-load 0.5] [--max-other 0.2] [--wait-timeout 900]
        [--keep-openblas-env | --openblas-core NAME] [--precisions f64,f32]
    python interleave_w1.py EXPORT_DIR --fake-pathkernel ...   (tests this tooling without Swift)

EXPORT_DIR is what `pathkernel bench --workload W1 --export DIR` writes (that command's own check
of the structured kernel against the explicit Jacobian contraction has passed when it exists).

  1. neural-tangents' jitted empirical NTK (STRUCTURED_DERIVATIVES, vmap_axes=0) is built and
     compiled in this process for each precision (one untimed call each), and checked against
     the export's kernel_f64.npy (float64 within --f64-tol, else exit 1; float32 within 1e-4,
     else a warning); `BIN bench --workload W1 --kernels-only --repeats 1 --json` runs once,
     untimed (OpenBLAS's core, the command's check of its float32 kernel against its float64 one).
  2. Unless --no-wait, waits for a quiet machine (machine_load.wait_quiet: the 1-minute load
     average below --max-load and other processes below --max-other cores); exit 3 after
     --wait-timeout seconds.
  3. --rounds rounds; each runs both tools, in alternating order (pathkernel first in odd rounds,
     neural-tangents first in even ones): pathkernel as `BIN bench --workload W1 --kernels-only
     --repeats R --json` in a process of its own (one warm-up call per precision, then R timed
     ones: its own timings are taken, not the process's), neural-tangents as R timed calls per
     precision in this warm process. Before each round the 1-minute load average is printed;
     during each tool's part, the cores other processes kept busy ("other load": the machine's
     busy time from /proc/stat minus this process's and its child's CPU time, per second).
  4. Per precision: the median of every timed call of each tool, their ratio (pathkernel s /
     neural-tangents s: below 1, pathkernel is faster), the range of the per-round ratios, the
     other load (median and maximum), OpenBLAS's core and whether OPENBLAS_CORETYPE /
     OPENBLAS_L2_SIZE were set here and unset for pathkernel's commands.

The pathkernel commands run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from their
environment (OpenBLAS then picks its kernels from the CPU), unless --keep-openblas-env; with
--openblas-core NAME they run with OPENBLAS_CORETYPE=NAME instead (OPENBLAS_L2_SIZE still
removed): for a CPU this OpenBLAS does not know, where it falls back to its pre-AVX2 `Prescott`
kernels (Debian's 0.3.21 on Intel's Emerald Rapids: use SkylakeX; pathkernel's own warning names
the value). This process's environment is left as it is (XLA does not use OpenBLAS).

Exit status: 0, 1 when neural-tangents' float64 kernel disagrees with the export's, 2 on bad
input or a failing pathkernel command, 3 when the machine did not become quiet.
Never part of CI. Needs the venv made by setup-peers.sh.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

import machine_load  # noqa: E402
import neural_tangents_w1 as ntw1  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)

OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# A tool's part of a round is clean when other processes kept fewer cores than this busy.
CLEAN_OTHER_LOAD = 0.1


def log(message):
    print(message, file=sys.stderr, flush=True)


cpu_seconds = machine_load.cpu_seconds   # (this process's CPU seconds, its waited-for children's)


class OtherLoad:
    """Cores kept busy by other processes between start() and stop(): the machine's busy time
    minus this process's and its children's CPU time, per wall-clock second."""

    def start(self):
        self.busy0, self.own0, self.wall0 = machine_load.busy_cpu_seconds(), cpu_seconds(), time.perf_counter()

    def stop(self):
        """(other processes' cores, this process's own cores) over the interval."""
        busy1, own1, wall1 = machine_load.busy_cpu_seconds(), cpu_seconds(), time.perf_counter()
        wall = wall1 - self.wall0
        own = (own1[0] - self.own0[0]) / wall if wall > 0 else None
        if self.busy0 is None or busy1 is None or wall <= 0:
            return None, own
        ours = (own1[0] - self.own0[0]) + (own1[1] - self.own0[1])
        return max(0.0, ((busy1 - self.busy0) - ours) / wall), own


def pathkernel_command(args, repeats):
    if args.fake_pathkernel:
        return [sys.executable, os.path.join(here, "fake_pathkernel_kernels.py"), args.export_dir,
                "--repeats", str(repeats)]
    return [args.pathkernel, "bench", "--workload", "W1", "--kernels-only", "--repeats", str(repeats), "--json"]


def run_pathkernel(args, repeats, env):
    """Runs one kernels-only command; returns its "W1-kernels" object."""
    cmd = pathkernel_command(args, repeats)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        log(proc.stderr.strip())
        ntw1.fail_input(f"`{' '.join(cmd)}` exited with status {proc.returncode}")
    try:
        return json.loads(proc.stdout)["W1-kernels"]
    except (ValueError, KeyError) as e:
        ntw1.fail_input(f"`{' '.join(cmd)}` printed no W1-kernels JSON ({e}): {proc.stdout[:200]!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--pathkernel", metavar="BIN", help="the pathkernel binary (a release build)")
    who.add_argument("--fake-pathkernel", action="store_true",
                     help="time fake_pathkernel_kernels.py (NumPy) instead: tests this tooling")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per tool and precision in a round (default 3)")
    parser.add_argument("--precisions", default="f64,f32", metavar="LIST")
    parser.add_argument("--no-wait", action="store_true", help="time at once, quiet machine or not")
    parser.add_argument("--max-load", type=float, default=0.5, help="quiet: 1-minute load average below this (default 0.5)")
    parser.add_argument("--max-other", type=float, default=0.2,
                        help="quiet: other processes keep fewer cores busy than this over 2 s (default 0.2)")
    parser.add_argument("--wait-timeout", type=float, default=900.0, help="seconds to wait for quiet (default 900)")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="run pathkernel with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as they are here")
    parser.add_argument("--openblas-core", metavar="NAME",
                        help="run pathkernel with OPENBLAS_CORETYPE=NAME (OPENBLAS_L2_SIZE unset): for a CPU "
                             "this OpenBLAS does not know (it then falls back to Prescott)")
    parser.add_argument("--f64-tol", type=float, default=1e-10)
    parser.add_argument("--f32-tol", type=float, default=1e-4)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        ntw1.fail_input("--rounds and --repeats must be at least 1")
    precisions = args.precisions.split(",")
    if not precisions or any(p not in ("f64", "f32") for p in precisions):
        ntw1.fail_input("--precisions: choose from f64,f32")
    if args.pathkernel and not os.access(args.pathkernel, os.X_OK):
        ntw1.fail_input(f"--pathkernel {args.pathkernel}: not an executable")

    export = ntw1.load_export(args.export_dir)
    spec = export["spec"]
    original = {name: os.environ.get(name) for name in OPENBLAS_VARIABLES}
    if args.keep_openblas_env and args.openblas_core:
        ntw1.fail_input("--keep-openblas-env and --openblas-core: choose one")
    pk_env = dict(os.environ)
    if not args.keep_openblas_env:
        for name in OPENBLAS_VARIABLES:
            pk_env.pop(name, None)
        if args.openblas_core:
            pk_env["OPENBLAS_CORETYPE"] = args.openblas_core

    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxlib
    import neural_tangents as nt
    from neural_tangents import stax

    apply_fn = ntw1.build_network(stax, jax, spec)
    n_out = spec["layers"][-1]
    dtypes = {"f64": ntw1.np.float64, "f32": ntw1.np.float32}
    calls = {}
    checks = []
    for precision in precisions:
        dtype = dtypes[precision]
        params = ntw1.make_params(spec, export["weights"], export["biases"], dtype)
        x1 = jnp.asarray(export["x_query"].astype(dtype))
        x2 = jnp.asarray(export["x_train"].astype(dtype))
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                         implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES))
        log(f"neural-tangents {precision}: compiling")
        kernel = ntw1.np.asarray(fn(x1, x2, params).block_until_ready()).astype(ntw1.np.float64) * n_out
        err = ntw1.rel_fro(kernel, export["kernel_f64"])
        tol = args.f64_tol if precision == "f64" else args.f32_tol
        checks.append({"kernel": f"neural-tangents structured derivatives {precision}", "against": "pathkernel f64 (export)",
                       "rel_fro": err, "tolerance": tol, "ok": err <= tol, "fatal": precision == "f64"})
        calls[precision] = (fn, (x1, x2, params))

    log("pathkernel: one untimed kernels-only run (core, check)")
    probe = run_pathkernel(args, 1, pk_env)
    blas = probe.get("blas") or {}

    waited = None
    quiet = None
    if args.no_wait:
        log("not waiting for a quiet machine (--no-wait): " + machine_load.describe(machine_load.sample(1.0)))
    else:
        try:
            quiet, waited = machine_load.wait_quiet(args.max_load, args.max_other, args.wait_timeout)
        except TimeoutError as e:
            log(f"error: {e}; --no-wait times anyway (the times will not be clean), "
                "--wait-timeout S waits longer")
            return 3

    rounds = []
    meter = OtherLoad()
    for r in range(args.rounds):
        order = ("pathkernel", "neural-tangents") if r % 2 == 0 else ("neural-tangents", "pathkernel")
        row = {"round": r + 1, "order": list(order), "load_before": round(machine_load.loadavg()[0], 2),
               "times": {}, "other_load": {}}
        for tool in order:
            meter.start()
            if tool == "pathkernel":
                out = run_pathkernel(args, args.repeats, pk_env)
                for precision in precisions:
                    row["times"][("pathkernel", precision)] = out[precision]["times"]
                if (out.get("blas") or {}).get("core_name") != blas.get("core_name"):
                    log(f"warning: round {r + 1}: OpenBLAS core {out.get('blas')} differs from the first run's")
            else:
                for precision in precisions:
                    fn, fargs = calls[precision]
                    times = []
                    for _ in range(args.repeats):
                        start = time.perf_counter()
                        fn(*fargs).block_until_ready()
                        times.append(time.perf_counter() - start)
                    row["times"][("neural-tangents", precision)] = times
            row["other_load"][tool], own = meter.stop()
            if tool == "pathkernel":
                # neural-tangents' process should sleep while pathkernel runs (XLA's threads idle).
                row["neural_tangents_idle_cores"] = own
                if own is not None and own > 0.05:
                    log(f"warning: round {r + 1}: this process used {own:.2f} cores while pathkernel ran")
        rounds.append(row)
        log(f"round {r + 1}/{args.rounds} ({order[0]} first): load before {row['load_before']:.2f}; "
            + "; ".join(f"{tool} {p} {statistics.median(row['times'][(tool, p)]):.4f} s"
                        for tool in ("pathkernel", "neural-tangents") for p in precisions)
            + "; other load " + ", ".join(f"{t} {fmt_load(v)}" for t, v in row["other_load"].items()))

    summary = []
    for precision in precisions:
        pk = [t for row in rounds for t in row["times"][("pathkernel", precision)]]
        ntt = [t for row in rounds for t in row["times"][("neural-tangents", precision)]]
        per_round = [statistics.median(row["times"][("pathkernel", precision)])
                     / statistics.median(row["times"][("neural-tangents", precision)]) for row in rounds]
        summary.append({"precision": precision, "pathkernel_seconds": statistics.median(pk),
                        "neural_tangents_seconds": statistics.median(ntt),
                        "ratio": statistics.median(pk) / statistics.median(ntt),
                        "round_ratio_min": min(per_round), "round_ratio_max": max(per_round),
                        "pathkernel_min": min(pk), "neural_tangents_min": min(ntt), "calls": len(pk)})
    loads = [v for row in rounds for v in row["other_load"].values() if v is not None]
    unclean = sum(1 for v in loads if v > CLEAN_OTHER_LOAD)
    end = machine_load.sample(1.0)
    ok = all(c["ok"] for c in checks if c["fatal"])
    result = {
        "workload": {"layers": spec["layers"], "activation": spec["activation"],
                     "queries": int(export["x_query"].shape[0]), "train": int(export["x_train"].shape[0])},
        "rounds": args.rounds, "repeats": args.repeats, "fake_pathkernel": args.fake_pathkernel,
        "versions": {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                     "neural_tangents": getattr(nt, "__version__", None)},
        "openblas": {"core_name": blas.get("core_name"), "config": blas.get("config"),
                     "export_core_name": (export["meta"].get("blas") or {}).get("core_name"),
                     "environment_here": original, "unset_for_pathkernel": not args.keep_openblas_env,
                     "core_set_for_pathkernel": args.openblas_core,
                     "seen_by_pathkernel": {name: blas.get(name.lower()) for name in OPENBLAS_VARIABLES}},
        "wait": {"waited_seconds": waited, "no_wait": args.no_wait, "max_load": args.max_load,
                 "max_other": args.max_other, "quiet_sample": quiet},
        "other_load": {"median": statistics.median(loads) if loads else None, "max": max(loads) if loads else None,
                       "end": end, "parts_above": unclean, "parts": len(loads), "threshold": CLEAN_OTHER_LOAD},
        "clean": not args.no_wait and unclean == 0 and len(loads) == 2 * args.rounds,
        "round_rows": [{"round": row["round"], "order": row["order"], "load_before": row["load_before"],
                        "other_load": row["other_load"], "neural_tangents_idle_cores": row.get("neural_tangents_idle_cores"),
                        "medians": {f"{tool} {p}": statistics.median(t) for (tool, p), t in row["times"].items()},
                        "times": {f"{tool} {p}": t for (tool, p), t in row["times"].items()}} for row in rounds],
        "summary": summary,
        "checks": checks,
        "ok": ok,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0 if ok else 1


def fmt_load(x):
    return "?" if x is None else f"{x:.2f}"


def print_report(r):
    w, ob = r["workload"], r["openblas"]
    print(f"W1 interleaved: MLP {'-'.join(map(str, w['layers']))} {w['activation']}, NTK of {w['queries']} × {w['train']}; "
          f"{r['rounds']} rounds × {r['repeats']} timed calls per tool and precision, alternating which tool goes first"
          + (" (FAKE pathkernel: NumPy stand-in)" if r["fake_pathkernel"] else ""))
    v = r["versions"]
    print(f"neural-tangents {v['neural_tangents']} (jax {v['jax']}), structured derivatives, jitted, in this process; "
          "pathkernel `bench --workload W1 --kernels-only`, a process per round")
    here_env = ", ".join(f"{k}={val}" if val is not None else f"{k} unset" for k, val in ob["environment_here"].items())
    seen = ", ".join(f"{k}={val}" if val is not None else f"{k} unset" for k, val in ob["seen_by_pathkernel"].items())
    print(f"OpenBLAS core: {ob['core_name']} ({ob['config']}); here: {here_env}; "
          + (f"OPENBLAS_CORETYPE={ob['core_set_for_pathkernel']} set" if ob.get("core_set_for_pathkernel")
             else ('unset' if ob['unset_for_pathkernel'] else 'kept'))
          + f" for pathkernel, which saw: {seen}")
    if ob["export_core_name"] and ob["export_core_name"] != ob["core_name"]:
        print(f"warning: the export (and its correctness check) ran on core {ob['export_core_name']}, not {ob['core_name']}")
    wt = r["wait"]
    if wt["no_wait"]:
        print("quiet machine: not waited for (--no-wait)")
    else:
        print(f"quiet machine: waited {wt['waited_seconds']:.0f} s for 1-min load < {wt['max_load']} "
              f"and other processes < {wt['max_other']} cores; then {machine_load.describe(wt['quiet_sample'])}")
    print()
    precisions = [s["precision"] for s in r["summary"]]
    header = ["round", "first", "load before"] + [f"{t} {p}" for t in ("pathkernel", "n-t") for p in precisions] \
        + ["other load pk", "other load n-t"]
    lines = []
    for row in r["round_rows"]:
        m = row["medians"]
        lines.append([str(row["round"]), "pk" if row["order"][0] == "pathkernel" else "n-t", f"{row['load_before']:.2f}"]
                     + [f"{m[f'{t} {p}']:.4f}" for t in ("pathkernel", "neural-tangents") for p in precisions]
                     + [fmt_load(row["other_load"].get("pathkernel")), fmt_load(row["other_load"].get("neural-tangents"))])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(widths[i]) for i, h in enumerate(header)))
    print("  ".join("─" * wd for wd in widths))
    for line in lines:
        print("  ".join(c.rjust(widths[i]) for i, c in enumerate(line)))
    print("(per round: median seconds of its calls; other load: cores other processes kept busy during that "
          "tool's part; above about 0.1 the round is not clean)")
    print()
    print("precision  pathkernel s  neural-tangents s  pathkernel ÷ n-t  per-round ratios  calls each")
    for s in r["summary"]:
        print(f"{s['precision']:<9}  {s['pathkernel_seconds']:12.4f}  {s['neural_tangents_seconds']:17.4f}  "
              f"{s['ratio']:16.3f}  {s['round_ratio_min']:.3f}–{s['round_ratio_max']:.3f}  {s['calls']:10d}")
    ol = r["other_load"]
    print(f"(medians of every timed call; below 1 pathkernel is faster) other load during the rounds: "
          f"median {fmt_load(ol['median'])}, max {fmt_load(ol['max'])} cores; at the end: {machine_load.describe(ol['end'])}")
    print(machine_load.verdict(r["clean"], r["wait"]["no_wait"], ol))
    print()
    for c in r["checks"]:
        verdict = f"ok (≤ {c['tolerance']:.0e})" if c["ok"] else f"{'FAIL' if c['fatal'] else 'warn'} (> {c['tolerance']:.0e})"
        print(f"check: {c['kernel']} vs {c['against']}: {c['rel_fro']:.2e} {verdict}")
    print("result: " + ("the float64 kernels agree" if r["ok"] else "MISMATCH"))


if __name__ == "__main__":
    sys.exit(main())
