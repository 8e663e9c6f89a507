#!/usr/bin/env python3
"""Exact integrated Jacobians of a piecewise-linear network along a weight segment (issue 16):
a brute-force oracle and an event sweep with local corrections, in plain NumPy.

For one query x and one segment w(t) = w0 + t·Δw, t ∈ [0, 1], the analysis needs

    J̄ = ∫₀¹ J(x; w(t)) dt            (C × P: C outputs, P parameters)

for a network of conv 3×3 'same' (with bias), relu, maxpool 2, flatten and dense layers. On a piece
of t where every relu mask and every pool window's arg-max (the *pattern*) is fixed, J is a
polynomial of degree D − 1 (D = number of layers with parameters). This script computes J̄ three
ways and counts the multiply-adds of each (see exact_cnn_sweep.md next to it):

1. `oracle`: brute force. Sample the pattern densely, bisect every change of every relu unit and
   every pool window to 1e-15, integrate each piece with 4-node Gauss–Legendre.
2. `telescoped`: the identity ∫₀¹J = ∫₀¹J_{P0} + Σ_k ∫_{t_k}^1 (J_{Pk} − J_{Pk−1}) on the oracle's
   pieces, every J_P a full frozen-pattern Jacobian (validates the identity, not cheap).
3. `Sweep`: the event sweep. Polynomial coefficients of every activation (and of the output
   cotangents above the second parameter layer) under the current pattern, a heap of each relu
   unit's next sign change and each pool window's next arg-max switch; at each event only the
   flipped unit's forward cone (activations) and backward cone (cotangents) are updated, and the
   correction J_{Pk} − J_{Pk−1}, non-zero only on those cones' parameters, is integrated on [t_k, 1]
   exactly from its coefficients.

    python3 Tools/reference/exact_cnn_sweep.py            # self-test on small sizes (seconds)
    python3 Tools/reference/exact_cnn_sweep.py --counts   # fmnist-cnn sizes: operation counts

Multiply-adds are counted by formula at each array operation (category in OPS); comparisons,
copies and Python overhead are not counted. Wall time means nothing here.
"""
import argparse
import contextlib
import gzip
import heapq
import math
import os
import sys

import numpy as np

# ----------------------------------------------------------------------------------------------
# Operation counter: multiply-adds by category.
OPS = {}
_CAT = ['other']


@contextlib.contextmanager
def category(name):
    _CAT.append(name)
    try:
        yield
    finally:
        _CAT.pop()


def count(n):
    OPS[_CAT[-1]] = OPS.get(_CAT[-1], 0) + int(n)


# ----------------------------------------------------------------------------------------------
# The network: a list of layers, parameters in one flat vector (per layer W then b).

