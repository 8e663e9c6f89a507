#!/usr/bin/env python3
"""Compare two JSON documents (e.g. two `pathkernel report --format json`) number by number.

  python3 Tools/slurm/compare_json.py A.json B.json [--rtol 1e-12] [--atol 1e-13] [--ignore KEY]...

Exits 0 when they match, 1 naming the first differing key (a path like
`kernel_machines[2].test.rmse`), 2 on bad input. Two numbers match when
    |a - b| <= rtol * max(|a|, |b|) + atol.
rtol (default 1e-12) is the issue-13 target. atol (default 1e-13) is there for numbers that are
themselves round-off: residuals of ~1e-14, a kernel distance of -1e-15 at step 0. Summing the
steps in another order (shards) changes those in their last bits, which is 100 % of their value;
1e-13 is below anything the analysis reports as a real quantity. Booleans, strings, nulls, key sets
and array lengths must be equal. Keys named in --ignore (default: `seconds`, wall time, and
`sharding`, which only a merged analysis has) are skipped wherever they occur. Python 3 standard library only.

What does *not* hold: the relation is not transitive, and a number that is legitimately below atol
in magnitude is compared only absolutely.
"""
import argparse
import json
import math
import sys

DEFAULT_IGNORE = ("seconds", "sharding")


class Comparison:
    def __init__(self, rtol=1e-12, atol=1e-13, ignore=DEFAULT_IGNORE):
        self.rtol, self.atol, self.ignore = rtol, atol, set(ignore)
        self.numbers = 0
        self.worst = (0.0, None)  # largest |a-b| / max(|a|,|b|) among numbers above atol, and where

    def first_difference(self, a, b, path=""):
        """None when a and b match, else a message naming the first differing key."""
        if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
            return None if a == b and type(a) is type(b) else f"{path or '(root)'}: {a!r} != {b!r}"
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return self._numbers(a, b, path)
        if isinstance(a, dict) and isinstance(b, dict):
            keys_a = {k for k in a if k not in self.ignore}
            keys_b = {k for k in b if k not in self.ignore}
            if keys_a != keys_b:
                only_a, only_b = sorted(keys_a - keys_b), sorted(keys_b - keys_a)
                return f"{path or '(root)'}: keys only in the first: {only_a}, only in the second: {only_b}"
            for k in sorted(keys_a):
                d = self.first_difference(a[k], b[k], f"{path}.{k}" if path else k)
                if d:
                    return d
            return None
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return f"{path or '(root)'}: {len(a)} elements != {len(b)}"
            for i, (x, y) in enumerate(zip(a, b)):
                d = self.first_difference(x, y, f"{path}[{i}]")
                if d:
                    return d
            return None
        return f"{path or '(root)'}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"

    def _numbers(self, a, b, path):
        self.numbers += 1
        if math.isnan(a) or math.isnan(b):
            return None if math.isnan(a) and math.isnan(b) else f"{path}: {a!r} != {b!r}"
        if math.isinf(a) or math.isinf(b):
            return None if a == b else f"{path}: {a!r} != {b!r}"
        diff, scale = abs(a - b), max(abs(a), abs(b))
        if scale > self.atol and diff / scale > self.worst[0]:
            self.worst = (diff / scale, path)
        if diff <= self.rtol * scale + self.atol:
            return None
        rel = diff / scale if scale else math.inf
        return f"{path}: {a!r} != {b!r} (relative difference {rel:.3g} > {self.rtol:g})"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--rtol", type=float, default=1e-12)
    p.add_argument("--atol", type=float, default=1e-13)
    p.add_argument("--ignore", action="append", help="a key to skip wherever it occurs (default: seconds, sharding)")
    args = p.parse_args(argv)
    try:
        with open(args.first) as f:
            a = json.load(f)
        with open(args.second) as f:
            b = json.load(f)
    except (OSError, ValueError) as e:
        print(f"compare_json: error: {e}", file=sys.stderr)
        return 2
    c = Comparison(args.rtol, args.atol, args.ignore if args.ignore is not None else DEFAULT_IGNORE)
    d = c.first_difference(a, b)
    if d:
        print(f"differ: {d}")
        return 1
    print(f"match: {c.numbers} numbers within rtol {args.rtol:g} + atol {args.atol:g}; "
          f"largest relative difference {c.worst[0]:.3g}" + (f" at {c.worst[1]}" if c.worst[1] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
