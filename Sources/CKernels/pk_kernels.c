/* See pk_kernels.h. The loop bodies are written once (a macro) and instantiated for the baseline
 * and, on x86-64, for AVX2; the compiler vectorizes both. Contraction into FMA is off: AVX2 alone
 * has no FMA, and the pragma keeps a compiler from fusing anywhere, so the two versions round alike. */
#include "pk_kernels.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define PK_COMBINATION_LOOPS(T, SCALED)                                                            \
        if (mode == 0) {                                                                           \
            for (size_t k = 0; k < n; k++)                                                         \
                o[k] = SCALED(c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]);                 \
        } else if (mode == 1) {                                                                    \
            for (size_t k = 0; k < n; k++)                                                         \
                o[k] = o[k] + SCALED(c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]);          \
        } else {                                                                                   \
            for (size_t k = 0; k < n; k++)                                                         \
                o[k] = dec * o[k] + SCALED(c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]);    \
        }
#define PK_BY_S(x) (s[k] * (x))
#define PK_BY_SI(x) (s[idx[k]] * (x))
#define PK_BY_ONE(x) (x)
/* s == NULL: every s[k] is 1 (1·x is x exactly: the same bits without reading s). */
#define PK_COMBINATION(T, NAME, ATTR)                                                              \
    ATTR static void NAME(T *restrict o, const T *restrict s, const T *restrict a0,                \
                          const T *restrict a1, const T *restrict a2, const T *restrict a3,        \
                          T c0, T c1, T c2, T c3, T dec, int mode, size_t n) {                     \
        if (s) {                                                                                   \
            PK_COMBINATION_LOOPS(T, PK_BY_S)                                                       \
        } else {                                                                                   \
            PK_COMBINATION_LOOPS(T, PK_BY_ONE)                                                     \
        }                                                                                          \
    }

/* s read at idx[k] (pk_kernels.h, pk_scaled_combination_indexed): the same operations as above. */
#define PK_COMBINATION_INDEXED(T, NAME, ATTR)                                                      \
    ATTR static void NAME(T *restrict o, const T *restrict s, const int *restrict idx,             \
                          const T *restrict a0, const T *restrict a1, const T *restrict a2,        \
                          const T *restrict a3, T c0, T c1, T c2, T c3, T dec, int mode, size_t n) { \
        if (s) {                                                                                   \
            PK_COMBINATION_LOOPS(T, PK_BY_SI)                                                      \
        } else {                                                                                   \
            PK_COMBINATION_LOOPS(T, PK_BY_ONE)                                                     \
        }                                                                                          \
    }

/* The contraction in register blocks: 4 vectors of examples (W = 4·32/sizeof(T): 16 doubles or 32
 * floats) × G channels (2 or 1) accumulate over j in vector registers (GCC/Clang vector extensions,
 * so that the compiler cannot fall back to scalar code), so z is written once and y, sT read once
 * per block, two whole cache lines of each row per j. (Until session 12 the blocks were 2 vectors ×
 * 4, 2 or 1 channels: one line per row and j, 8·nb bytes apart; a microbenchmark of W5's shape,
 * dout 128, nb 64, trace mode's 2 channels, took 4.0 µs a call against 4.9 µs then, interleaved
 * runs under load.) Each z[k*nb + i] still starts at 0 and adds its terms in j order with the same
 * operations (a scalar operand of a vector operation is splat exactly), so the bits are those of
 * the plain loop (the tail below). */
typedef double pk_v4d __attribute__((vector_size(32)));
typedef float pk_v8f __attribute__((vector_size(32)));

/* Register block: 4 vectors of examples (16 doubles or 32 floats) × G channels (2 or 1), over all j. */
#define PK_CONTRACTION_BLOCK(T, V, NAME, ATTR, G)                                                  \
    ATTR static inline void NAME(T *restrict z, const int *channels, const T *restrict y,         \
                                 const T *restrict u, const T *restrict gram, T sw,               \
                                 const T *restrict b, T sb, const T *restrict sT, size_t dout,    \
                                 size_t nb, size_t i0) {                                          \
        const size_t L = sizeof(V) / sizeof(T);                                                    \
        V acc[G][4];                                                                               \
        const T *sk[G];                                                                            \
        for (int c = 0; c < G; c++) {                                                              \
            sk[c] = sT + (size_t)channels[c] * dout * nb + i0;                                     \
            for (int v = 0; v < 4; v++) acc[c][v] = (V){0};                                        \
        }                                                                                          \
        V g[4];                                                                                    \
        if (u) for (int v = 0; v < 4; v++) __builtin_memcpy(&g[v], gram + i0 + v * L, sizeof(V)); \
        for (size_t j = 0; j < dout; j++) {                                                        \
            T bj = b ? sb * b[j] : (T)0;                                                           \
            V cf[4];                                                                               \
            if (u) {                                                                               \
                T uj = sw * u[j];                                                                  \
                for (int v = 0; v < 4; v++) cf[v] = uj * g[v] + bj;                                \
            } else {                                                                               \
                for (int v = 0; v < 4; v++) {                                                      \
                    __builtin_memcpy(&cf[v], y + j * nb + i0 + v * L, sizeof(V));                  \
                    cf[v] = cf[v] + bj;                                                            \
                }                                                                                  \
            }                                                                                      \
            for (int c = 0; c < G; c++)                                                            \
                for (int v = 0; v < 4; v++) {                                                      \
                    V x;                                                                           \
                    __builtin_memcpy(&x, sk[c] + j * nb + v * L, sizeof(V));                       \
                    acc[c][v] = acc[c][v] + cf[v] * x;                                             \
                }                                                                                  \
        }                                                                                          \
        for (int c = 0; c < G; c++)                                                                \
            for (int v = 0; v < 4; v++)                                                            \
                __builtin_memcpy(z + (size_t)channels[c] * nb + i0 + v * L, &acc[c][v], sizeof(V)); \
    }