class Net:
    def __init__(self, in_shape, spec):
        self.in_shape = tuple(in_shape)
        self.layers = []
        shape, off = self.in_shape, 0
        for kind, *arg in spec:
            L = {'kind': kind, 'inp': shape}
            if kind == 'conv':
                cin, h, w = shape
                L.update(Wshape=(arg[0], cin, 3, 3), bshape=(arg[0],), off=off)
                shape = (arg[0], h, w)
            elif kind == 'dense':
                (n,) = shape
                L.update(Wshape=(arg[0], n), bshape=(arg[0],), off=off)
                shape = (arg[0],)
            elif kind == 'maxpool':
                c, h, w = shape
                assert h % 2 == 0 and w % 2 == 0
                shape = (c, h // 2, w // 2)
            elif kind == 'flatten':
                shape = (int(np.prod(shape)),)
            else:
                assert kind == 'relu'
            if kind in ('conv', 'dense'):
                L['nW'] = int(np.prod(L['Wshape']))
                L['nb'] = L['bshape'][0]
                off += L['nW'] + L['nb']
            L['out'] = shape
            self.layers.append(L)
        self.P, self.C = off, shape[0]
        self.params = [l for l, L in enumerate(self.layers) if L['kind'] in ('conv', 'dense')]
        self.D = len(self.params)      # f has degree D in t on a piece, J degree D − 1
        # a pool right after a relu compares the relu's inputs (maxpool∘relu = relu∘maxpool)
        self.fused = {l: l > 0 and self.layers[l - 1]['kind'] == 'relu'
                      for l, L in enumerate(self.layers) if L['kind'] == 'maxpool'}
        # pool index tables: input flat index of each window's 4 entries (r = 2·dy + dx)
        self.win_entries, self.entry_window, self.entry_pos = {}, {}, {}
        for l, L in enumerate(self.layers):
            if L['kind'] == 'maxpool':
                c, H, W = L['inp']
                idx = np.arange(c * H * W).reshape(c, H, W)
                self.win_entries[l] = pool_windows(idx).reshape(-1, 4)
                ew = np.empty(c * H * W, int)
                ep = np.empty(c * H * W, int)
                ew[self.win_entries[l]] = np.arange(self.win_entries[l].shape[0])[:, None]
                ep[self.win_entries[l]] = np.arange(4)[None, :]
                self.entry_window[l], self.entry_pos[l] = ew, ep

    def init_params(self, rng, bias=0.1):
        w = np.zeros(self.P)
        for l in self.params:
            L = self.layers[l]
            fan = int(np.prod(L['Wshape'][1:]))
            gain = 1.0 if l == self.params[-1] else 2.0
            w[L['off']:L['off'] + L['nW']] = rng.standard_normal(L['nW']) * math.sqrt(gain / fan)
            w[L['off'] + L['nW']:L['off'] + L['nW'] + L['nb']] = bias * rng.standard_normal(L['nb'])
        return w

    def unpack(self, w):
        """w (..., P) -> per layer (W, b) with the leading dims, None for layers without."""
        out = []
        for L in self.layers:
            if 'off' in L:
                o, nW, nb = L['off'], L['nW'], L['nb']
                out.append((w[..., o:o + nW].reshape(w.shape[:-1] + L['Wshape']),
                            w[..., o + nW:o + nW + nb]))
            else:
                out.append(None)
        return out


def pool_windows(a):
    """(..., c, H, W) -> (..., c, H/2, W/2, 4), entry r = 2·dy + dx."""
    *lead, c, H, W = a.shape
    return a.reshape(*lead, c, H // 2, 2, W // 2, 2).swapaxes(-3, -2).reshape(
        *lead, c, H // 2, W // 2, 4)


def pool_unwindows(a):
    *lead, c, h, w, _ = a.shape
    return a.reshape(*lead, c, h, w, 2, 2).swapaxes(-3, -2).reshape(*lead, c, 2 * h, 2 * w)


def windows3(a):
    """(..., c, H, W) -> (..., c, H, W, 3, 3): zero-padded 3×3 neighbourhoods, [k, l] = a[y+k−1, x+l−1]."""
    pad = [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)]
    return np.lib.stride_tricks.sliding_window_view(np.pad(a, pad), (3, 3), axis=(-2, -1))


def _lead(*shapes):
    return int(np.prod(np.broadcast_shapes(*shapes)))


def conv_fwd(a, W):
    """a (..., cin, H, W), W (..., cout, cin, 3, 3) -> (..., cout, H, W) ('same', no bias)."""
    cout, cin = W.shape[-4], W.shape[-3]
    H, Wd = a.shape[-2:]
    count(_lead(a.shape[:-3], W.shape[:-4]) * cout * cin * 9 * H * Wd)
    return np.einsum('...ihwkl,...oikl->...ohw', windows3(a), W, optimize=True)


def conv_bwd(g, W):
    """Cotangent of conv_fwd's input: g (..., cout, H, W) -> (..., cin, H, W)."""
    cout, cin = W.shape[-4], W.shape[-3]
    H, Wd = g.shape[-2:]
    count(_lead(g.shape[:-3], W.shape[:-4]) * cout * cin * 9 * H * Wd)
    return np.einsum('...ohwkl,...oikl->...ihw', windows3(g), W[..., ::-1, ::-1], optimize=True)


def conv_wgrad(g, a):
    """Weight rows: g (..., cout, H, W), a (..., cin, H, W) -> (..., cout, cin, 3, 3)."""
    cout, cin = g.shape[-3], a.shape[-3]
    H, Wd = g.shape[-2:]
    count(_lead(g.shape[:-3], a.shape[:-3]) * cout * cin * 9 * H * Wd)
    return np.einsum('...ohw,...ihwkl->...oikl', g, windows3(a), optimize=True)


# ----------------------------------------------------------------------------------------------
# Full evaluation: forward, C backward passes, the C × P rows. Batched over T weight vectors.
# pattern None: the actual network (masks and arg-maxes from the values, first entry on ties);
# otherwise the given frozen pattern (per layer: relu mask, pool arg-max index), broadcast over T.

def forward(net, x, w, pattern=None):
    T = w.shape[0]
    prm = net.unpack(w)
    a = np.broadcast_to(x, (T,) + x.shape)
    acts, pat = [a], []
    for l, L in enumerate(net.layers):
        k, p = L['kind'], None
        if k == 'conv':
            W, b = prm[l]
            a = conv_fwd(a, W) + b[..., None, None]
        elif k == 'dense':
            W, b = prm[l]
            count(T * W[0].size)
            a = np.einsum('tj,toj->to', a, W) + b
        elif k == 'relu':
            p = (a > 0) if pattern is None else pattern[l]
            a = a * p
        elif k == 'maxpool':
            win = pool_windows(a)
            p = np.argmax(win, -1) if pattern is None else pattern[l]
            a = np.take_along_axis(win, np.broadcast_to(p, win.shape[:-1])[..., None], -1)[..., 0]
        elif k == 'flatten':
            a = a.reshape(T, -1)
        pat.append(p)
        acts.append(a)
    return acts, pat


def jacobian(net, x, w, pattern=None):
    """J (T, C, P) at the T weight vectors w (T, P), and the outputs f (T, C)."""
    T, C = w.shape[0], net.C
    prm = net.unpack(w)
    acts, pat = forward(net, x, w, pattern)
    J = np.zeros((T, C, net.P))
    g = np.broadcast_to(np.eye(C), (T, C, C))
    for l in reversed(range(net.params[0], len(net.layers))):
        L, k, a = net.layers[l], net.layers[l]['kind'], acts[l]
        if k in ('conv', 'dense'):
            W, b = prm[l]
            o, nW = L['off'], L['nW']
            if k == 'conv':
                J[:, :, o:o + nW] = conv_wgrad(g, a[:, None]).reshape(T, C, nW)
                J[:, :, o + nW:o + nW + L['nb']] = g.sum((-2, -1))
                if l > net.params[0]:
                    g = conv_bwd(g, W[:, None])
            else:
                count(T * C * nW)
                J[:, :, o:o + nW] = (g[..., :, None] * a[:, None, None, :]).reshape(T, C, nW)
                J[:, :, o + nW:o + nW + L['nb']] = g
                if l > net.params[0]:
                    count(T * C * nW)
                    g = np.einsum('tco,toj->tcj', g, W)
        elif k == 'relu':
            g = g * pat[l][:, None]
        elif k == 'maxpool':
            r = np.broadcast_to(pat[l][:, None], g.shape)
            out = np.zeros(g.shape + (4,))
            np.put_along_axis(out, r[..., None], g[..., None], -1)
            g = pool_unwindows(out)
        elif k == 'flatten':
            g = g.reshape((T, C) + L['inp'])
    return J, acts[-1], pat


def jacobian_chunked(net, x, ws, pattern=None, chunk=256):
    out = [jacobian(net, x, ws[i:i + chunk], pattern)[0] for i in range(0, len(ws), chunk)]
    return np.concatenate(out)


def gauss01(q):
    t, wt = np.polynomial.legendre.leggauss(q)
    return 0.5 * (t + 1), 0.5 * wt


# ----------------------------------------------------------------------------------------------
# 1. Brute-force oracle.

def pattern_states(net, x, w0, dw, ts, chunk=512):
    """Per t: every relu unit's mask and every pool window's arg-max, as one integer vector."""
    rows = []
    for i in range(0, len(ts), chunk):
        t = ts[i:i + chunk]
        _, pat = forward(net, x, w0 + t[:, None] * dw)
        rows.append(np.concatenate([p.reshape(len(t), -1).astype(np.int64)
                                    for p in pat if p is not None], 1))
    return np.concatenate(rows)


def oracle(net, x, w0, dw, n_grid=2049, nodes=4, tol=1e-15):
    """Breakpoints by dense sampling + bisection, then composite Gauss–Legendre per piece."""
    with category('oracle search'):
        ts = np.linspace(0.0, 1.0, n_grid)
        S = pattern_states(net, x, w0, dw, ts)
        cell, unit = np.nonzero(S[1:] != S[:-1])
        lo, hi = ts[cell].copy(), ts[cell + 1].copy()
        s_lo = S[cell, unit]
        while len(lo) and np.max(hi - lo) > tol:
            mid = 0.5 * (lo + hi)
            sm = pattern_states(net, x, w0, dw, mid)[np.arange(len(mid)), unit]
            same = sm == s_lo
            lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
        bps = np.unique(0.5 * (lo + hi))
    with category('oracle quadrature'):
        edges = np.concatenate([[0.0], bps, [1.0]])
        tn, wn = gauss01(nodes)
        a, b = edges[:-1], edges[1:]
        keep = b - a > 0
        a, b = a[keep], b[keep]
        T = (a[:, None] + (b - a)[:, None] * tn[None]).ravel()
        Wt = ((b - a)[:, None] * wn[None]).ravel()
        J = jacobian_chunked(net, x, w0 + T[:, None] * dw)
        Jbar = np.einsum('t,tcp->cp', Wt, J)
    return Jbar, bps


def composite_gauss(net, x, w0, dw, panels, nodes=4):
    tn, wn = gauss01(nodes)
    h = 1.0 / panels
    T = ((np.arange(panels)[:, None] + tn[None]) * h).ravel()
    Jbar = np.zeros((net.C, net.P))
    for i in range(0, len(T), 2048):
        J = jacobian_chunked(net, x, w0 + T[i:i + 2048, None] * dw)
        Jbar += np.einsum('t,tcp->cp', np.tile(wn * h, panels)[i:i + 2048], J)
    return Jbar


def piece_patterns(net, x, w0, dw, bps):
    edges = np.concatenate([[0.0], bps, [1.0]])
    mids = 0.5 * (edges[:-1] + edges[1:])
    pats = []
    for m in mids:
        _, pat = forward(net, x, (w0 + m * dw)[None])
        pats.append(pat)
    return pats


# ----------------------------------------------------------------------------------------------
# 2. The telescoped sum with full frozen-pattern evaluations (validates the identity).

def telescoped(net, x, w0, dw, bps, drop=None):
    q = (net.D + 1) // 2                 # Gauss exact to degree 2q − 1 ≥ D − 1
    tn, wn = gauss01(q)
    pats = piece_patterns(net, x, w0, dw, bps)
    J = jacobian(net, x, w0 + tn[:, None] * dw, pats[0])[0]
    Jbar = np.einsum('t,tcp->cp', wn, J)
    for k, tk in enumerate(bps):
        if k == drop:
            continue
        T = tk + (1 - tk) * tn
        Ja = jacobian(net, x, w0 + T[:, None] * dw, pats[k + 1])[0]
        Jb = jacobian(net, x, w0 + T[:, None] * dw, pats[k])[0]
        Jbar += np.einsum('t,tcp->cp', (1 - tk) * wn, Ja - Jb)
    return Jbar, pats


# ----------------------------------------------------------------------------------------------
# Polynomials in t: coefficient arrays, ascending powers, along axis 0 (or 1 for cotangents).

def polyval(c, t):
    """c (K, ...) at scalar t (Horner)."""
    r = np.zeros(c.shape[1:]) if c.ndim > 1 else 0.0
    for k in range(c.shape[0] - 1, -1, -1):
        r = r * t + c[k]
    return r


def sign_change_roots(c, lo, hi):
    """Sorted real roots of odd multiplicity of Σ c_k t^k in (lo, hi].
    Degree 1: −c0/c1. Degree 2: the cancellation-free closed form (Δ ≤ 0: none). Degree ≥ 3: the
    sign changes of the derivative (recursively) cut [lo, hi] into monotone intervals, and each one
    whose ends differ strictly in sign is bisected down to adjacent doubles (certified bracket)."""
    c = np.asarray(c, float)
    d = len(c) - 1
    while d >= 0 and c[d] == 0.0:
        d -= 1
    if d <= 0:
        return []
    if d == 1:
        r = [-c[0] / c[1]]
    elif d == 2:
        c0, c1, c2 = c[0], c[1], c[2]
        disc = c1 * c1 - 4.0 * c2 * c0
        if disc <= 0.0:
            return []
        q = -0.5 * (c1 + math.copysign(math.sqrt(disc), c1))
        r = sorted([q / c2, c0 / q])
    else:
        dc = c[1:d + 1] * np.arange(1, d + 1)
        ext = [e for e in sign_change_roots(dc, lo, hi) if e < hi]
        pts = [lo] + ext + [hi]
        r = []
        for a, b in zip(pts[:-1], pts[1:]):
            pa, pb = polyval(c[:d + 1], a), polyval(c[:d + 1], b)
            if pa * pb < 0.0:
                while True:
                    m = 0.5 * (a + b)
                    if m <= a or m >= b:
                        break
                    pm = polyval(c[:d + 1], m)
                    if pm == 0.0:
                        a = b = m
                        break
                    if (pm < 0.0) == (pa < 0.0):
                        a, pa = m, pm
                    else:
                        b = m
                r.append(0.5 * (a + b))
            # p(b) == 0 exactly at an extremum b is a touch (no sign change); at b = hi it is the
            # segment's end, where a change does not matter
    return [t for t in r if lo < t <= hi]


def hankel(mu, n, m):
    """H[a, b] = μ_{a+b}, a < n, b < m."""
    return np.array([[mu[a + b] for b in range(m)] for a in range(n)])


def moments(t0, n):
    """μ_j = ∫_{t0}^1 t^j dt, j < n."""
    j = np.arange(n)
    return (1.0 - t0 ** (j + 1)) / (j + 1)


# ----------------------------------------------------------------------------------------------
# 3. The event sweep.

class Sweep:
    """State under the current pattern P_k (all polynomials in t, valid for the frozen pattern on
    all of [0, 1]):
      act[j]   (K_j, N_j)     every layer boundary's activation (act[0] = x, degree 0),
      g[j]     (C, Kg_j, N_j) the output cotangents at boundaries j > L1 (L1 = the second layer
                              with parameters): cotangents further down are pulled through L1 at
                              the few entries an event needs,
      mask[l], rt[l]          relu masks, pool arg-maxes,
      Jbar     (C, P)         ∫₀¹ J_{P0} + Σ_{events so far} ∫_{t_k}^1 (J_{Pk} − J_{Pk−1}).
    """

    def __init__(self, net, x, w0, dw, drop=None):
        self.net, self.C, self.drop = net, net.C, drop
        p0, pd = net.unpack(w0), net.unpack(dw)
        self.W = {l: (p0[l][0], pd[l][0]) for l in net.params}
        self.b = {l: (p0[l][1], pd[l][1]) for l in net.params}
        self.L0 = net.params[0]
        self.L1 = net.params[1] if len(net.params) > 1 else None
        assert self.L1 is not None, 'needs two layers with parameters'
        self.heap, self.seq, self.t = [], 0, 0.0
        self.mask, self.rt, self.ver = {}, {}, {}
        self.Jbar = np.zeros((self.C, net.P))
        self.events, self.silent, self.immediate, self.event_ops = [], 0, 0, []
        self.n_effective = 0
        self.x = np.asarray(x, float)
        with category('sweep init'):
            with category('sweep init: forward polynomials'):
                self._init_forward()
            with category('sweep init: cotangent polynomials'):
                self._init_cotangents()
            with category('sweep init: integral of J_P0'):
                self._init_integral()

    # -- helpers --------------------------------------------------------------------------------
    def _push(self, t, kind, l, u, new):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, l, u, self.ver[l][u], new))

    def _cmp(self, l):
        """The array a pool compares: its input, or for a fused pool the relu's input."""
        return self.act[l - 1] if self.net.fused[l] else self.act[l]

    def relu_watch(self, l, u, t0, init=False):
        with category(_CAT[-1] + ' roots'):
            p = self.act[l][:, u]
            count(3 * len(p) + 8)
            roots = sign_change_roots(p, t0, 1.0)
            nxt = roots[0] if roots else 1.0
            state = bool(polyval(p, 0.5 * (t0 + nxt)) > 0)
            self.ver[l][u] += 1
            if init:
                self.mask[l][u] = state
            elif self.mask[l][u] != state:
                self.immediate += 1
                self._push(t0, 'relu', l, u, state)
                return
            if roots:
                after = roots[1] if len(roots) > 1 else 1.0
                self._push(roots[0], 'relu', l, u, bool(polyval(p, 0.5 * (roots[0] + after)) > 0))

    def pool_watch(self, l, w, t0, init=False):
        with category(_CAT[-1] + ' roots'):
            E = self._cmp(l)[:, self.net.win_entries[l][w]]      # (K, 4)
            K = E.shape[0]
            roots = set()
            for a in range(4):
                for b in range(a + 1, 4):
                    roots.update(sign_change_roots(E[:, a] - E[:, b], t0, 1.0))
            count(6 * (2 * K + 8))
            pts = [t0] + sorted(roots) + [1.0]
            self.ver[l][w] += 1
            for i in range(len(pts) - 1):
                count(4 * K)
                r = int(np.argmax(polyval(E, 0.5 * (pts[i] + pts[i + 1]))))
                if init and i == 0:
                    self.rt[l][w] = r
                elif r != self.rt[l][w]:
                    if i == 0:
                        self.immediate += 1
                    self._push(pts[i], 'pool', l, w, r)
                    return

    def _notify(self, j, idx, t0):
        """act[j] changed at idx: re-watch the relu units and pool windows that read it."""
        net = self.net
        if j < len(net.layers):
            k = net.layers[j]['kind']
            if k == 'relu':
                for u in idx:
                    self.relu_watch(j, int(u), t0)
                if j + 1 < len(net.layers) and net.fused.get(j + 1):
                    for w in np.unique(net.entry_window[j + 1][idx]):
                        self.pool_watch(j + 1, int(w), t0)
            elif k == 'maxpool' and not net.fused[j]:
                for w in np.unique(net.entry_window[j][idx]):
                    self.pool_watch(j, int(w), t0)

    # -- initial state ------------------------------------------------------------------------
    def _init_forward(self):
        net = self.net
        self.act = [self.x.reshape(1, -1)]
        for l, L in enumerate(net.layers):
            A, k = self.act[l], L['kind']
            Ka = A.shape[0]
            if k == 'conv':
                W, dW = self.W[l]
                b, db = self.b[l]
                Ai = A.reshape((Ka,) + L['inp'])
                Z = np.zeros((Ka + 1,) + L['out'])
                Z[:Ka] += conv_fwd(Ai, W)
                Z[1:] += conv_fwd(Ai, dW)
                Z[0] += b[:, None, None]
                Z[1] += db[:, None, None]
                out = Z.reshape(Ka + 1, -1)
            elif k == 'dense':
                W, dW = self.W[l]
                b, db = self.b[l]
                count(2 * Ka * W.size)
                out = np.zeros((Ka + 1, W.shape[0]))
                out[:Ka] += A @ W.T
                out[1:] += A @ dW.T
                out[0] += b
                out[1] += db
            elif k == 'relu':
                self.mask[l] = np.zeros(A.shape[1], bool)
                self.ver[l] = np.zeros(A.shape[1], int)
                for u in range(A.shape[1]):
                    self.relu_watch(l, u, 0.0, init=True)
                out = A * self.mask[l]
            elif k == 'maxpool':
                nw = net.win_entries[l].shape[0]
                self.rt[l] = np.zeros(nw, int)
                self.ver[l] = np.zeros(nw, int)
                for w in range(nw):
                    self.pool_watch(l, w, 0.0, init=True)
                out = A[:, net.win_entries[l][np.arange(nw), self.rt[l]]]
            else:
                out = A
            self.act.append(np.array(out))


    def pull_layer(self, l, G):
        """Cotangent polynomial through layer l (frozen pattern): G (C, Kg, N_out) -> (C, Kg', N_in)."""
        net, L = self.net, self.net.layers[l]
        k, C, Kg = L['kind'], self.C, G.shape[1]
        if k in ('conv', 'dense'):
            W, dW = self.W[l]
            out = np.zeros((C, Kg + 1, int(np.prod(L['inp']))))
            if k == 'conv':
                Gi = G.reshape((C, Kg) + L['out'])
                out[:, :Kg] += conv_bwd(Gi, W).reshape(C, Kg, -1)
                out[:, 1:] += conv_bwd(Gi, dW).reshape(C, Kg, -1)
            else:
                count(2 * C * Kg * W.size)
                out[:, :Kg] += G @ W
                out[:, 1:] += G @ dW
            return out
        if k == 'relu':
            return G * self.mask[l]
        if k == 'maxpool':
            out = np.zeros(G.shape[:2] + (int(np.prod(L['inp'])),))
            out[:, :, net.win_entries[l][np.arange(G.shape[2]), self.rt[l]]] = G
            return out
        return G


    def _init_cotangents(self):
        net = self.net
        n = len(net.layers)
        self.g = {n: np.eye(self.C)[:, None, :]}
        for j in range(n - 1, self.L1, -1):
            self.g[j] = self.pull_layer(j, self.g[j + 1])


    def _bilinear_integral(self, l, G, A, mu):
        """Add ∫ (rows of param layer l built from cotangent G (C, Kg, Nout) and input A (Ka, Nin))
        with moments mu to Jbar; the side with more coefficients is moment-weighted first."""
        L, C = self.net.layers[l], self.C
        Kg, Ka = G.shape[1], A.shape[0]
        o, nW, nb = L['off'], L['nW'], L['nb']
        H = hankel(mu, Kg, Ka)
        if Kg <= Ka:
            count(Kg * Ka * A.shape[1])
            pairs = [(G[:, a], (H[a] @ A)) for a in range(Kg)]
        else:
            count(C * Kg * Ka * G.shape[2])
            Gt = np.einsum('cam,ab->cbm', G, H)
            pairs = [(Gt[:, b], A[b]) for b in range(Ka)]
        for Gs, As in pairs:
            if L['kind'] == 'conv':
                rows = conv_wgrad(Gs.reshape((C,) + L['out']), As.reshape(L['inp']))
            else:
                count(C * nW)
                rows = Gs[:, :, None] * As[None, None, :]
            self.Jbar[:, o:o + nW] += rows.reshape(C, nW)
        count(C * Kg * G.shape[2])
        Gsum = G.reshape((C, Kg, nb, -1)).sum(-1)
        self.Jbar[:, o + nW:o + nW + nb] += np.einsum('cab,a->cb', Gsum, mu[:Kg])


    def _init_integral(self):
        """∫₀¹ J_{P0}: layers above L0 from the state; L0 (input x, constant) from ∫ g at its output,
        pulled through L1 with moments: ∫ g(t)·(W + tΔW) = (Σ_a μ_a G_a)·W + (Σ_a μ_{a+1} G_a)·ΔW."""
        net = self.net
        D = net.D
        mu = moments(0.0, 2 * D + 2)
        for l in net.params[1:]:
            self._bilinear_integral(l, self.g[l + 1], self.act[l], mu)
        G = self.g[self.L1 + 1]
        Kg = G.shape[1]
        count(2 * self.C * Kg * G.shape[2])
        M = np.stack([np.einsum('cam,a->cm', G, mu[s:s + Kg]) for s in (0, 1)], 1)   # (C, 2, N)
        # pull the two moment vectors: the first with W, the second with ΔW, summed
        L1 = net.layers[self.L1]
        W, dW = self.W[self.L1]
        if L1['kind'] == 'conv':
            Mi = M.reshape((self.C, 2) + L1['out'])
            Gin = conv_bwd(Mi[:, 0], W) + conv_bwd(Mi[:, 1], dW)
            Gin = Gin.reshape(self.C, 1, -1)
        else:
            count(2 * self.C * W.size)
            Gin = (M[:, 0] @ W + M[:, 1] @ dW)[:, None, :]
        for j in range(self.L1 - 1, self.L0, -1):
            Gin = self.pull_layer(j, Gin)
        assert self.act[self.L0].shape[0] == 1
        self._bilinear_integral(self.L0, Gin, self.act[self.L0], np.ones(2 * D + 2))

    # -- sparse maps (one layer, only the changed entries) --------------------------------------
    def _rows(self, l):
        """Views of Jbar's weight block (C, *Wshape) and bias block (C, nb) of layer l."""
        L = self.net.layers[l]
        o, nW, nb = L['off'], L['nW'], L['nb']
        JW = self.Jbar[:, o:o + nW].reshape((self.C,) + L['Wshape'])
        assert np.shares_memory(JW, self.Jbar)
        return JW, self.Jbar[:, o + nW:o + nW + nb]

    def fwd_sparse(self, l, idx, D, mu):
        """Δ of act[l] at entries idx (coefficients D (K, m)) -> Δ of act[l+1]. A layer with
        parameters also adds its correction ∫_{t_k}^1 g[l+1] ⊗ Δ (its output cotangent does not
        change: it depends only on the pattern above l)."""
        net, L, C = self.net, self.net.layers[l], self.C
        k = L['kind']
        if k == 'relu':
            keep = self.mask[l][idx]
            return idx[keep], D[:, keep]
        if k == 'maxpool':
            w = net.entry_window[l][idx]
            routed = self.rt[l][w] == net.entry_pos[l][idx]
            return w[routed], D[:, routed]
        if k == 'flatten':
            return idx, D
        W, dW = self.W[l]
        Ka, m = D.shape
        G = self.g[l + 1]
        Kg = G.shape[1]
        count(Kg * Ka * m)
        Dt = hankel(mu, Kg, Ka) @ D                     # (Kg, m): Δ weighted by the moments
        JW, _ = self._rows(l)
        self.effective = True
        if k == 'dense':
            count(2 * Ka * W.shape[0] * m + C * Kg * W.shape[0] * m)
            out = np.zeros((Ka + 1, W.shape[0]))
            out[:Ka] += D @ W[:, idx].T
            out[1:] += D @ dW[:, idx].T
            JW[:, :, idx] += np.einsum('cao,am->com', G, Dt)
            return np.arange(W.shape[0]), out
        cin, H, Wd = L['inp']
        cout = L['out'][0]
        i, y, x = np.unravel_index(idx, (cin, H, Wd))
        acc = np.zeros((Ka + 1, cout, H, Wd))
        touched = np.zeros((H, Wd), bool)
        Gs = G.reshape((C, Kg, cout, H, Wd))
        JWt = JW.transpose(2, 3, 4, 0, 1)               # (cin, 3, 3, C, cout)
        for ky in range(3):
            for kx in range(3):
                yo, xo = y - ky + 1, x - kx + 1
                ok = (yo >= 0) & (yo < H) & (xo >= 0) & (xo < Wd)
                n = int(ok.sum())
                if n == 0:
                    continue
                ii, yy, xx = i[ok], yo[ok], xo[ok]
                c = np.zeros((Ka + 1, cout, n))
                c[:Ka] += D[:, None, ok] * W[:, ii, ky, kx]
                c[1:] += D[:, None, ok] * dW[:, ii, ky, kx]
                np.add.at(acc, (slice(None), slice(None), yy, xx), c)
                touched[yy, xx] = True
                np.add.at(JWt, (ii, ky, kx), np.einsum('caom,am->mco', Gs[:, :, :, yy, xx], Dt[:, ok]))
                count(2 * Ka * cout * n + C * Kg * cout * n)
        ty, tx = np.nonzero(touched)
        idx_out = np.ravel_multi_index((np.repeat(np.arange(cout), len(ty)), np.tile(ty, cout),
                                        np.tile(tx, cout)), (cout, H, Wd))
        return idx_out, acc.reshape(Ka + 1, -1)[:, idx_out]

    def bwd_sparse(self, l, idx, G, mu):
        """Δ of the cotangent at act[l+1] entries idx (G (C, Kg, m)) -> Δ at act[l]. A layer with
        parameters adds its correction ∫_{t_k}^1 ΔG ⊗ act[l] (its input does not change: it
        depends only on the pattern below l); L0 needs no input cotangent."""
        net, L, C = self.net, self.net.layers[l], self.C
        k = L['kind']
        if k == 'relu':
            keep = self.mask[l][idx]
            return idx[keep], G[:, :, keep]
        if k == 'maxpool':
            return net.win_entries[l][idx, self.rt[l][idx]], G
        if k == 'flatten':
            return idx, G
        W, dW = self.W[l]
        A = self.act[l]
        Ka, (_, Kg, m) = A.shape[0], G.shape
        count(C * Kg * Ka * m + C * Kg * m)
        Gt = np.einsum('cam,ab->cbm', G, hankel(mu, Kg, Ka))      # (C, Ka, m)
        JW, Jb = self._rows(l)
        self.effective = True
        need_in = l > self.L0
        if k == 'dense':
            n = A.shape[1]
            count(C * Ka * m * n)
            JW[:, idx, :] += np.einsum('cbm,bj->cmj', Gt, A)
            Jb[:, idx] += np.einsum('cam,a->cm', G, mu[:Kg])
            if not need_in:
                return idx[:0], G[:, :, :0]
            count(2 * C * Kg * m * n)
            Gin = np.zeros((C, Kg + 1, n))
            Gin[:, :Kg] += G @ W[idx]
            Gin[:, 1:] += G @ dW[idx]
            return np.arange(n), Gin
        cin, H, Wd = L['inp']
        cout = L['out'][0]
        oc, y, x = np.unravel_index(idx, (cout, H, Wd))
        Ai = A.reshape((Ka, cin, H, Wd))
        JWt = JW.transpose(1, 3, 4, 0, 2)               # (cout, 3, 3, C, cin)
        np.add.at(Jb.T, oc, np.einsum('cam,a->mc', G, mu[:Kg]))
        acc = np.zeros((H, Wd, C, Kg + 1, cin))
        touched = np.zeros((H, Wd), bool)
        for ky in range(3):
            for kx in range(3):
                yi, xi = y + ky - 1, x + kx - 1
                ok = (yi >= 0) & (yi < H) & (xi >= 0) & (xi < Wd)
                n = int(ok.sum())
                if n == 0:
                    continue
                yy, xx, oo = yi[ok], xi[ok], oc[ok]
                np.add.at(JWt, (oo, ky, kx), np.einsum('cbm,bim->mci', Gt[:, :, ok], Ai[:, :, yy, xx]))
                count(C * Ka * cin * n)
                if need_in:
                    Gm = G[:, :, ok].transpose(2, 0, 1)[..., None]          # (n, C, Kg, 1)
                    c = np.zeros((n, C, Kg + 1, cin))
                    c[:, :, :Kg] += Gm * W[oo, :, ky, kx][:, None, None, :]
                    c[:, :, 1:] += Gm * dW[oo, :, ky, kx][:, None, None, :]
                    np.add.at(acc, (yy, xx), c)
                    touched[yy, xx] = True
                    count(2 * C * Kg * cin * n)
        if not need_in:
            return idx[:0], G[:, :, :0]
        ty, tx = np.nonzero(touched)
        idx_in = np.ravel_multi_index((np.repeat(np.arange(cin), len(ty)), np.tile(ty, cin),
                                       np.tile(tx, cin)), (cin, H, Wd))
        Gin = acc[ty, tx].transpose(1, 2, 3, 0).reshape(C, Kg + 1, cin * len(ty))
        return idx_in, Gin

    def propagate_forward(self, j, idx, D, mu):
        while len(idx):
            self.act[j][:, idx] += D
            self._notify(j, idx, self.t)
            if j == len(self.net.layers):
                break
            idx, D = self.fwd_sparse(j, idx, D, mu)
            nz = np.any(D != 0, axis=0)            # entries that a mask or the routing zeroed
            idx, D = idx[nz], D[:, nz]
            j += 1

    def propagate_backward(self, j, idx, G, mu):
        while len(idx):
            if j > self.L1:
                self.g[j][:, :, idx] += G
            idx, G = self.bwd_sparse(j - 1, idx, G, mu)
            nz = np.any(G != 0, axis=(0, 1))
            idx, G = idx[nz], G[:, :, nz]
            j -= 1

    def cotangent(self, j, idx):
        """Current output cotangents at act[j], entries idx: (C, Kg, m). Kept for j > L1; below,
        pulled up through the parameter-free layers and locally through L1."""
        if j > self.L1:
            return self.g[j][:, :, idx]
        net, L, C = self.net, self.net.layers[j], self.C
        k = L['kind']
        if k == 'relu':
            return self.cotangent(j + 1, idx) * self.mask[j][idx]
        if k == 'flatten':
            return self.cotangent(j + 1, idx)
        if k == 'maxpool':
            w = net.entry_window[j][idx]
            routed = self.rt[j][w] == net.entry_pos[j][idx]
            Kg = self.g[self.L1 + 1].shape[1] + 1
            G = np.zeros((C, Kg, len(idx)))
            if routed.any():
                G[:, :, routed] = self.cotangent(j + 1, w[routed])
            return G
        assert j == self.L1
        Gout = self.g[j + 1]
        Kg = Gout.shape[1]
        W, dW = self.W[j]
        out = np.zeros((C, Kg + 1, len(idx)))
        if k == 'dense':
            count(2 * C * Kg * W.shape[0] * len(idx))
            out[:, :Kg] += Gout @ W[:, idx]
            out[:, 1:] += Gout @ dW[:, idx]
            return out
        cin, H, Wd = L['inp']
        cout = L['out'][0]
        i, y, x = np.unravel_index(idx, (cin, H, Wd))
        Gs = Gout.reshape((C, Kg, cout, H, Wd))
        for ky in range(3):
            for kx in range(3):
                yo, xo = y - ky + 1, x - kx + 1
                ok = (yo >= 0) & (yo < H) & (xo >= 0) & (xo < Wd)
                n = int(ok.sum())
                if n == 0:
                    continue
                gv = Gs[:, :, :, yo[ok], xo[ok]]
                out[:, :Kg, ok] += np.einsum('caom,om->cam', gv, W[:, i[ok], ky, kx])
                out[:, 1:, ok] += np.einsum('caom,om->cam', gv, dW[:, i[ok], ky, kx])
                count(2 * C * Kg * cout * n)
        return out

    # -- events ---------------------------------------------------------------------------------
    def relu_event(self, l, u, new, mu):
        if new != self.mask[l][u]:
            s = 1.0 if new else -1.0
            self.mask[l][u] = new
            iu = np.array([u])
            G = s * self.cotangent(l + 1, iu)
            D = s * self.act[l][:, iu]
            if np.any(D):
                self.propagate_forward(l + 1, iu, D, mu)
            if np.any(G):
                self.propagate_backward(l, iu, G, mu)
        self.relu_watch(l, u, self.t)

    def pool_event(self, l, w, new, mu):
        old = self.rt[l][w]
        if new != old:
            e_old, e_new = self.net.win_entries[l][w, old], self.net.win_entries[l][w, new]
            self.rt[l][w] = new
            iw = np.array([w])
            Gw = self.cotangent(l + 1, iw)
            D = self.act[l][:, [e_new]] - self.act[l][:, [e_old]]
            if np.any(D):          # zero: a switch between two entries below 0 (both masked)
                self.propagate_forward(l + 1, iw, D, mu)
            if np.any(Gw):
                self.propagate_backward(l, np.array([e_new, e_old]), np.concatenate([Gw, -Gw], 2), mu)
        self.pool_watch(l, w, self.t)

    def run(self, max_events=10 ** 6):
        D = self.net.D
        while self.heap and len(self.event_ops) < max_events:
            t, _, kind, l, u, v, new = heapq.heappop(self.heap)
            if v != self.ver[l][u]:
                continue
            self.t = t
            before = dict(OPS)
            self.effective = False
            keep = self.Jbar.copy() if self.drop is not None else None
            with category('sweep events'):
                mu = moments(t, 2 * D + 2)
                (self.relu_event if kind == 'relu' else self.pool_event)(l, u, new, mu)
            if self.effective:
                if self.n_effective == self.drop:
                    self.Jbar[:] = keep
                self.n_effective += 1
                self.events.append(t)
            else:
                self.silent += 1
            self.event_ops.append((t, kind, self.effective,
                                   OPS.get('sweep events', 0) - before.get('sweep events', 0),
                                   OPS.get('sweep events roots', 0) - before.get('sweep events roots', 0)))
        return self.Jbar


