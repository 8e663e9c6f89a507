#!/usr/bin/env python3
"""Bad input never crashes pathkernel, never hangs it, and never passes as sound.

Two parts, both against a built binary (release in ./dev test):

1. The bad-input matrix: each named defect below is written into a copy of a small, sound trace
   (SQL plus blob rewrites with their CRC-32 recomputed, so that the store's checksums pass and
   the semantic rules are what must catch it). For every case `inspect` must exit 1 and list a
   problem, `analyze` must exit 1 with a one-line `error: ` message naming it — and neither may
   die of a signal (a Swift trap) or exceed TIMEOUT seconds.
2. A bounded fuzz run: FUZZ_CASES traces mutated at random (fixed seed, so a failure repeats),
   copies of three base traces (binary SGD; 3-class momentum with clipping, sparse checkpoints;
   AdamW regression with float32 checkpoints):
   blobs with bytes flipped and the CRC recomputed, numbers in step rows, shapes, JSON fields and
   layout rows replaced by hostile values (NaN, ±Inf, −1, 2^32, 1e308, wrong types), rows deleted.
   The base traces hold a stored analysis, so the analysis table is fuzzed too (truncated or
   edited result JSON, hostile numbers, replaced keys). Each mutant must give, from `report`
   (text and JSON), `inspect` and `analyze`: no signal, no hang, and either exit 0 or a one-line
   `error: `; an `analyze` that exits 0 must store a report with no NaN in its tables.

Usage: PATHKERNEL_BIN=.build/release/pathkernel python3 Tools/checks/bad_traces.py [--fuzz N] [--seed S]
Prints failures, then 'bad-traces: N passed, N failed'; exits 1 on any failure.
"""
import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib

BIN = os.environ.get("PATHKERNEL_BIN", ".build/release/pathkernel")
TIMEOUT = 60  # seconds per command; the traces are tiny (an analysis takes well under a second)
FUZZ_CASES = 300

BINARY = {
    "name": "bin", "seed": 5, "data": {"kind": "moons", "train": 24, "test": 8},
    "model": {"kind": "mlp", "layers": [2, 6, 1], "activation": "tanh"},
    "loss": {"kind": "logistic"}, "optimizer": {"kind": "sgd", "learningRate": 0.3},
    "training": {"steps": 8, "batchSize": 8, "checkpointEvery": 1},
}
MULTI = {
    "name": "multi", "seed": 5, "data": {"kind": "spirals", "train": 24, "test": 8, "classes": 3},
    "model": {"kind": "mlp", "layers": [2, 6, 3], "activation": "tanh"},
    "loss": {"kind": "cross-entropy"},
    "optimizer": {"kind": "sgd", "learningRate": 0.1, "momentum": 0.9, "clipNorm": 1.0},
    "training": {"steps": 8, "batchSize": 8, "checkpointEvery": 4},
}


ADAM32 = {
    "name": "adam32", "seed": 5, "data": {"kind": "teacher", "train": 24, "test": 8, "inputDim": 3},
    "model": {"kind": "mlp", "layers": [3, 5, 1], "activation": "gelu"},
    "loss": {"kind": "mse"}, "optimizer": {"kind": "adamw", "learningRate": 0.01, "weightDecay": 0.01},
    "training": {"steps": 8, "batchSize": 8, "checkpointEvery": 4, "precision": "float32"},
}


def run(args):
    """(exit code, stdout, stderr); exit code None on a timeout."""
    try:
        p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=TIMEOUT)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", "timeout"


def f64(values):
    return struct.pack(f"<{len(values)}d", *values)


def unf64(blob):
    return list(struct.unpack(f"<{len(blob) // 8}d", blob))


def rewrite_blob(db, table, column, where, fn, dtype="d"):
    """Replaces a float blob by fn(values) and recomputes its checksum."""
    (blob,) = db.execute(f"SELECT {column} FROM {table} WHERE {where}").fetchone()
    width = 8 if dtype == "d" else 4
    vals = list(struct.unpack(f"<{len(blob) // width}{dtype}", blob))
    new = struct.pack(f"<{len(vals)}{dtype}", *fn(vals)) if dtype == "d" else fn(blob)
    db.execute(f"UPDATE {table} SET {column} = ?, checksum = ? WHERE {where}", (new, zlib.crc32(new)))


