#!/usr/bin/env python3
"""Write a W1-format export with random (seeded) weights and an NTK computed by an independent
NumPy implementation, so that neural_tangents_w1.py can be exercised without pathkernel.

Usage:
    python make_fake_export.py OUT_DIR [--layers 64,512,512,512,1] [--activation relu]
        [--queries 200] [--train 1000] [--seed 0] [--sigma-w 1.4142...] [--sigma-b 0.1] [--no-bias]
        [--parameterization ntk|standard] [--leaky-slope 0.01]
        [--pathkernel-seconds F64 F32]   (made-up timings, only to exercise the ratio column)

Writes the files of `pathkernel bench --workload W1 --export DIR` (see neural_tangents_w1.py):
w1.json, x_query.npy, x_train.npy, layers.{l}.weight.npy (out, in), layers.{l}.bias.npy,
kernel_f64.npy and kernel_f32.npy (the same formula evaluated in float32).

The kernel is the structured (layer-wise) form of the empirical NTK, summed over the C outputs:

    Θ(x, x') = Σ_l Σ_c ⟨δ_l^c(x), δ_l^c(x')⟩ · (s_l² ⟨a_l(x), a_l(x')⟩ + β_l²)

with a_0 = x, z_l = s_l W_l a_l + β_l b_l, a_{l+1} = φ(z_l), f = z_{L-1};
δ_l^c = ∂f_c/∂z_l (δ_{L-1}^c = e_c, δ_{l-1}^c = (s_l W_lᵀ δ_l^c) ⊙ φ'(z_{l-1}));
s_l = σ_w/√d_l and β_l = σ_b under 'ntk', s_l = β_l = 1 under 'standard' (β_l = 0 without bias).
In matrices: Θ = Σ_l (Δ_l Δ_l'ᵀ) ⊙ (s_l² A_l A_l'ᵀ + β_l²). Only NumPy (and SciPy's erf for
'erf' and 'gelu') is used: no autodiff, nothing shared with neural-tangents.
"""

import argparse
import json
import os

import numpy as np

ACTIVATIONS = ("identity", "relu", "leaky-relu", "tanh", "sigmoid", "gelu", "erf", "softplus")


def activation(name, z, alpha):
    """(φ(z), φ'(z)) with pathkernel's conventions (φ'(0) = 0 for relu, α for leaky-relu)."""
    if name == "identity":
        return z, np.ones_like(z)
    if name == "relu":
        return np.where(z > 0, z, 0), (z > 0).astype(z.dtype)
    if name == "leaky-relu":
        return np.where(z > 0, z, alpha * z), np.where(z > 0, 1, alpha).astype(z.dtype)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        return s, s * (1 - s)
    if name == "softplus":
        e = np.exp(-np.abs(z))
        s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        return np.maximum(z, 0) + np.log1p(e), s
    from scipy.special import erf, erfc  # only these two need SciPy

    if name == "erf":
        return erf(z), (2 / np.sqrt(np.pi)) * np.exp(-z * z)
    if name == "gelu":
        cdf = 0.5 * erfc(-z / np.sqrt(2))
        return z * cdf, cdf + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    raise ValueError(f"unknown activation {name}")


