#!/usr/bin/env python3
"""Reference stream of PortableRandom (splitmix64 seeding + xoshiro256**), independent of Swift.

Prints the first outputs for a seed; Tests/PKNumericsTests uses the values for seed 42.
Usage: python3 Tools/reference/xoshiro.py [SEED] [COUNT]
"""
import sys

M = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


def stream(seed, count):
    s = []
    st = seed & M
    for _ in range(4):
        st, z = splitmix64(st)
        s.append(z)
    out = []
    for _ in range(count):
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        out.append(result)
    return out


if __name__ == "__main__":
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    print(", ".join(str(v) for v in stream(seed, count)))
