#!/usr/bin/env python3
"""The two polynomials of pathkernel's tanh (Sources/CKernels/pk_kernels.c, `pk_tanh`), derived
with mpmath (50 digits), and a check of the C formula, written out in Python floats (IEEE double,
the same operations in the same order, no FMA), against mpmath's tanh.

    python3 Tools/reference/tanh_coefficients.py [--check N]

1. p(s), degree 11: the Chebyshev fit of (tanh √s/√s − 1)/s on s ∈ [0, 0.625²], so that
   tanh x = x + (x·s)·p(s) for |x| < 0.625 (fit error 3.9e-18; degree 10 would be 1.1e-16).
2. e(r), degree 11: the Chebyshev fit of e^r on [−ln2/2, ln2/2] (fit error 3.2e-18), for
   u = e^{−2|x|} = 2^k e^r and tanh |x| = (1 − u)/(1 + u) from |x| ≥ 0.625.

Prints both coefficient lists (highest degree first, C hex literals, as pk_kernels.c holds them)
and, with --check N, the largest error in ulps of the formula over N points of [0, 25] (denser
near 0): 1.83 when these lines were written (session 24; PKNumericsTests' TanhTests asserts at most
2 against the x87 `tanhl`).
"""
import math
import random
import struct
import sys

import mpmath as mp

mp.mp.dps = 50
SMALL = mp.mpf("0.625")


def p_target(s):
    if s == 0:
        return mp.mpf(-1) / 3
    r = mp.sqrt(s)
    return (mp.tanh(r) / r - 1) / s


def fits():
    p, perr = mp.chebyfit(p_target, [0, SMALL ** 2], 12, error=True)
    h = mp.log(2) / 2
    e, eerr = mp.chebyfit(mp.exp, [-h, h], 12, error=True)
    return [float(c) for c in p], perr, [float(c) for c in e], eerr


def horner2(cs, x):
    """Two chains (even and odd coefficients), as pk_tanh evaluates them."""
    x2 = x * x
    even, odd = cs[0], cs[1]
    for c in range(2, 12, 2):
        even = even * x2 + cs[c]
        odd = odd * x2 + cs[c + 1]
    return even * x + odd


def tanh_c(x, p, e):
    ln2hi, ln2lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
    invln2, shifter = 1.44269504088896338700e+00, float.fromhex("0x1.8p52")
    a = abs(x)
    s = a * a
    small = a + (a * s) * horner2(p, s)
    y = min(2 * a, 40.0)
    shifted = y * -invln2 + shifter
    k = shifted - shifter
    r = (-y - k * ln2hi) - k * ln2lo
    u = horner2(e, r) * 2.0 ** int(k)
    large = (1 - u) / (1 + u)
    return math.copysign(small if a < 0.625 else large, x)


def ulps(got, x):
    exact = mp.tanh(mp.mpf(x))
    if exact == 0:
        return 0.0
    spacing = math.ulp(float(exact))
    return float(abs(mp.mpf(got) - exact) / spacing)


def main():
    p, perr, e, eerr = fits()
    print("p (fit error %s):" % mp.nstr(perr, 3))
    print(", ".join(c.hex() for c in p))
    print("e (fit error %s):" % mp.nstr(eerr, 3))
    print(", ".join(c.hex() for c in e))
    if "--check" in sys.argv:
        n = int(sys.argv[sys.argv.index("--check") + 1])
        rng = random.Random(24)
        worst, at = 0.0, 0.0
        for i in range(n):
            x = rng.uniform(0, 1.5) if i % 2 else rng.uniform(0, 25)
            err = ulps(tanh_c(x, p, e), x)
            if err > worst:
                worst, at = err, x
        print("largest error over %d points: %.2f ulp at %r" % (n, worst, at))


if __name__ == "__main__":
    main()