# ----------------------------------------------------------------------------------------------
# Self-test and counts.

RESULTS = []


def check(name, ok, detail=''):
    RESULTS.append(bool(ok))
    print(('PASS ' if ok else 'FAIL ') + name + (': ' + detail if detail else ''))


def rel(a, b):
    """max |a − b| / max |b| (the tolerance measure used throughout)."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def segment(net, rng, scale):
    w0 = net.init_params(rng)
    dw = scale * math.sqrt(np.mean(w0 ** 2)) * rng.standard_normal(net.P)
    return w0, dw


def cnn_spec(c1, c2, C):
    return [('conv', c1), ('relu',), ('maxpool',), ('conv', c2), ('relu',), ('maxpool',),
            ('flatten',), ('dense', C)]


def jumps(net, x, w0, dw, bps, ts=(0.0,)):
    """Δ_k(t) = J_{P_{k+1}}(t) − J_{P_k}(t) (both patterns frozen) at t = t_k + s, s in ts."""
    pats = piece_patterns(net, x, w0, dw, bps)
    out = []
    for k, tk in enumerate(bps):
        wk = w0 + (tk + np.asarray(ts))[:, None] * dw
        out.append(jacobian(net, x, wk, pats[k + 1])[0] - jacobian(net, x, wk, pats[k])[0])
    return out


def n_jumps(net, x, w0, dw, bps, Jref):
    """How many breakpoints change J: Δ_k is a polynomial of degree ≤ D − 1; it is taken as
    non-zero if it exceeds 1e-12·max|J̄| at t_k, (t_k + 1)/2 or 1."""
    n = 0
    pats = piece_patterns(net, x, w0, dw, bps)
    for k, tk in enumerate(bps):
        wk = w0 + np.array([tk, 0.5 * (1 + tk), 1.0])[:, None] * dw
        d = jacobian(net, x, wk, pats[k + 1])[0] - jacobian(net, x, wk, pats[k])[0]
        n += np.max(np.abs(d)) > 1e-12 * np.max(np.abs(Jref))
    return n


def test_roots(rng):
    """Known simple roots, separated by ≥ 0.05; each found root must lie within its conditioning
    bound 16ε·Σ|c_k||r|^k / |p'(r)| of the true one."""
    worst, n, ok = 0.0, 0, True
    eps = np.finfo(float).eps
    for d in (3, 4, 5):
        for _ in range(30):
            r = np.sort(rng.uniform(-0.2, 1.2, d))
            while np.min(np.diff(r)) < 0.05:
                r = np.sort(rng.uniform(-0.2, 1.2, d))
            c = np.polynomial.polynomial.polyfromroots(r) * rng.uniform(0.5, 2)
            want = np.array([t for t in r if 0 < t <= 1])
            got = np.array(sign_change_roots(c, 0.0, 1.0))
            n += 1
            if len(got) != len(want):
                ok = False
                continue
            dc = np.polynomial.polynomial.polyder(c)
            for g, t in zip(got, want):
                cond = 16 * eps * np.sum(np.abs(c) * np.abs(t) ** np.arange(len(c))) / abs(
                    np.polynomial.polynomial.polyval(t, dc))
                worst = max(worst, abs(g - t) / cond)
    check('sign_change_roots, degree 3-5 with known simple roots', ok and worst <= 1.0,
          f'{n} polynomials, max root error / conditioning bound {worst:.2f} (must be ≤ 1)')