#define PK_CONTRACTION(T, V, NAME, ATTR)                                                           \
    PK_CONTRACTION_BLOCK(T, V, NAME##_g2, ATTR, 2)                                                 \
    PK_CONTRACTION_BLOCK(T, V, NAME##_g1, ATTR, 1)                                                 \
    ATTR static void NAME(T *restrict z, const int *channels, int nch, const T *restrict y,        \
                          const T *restrict u, const T *restrict gram, T sw, const T *restrict b,  \
                          T sb, const T *restrict sT, size_t dout, size_t nb, T *restrict coef) {  \
        const size_t W = 4 * sizeof(V) / sizeof(T);                                                \
        size_t blocked = nb - nb % W;                                                              \
        for (size_t i0 = 0; i0 < blocked; i0 += W) {                                               \
            int c = 0;                                                                             \
            for (; c + 2 <= nch; c += 2) NAME##_g2(z, channels + c, y, u, gram, sw, b, sb, sT, dout, nb, i0); \
            for (; c < nch; c++) NAME##_g1(z, channels + c, y, u, gram, sw, b, sb, sT, dout, nb, i0); \
        }                                                                                          \
        if (blocked == nb) return;                                                                 \
        for (int c = 0; c < nch; c++)                                                              \
            for (size_t i = blocked; i < nb; i++) z[(size_t)channels[c] * nb + i] = 0;            \
        for (size_t j = 0; j < dout; j++) {                                                        \
            T bj = b ? sb * b[j] : (T)0;                                                           \
            if (u) {                                                                               \
                T uj = sw * u[j];                                                                  \
                for (size_t i = blocked; i < nb; i++) coef[i] = uj * gram[i] + bj;                 \
            } else {                                                                               \
                const T *yj = y + j * nb;                                                          \
                for (size_t i = blocked; i < nb; i++) coef[i] = yj[i] + bj;                        \
            }                                                                                      \
            for (int c = 0; c < nch; c++) {                                                        \
                size_t k = (size_t)channels[c];                                                    \
                const T *sk = sT + (k * dout + j) * nb;                                            \
                T *zk = z + k * nb;                                                                \
                for (size_t i = blocked; i < nb; i++) zk[i] = zk[i] + coef[i] * sk[i];            \
            }                                                                                      \
        }                                                                                          \
    }

/* Several query rows at once (pk_kernels.h, pk_signal_contraction_rows): RQ rows × G channels × NV
 * vectors of examples accumulate over j in registers, so that each vector of the signals is loaded
 * once for RQ rows instead of once per row (one row at a time, the signals of all channels, 720 KB
 * in W5's full mode, streamed from L2 for every row). Each z element is the same chain of the same
 * operations as in PK_CONTRACTION_BLOCK (the bits of the plain loop). */
#define PK_CONTRACTION_ROWS_BLOCK(T, V, NAME, ATTR, RQ, G, NV)                                      \
    ATTR static inline void NAME(T *restrict z, size_t zs, const int *channels, const T *restrict y, size_t ys, \
                                 const T *restrict u, size_t us, const T *restrict gram, size_t gs, T sw, \
                                 const T *restrict b, size_t bs, T sb, const T *restrict sT, size_t dout, \
                                 size_t nb, size_t i0) {                                          \
        const size_t L = sizeof(V) / sizeof(T);                                                    \
        V acc[RQ][G][NV];                                                                          \
        const T *sk[G];                                                                            \
        for (int c = 0; c < G; c++) sk[c] = sT + (size_t)channels[c] * dout * nb + i0;           \
        for (int q = 0; q < RQ; q++) for (int c = 0; c < G; c++) for (int v = 0; v < NV; v++) acc[q][c][v] = (V){0}; \
        V g[RQ][NV];                                                                               \
        if (u) for (int q = 0; q < RQ; q++) for (int v = 0; v < NV; v++) __builtin_memcpy(&g[q][v], gram + q * gs + i0 + v * L, sizeof(V)); \
        for (size_t j = 0; j < dout; j++) {                                                        \
            V x[G][NV];                                                                            \
            for (int c = 0; c < G; c++) for (int v = 0; v < NV; v++) __builtin_memcpy(&x[c][v], sk[c] + j * nb + v * L, sizeof(V)); \
            for (int q = 0; q < RQ; q++) {                                                         \
                T bj = b ? sb * b[q * bs + j] : (T)0;                                              \
                V cf[NV];                                                                          \
                if (u) {                                                                           \
                    T uj = sw * u[q * us + j];                                                     \
                    for (int v = 0; v < NV; v++) cf[v] = uj * g[q][v] + bj;                        \
                } else {                                                                           \
                    for (int v = 0; v < NV; v++) {                                                 \
                        __builtin_memcpy(&cf[v], y + q * ys + j * nb + i0 + v * L, sizeof(V));     \
                        cf[v] = cf[v] + bj;                                                        \
                    }                                                                              \
                }                                                                                  \
                for (int c = 0; c < G; c++) for (int v = 0; v < NV; v++) acc[q][c][v] = acc[q][c][v] + cf[v] * x[c][v]; \
            }                                                                                      \
        }                                                                                          \
        for (int q = 0; q < RQ; q++) for (int c = 0; c < G; c++) for (int v = 0; v < NV; v++)     \
            __builtin_memcpy(z + q * zs + (size_t)channels[c] * nb + i0 + v * L, &acc[q][c][v], sizeof(V)); \
    }

/* The backward pass's product of R's rows with the batch (pk_kernels.h, pk_rows_times_batch):
 * register blocks of RB rows (6 on AVX-512, else 4) × CB vectors of columns accumulate over k in vector registers,
 * each element as a chain of fused multiply-adds in k order from 0, then scaled by alpha once;
 * the column tail in single vectors, then scalar fma(). Every version (and every block and tail)
 * computes each element by the same chain of correctly rounded fma, so all give the same bits. */
#define PK_ROW_PLAIN(kk) (kk)
#define PK_ROW_INDEXED(kk) ((size_t)idx[kk])
#define PK_PRODUCT_BLOCK(T, V, NAME, ATTR, RB, CB, ROW)                                            \
    ATTR static inline void NAME(T *restrict y, const T *restrict r, const T *restrict bt, size_t ldb, \
                                 const int *restrict idx, T alpha, size_t k, size_t nb, size_t j0) { \
        (void)idx;                                                                                 \
        const size_t L = sizeof(V) / sizeof(T);                                                    \
        V acc[RB][CB];                                                                             \
        for (int a = 0; a < RB; a++)                                                               \
            for (int v = 0; v < CB; v++) acc[a][v] = (V){0};                                       \
        for (size_t kk = 0; kk < k; kk++) {                                                        \
            V b[CB];                                                                               \
            for (int v = 0; v < CB; v++) __builtin_memcpy(&b[v], bt + ROW(kk) * ldb + j0 + v * L, sizeof(V)); \
            for (int a = 0; a < RB; a++) {                                                         \
                V x; /* a splat by moves (0 + r would add a scalar op: −0) */                     \
                for (size_t l = 0; l < L; l++) x[l] = r[a * k + kk];                               \
                for (int v = 0; v < CB; v++) acc[a][v] = __builtin_elementwise_fma(x, b[v], acc[a][v]); \
            }                                                                                      \
        }                                                                                          \
        for (int a = 0; a < RB; a++)                                                               \
            for (int v = 0; v < CB; v++) {                                                         \
                V out = acc[a][v] * alpha;                                                         \
                __builtin_memcpy(y + a * nb + j0 + v * L, &out, sizeof(V));                         \
            }                                                                                      \
    }

#define PK_PRODUCT(T, V, NAME, ATTR, RB, CB, FMA, ROW)                                                      \
    PK_PRODUCT_BLOCK(T, V, NAME##_rw, ATTR, RB, CB, ROW)                                               \
    PK_PRODUCT_BLOCK(T, V, NAME##_rn, ATTR, RB, 1, ROW)                                                \
    PK_PRODUCT_BLOCK(T, V, NAME##_1w, ATTR, 1, CB, ROW)                                               \
    PK_PRODUCT_BLOCK(T, V, NAME##_1n, ATTR, 1, 1, ROW)                                                \
    PK_PRODUCT_BLOCK(T, V, NAME##_rp, ATTR, RB, 1, PK_ROW_PLAIN)                                      \
    PK_PRODUCT_BLOCK(T, V, NAME##_1p, ATTR, 1, 1, PK_ROW_PLAIN)                                       \
    ATTR static void NAME(T *restrict y, const T *restrict r, const T *restrict bt, size_t ldb,    \
                          const int *restrict idx, T alpha, size_t m, size_t k, size_t nb) {      \
        const size_t L = sizeof(V) / sizeof(T), W = CB * L;                                        \
        size_t wide = nb - nb % W, narrow = nb - nb % L;                                           \
        size_t i = 0;                                                                              \
        for (; i + RB <= m; i += RB) {                                                               \
            for (size_t j = 0; j < wide; j += W) NAME##_rw(y + i * nb, r + i * k, bt, ldb, idx, alpha, k, nb, j); \
            for (size_t j = wide; j < narrow; j += L) NAME##_rn(y + i * nb, r + i * k, bt, ldb, idx, alpha, k, nb, j); \
        }                                                                                          \
        for (; i < m; i++) {                                                                       \
            for (size_t j = 0; j < wide; j += W) NAME##_1w(y + i * nb, r + i * k, bt, ldb, idx, alpha, k, nb, j); \
            for (size_t j = wide; j < narrow; j += L) NAME##_1n(y + i * nb, r + i * k, bt, ldb, idx, alpha, k, nb, j); \
        }                                                                                          \
        if (narrow == nb) return;                                                                  \
        /* The last t < L columns: copied into a zero-padded k × L panel and run through the      \
         * vector blocks (as scalar chains they were latency-bound: with nb = 50 two columns took \
         * longer than the other 48); the padding lanes are dropped (the panel holds the rows     \
         * already gathered: plain rows). */                            \
        size_t t = nb - narrow;                                                                    \
        T *pad = (T *)malloc(k * L * sizeof(T));                                                   \
        if (pad) {                                                                                 \
            T tail[RB * sizeof(V) / sizeof(T)];                                                    \
            for (size_t kk = 0; kk < k; kk++)                                                      \
                for (size_t l = 0; l < L; l++) pad[kk * L + l] = l < t ? bt[ROW(kk) * ldb + narrow + l] : (T)0; \
            size_t ii = 0;                                                                         \
            for (; ii + RB <= m; ii += RB) {                                                       \
                NAME##_rp(tail, r + ii * k, pad, L, NULL, alpha, k, L, 0);                               \
                for (int a = 0; a < RB; a++)                                                       \
                    for (size_t l = 0; l < t; l++) y[(ii + a) * nb + narrow + l] = tail[a * L + l]; \
            }                                                                                      \
            for (; ii < m; ii++) {                                                                 \
                NAME##_1p(tail, r + ii * k, pad, L, NULL, alpha, k, L, 0);                               \
                for (size_t l = 0; l < t; l++) y[ii * nb + narrow + l] = tail[l];                  \
            }                                                                                      \
            free(pad);                                                                             \
            return;                                                                                \
        }                                                                                          \
        for (size_t ii = 0; ii < m; ii++)                                                          \
            for (size_t j = narrow; j < nb; j++) {                                                 \
                T acc = 0;                                                                         \
                for (size_t kk = 0; kk < k; kk++) acc = FMA(r[ii * k + kk], bt[ROW(kk) * ldb + j], acc); \
                y[ii * nb + j] = acc * alpha;                                                      \
            }                                                                                      \
    }

PK_PRODUCT(double, pk_v4d, product_f64_base, , 4, 2, fma, PK_ROW_PLAIN)
PK_PRODUCT(double, pk_v4d, product_f64_base_indexed, , 4, 2, fma, PK_ROW_INDEXED)
PK_PRODUCT(float, pk_v8f, product_f32_base, , 4, 2, fmaf, PK_ROW_PLAIN)
PK_PRODUCT(float, pk_v8f, product_f32_base_indexed, , 4, 2, fmaf, PK_ROW_INDEXED)
PK_COMBINATION(double, combination_f64_base, )
PK_COMBINATION_INDEXED(double, combination_indexed_f64_base, )
PK_CONTRACTION(double, pk_v4d, contraction_f64_base, )
PK_CONTRACTION(float, pk_v8f, contraction_f32_base, )
PK_COMBINATION(float, combination_f32_base, )
PK_COMBINATION_INDEXED(float, combination_indexed_f32_base, )

/* tanh (pk_kernels.h, pk_tanh): |x| < 0.625: |x| + (|x|·s)·p(s), s = x², p a degree-11 polynomial
 * in s (its coefficients from Tools/reference/tanh_coefficients.py: the Chebyshev fit of
 * (tanh √s/√s − 1)/s on [0, 0.625²], 3.9e-18 from it); else (1 − u)/(1 + u), u = e^{−2|x|} =
 * 2^k e^r with k = round(−2|x|/ln 2) (2|x| clamped at 40, where u < 2^−57 and the result is 1), r
 * reduced by ln 2 in two parts (fdlibm's ln2_hi, whose k·ln2_hi is exact, and ln2_lo) and e^r a
 * degree-11 polynomial (the Chebyshev fit on [−ln2/2, ln2/2], 3.2e-18); then the sign of x; NaN for
 * NaN. Both polynomials in two Horner chains (even and odd coefficients, the chains' latency
 * halved: 3.6 against 4.4 ns an element with AVX2). Branch-free, so that a loop of it vectorizes;
 * every operation correctly rounded and none fused, so that the scalar, SSE2, AVX2 and AVX-512
 * versions give the same bits. At most 2 ulp from the exact tanh (1.83 over 10⁵ points against
 * mpmath, the script's --check; 1.72 over 2·10⁵ against x87 tanhl, TanhTests). 2^k: the integer
 * k sits in the low bits of k + 1.5·2^52, and those bits shifted by 52 add k to the exponent of
 * e^r (k ∈ [−58, 0] for every input but NaN, whose result is x itself: no overflow, no
 * subnormal). */
static const double pk_tanh_p[12] = {
    0x1.b33642a122cddp-18, -0x1.05bbdae896297p-15, 0x1.8445870f6fe41p-14, -0x1.f243823c8c981p-13,
    0x1.3526e9ed54da1p-11, -0x1.7d9f6f23e8682p-10, 0x1.d6d39ae3905e2p-9, -0x1.226e3473dce5cp-7,
    0x1.664f487e0a749p-6, -0x1.ba1ba1ba0f126p-5, 0x1.11111111110a8p-3, -0x1.5555555555555p-2};
static const double pk_exp_p[12] = {
    0x1.af631d0059becp-26, 0x1.28b4057f44145p-22, 0x1.71ddf5749d126p-19, 0x1.a01991ac8730ap-16,
    0x1.a01a01b14378fp-13, 0x1.6c16c187fbe02p-10, 0x1.111111110f225p-7, 0x1.555555554f0cfp-5,
    0x1.555555555555ap-3, 0x1.0000000000011p-1, 0x1.0000000000000p+0, 0x1.0000000000000p+0};

__attribute__((always_inline)) static inline double pk_tanh_core(double x) {
    const double ln2hi = 6.93147180369123816490e-01, ln2lo = 1.90821492927058770002e-10;
    const double invln2 = 1.44269504088896338700e+00, shifter = 0x1.8p52;
    double a = fabs(x), s = a * a, s2 = s * s;
    double pe = pk_tanh_p[0], po = pk_tanh_p[1];
    for (int c = 2; c < 12; c += 2) { pe = pe * s2 + pk_tanh_p[c]; po = po * s2 + pk_tanh_p[c + 1]; }
    double small = a + (a * s) * (pe * s + po);
    double y = 2 * a;
    y = y > 40 ? 40 : y;
    double shifted = y * -invln2 + shifter, k = shifted - shifter;
    double r = (-y - k * ln2hi) - k * ln2lo, r2 = r * r;
    double ee = pk_exp_p[0], eo = pk_exp_p[1];
    for (int c = 2; c < 12; c += 2) { ee = ee * r2 + pk_exp_p[c]; eo = eo * r2 + pk_exp_p[c + 1]; }
    double e = ee * r + eo, u;
    unsigned long long kb, eb;
    memcpy(&kb, &shifted, sizeof kb);
    memcpy(&eb, &e, sizeof eb);
    eb += kb << 52;
    memcpy(&u, &eb, sizeof u);
    double large = (1 - u) / (1 + u);
    double t = copysign(a < 0.625 ? small : large, x);
    return x != x ? x : t;
}

#define PK_TANH(NAME, ATTR)                                                                        \
    ATTR static void NAME##_f64(double *restrict z, double *restrict d, size_t n) {               \
        for (size_t i = 0; i < n; i++) {                                                           \
            double t = pk_tanh_core(z[i]);                                                         \
            z[i] = t;                                                                              \
            d[i] = 1 - t * t;                                                                      \
        }                                                                                          \
    }                                                                                              \
    ATTR static void NAME##_f32(float *restrict z, float *restrict d, size_t n) {                 \
        for (size_t i = 0; i < n; i++) {                                                           \
            double t = pk_tanh_core((double)z[i]);                                                 \
            z[i] = (float)t;                                                                       \
            d[i] = (float)(1 - t * t);                                                             \
        }                                                                                          \
    }
PK_TANH(tanh_base, )

/* The widest version allowed (tests): 2 AVX-512F, 1 AVX2, 0 the baseline. */
static atomic_int max_level = 2;
void pk_kernels_force_baseline(int on) { atomic_store(&max_level, on ? 0 : 2); }
void pk_kernels_force_max_level(int level) { atomic_store(&max_level, level < 0 ? 0 : (level > 2 ? 2 : level)); }

#if defined(__x86_64__) || defined(_M_X64)
PK_COMBINATION(double, combination_f64_avx2, __attribute__((target("avx2"))))
PK_COMBINATION(float, combination_f32_avx2, __attribute__((target("avx2"))))
/* AVX-512F: R's update ran 10 % faster than its AVX2 version on the Xeon of session 15 (W5, the two
 * versions alternating every 128 calls in one process); the same bits (no FMA in either). */
PK_COMBINATION(double, combination_f64_avx512, __attribute__((target("avx512f"))))
PK_COMBINATION(float, combination_f32_avx512, __attribute__((target("avx512f"))))
PK_COMBINATION_INDEXED(double, combination_indexed_f64_avx2, __attribute__((target("avx2"))))
PK_COMBINATION_INDEXED(float, combination_indexed_f32_avx2, __attribute__((target("avx2"))))
PK_COMBINATION_INDEXED(double, combination_indexed_f64_avx512, __attribute__((target("avx512f"))))
PK_COMBINATION_INDEXED(float, combination_indexed_f32_avx512, __attribute__((target("avx512f"))))
PK_CONTRACTION(double, pk_v4d, contraction_f64_avx2, __attribute__((target("avx2"))))
PK_CONTRACTION(float, pk_v8f, contraction_f32_avx2, __attribute__((target("avx2"))))

PK_PRODUCT(double, pk_v4d, product_f64_avx2, __attribute__((target("avx2,fma"))), 4, 2, fma, PK_ROW_PLAIN)
PK_PRODUCT(double, pk_v4d, product_f64_avx2_indexed, __attribute__((target("avx2,fma"))), 4, 2, fma, PK_ROW_INDEXED)
PK_PRODUCT(float, pk_v8f, product_f32_avx2, __attribute__((target("avx2,fma"))), 4, 2, fmaf, PK_ROW_PLAIN)
PK_PRODUCT(float, pk_v8f, product_f32_avx2_indexed, __attribute__((target("avx2,fma"))), 4, 2, fmaf, PK_ROW_INDEXED)
typedef double pk_v8d __attribute__((vector_size(64)));
typedef float pk_v16f __attribute__((vector_size(64)));
/* AVX-512: 6 rows × 4 vectors (24 of its 32 registers accumulate): 5–6 % faster than 4 rows in
 * W5's backward pass on the Xeon of session 15 (the two alternating call by call in one process). */
PK_PRODUCT(double, pk_v8d, product_f64_avx512, __attribute__((target("avx512f,fma"))), 6, 4, fma, PK_ROW_PLAIN)
PK_PRODUCT(double, pk_v8d, product_f64_avx512_indexed, __attribute__((target("avx512f,fma"))), 6, 4, fma, PK_ROW_INDEXED)
PK_PRODUCT(float, pk_v16f, product_f32_avx512, __attribute__((target("avx512f,fma"))), 6, 4, fmaf, PK_ROW_PLAIN)
PK_PRODUCT(float, pk_v16f, product_f32_avx512_indexed, __attribute__((target("avx512f,fma"))), 6, 4, fmaf, PK_ROW_INDEXED)

PK_TANH(tanh_avx2, __attribute__((target("avx2"))))
PK_TANH(tanh_avx512, __attribute__((target("avx512f"))))

/* 2 AVX-512F, 1 AVX2 with FMA, 0 neither (the products' version; cached). */
static int product_level(void) {
    static atomic_int cached = -1;
    int known = atomic_load(&cached);
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") ? 2 : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0);
        atomic_store(&cached, known);
    }
    int allowed = atomic_load(&max_level);
    return known < allowed ? known : allowed;
}

int pk_kernels_avx2(void) {
    static atomic_int cached = -1;  /* every thread computes the same value: a race is harmless */
    int known = atomic_load(&cached);
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") ? 1 : 0;
        atomic_store(&cached, known);
    }
    return known && atomic_load(&max_level) >= 1;
}
#else
int pk_kernels_avx2(void) { (void)atomic_load(&max_level); return 0; }
#endif

double pk_tanh(double x) { return pk_tanh_core(x); }

#if defined(__x86_64__) || defined(_M_X64)
#define PK_TANH_DISPATCH(SUFFIX)                                                                   \
    if (product_level() == 2) { tanh_avx512_##SUFFIX(z, d, n); return; }                          \
    if (pk_kernels_avx2()) { tanh_avx2_##SUFFIX(z, d, n); return; }
#else
#define PK_TANH_DISPATCH(SUFFIX)
#endif
void pk_tanh_in_place_f64(double *z, double *d, size_t n) {
    PK_TANH_DISPATCH(f64)
    tanh_base_f64(z, d, n);
}
void pk_tanh_in_place_f32(float *z, float *d, size_t n) {
    PK_TANH_DISPATCH(f32)
    tanh_base_f32(z, d, n);
}

void pk_scaled_combination_f64(double *o, const double *s, const double *a0, const double *a1,
                               const double *a2, const double *a3, double c0, double c1, double c2,
                               double c3, double dec, int mode, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if (product_level() == 2) { combination_f64_avx512(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; }
    if (pk_kernels_avx2()) { combination_f64_avx2(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; }
#endif
    combination_f64_base(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n);
}

void pk_scaled_combination_f32(float *o, const float *s, const float *a0, const float *a1,
                               const float *a2, const float *a3, float c0, float c1, float c2,
                               float c3, float dec, int mode, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if (product_level() == 2) { combination_f32_avx512(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; }
    if (pk_kernels_avx2()) { combination_f32_avx2(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; }
#endif
    combination_f32_base(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n);
}

void pk_signal_contraction_f64(double *z, const int *channels, int nch, const double *y,
                               const double *u, const double *gram, double sw, const double *b,
                               double sb, const double *sT, size_t dout, size_t nb, double *coef) {
#if defined(__x86_64__) || defined(_M_X64)
    if (pk_kernels_avx2()) { contraction_f64_avx2(z, channels, nch, y, u, gram, sw, b, sb, sT, dout, nb, coef); return; }
#endif
    contraction_f64_base(z, channels, nch, y, u, gram, sw, b, sb, sT, dout, nb, coef);
}

void pk_signal_contraction_f32(float *z, const int *channels, int nch, const float *y,
                               const float *u, const float *gram, float sw, const float *b,
                               float sb, const float *sT, size_t dout, size_t nb, float *coef) {
#if defined(__x86_64__) || defined(_M_X64)
    if (pk_kernels_avx2()) { contraction_f32_avx2(z, channels, nch, y, u, gram, sw, b, sb, sT, dout, nb, coef); return; }
#endif
    contraction_f32_base(z, channels, nch, y, u, gram, sw, b, sb, sT, dout, nb, coef);
}

void pk_rows_times_batch_f64(double *y, const double *r, const double *bt, size_t ldb, double alpha, size_t m, size_t k, size_t nb) {
#if defined(__x86_64__) || defined(_M_X64)
    switch (product_level()) {
    case 2: product_f64_avx512(y, r, bt, ldb, NULL, alpha, m, k, nb); return;
    case 1: product_f64_avx2(y, r, bt, ldb, NULL, alpha, m, k, nb); return;
    default: break;
    }
#endif
    product_f64_base(y, r, bt, ldb, NULL, alpha, m, k, nb);
}

void pk_rows_times_batch_f32(float *y, const float *r, const float *bt, size_t ldb, float alpha, size_t m, size_t k, size_t nb) {
#if defined(__x86_64__) || defined(_M_X64)
    switch (product_level()) {
    case 2: product_f32_avx512(y, r, bt, ldb, NULL, alpha, m, k, nb); return;
    case 1: product_f32_avx2(y, r, bt, ldb, NULL, alpha, m, k, nb); return;
    default: break;
    }
#endif
    product_f32_base(y, r, bt, ldb, NULL, alpha, m, k, nb);
}


#if defined(__x86_64__) || defined(_M_X64)
PK_CONTRACTION_ROWS_BLOCK(double, pk_v8d, contraction_rows_f64_avx512_g2, __attribute__((target("avx512f"))), 4, 2, 2)
PK_CONTRACTION_ROWS_BLOCK(double, pk_v8d, contraction_rows_f64_avx512_g1, __attribute__((target("avx512f"))), 4, 1, 2)
PK_CONTRACTION_ROWS_BLOCK(float, pk_v16f, contraction_rows_f32_avx512_g2, __attribute__((target("avx512f"))), 4, 2, 2)
PK_CONTRACTION_ROWS_BLOCK(float, pk_v16f, contraction_rows_f32_avx512_g1, __attribute__((target("avx512f"))), 4, 1, 2)
#endif

/* Groups of 4 rows through the AVX-512 blocks where the CPU has AVX-512F and nb is a whole number
 * of blocks (16 doubles, 32 floats); every other row by the one-row kernel. */
#if defined(__x86_64__) || defined(_M_X64)
#define PK_ROWS_FAST(T, SUFFIX, W)                                                                  \
    if (product_level() == 2 && nb % (W) == 0) {                                                   \
        for (; q + 4 <= rows; q += 4) {                                                            \
            T *zq = z + q * zs;                                                                    \
            const T *yq = y ? y + q * ys : NULL, *uq = u ? u + q * us : NULL;                     \
            const T *gq = gram ? gram + q * gs : NULL, *bq = b ? b + q * bs : NULL;               \
            for (size_t i0 = 0; i0 < nb; i0 += (W)) {                                              \
                int c = 0;                                                                         \
                for (; c + 2 <= nch; c += 2)                                                       \
                    contraction_rows_##SUFFIX##_avx512_g2(zq, zs, channels + c, yq, ys, uq, us, gq, gs, sw, bq, bs, sb, sT, dout, nb, i0); \
                for (; c < nch; c++)                                                               \
                    contraction_rows_##SUFFIX##_avx512_g1(zq, zs, channels + c, yq, ys, uq, us, gq, gs, sw, bq, bs, sb, sT, dout, nb, i0); \
            }                                                                                      \
        }                                                                                          \
    }
#else
#define PK_ROWS_FAST(T, SUFFIX, W)
#endif

#define PK_CONTRACTION_ROWS(T, SUFFIX, W)                                                          \
    void pk_signal_contraction_rows_##SUFFIX(T *z, size_t zs, const int *channels, int nch, int rows, \
                                             const T *y, size_t ys, const T *u, size_t us,         \
                                             const T *gram, size_t gs, T sw, const T *b, size_t bs, \
                                             T sb, const T *sT, size_t dout, size_t nb, T *coef) {  \
        int q = 0;                                                                                 \
        PK_ROWS_FAST(T, SUFFIX, W)                                                                 \
        for (; q < rows; q++)                                                                      \
            pk_signal_contraction_##SUFFIX(z + q * zs, channels, nch, y ? y + q * ys : NULL,       \
                                           u ? u + q * us : NULL, gram ? gram + q * gs : NULL, sw, \
                                           b ? b + q * bs : NULL, sb, sT, dout, nb, coef);         \
    }

PK_CONTRACTION_ROWS(double, f64, 16)
PK_CONTRACTION_ROWS(float, f32, 32)

/* From PK_GATHER_ROWS rows of R on, the indexed product first copies the batch's rows idx[kk] into
 * a contiguous 64-byte aligned panel (ldb wide, the first nb of each row) and runs the plain kernel
 * on it: the same chains of the same values in the same k order, so the same bits. One core of the
 * AMD EPYC of session 21 (AVX2), the copy included: W6's shape (128 rows × 400 of 784 inputs × 64)
 * 20.1 → 27.6 GFLOP/s, 700 inputs 19.0 → 29.6, fmnist-adamw's (16 rows × 400 × 50) 18.8 → 20.9;
 * 10 rows × 300 × 50 21.5 → 18.8 (the copy outweighs the product), hence the threshold. */
#define PK_GATHER_ROWS 16
#define PK_INDEXED_ENTRY(T, SUFFIX)                                                                 \
    void pk_rows_times_batch_indexed_##SUFFIX(T *y, const T *r, const T *bt, size_t ldb, const int *idx, \
                                              T alpha, size_t m, size_t k, size_t nb) {            \
        if (m >= PK_GATHER_ROWS && k > 0 && nb > 0 && (ldb * sizeof(T)) % 64 == 0) {              \
            T *panel = (T *)aligned_alloc(64, k * ldb * sizeof(T));                                \
            if (panel) {                                                                           \
                for (size_t kk = 0; kk < k; kk++)                                                  \
                    memcpy(panel + kk * ldb, bt + (size_t)idx[kk] * ldb, nb * sizeof(T));          \
                pk_rows_times_batch_##SUFFIX(y, r, panel, ldb, alpha, m, k, nb);                   \
                free(panel);                                                                       \
                return;                                                                            \
            }                                                                                      \
        }                                                                                          \
        PK_INDEXED_PRODUCT_DISPATCH(SUFFIX)                                                        \
        product_##SUFFIX##_base_indexed(y, r, bt, ldb, idx, alpha, m, k, nb);                     \
    }                                                                                              \
    void pk_scaled_combination_indexed_##SUFFIX(T *o, const T *s, const int *idx, const T *a0,     \
                                                const T *a1, const T *a2, const T *a3, T c0, T c1, \
                                                T c2, T c3, T dec, int mode, size_t n) {           \
        PK_INDEXED_COMBINATION_DISPATCH(SUFFIX)                                                    \
        combination_indexed_##SUFFIX##_base(o, s, idx, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); \
    }
#if defined(__x86_64__) || defined(_M_X64)
#define PK_INDEXED_PRODUCT_DISPATCH(SUFFIX)                                                         \
    switch (product_level()) {                                                                     \
    case 2: product_##SUFFIX##_avx512_indexed(y, r, bt, ldb, idx, alpha, m, k, nb); return;       \
    case 1: product_##SUFFIX##_avx2_indexed(y, r, bt, ldb, idx, alpha, m, k, nb); return;         \
    default: break;                                                                                \
    }
#define PK_INDEXED_COMBINATION_DISPATCH(SUFFIX)                                                     \
    if (product_level() == 2) { combination_indexed_##SUFFIX##_avx512(o, s, idx, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; } \
    if (pk_kernels_avx2()) { combination_indexed_##SUFFIX##_avx2(o, s, idx, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; }
#else
#define PK_INDEXED_PRODUCT_DISPATCH(SUFFIX)
#define PK_INDEXED_COMBINATION_DISPATCH(SUFFIX)
#endif
PK_INDEXED_ENTRY(double, f64)
PK_INDEXED_ENTRY(float, f32)