def set_y(db, split, fn):
    rewrite_blob(db, "data", "data", f"split = '{split}' AND role = 'y'", fn)


def as_float32(db, step):
    (blob,) = db.execute(f"SELECT params FROM checkpoint WHERE step = {step}").fetchone()
    vals = unf64(blob)
    new = struct.pack(f"<{len(vals)}f", *vals)
    db.execute("UPDATE checkpoint SET dtype = 'float32', params = ?, checksum = ? WHERE step = ?", (new, zlib.crc32(new), step))


def batch_with(db, step, index):
    new = struct.pack("<3i", 0, 1, index)
    db.execute("UPDATE step SET batch = ?, batch_size = 3 WHERE step = ?", (new, step))


def replace(lst, i, v):
    lst = list(lst)
    lst[i] = v
    return lst


def insert_mask(db, edit_bytes=None, crc_delta=0):
    """A parameter_mask row (schema v4) of P bytes of 1, edited by `edit_bytes`, its CRC-32 off by `crc_delta`."""
    (count,) = db.execute("SELECT count FROM checkpoint WHERE step = 0").fetchone()
    data = bytes([1] * count)
    if edit_bytes:
        data = edit_bytes(data)
    db.execute("INSERT INTO parameter_mask (id, count, data, checksum) VALUES (1, ?, ?, ?)",
               (len(data), data, (zlib.crc32(data) + crc_delta) % 2 ** 32))