def structured_ntk(x1, x2, weights, biases, spec, dtype):
    """Θ(x1, x2) summed over outputs, evaluated entirely in `dtype`."""
    layers = spec["layers"]
    L = len(layers) - 1
    n_out = layers[-1]

    def scales(l):
        if spec["parameterization"] == "ntk":
            s, beta = spec["sigma_w"] / np.sqrt(layers[l]), spec["sigma_b"]
        else:
            s, beta = 1.0, 1.0
        return dtype(s), dtype(beta if biases[l] is not None else 0.0)

    def forward_backward(x):
        """Inputs a_l of every layer and Δ_l of shape (n, C, d_{l+1})."""
        a = [x.astype(dtype)]
        dphi = []
        for l in range(L):
            s, beta = scales(l)
            z = s * (a[l] @ weights[l].T)
            if biases[l] is not None:
                z = z + beta * biases[l]
            if l < L - 1:
                value, derivative = activation(spec["activation"], z, dtype(spec["leaky_slope"]))
                a.append(value.astype(dtype))
                dphi.append(derivative.astype(dtype))
        n = x.shape[0]
        deltas = [None] * L
        deltas[L - 1] = np.broadcast_to(np.eye(n_out, dtype=dtype), (n, n_out, n_out)).copy()
        for l in range(L - 1, 0, -1):
            s, _ = scales(l)
            back = s * (deltas[l] @ weights[l])  # (n, C, d_l)
            deltas[l - 1] = back * dphi[l - 1][:, None, :]
        return a, deltas

    a1, d1 = forward_backward(x1)
    a2, d2 = forward_backward(x2)
    theta = np.zeros((x1.shape[0], x2.shape[0]), dtype=dtype)
    for l in range(L):
        s, beta = scales(l)
        dd = np.einsum("icd,jcd->ij", d1[l], d2[l], optimize=True).astype(dtype)
        aa = (s * s) * (a1[l] @ a2[l].T) + beta * beta
        theta += dd * aa
    return theta


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--layers", default="64,512,512,512,1")
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sigma-w", type=float, default=2 ** 0.5, help="default √2, as pathkernel's W1")
    p.add_argument("--sigma-b", type=float, default=0.1)
    p.add_argument("--no-bias", action="store_true")
    p.add_argument("--parameterization", default="ntk", choices=("ntk", "standard"))
    p.add_argument("--leaky-slope", type=float, default=0.01)
    p.add_argument("--pathkernel-seconds", type=float, nargs=2, metavar=("F64", "F32"),
                   help="made-up pathkernel timings to put in w1.json (testing the ratio column only)")
    args = p.parse_args()

    layers = [int(v) for v in args.layers.split(",")]
    spec = {"layers": layers, "activation": args.activation, "parameterization": args.parameterization,
            "sigma_w": args.sigma_w, "sigma_b": args.sigma_b, "bias": not args.no_bias,
            "leaky_slope": args.leaky_slope}
    rng = np.random.default_rng(args.seed)
    x_query = rng.standard_normal((args.queries, layers[0]))
    x_train = rng.standard_normal((args.train, layers[0]))
    weights, biases = [], []
    for l in range(len(layers) - 1):
        w = rng.standard_normal((layers[l + 1], layers[l]))
        b = rng.standard_normal(layers[l + 1]) if spec["bias"] else None
        if args.parameterization == "standard":  # pathkernel stores the scaled values
            w *= args.sigma_w / np.sqrt(layers[l])
            b = None if b is None else b * args.sigma_b
        weights.append(w)
        biases.append(b)

    k64 = structured_ntk(x_query, x_train, weights, biases, spec, np.float64)
    k32 = structured_ntk(x_query.astype(np.float32), x_train.astype(np.float32),
                         [w.astype(np.float32) for w in weights],
                         [None if b is None else b.astype(np.float32) for b in biases], spec, np.float32)

    os.makedirs(args.out_dir, exist_ok=True)
    meta = {"layers": layers, "activation": args.activation, "parameterization": args.parameterization,
            "sigma_w": args.sigma_w, "sigma_b": args.sigma_b, "bias": spec["bias"],
            "queries": args.queries, "train": args.train, "fake": True, "seed": args.seed}
    if args.activation == "leaky-relu":
        meta["leaky_slope"] = args.leaky_slope
    if args.pathkernel_seconds:
        meta["pathkernel"] = {"f64": {"seconds": args.pathkernel_seconds[0]},
                              "f32": {"seconds": args.pathkernel_seconds[1]}}
    with open(os.path.join(args.out_dir, "w1.json"), "w") as f:
        json.dump(meta, f, indent=2)
    np.save(os.path.join(args.out_dir, "x_query.npy"), x_query)
    np.save(os.path.join(args.out_dir, "x_train.npy"), x_train)
    for l, (w, b) in enumerate(zip(weights, biases)):
        np.save(os.path.join(args.out_dir, f"layers.{l}.weight.npy"), w)
        if b is not None:
            np.save(os.path.join(args.out_dir, f"layers.{l}.bias.npy"), b)
    np.save(os.path.join(args.out_dir, "kernel_f64.npy"), k64)
    np.save(os.path.join(args.out_dir, "kernel_f32.npy"), k32.astype(np.float32))
    rel = np.linalg.norm(k32.astype(np.float64) - k64) / np.linalg.norm(k64)
    print(f"wrote {args.out_dir}: MLP {args.layers} {args.activation}, {args.queries} x {args.train} kernel "
          f"(f32 vs f64 relative Frobenius {rel:.2e})")


if __name__ == "__main__":
    main()