def selftest(quick_gauss_panels=5000):
    rng = np.random.default_rng(16)
    test_roots(rng)
    cases = [
        ('cnn 1x8x8 conv2-relu-pool-conv3-relu-pool-dense3', Net((1, 8, 8), cnn_spec(2, 3, 3)), 0.4),
        ('cnn 1x8x8 conv2-pool-relu-conv3-relu-flatten-dense3 (unfused pool, no 2nd pool)',
         Net((1, 8, 8), [('conv', 2), ('maxpool',), ('relu',), ('conv', 3), ('relu',), ('flatten',),
                         ('dense', 3)]), 0.4),
        ('mlp 5-12-3', Net((5,), [('dense', 12), ('relu',), ('dense', 3)]), 1.0),
        ('mlp 5-8-8-8-3 (degree-3 pre-activations: bracketing roots)',
         Net((5,), [('dense', 8), ('relu',), ('dense', 8), ('relu',), ('dense', 8), ('relu',),
                    ('dense', 3)]), 0.6),
    ]
    for name, net, scale in cases:
        print(f'-- {name}: P = {net.P}, C = {net.C}, D = {net.D}')
        w0, dw = segment(net, rng, scale)
        x = rng.standard_normal(net.in_shape)
        J = jacobian(net, x, w0[None])[0][0]
        h = 1e-6
        E = np.eye(net.P) * h
        Jfd = ((forward(net, x, w0 + E)[0][-1] - forward(net, x, w0 - E)[0][-1]) / (2 * h)).T
        check('Jacobian vs central differences (h = 1e-6)', rel(Jfd, J) <= 1e-6,
              f'rel {rel(Jfd, J):.1e} (tolerance 1e-6)')
        Jo, bps = oracle(net, x, w0, dw)
        f0 = forward(net, x, w0[None])[0][-1][0]
        f1 = forward(net, x, (w0 + dw)[None])[0][-1][0]
        check('oracle reconstruction J̄·Δw = f(w1) − f(w0)', rel(Jo @ dw, f1 - f0) <= 1e-12,
              f'rel {rel(Jo @ dw, f1 - f0):.1e} (tolerance 1e-12)')
        hp = 1.0 / quick_gauss_panels
        jp = jumps(net, x, w0, dw, bps, ts=(0.0, hp))
        big = n_jumps(net, x, w0, dw, bps, Jo)
        Jg = composite_gauss(net, x, w0, dw, quick_gauss_panels)
        # on the panel holding t_k the rule errs by at most h·max|Δ_k| there (Δ_k ≈ linear on h)
        bound = hp * sum(np.abs(j[0]) + np.abs(j[1]) for j in jp) if jp else 0.0
        ok = np.all(np.abs(Jg - Jo) <= bound + 1e-12 * np.max(np.abs(Jo)))
        check(f'oracle vs composite Gauss, {4 * quick_gauss_panels} nodes, within Σ_k h·|jump_k|', ok,
              f'rel {rel(Jg, Jo):.1e}; {len(bps)} breakpoints, {big} change J')
        Jt, _ = telescoped(net, x, w0, dw, bps)
        check('telescoped (full frozen-pattern corrections) vs oracle', rel(Jt, Jo) <= 1e-12,
              f'rel {rel(Jt, Jo):.1e} (tolerance 1e-12)')
        sw = Sweep(net, x, w0, dw)
        Js = sw.run()
        near = [float(np.min(np.abs(bps - t))) for t in sw.events] if len(bps) else []
        match = (len(sw.events) == big
                 and all(d <= 1e-12 for d in near))
        check('sweep (local corrections) vs oracle', rel(Js, Jo) <= 1e-12,
              f'rel {rel(Js, Jo):.1e} (tolerance 1e-12); {len(sw.events)} effective events '
              f'+ {sw.silent} silent ({sw.immediate} immediate)')
        check('sweep events = the oracle breakpoints where J jumps', match,
              f'{len(sw.events)} vs {big}, max distance '
              f'{max(near) if near else 0:.1e} (tolerance 1e-12)')
        if sw.events:
            k = len(sw.events) // 2
            bad = Sweep(net, x, w0, dw, drop=k).run()
            check(f'mutation: dropping effective event {k}\'s correction is detected',
                  rel(bad, Jo) > 1e-6, f'rel {rel(bad, Jo):.1e} (must exceed 1e-6)')
    nf = RESULTS.count(False)
    print(f'{len(RESULTS) - nf} passed, {nf} failed')
    return nf == 0


