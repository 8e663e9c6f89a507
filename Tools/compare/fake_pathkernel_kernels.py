#!/usr/bin/env python3
"""A stand-in for `pathkernel bench --workload W1 --kernels-only --repeats R --json`, to test
interleave_w1.py without the Swift build: times make_fake_export.structured_ntk (NumPy) on an
export's problem, one warm-up and R timed calls per precision, and prints the same JSON shape
({"W1-kernels": {"f64": {"seconds", "times", "gflops"}, "f32": …, "blas": …}}). Its "blas"
names no OpenBLAS core ("fake (NumPy)") but reports OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as this
process sees them, as pathkernel does.

Usage:
    python fake_pathkernel_kernels.py EXPORT_DIR [--repeats 3]
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import make_fake_export  # noqa: E402
import neural_tangents_w1 as ntw1  # noqa: E402  (load_export only; TensorFlow is not imported)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    export = ntw1.load_export(args.export_dir)
    out = {}
    kernels = {}
    for name, dtype in (("f64", np.float64), ("f32", np.float32)):
        weights = [w.astype(dtype) for w in export["weights"]]
        biases = [None if b is None else b.astype(dtype) for b in export["biases"]]
        x1, x2 = export["x_query"].astype(dtype), export["x_train"].astype(dtype)

        def call():
            return make_fake_export.structured_ntk(x1, x2, weights, biases, export["spec"], dtype)

        kernels[name] = call()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        out[name] = {"seconds": statistics.median(times), "times": times, "gflops": 0.0}
    out["relative_error_f32_vs_f64"] = ntw1.rel_fro(kernels["f32"], kernels["f64"])
    out["blas"] = {"library": "NumPy", "core_name": "fake (NumPy)", "config": np.__version__,
                   "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
                   "openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE")}
    print(json.dumps({"W1-kernels": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