# name → (base config, mutation(db), a word the analyze error must contain)
MATRIX = {
    "shape product overflows": (BINARY, lambda db: db.execute(
        "UPDATE data SET shape = '[4294967296,4294967296]' WHERE split = 'train' AND role = 'x'"), "shape"),
    "batch index = n": (BINARY, lambda db: batch_with(db, 2, 24), "batch index"),
    "batch index < 0": (BINARY, lambda db: batch_with(db, 2, -1), "batch index"),
    "empty batch": (BINARY, lambda db: db.execute("UPDATE step SET batch = x'', batch_size = 0 WHERE step = 3"), "empty batch"),
    "+Inf held-out label": (BINARY, lambda db: set_y(db, "test", lambda v: replace(v, 2, math.inf)), "not finite"),
    "NaN training input": (BINARY, lambda db: rewrite_blob(db, "data", "data", "split = 'train' AND role = 'x'",
                                                            lambda v: replace(v, 5, math.nan)), "not finite"),
    "binary label 2": (BINARY, lambda db: set_y(db, "train", lambda v: replace(v, 0, 2.0)), "label"),
    "class index = K": (MULTI, lambda db: set_y(db, "train", lambda v: replace(v, 1, 3.0)), "class index"),
    "class index 0.5": (MULTI, lambda db: set_y(db, "test", lambda v: replace(v, 1, 0.5)), "class index"),
    "loss does not fit task": (BINARY, lambda db: db.execute(
        "UPDATE run SET loss_json = '{\"kind\":\"cross-entropy\"}'"), "does not fit"),
    "loss_json garbage": (BINARY, lambda db: db.execute("UPDATE run SET loss_json = '{\"kind\":\"hinge\"}'"), "loss_json"),
    "num_outputs ≠ model": (MULTI, lambda db: db.execute("UPDATE run SET num_outputs = 2"), "num_outputs"),
    "layout renamed": (BINARY, lambda db: db.execute(
        "UPDATE parameter_layout SET name = 'W1' WHERE name = 'layers.0.weight'"), "parameter_layout"),
    "layout transposed": (BINARY, lambda db: db.execute(
        "UPDATE parameter_layout SET shape = '[2,6]' WHERE name = 'layers.0.weight'"), "parameter_layout"),
    "layout bias first": (BINARY, lambda db: (
        db.execute("UPDATE parameter_layout SET position = 100 WHERE name = 'layers.0.weight'"),
        db.execute("UPDATE parameter_layout SET position = 0, offset = 0 WHERE name = 'layers.0.bias'"),
        db.execute("UPDATE parameter_layout SET position = 1, offset = 6 WHERE name = 'layers.0.weight'"),
        db.execute("UPDATE parameter_layout SET position = 100 WHERE position = 100")), "parameter_layout"),
    "input width ≠ model": (BINARY, lambda db: db.execute(
        "UPDATE run SET model_json = replace(model_json, '[2,6,1]', '[3,6,1]')"), "model"),
    "no checkpoint 0": (BINARY, lambda db: db.execute("DELETE FROM checkpoint WHERE step = 0"), "step 0"),
    "float32 checkpoint in float64 trace": (BINARY, lambda db: as_float32(db, 3), "float32"),
    # analyze may go on here: the usable prefix ends at the last step row, and a note says so.
    "checkpoint beyond the last step": (BINARY, lambda db: db.execute(
        "INSERT INTO checkpoint SELECT 20, dtype, count, params, checksum, created_at FROM checkpoint WHERE step = 8"), None),
    "NaN in a checkpoint": (BINARY, lambda db: rewrite_blob(db, "checkpoint", "params", "step = 4",
                                                             lambda v: replace(v, 3, math.nan)), "not finite"),
    "NaN learning rate": (BINARY, lambda db: db.execute("UPDATE step SET learning_rate = 'NaN' WHERE step = 2"), "learning_rate"),
    "negative learning rate": (BINARY, lambda db: db.execute("UPDATE step SET learning_rate = -0.1 WHERE step = 2"), "learning rate"),
    "Inf loss before a checkpoint": (BINARY, lambda db: db.execute("UPDATE step SET loss = 9e999 WHERE step = 2"), "loss"),
    "clip scale 0": (MULTI, lambda db: db.execute("UPDATE step SET clip_scale = 0 WHERE step = 1"), "clip scale"),
    "clip scale missing": (MULTI, lambda db: db.execute("UPDATE step SET clip_scale = NULL WHERE step = 1"), "clip scale"),
    "optimizer state damaged": (MULTI, lambda db: db.execute(
        "UPDATE optimizer_state SET data = substr(data, 1, 16) WHERE step = 4"), "optimizer state"),
    "optimizer state NaN": (MULTI, lambda db: rewrite_blob(db, "optimizer_state", "data", "step = 4",
                                                            lambda v: replace(v, 0, math.nan)), "not finite"),
    "optimizer state wrong names": (MULTI, lambda db: db.execute(
        "UPDATE optimizer_state SET names = '[\"momentum\"]' WHERE step = 4"), "optimizer state"),
    # The decay anchor (optimizer_json.decayAnchor): an unknown anchor, and "initial" without w₀.
    "decayAnchor unknown": (ADAM32, lambda db: db.execute(
        "UPDATE run SET optimizer_json = '{\"decayAnchor\":\"median\",' || substr(optimizer_json, 2)"), "optimizer_json"),
    "decayAnchor without checkpoint 0": (ADAM32, lambda db: (
        db.execute("UPDATE run SET optimizer_json = '{\"decayAnchor\":\"initial\",' || substr(optimizer_json, 2)"),
        db.execute("DELETE FROM checkpoint WHERE step = 0"), db.execute("DELETE FROM optimizer_state WHERE step = 0")), "step-0 checkpoint"),
    "mask count ≠ P": (BINARY, lambda db: insert_mask(db, lambda b: b[:-1]), "parameter mask"),
    "mask byte 2": (BINARY, lambda db: insert_mask(db, lambda b: b[:3] + bytes([2]) + b[4:]), "parameter mask"),
    "mask checksum": (BINARY, lambda db: insert_mask(db, crc_delta=1), "checksum"),
    "mask with clipNorm": (MULTI, lambda db: insert_mask(db), "clipNorm"),
}

HOSTILE = [math.nan, math.inf, -math.inf, -1, 0, 2 ** 31, 2 ** 32, 2 ** 63 - 1, 1e308, -1e308, 0.5, "x", None]