FMNIST = '/usr/share/datasets/fashion-mnist'


def load_fmnist_image(i=0, split='t10k', n=1):
    path = f'{FMNIST}/{split}-images-idx3-ubyte.gz'
    if not os.path.exists(path):
        return None
    with gzip.open(path) as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16)
    x = data[i * 784:(i + n) * 784].reshape(n, 1, 28, 28) / 255.0
    return x[0] if n == 1 else x


def batch_gradient_direction(net, w0, n=32):
    """−∇ of the mean softmax cross-entropy over the first n training images (unit norm), or None."""
    X = load_fmnist_image(0, 'train', n)
    path = f'{FMNIST}/train-labels-idx1-ubyte.gz'
    if X is None or not os.path.exists(path):
        return None
    with gzip.open(path) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    grad = np.zeros(net.P)
    with category('setup'):
        for xi, yi in zip(X, y):
            J, f, _ = jacobian(net, xi, w0[None])
            p = np.exp(f[0] - f[0].max())
            p /= p.sum()
            p[yi] -= 1.0
            grad += J[0].T @ p / n
    return -grad / np.linalg.norm(grad)


def counts(scales, image, seed, grid, direction='random'):
    net = Net((1, 28, 28), cnn_spec(4, 8, 10))
    rng = np.random.default_rng(seed)
    x = load_fmnist_image(image) if image >= 0 else None
    src = f'Fashion-MNIST test image {image}'
    if x is None:
        x, src = rng.uniform(0, 1, (1, 28, 28)), 'uniform random input'
    w0 = net.init_params(rng)
    r = rng.standard_normal(net.P)
    if direction == 'gradient':
        gdir = batch_gradient_direction(net, w0)
        if gdir is None:
            print('no Fashion-MNIST training set: random direction')
        else:
            r = gdir * np.linalg.norm(r)          # same ‖Δw‖ for the same scale
    print(f'fmnist-cnn architecture: P = {net.P}, C = {net.C}, D = {net.D}; {src}; seed {seed}; '
          f'Δw direction: {direction}')
    OPS.clear()
    with category('full'):
        jacobian(net, x, w0[None])
    full = OPS['full']
    L0 = net.layers[0]
    first_rows = net.C * L0['nW'] * 28 * 28      # the first conv's weight rows in one evaluation
    q4 = 4 * full
    q4f = 4 * (full - first_rows) + first_rows
    print(f'(a) one full Jacobian evaluation: {full:,} multiply-adds '
          f'(of which the first conv\'s rows {first_rows:,}); q = 4: {q4:,} '
          f'(with the first layer factored, as the Swift route does: {q4f:,})')
    rows = []
    for s in scales:
        dw = s * math.sqrt(np.mean(w0 ** 2)) * r
        OPS.clear()
        sw = Sweep(net, x, w0, dw)
        Js = sw.run()
        ini = sum(v for c, v in OPS.items() if c.startswith('sweep init'))
        parts = ', '.join(f'{c[len("sweep init: "):]} {v:,}' for c, v in OPS.items()
                          if c.startswith('sweep init: '))
        ev = [e[3] + e[4] for e in sw.event_ops]
        eff = [e[3] + e[4] for e in sw.event_ops if e[2]]
        sil = [e[3] + e[4] for e in sw.event_ops if not e[2]]
        total = ini + sum(ev)
        Jo, bps = oracle(net, x, w0, dw, n_grid=grid)
        search = OPS.get('oracle search', 0)
        big = n_jumps(net, x, w0, dw, bps, Jo)
        f0 = forward(net, x, w0[None])[0][-1][0]
        f1 = forward(net, x, (w0 + dw)[None])[0][-1][0]
        times = np.sort(np.array(sw.events))
        distinct = 1 + int(np.sum(np.diff(times) > 1e-11)) if len(times) else 0
        far = max((float(np.min(np.abs(bps - t))) for t in times), default=0.0)
        print(f'\n‖Δw‖/‖w‖ = {s:g}: oracle {len(bps)} breakpoints ({big} where J jumps); sweep '
              f'{len(sw.events)} effective events at {distinct} distinct times (within 1e-11; '
              f'farthest from an oracle breakpoint {far:.0e}), {sw.silent} silent, '
              f'{sw.immediate} immediate')
        print(f'    agreement: sweep vs oracle rel {rel(Js, Jo):.1e}; reconstruction '
              f'rel {rel(Js @ dw, f1 - f0):.1e} (sweep), {rel(Jo @ dw, f1 - f0):.1e} (oracle)')
        print(f'(b) sweep initial work: {ini:,} = {ini / full:.2f} full evaluations ({parts})')
        print(f'(c) events: {len(ev)} total {sum(ev):,} = {sum(ev) / full:.2f} full evaluations; '
              f'effective mean {np.mean(eff) if eff else 0:,.0f} max {max(eff) if eff else 0:,}; '
              f'silent mean {np.mean(sil) if sil else 0:,.0f}; of the events\' work, root '
              f'finding {OPS.get("sweep events roots", 0):,}')
        print(f'(d) brute-force search: {search:,} = {search / full:.1f} full evaluations '
              f'({grid} samples + bisection, forward passes only)')
        print(f'    projected exact/q=4: sweep {total:,} / 4 full = {total / q4:.2f} '
              f'(against the factored q = 4: {total / q4f:.2f})')
        print(f'    today\'s route, 2 full evaluations per piece: {2 * (len(bps) + 1) / 4:.1f} × q = 4 '
              f'cutting at all {len(bps)} breakpoints, {2 * (big + 1) / 4:.1f} × cutting only where '
              f'J jumps ({big})')
        rows.append((s, len(bps), big, len(sw.events), ini / full, sum(ev) / full, total / q4,
                     2 * (len(bps) + 1) / 4))
    print('\nscale  breakpoints (J jumps)  effective events  init/full  events/full  exact/q4  '
          'today/q4 (nominal)')
    for s, nb, bj, ne, a, b, c, d in rows:
        print(f'{s:<6g} {nb:>5} ({bj:>3})            {ne:>5}      {a:9.2f}  {b:11.2f}  {c:8.2f}  '
              f'{d:8.1f}')


