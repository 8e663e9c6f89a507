#!/usr/bin/env python3
"""Loads a kernel file written by `pathkernel ntk --out` with NumPy and prints it as JSON.

    python3 Tools/checks/npy_load.py K.npy      ->  {"shape": [r, c], "dtype": "float64",
                                                     "fortran_order": false, "data": [...]}
    python3 Tools/checks/npy_load.py K.csv      (numpy.loadtxt, delimiter ',')

The oracle of `NTKCommandTests.numpyReadsTheFiles`: NumPy's own reader (format.read_magic,
read_array_header_1_0) parses what pathkernel wrote. Needs numpy.
"""
import json
import sys

import numpy as np
from numpy.lib import format as npformat


def main(path):
    if path.endswith(".npy"):
        with open(path, "rb") as f:
            version = npformat.read_magic(f)
            if version != (1, 0):
                raise SystemExit(f"{path}: format version {version}, expected (1, 0)")
            shape, fortran_order, dtype = npformat.read_array_header_1_0(f)
        array = np.load(path, allow_pickle=False)
        if array.shape != shape:
            raise SystemExit(f"{path}: header shape {shape}, loaded {array.shape}")
    else:
        array = np.loadtxt(path, delimiter=",", ndmin=2)
        fortran_order, dtype = False, array.dtype
    out = {"shape": list(array.shape), "dtype": str(dtype), "fortran_order": bool(fortran_order),
           "little_endian": array.dtype.byteorder in ("<", "=") and sys.byteorder == "little" or array.dtype.byteorder == "<",
           "data": [float(v) for v in array.ravel(order="C")]}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