def fuzz_mutation(db, rng):
    """One random hostile edit; returns its description."""
    kind = rng.choice(["blob", "step", "shape", "json", "layout", "delete", "run", "analysis"])
    if kind == "analysis":
        (text,) = db.execute("SELECT result_json FROM analysis").fetchone()
        how = rng.choice(["truncate", "number", "key", "garbage", "settings"])
        if how == "truncate":
            text = text[:rng.randrange(len(text))]
        elif how == "number":
            import re
            nums = list(re.finditer(r"-?\d+\.?\d*(e-?\d+)?", text))
            if not nums:
                return "analysis.result_json holds no number to replace"
            m = rng.choice(nums)
            text = text[:m.start()] + rng.choice(['"nan"', '"inf"', "-1", "1e308", "null", '"x"', "99999999999999999999"]) + text[m.end():]
        elif how == "key":
            text = text.replace('"kernel_machines"', '"kernel_machinez"', 1)
        elif how == "garbage":
            text = rng.choice(["", "{}", "[]", "null", "\x00\xff"])
        else:
            db.execute("UPDATE analysis SET settings_json = 'x', key = 'y'")
            return "analysis key and settings replaced"
        db.execute("UPDATE analysis SET result_json = ?", (text,))
        return f"analysis.result_json ({how})"
    if kind == "blob":
        table, column, key = rng.choice([("data", "data", "split || role"), ("checkpoint", "params", "step"),
                                         ("optimizer_state", "data", "step")])
        rows = db.execute(f"SELECT rowid, {column} FROM {table}").fetchall()
        if not rows:
            return "no rows"
        rowid, blob = rng.choice(rows)
        blob = bytearray(blob)
        if not blob:
            return "empty blob"
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        db.execute(f"UPDATE {table} SET {column} = ?, checksum = ? WHERE rowid = ?", (bytes(blob), zlib.crc32(bytes(blob)), rowid))
        return f"{table}.{column} bytes flipped (CRC recomputed)"
    if kind == "step":
        col = rng.choice(["learning_rate", "loss", "clip_scale", "batch_size", "epoch", "step"])
        v = rng.choice(HOSTILE)
        db.execute(f"UPDATE OR IGNORE step SET {col} = ? WHERE step = ?", (v if not isinstance(v, float) or math.isfinite(v) else str(v), rng.randrange(8)))
        if isinstance(v, float) and not math.isfinite(v):  # store a real IEEE value, not a string
            db.execute(f"UPDATE OR IGNORE step SET {col} = CAST(? AS REAL) WHERE typeof({col}) = 'text'", ("9e999" if v > 0 else "-9e999" if v < 0 else "0",))
        return f"step.{col} = {v}"
    if kind == "shape":
        shape = rng.choice(["[]", "[0]", "[-1,2]", "[24]", "[24,2,1]", "[2,24]", "[9223372036854775807,2]", "garbage", "[24,1]"])
        db.execute("UPDATE data SET shape = ? WHERE rowid = (SELECT rowid FROM data ORDER BY random() LIMIT 1)", (shape,))
        return f"data.shape = {shape}"
    if kind == "json":
        col = rng.choice(["model_json", "loss_json", "optimizer_json"])
        (text,) = db.execute(f"SELECT {col} FROM run").fetchone()
        try:
            obj = json.loads(text)
        except ValueError:
            return "json unreadable already"
        if isinstance(obj, dict) and obj:
            k = rng.choice(list(obj.keys()))
            obj[k] = rng.choice([-1, 0, 1e308, "x", None, [], {}, 2 ** 40, [2, 0, 1], [0], True])
        db.execute(f"UPDATE run SET {col} = ?", (json.dumps(obj),))
        return f"run.{col}: {json.dumps(obj)[:80]}"
    if kind == "layout":
        col = rng.choice(["shape", "offset", "count", "name"])
        v = rng.choice(["[6,2]", "[2,6]", "[4294967296,4294967296]", -1, 0, 2 ** 40, "layers.9.weight"])
        db.execute(f"UPDATE OR IGNORE parameter_layout SET {col} = ? WHERE position = ?", (v, rng.randrange(4)))
        return f"parameter_layout.{col} = {v}"
    if kind == "delete":
        table = rng.choice(["step", "checkpoint", "optimizer_state", "data"])
        db.execute(f"DELETE FROM {table} WHERE rowid = (SELECT rowid FROM {table} ORDER BY random() LIMIT 1)")
        return f"a {table} row deleted"
    col, v = rng.choice([("num_outputs", 0), ("num_outputs", 7), ("checkpoint_every", 0), ("checkpoint_every", 3),
                         ("planned_steps", -5), ("task", "multiclass"), ("task", "regression"), ("precision", "float32"),
                         ("status", "diverged"), ("seed", -1)])
    db.execute(f"UPDATE OR IGNORE run SET {col} = ?", (v,))
    return f"run.{col} = {v}"


def one_line_error(code, err):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    return code == 1 and len(lines) >= 1 and lines[-1].startswith("error: ")


def signalled(code):
    return code is None or code < 0 or code > 125


