#!/usr/bin/env python3
"""The sharded analysis on a real (local, single-node) Slurm: issue 13, items 3 and 4.

  PATHKERNEL_BIN=.build/release/pathkernel python3 Tools/slurm/test_slurm.py [-v]

Starts its own cluster with Tools/slurm/cluster.sh (its own state directory and free ports, so it
does not touch a cluster you run), and stops it at the end whatever happens. Where the cluster
cannot start (not root, no apt-get and no Slurm, ...) the Slurm tests are skipped with a printed
message. When PATHKERNEL_BIN has no `analyze --shard` / `merge` yet, the same pipeline runs against
Tools/slurm/stub-pathkernel, and the test says so.

Cases: one preset per kernel route ((S)GD, momentum, Adam) sharded into 4 parts over a real job
array + dependent merge, compared with the single-process analysis of a copy to 1e-12 relative
(compare_json.py); one array task's analyze killed mid-run (Slurm requeues the task, the merge still
matches); a deleted part (the merge refuses and names it), a duplicated and a foreign part; a task
that fails for good, and a task ended with scancel (the merge is cancelled). Python 3 standard
library only.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLUSTER = os.path.join(HERE, "cluster.sh")
SUBMIT = os.path.join(HERE, "pathkernel-slurm")
STUB = os.path.join(HERE, "stub-pathkernel")
sys.path.insert(0, HERE)
from compare_json import Comparison  # noqa: E402

SHARDS = 4
NODE = "pknode"  # the node name cluster.sh gives slurmd (scontrol listpids needs it)
# One preset per kernel route; short runs with checkpoints that do not fall on shard boundaries
# (60 steps, a checkpoint every 20, shards of ~15 steps: every shard but the first replays from a
# checkpoint before it).
ROUTES = [
    ("moons-mlp", "(S)GD path kernel"),
    ("moons-momentum", "momentum two-time kernel (backward route)"),
    ("teacher-adam", "Adam preconditioned kernel (backward route)"),
]
TRAIN_ARGS = ["--steps", "60", "--checkpoint-every", "20", "--quiet"]
ANALYZE_ARGS = ["--quiet"]


def note(message):
    print(f"test_slurm: {message}", file=sys.stderr, flush=True)


def binary_supports_shards(path):
    """True when `path analyze --help` mentions --shard and `path merge --help` works."""
    try:
        a = subprocess.run([path, "analyze", "--help"], capture_output=True, text=True, timeout=60)
        m = subprocess.run([path, "merge", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--shard" in a.stdout + a.stderr and m.returncode == 0


def choose_binary():
    """(binary, using_stub)."""
    wanted = os.environ.get("PATHKERNEL_BIN") or os.path.join(REPO, ".build", "release", "pathkernel")
    wanted = os.path.abspath(wanted)
    if os.access(wanted, os.X_OK) and binary_supports_shards(wanted):
        note(f"using {wanted} (it has analyze --shard and merge)")
        return wanted, False
    why = "does not exist" if not os.access(wanted, os.X_OK) else "has no `analyze --shard`/`merge` yet"
    note(f"{wanted} {why}: running the Slurm pipeline against the stub {STUB} "
         "(issue 13 items 1-2 not in this binary); the numbers compared are the stub's")
    return STUB, True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComparerTests(unittest.TestCase):
    """The comparer must be able to fail: it catches a perturbed number and names its key."""

    DOC = {"seconds": 1.0, "run": {"name": "x", "steps": 60},
           "kernel_machines": [{"name": "exact", "test": {"rmse": 0.25, "r2": 1.0}},
                               {"name": "path-km", "test": {"rmse": 0.2642966666754894, "r2": 0.9}}],
           "reconstruction": {"test": {"relative_residual": 6.0e-15}}}

    def perturbed(self, path, factor):
        d = json.loads(json.dumps(self.DOC))
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] *= factor
        return d

    def test_identical_and_roundoff_match(self):
        c = Comparison()
        self.assertIsNone(c.first_difference(self.DOC, self.DOC))
        # wall time differs, last bits differ, a round-off residual changes by 50 %: still a match
        d = self.perturbed(["kernel_machines", 1, "test", "rmse"], 1 + 4e-16)
        d["seconds"] = 99.0
        d["reconstruction"]["test"]["relative_residual"] = 9.0e-15
        self.assertIsNone(c.first_difference(self.DOC, d))

    def test_perturbed_number_is_caught_and_named(self):
        d = self.perturbed(["kernel_machines", 1, "test", "rmse"], 1 + 1e-11)
        message = Comparison().first_difference(self.DOC, d)
        self.assertIsNotNone(message)
        self.assertIn("kernel_machines[1].test.rmse", message)

    def test_structure_differences_are_caught(self):
        d = json.loads(json.dumps(self.DOC))
        d["run"]["name"] = "y"
        self.assertIn("run.name", Comparison().first_difference(self.DOC, d))
        d = json.loads(json.dumps(self.DOC))
        del d["kernel_machines"][1]
        self.assertIn("kernel_machines", Comparison().first_difference(self.DOC, d))
        d = json.loads(json.dumps(self.DOC))
        d["extra"] = 1
        self.assertIn("extra", Comparison().first_difference(self.DOC, d))


class SlurmShardTests(unittest.TestCase):
    """A real job array and a dependent merge on a local single-node Slurm."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            note("SKIPPED the Slurm tests: not root (the local Slurm runs its daemons as root)")
            raise unittest.SkipTest("not root: the local Slurm needs root")
        cls.bin, cls.stub = choose_binary()
        cls.work = tempfile.mkdtemp(prefix="pathkernel-slurm-test-")
        os.chmod(cls.work, 0o755)  # munged wants its socket's directories world-executable
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.slurm_dir = os.path.join(cls.work, "slurm")
        cls.env = dict(os.environ, PATHKERNEL_SLURM_DIR=cls.slurm_dir,
                       PATHKERNEL_SLURMCTLD_PORT=str(free_port()), PATHKERNEL_SLURMD_PORT=str(free_port()),
                       PATHKERNEL_BIN=cls.bin, SLURM_CONF=os.path.join(cls.slurm_dir, "etc", "slurm.conf"))
        if cls.stub:
            # long enough to kill a task mid-run; the other cases pass their own value
            cls.env["PATHKERNEL_STUB_SECONDS"] = "1"
        # Registered before the start: runs even when setUpClass fails half-way.
        cls.addClassCleanup(cls.stop_cluster)
        t0 = time.monotonic()
        r = subprocess.run([CLUSTER, "start"], env=cls.env, capture_output=True, text=True)
        if r.returncode != 0:
            note(f"SKIPPED the Slurm tests: the local Slurm cannot start here "
                 f"(Tools/slurm/cluster.sh start says):\n{(r.stderr + r.stdout).strip()}")
            raise unittest.SkipTest("the local Slurm cannot start (message printed above)")
        note(f"local Slurm started in {time.monotonic() - t0:.1f} s ({cls.slurm_dir})")

    @classmethod
    def stop_cluster(cls):
        t0 = time.monotonic()
        r = subprocess.run([CLUSTER, "stop"], env=cls.env, capture_output=True, text=True)
        note(f"local Slurm stopped in {time.monotonic() - t0:.1f} s" +
             ("" if r.returncode == 0 else f" (stop failed: {r.stderr.strip()})"))

    # --- helpers ---------------------------------------------------------------------------------

    def run_ok(self, args, **kw):
        r = subprocess.run(args, env=kw.pop("env", self.env), capture_output=True, text=True, **kw)
        if r.returncode != 0:
            self.fail(f"{' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def train(self, name, preset, seed=None):
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        trace = os.path.join(d, "run.sqlite")
        args = [self.bin, "train", "--preset", preset, "--out", trace, "--force"] + TRAIN_ARGS
        if seed is not None:
            args += ["--seed", str(seed)]
        self.run_ok(args)
        return trace

    def train_long(self, name):
        """moons-momentum at its full length (300 steps): shards that still run when the test
        reaches for one (the stub is slowed by PATHKERNEL_STUB_SECONDS instead)."""
        trace = os.path.join(self.work, name, "run.sqlite")
        os.makedirs(os.path.dirname(trace), exist_ok=True)
        self.run_ok([self.bin, "train", "--preset", "moons-momentum", "--out", trace, "--force",
                     "--checkpoint-every", "20", "--quiet"])
        return trace

    def single_process_report(self, trace):
        """`analyze` on a copy of the trace, and the copy's JSON report."""
        copy = trace.replace(".sqlite", "-single.sqlite")
        shutil.copyfile(trace, copy)
        self.run_ok([self.bin, "analyze", copy] + ANALYZE_ARGS)
        return self.report(copy)

    def report(self, trace):
        return json.loads(self.run_ok([self.bin, "report", trace, "--format", "json"]).stdout)

    def assert_same_analysis(self, sharded, single, what):
        c = Comparison()
        d = c.first_difference(single, sharded)
        self.assertIsNone(d, f"{what}: the merged analysis differs from the single-process one: {d}")
        note(f"{what}: merged == single-process on {c.numbers} numbers "
             f"(largest relative difference {c.worst[0]:.2g}" + (f" at {c.worst[1]})" if c.worst[1] else ")"))

    def submit(self, trace, *extra, wait=True, env=None):
        args = [SUBMIT, trace, "--shards", str(SHARDS), "--bin", self.bin] + ANALYZE_ARGS + list(extra)
        if wait:
            args.append("--wait")
        r = subprocess.run(args, env=env or self.env, capture_output=True, text=True, timeout=900)
        m = re.search(r"array_job=(\d+) merge_job=(\d+) out=(\S+)", r.stdout)
        return r, (m.group(1), m.group(2), m.group(3)) if m else (None, None, None)

    def job_fields(self, job):
        r = subprocess.run(["scontrol", "show", "job", "-o", job], env=self.env, capture_output=True, text=True)
        line = r.stdout.splitlines()[0] if r.stdout.strip() else ""
        return dict(re.findall(r"(?:^| )(\w+)=(\S*)", line))

    def wait_job(self, job, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.job_fields(job).get("JobState", "UNKNOWN")
            if state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED"):
                return state
            time.sleep(1)
        self.fail(f"job {job} not finished after {timeout} s")

    def running_shard(self, timeout=120):
        """(I, pid) of a running `analyze --shard I/N` process of an array task, found among the job
        processes of this cluster's node (scontrol listpids), not by name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(["scontrol", "listpids", "*", NODE], env=self.env, capture_output=True, text=True)
            for line in r.stdout.splitlines()[1:]:
                pid = line.split()[0] if line.split() else ""
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = f.read().decode(errors="replace").split("\0")
                except OSError:
                    continue
                if "analyze" in argv and "--shard" in argv:
                    shard = argv[argv.index("--shard") + 1]
                    return int(shard.split("/")[0]), int(pid)
            time.sleep(0.05)
        self.fail(f"no running analyze --shard process appeared in {timeout} s")

    # --- cases -----------------------------------------------------------------------------------

    def test_1_every_route_merges_to_the_single_process_analysis(self):
        for preset, route in ROUTES:
            with self.subTest(preset=preset):
                trace = self.train(preset, preset)
                single = self.single_process_report(trace)
                t0 = time.monotonic()
                r, (array, merge, out) = self.submit(trace)
                self.assertEqual(r.returncode, 0, f"pathkernel-slurm failed:\n{r.stdout}\n{r.stderr}")
                parts = sorted(p for p in os.listdir(out) if p.startswith("part-"))
                self.assertEqual(parts, [f"part-{i}.sqlite" for i in range(SHARDS)])
                self.assertEqual([p for p in os.listdir(out) if p.startswith(".part-")], [],
                                 "temporary part files left behind")
                note(f"{preset}: array {array} ({SHARDS} tasks) + merge {merge} in {time.monotonic() - t0:.1f} s")
                self.assert_same_analysis(self.report(trace), single, f"{preset} [{route}]")

    def test_2_killed_task_is_requeued_and_merge_still_matches(self):
        env = dict(self.env)
        if self.stub:
            env["PATHKERNEL_STUB_SECONDS"] = "15"
        trace = self.train_long("killed")
        single = self.single_process_report(trace)
        t0 = time.monotonic()
        r, (array, merge, out) = self.submit(trace, wait=False, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        victim, pid = self.running_shard()
        os.kill(pid, 9)
        note(f"killed task {array}_{victim}'s analyze (pid {pid}) with SIGKILL mid-run")
        self.assertEqual(self.wait_job(merge), "COMPLETED",
                         f"merge job {merge} did not complete; see {out}/logs")
        task = self.job_fields(f"{array}_{victim}")
        self.assertEqual(task.get("Restarts"), "1", f"task {array}_{victim} was not requeued once: {task}")
        with open(os.path.join(out, "logs", f"shard-{array}_{victim}.out")) as f:
            log = f.read()
        self.assertIn("requeueing this task", log)
        self.assertIn(f"shard {victim}/{SHARDS} done", log)
        note(f"task {array}_{victim} requeued by Slurm (Restarts=1); array + merge in {time.monotonic() - t0:.1f} s")
        self.assert_same_analysis(self.report(trace), single, "moons-momentum after a killed task")

    def test_3_merge_refuses_incomplete_duplicated_and_foreign_sets(self):
        trace = self.train("refuse", "moons-mlp")
        r, (array, merge, out) = self.submit(trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        parts = [os.path.join(out, f"part-{i}.sqlite") for i in range(SHARDS)]

        # a missing part, through the merge job script on Slurm
        os.remove(parts[2])
        log = os.path.join(out, "logs", "merge-by-hand.out")
        s = subprocess.run(["sbatch", "--wait", f"--output={log}", os.path.join(out, "merge.sbatch")],
                           env=self.env, capture_output=True, text=True)
        self.assertNotEqual(s.returncode, 0, "the merge job accepted a set without part 2")
        with open(log) as f:
            text = f.read()
        self.assertIn("missing", text.lower(), text)
        self.assertRegex(text, r"(part|shard)[ -]?2\b|\b2/4\b", f"the error does not name part 2:\n{text}")
        note(f"missing part: merge refused: {text.strip().splitlines()[-1]}")

        # a duplicated part
        m = subprocess.run([self.bin, "merge", trace, parts[0], parts[1], parts[1], parts[3]],
                           env=self.env, capture_output=True, text=True)
        self.assertNotEqual(m.returncode, 0, "merge accepted a duplicated part")
        self.assertIn("part-1.sqlite", m.stderr + m.stdout)
        note(f"duplicated part: merge refused: {(m.stderr or m.stdout).strip().splitlines()[-1]}")

        # a foreign part: shard 2 of another run (another seed)
        other = self.train("refuse-other", "moons-mlp", seed=7)
        foreign = os.path.join(self.work, "refuse-other", "part-2-foreign.sqlite")
        self.run_ok([self.bin, "analyze", other, "--shard", f"2/{SHARDS}", "--out", foreign] + ANALYZE_ARGS)
        m = subprocess.run([self.bin, "merge", trace, parts[0], parts[1], foreign, parts[3]],
                           env=self.env, capture_output=True, text=True)
        self.assertNotEqual(m.returncode, 0, "merge accepted a part of another trace")
        self.assertIn("part-2-foreign.sqlite", m.stderr + m.stdout)
        note(f"foreign part: merge refused: {(m.stderr or m.stdout).strip().splitlines()[-1]}")

    def test_4_task_failing_for_good_cancels_the_merge(self):
        trace = self.train("fails", "moons-mlp")
        # --max-queries 0 is refused by analyze: an error, not a signal, so it is not retried
        r, (array, merge, out) = self.submit(trace, "--max-queries", "0")
        self.assertNotEqual(r.returncode, 0, "pathkernel-slurm --wait succeeded although every task failed")
        self.assertIn("CANCELLED", r.stderr)
        self.assertEqual(self.job_fields(merge).get("JobState"), "CANCELLED")
        self.assertFalse(any(p.startswith("part-") for p in os.listdir(out)))
        note(f"failing tasks: merge {merge} cancelled, pathkernel-slurm --wait exited {r.returncode}")

    def test_5_scancel_of_a_task_is_not_retried_and_cancels_the_merge(self):
        """`scancel --signal=KILL` ends the task's batch script itself: Slurm records the task
        CANCELLED (what scancel asks for), the task cannot requeue itself, and the merge job is
        cancelled instead of merging an incomplete set (Docs/scale-out.md, failures table)."""
        env = dict(self.env)
        if self.stub:
            env["PATHKERNEL_STUB_SECONDS"] = "15"
        trace = self.train_long("scancel")
        r, (array, merge, out) = self.submit(trace, wait=False, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        victim, _ = self.running_shard()
        subprocess.run(["scancel", "--signal=KILL", f"{array}_{victim}"], env=self.env, check=True)
        self.assertEqual(self.wait_job(merge), "CANCELLED", f"merge job {merge} was not cancelled")
        task = self.job_fields(f"{array}_{victim}")
        self.assertEqual(task.get("JobState"), "CANCELLED", task)
        self.assertFalse(os.path.exists(os.path.join(out, f"part-{victim}.sqlite")))
        note(f"scancel --signal=KILL {array}_{victim}: task CANCELLED (Restarts={task.get('Restarts')}), "
             f"merge {merge} cancelled")


if __name__ == "__main__":
    unittest.main(verbosity=2)
