#!/usr/bin/env python3
"""`pathkernel cntk` against an independent NumPy implementation of the CNTK recursion
(ntk-family contract §3) on seeded random images: several nets (same/valid, gap/flatten, 1–3
layers, 3×3 and 5×5 filters, relu/erf, with and without bias, non-square multi-channel images).

    python3 Tools/compare/cntk_numpy_check.py [--pathkernel .build/release/pathkernel] [--seed 0]

The recursion here works on whole 4-D arrays [h, w, h', w'] (the window as a shifted sum of
padded arrays), reads each image's variances from its own pixel-pair matrix, and uses the
closed forms of §1 (relu: arc-cosine; erf: Williams). Exit 1 when an entry differs by more than
1e-12 relative to the matrix's largest entry. NumPy only; not part of CI.
"""
import argparse, json, math, os, subprocess, sys, tempfile
import numpy as np

TOLERANCE = 1e-12


def expectation(act, q1, q2, c):
    """E[φ(u)φ(v)], E[φ'(u)φ'(v)] elementwise (arrays broadcast)."""
    if act == "relu":
        prod = q1 * q2
        s = np.sqrt(np.maximum(prod - c * c, 0))
        theta = np.where(prod == 0, math.pi / 2, np.arctan2(s, c))
        d = 0.5 - theta / (2 * math.pi)
        return s / (2 * math.pi) + d * c, d
    if act == "erf":
        p = (1 + 2 * q1) * (1 + 2 * q2)
        gap = 1 + 2 * (q1 + q2) + 4 * np.maximum(q1 * q2 - c * c, 0)
        return 2 / math.pi * np.arcsin(np.clip(2 * c / np.sqrt(p), -1, 1)), 4 / math.pi / np.sqrt(gap)
    raise ValueError(act)


def window(m, q, pad, out_h, out_w):
    """S[h,w,h',w'] = Σ_δ m[h+a−pad, w+b−pad, h'+a−pad, w'+b−pad] (zero outside)."""
    hi, wi = m.shape[0], m.shape[1]
    padded = np.zeros((hi + 2 * q, wi + 2 * q, hi + 2 * q, wi + 2 * q))
    padded[q:q + hi, q:q + wi, q:q + hi, q:q + wi] = m
    s = np.zeros((out_h, out_w, out_h, out_w))
    for a in range(q):
        for b in range(q):
            r0, c0 = q + a - pad, q + b - pad
            s += padded[r0:r0 + out_h, c0:c0 + out_w, r0:r0 + out_h, c0:c0 + out_w]
    return s


def cntk(x, y, net):
    h, w, _ = x.shape
    q, layers, act = net["filter"], net["layers"], net["activation"]
    pad = (q - 1) // 2 if net["padding"] == "same" else 0
    sw2, sb2 = net["sigmaW"] ** 2, net["sigmaB"] ** 2
    k = {key: np.einsum("hwc,ijc->hwij", a, b) / x.shape[2] for key, (a, b) in
         {"xy": (x, y), "xx": (x, x), "yy": (y, y)}.items()}
    g = None
    for _ in range(layers):
        oh, ow = (h, w) if net["padding"] == "same" else (h - q + 1, w - q + 1)
        sig = {key: sw2 / q ** 2 * window(v, q, pad, oh, ow) + sb2 for key, v in k.items()}
        theta = sig["xy"] + (0 if g is None else sw2 / q ** 2 * window(g, q, pad, oh, ow))
        n = oh * ow
        diag = {key: np.diag(v.reshape(n, n)).reshape(oh, ow) for key, v in sig.items()}
        vx, vy = diag["xx"][:, :, None, None], diag["yy"][None, None, :, :]
        value, deriv = expectation(act, vx, vy, sig["xy"])
        k = {"xy": value,
             "xx": expectation(act, diag["xx"][:, :, None, None], diag["xx"][None, None, :, :], sig["xx"])[0],
             "yy": expectation(act, diag["yy"][:, :, None, None], diag["yy"][None, None, :, :], sig["yy"])[0]}
        g = deriv * theta
        h, w = oh, ow
    n = h * w
    kk, gg = k["xy"].reshape(n, n), g.reshape(n, n)
    kbar, tbar = (kk.mean(), gg.mean()) if net["readout"] == "gap" else (np.trace(kk) / n, np.trace(gg) / n)
    nngp = sw2 * kbar + sb2
    return nngp, nngp + sw2 * tbar


NETS = [
    dict(shape=(4, 4, 2), layers=2, filter=3, padding="same", readout="gap", activation="relu", sigmaW=2 ** 0.5, sigmaB=0.0),
    dict(shape=(5, 4, 3), layers=1, filter=3, padding="valid", readout="gap", activation="relu", sigmaW=1.3, sigmaB=0.3),
    dict(shape=(6, 5, 1), layers=3, filter=3, padding="same", readout="flatten", activation="erf", sigmaW=1.5, sigmaB=0.1),
    dict(shape=(7, 6, 2), layers=1, filter=5, padding="valid", readout="flatten", activation="relu", sigmaW=2 ** 0.5, sigmaB=0.0),
    dict(shape=(5, 5, 2), layers=2, filter=5, padding="same", readout="gap", activation="erf", sigmaW=1.2, sigmaB=0.2),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pathkernel", default=".build/release/pathkernel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=4)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for net in NETS:
            h, w, c = net["shape"]
            images = rng.normal(size=(args.images, h, w, c))
            path = os.path.join(tmp, "x.csv")
            np.savetxt(path, np.hstack([images.reshape(args.images, -1), np.zeros((args.images, 1))]), delimiter=",", fmt="%.17g")
            spec = json.dumps({"kind": "csv", "path": path, "header": False, "test": 0, "shuffle": False})
            cmd = [args.pathkernel, "cntk", "--data", spec, "--image", f"{h},{w},{c}", "--conv-layers", str(net["layers"]),
                   "--filter", str(net["filter"]), "--padding", net["padding"], "--readout", net["readout"],
                   "--activation", net["activation"], "--sigma-w", repr(net["sigmaW"]), "--sigma-b", repr(net["sigmaB"]), "--json"]
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            for key, index in (("nngp", 0), ("ntk", 1)):
                got = np.array(out[key])
                want = np.array([[cntk(images[i], images[j], net)[index] for j in range(args.images)] for i in range(args.images)])
                err = np.abs(got - want).max() / np.abs(want).max()
                worst_all = max(worst_all, err)
                print(f"{h}×{w}×{c} L_c={net['layers']} q={net['filter']} {net['padding']:5} {net['readout']:7} "
                      f"{net['activation']:4} σ_b={net['sigmaB']}  {key:4}  max rel diff {err:.2e}")
    ok = worst_all <= TOLERANCE
    print(f"worst {worst_all:.2e} ({'within' if ok else 'ABOVE'} {TOLERANCE:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