def check_report_finite(path):
    code, out, _ = run(["report", path, "--format", "json"])
    if code != 0:
        return True  # nothing stored to read (an error is fine)
    return "nan" not in out.lower().replace("nanos", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz", type=int, default=FUZZ_CASES)
    ap.add_argument("--seed", type=int, default=20261129)
    args = ap.parse_args()
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="pk-bad-")
    try:
        bases = {}
        for cfg in (BINARY, MULTI, ADAM32):
            c = os.path.join(tmp, cfg["name"] + ".json")
            with open(c, "w") as f:
                json.dump(cfg, f)
            t = os.path.join(tmp, cfg["name"] + ".sqlite")
            code, _, err = run(["train", "--config", c, "--out", t, "--quiet"])
            assert code == 0, err
            # Fold the WAL into the main file so that copies are whole.
            code, _, err = run(["inspect", t])
            assert code == 0, f"the sound base trace {cfg['name']} fails inspect: {err}"
            # A stored analysis, for the fuzzing of the analysis table and `report`.
            code, _, err = run(["analyze", t, "--quiet"])
            assert code == 0, f"the sound base trace {cfg['name']} fails analyze: {err}"
            # Fold the WAL into the main file so that copies are whole.
            db = sqlite3.connect(t)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            bases[cfg["name"]] = t

        def mutant(base, name):
            path = os.path.join(tmp, name)
            shutil.copy(bases[base["name"]], path)
            return path

        for i, (name, (base, mutate, word)) in enumerate(MATRIX.items()):
            path = mutant(base, f"m{i}.sqlite")
            db = sqlite3.connect(path)
            mutate(db)
            db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            icode, iout, ierr = run(["inspect", path])
            acode, _, aerr = run(["analyze", path, "--quiet", "--force"])
            problems = []
            if signalled(icode) or signalled(acode):
                problems.append(f"crash or hang (inspect {icode}, analyze {acode}): {ierr.strip()[:300]} {aerr.strip()[:300]}")
            if icode != 1 or not ("problem" in iout or one_line_error(icode, ierr)):
                problems.append(f"inspect exits {icode} without listing a problem: {iout.strip()[-300:]} {ierr.strip()[-200:]}")
            if word is None:
                if acode != 0 and not one_line_error(acode, aerr):
                    problems.append(f"analyze exits {acode} without a one-line error: {aerr.strip()[-300:]}")
            elif not one_line_error(acode, aerr):
                problems.append(f"analyze exits {acode} without a one-line error: {aerr.strip()[-300:]}")
            elif word.lower() not in aerr.lower():
                problems.append(f"analyze's error does not mention '{word}': {aerr.strip()}")
            if problems:
                failed += 1
                print(f"FAIL matrix '{name}': " + "; ".join(problems))
            else:
                passed += 1

        rng = random.Random(args.seed)
        crashes = 0
        for i in range(args.fuzz):
            base = rng.choice([BINARY, MULTI, ADAM32])
            path = mutant(base, f"f{i}.sqlite")
            db = sqlite3.connect(path)
            what = []
            for _ in range(rng.randint(1, 3)):
                try:
                    what.append(fuzz_mutation(db, rng))
                except sqlite3.Error as e:  # a CHECK constraint refused the edit: that is the store doing its job
                    what.append(f"refused by SQLite ({e})")
            db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            bad = []
            for cmd in (["report", path], ["report", path, "--format", "json"], ["inspect", path], ["analyze", path, "--quiet", "--force"]):
                code, out, err = run(cmd)
                listed = cmd[0] == "inspect" and code == 1 and "problem" in out
                if signalled(code):
                    bad.append(f"{cmd[0]} died or hung (exit {code}): {err.strip()[:300]}")
                elif code != 0 and not listed and not one_line_error(code, err):
                    bad.append(f"{cmd[0]} exits {code} without a one-line error: {err.strip()[-300:]}")
                elif cmd[0] == "analyze" and code == 0 and not check_report_finite(path):
                    bad.append("analyze succeeded but its report holds NaN")
            if bad:
                failed += 1
                crashes += 1
                print(f"FAIL fuzz #{i} (seed {args.seed}; {'; '.join(what)}): " + "; ".join(bad))
            else:
                passed += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"bad traces: {len(MATRIX)} matrix cases, {args.fuzz} fuzzed (seed {args.seed})")
    print(f"bad-traces: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