def mlp_counts(seed):
    """A 2-layer relu MLP: a flip's backward cone is a whole row of the first layer (rank one)."""
    rng = np.random.default_rng(seed)
    net = Net((784,), [('dense', 64), ('relu',), ('dense', 10)])
    x = load_fmnist_image(0)
    x = x.reshape(784) if x is not None else rng.uniform(0, 1, 784)
    w0 = net.init_params(rng)
    r = rng.standard_normal(net.P)
    OPS.clear()
    with category('full'):
        jacobian(net, x, w0[None])
    full = OPS['full']
    print(f'\nMLP 784-64-10 relu: P = {net.P}; one full evaluation {full:,} multiply-adds')
    for s in (0.05, 0.2, 0.5):
        dw = s * math.sqrt(np.mean(w0 ** 2)) * r
        OPS.clear()
        sw = Sweep(net, x, w0, dw)
        Js = sw.run()
        ini = sum(v for c, v in OPS.items() if c.startswith('sweep init'))
        eff = [e[3] + e[4] for e in sw.event_ops if e[2]]
        Jo, bps = oracle(net, x, w0, dw, n_grid=2049)
        total = ini + sum(e[3] + e[4] for e in sw.event_ops)
        print(f'  ‖Δw‖/‖w‖ = {s:g}: {len(bps)} breakpoints, {len(sw.events)} events; rel vs oracle '
              f'{rel(Js, Jo):.1e}; init {ini / full:.2f} full, per event '
              f'{np.mean(eff) if eff else 0:,.0f} ({(np.mean(eff) if eff else 0) / full:.3f} full); '
              f'exact/q=4 {total / (4 * full):.2f}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--counts', action='store_true', help='fmnist-cnn-size operation counts')
    ap.add_argument('--scales', type=float, nargs='*', default=[0.1, 0.15, 0.2, 0.4],
                    help='‖Δw‖/‖w‖ of the random segments')
    ap.add_argument('--image', type=int, default=0, help='Fashion-MNIST test image; < 0: uniform random')
    ap.add_argument('--seed', type=int, default=4)
    ap.add_argument('--grid', type=int, default=2049, help='oracle samples along the segment')
    ap.add_argument('--direction', choices=['random', 'gradient'], default='random',
                    help='Δw along N(0, 1) or along −∇ of the cross-entropy of 32 training images')
    ap.add_argument('--no-mlp', action='store_true', help='skip the MLP counts')
    a = ap.parse_args()
    if a.counts:
        counts(a.scales, a.image, a.seed, a.grid, a.direction)
        if not a.no_mlp:
            mlp_counts(a.seed)
        return 0
    return 0 if selftest() else 1


if __name__ == '__main__':
    sys.exit(main())
