/* See pk_kernels.h. The loop bodies are written once (a macro) and instantiated for the baseline
 * and, on x86-64, for AVX2; the compiler vectorizes both. Contraction into FMA is off: AVX2 alone
 * has no FMA, and the pragma keeps a compiler from fusing anywhere, so the two versions round alike. */
#include "pk_kernels.h"
#include <stdatomic.h>

#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define PK_COMBINATION(T, NAME, ATTR)                                                              \
    ATTR static void NAME(T *restrict o, const T *restrict s, const T *restrict a0,                \
                          const T *restrict a1, const T *restrict a2, const T *restrict a3,        \
                          T c0, T c1, T c2, T c3, T dec, int mode, size_t n) {                     \
        if (mode == 0) {                                                                           \
            for (size_t k = 0; k < n; k++)                                                         \
                o[k] = s[k] * (c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]);                \
        } else if (mode == 1) {                                                                    \
            for (size_t k = 0; k < n; k++)                                                         \
                o[k] = o[k] + s[k] * (c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]);         \
        } else {                                                                                   \
            for (size_t k = 0; k < n; k++)                                                         \
                o[k] = dec * o[k] + s[k] * (c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]);   \
        }                                                                                          \
    }

#define PK_CONTRACTION(T, NAME, ATTR)                                                              \
    ATTR static void NAME(T *restrict z, const int *channels, int nch, const T *restrict y,        \
                          const T *restrict u, const T *restrict gram, T sw, const T *restrict b,  \
                          T sb, const T *restrict sT, size_t dout, size_t nb, T *restrict coef) {  \
        for (int c = 0; c < nch; c++)                                                              \
            for (size_t i = 0; i < nb; i++) z[(size_t)channels[c] * nb + i] = 0;                  \
        for (size_t j = 0; j < dout; j++) {                                                        \
            T bj = b ? sb * b[j] : (T)0;                                                           \
            if (u) {                                                                               \
                T uj = sw * u[j];                                                                  \
                for (size_t i = 0; i < nb; i++) coef[i] = uj * gram[i] + bj;                       \
            } else {                                                                               \
                const T *yj = y + j * nb;                                                          \
                for (size_t i = 0; i < nb; i++) coef[i] = yj[i] + bj;                              \
            }                                                                                      \
            for (int c = 0; c < nch; c++) {                                                        \
                size_t k = (size_t)channels[c];                                                    \
                const T *sk = sT + (k * dout + j) * nb;                                            \
                T *zk = z + k * nb;                                                                \
                for (size_t i = 0; i < nb; i++) zk[i] = zk[i] + coef[i] * sk[i];                  \
            }                                                                                      \
        }                                                                                          \
    }

PK_COMBINATION(double, combination_f64_base, )
PK_CONTRACTION(double, contraction_f64_base, )
PK_CONTRACTION(float, contraction_f32_base, )
PK_COMBINATION(float, combination_f32_base, )

static atomic_int force_baseline = 0;
void pk_kernels_force_baseline(int on) { atomic_store(&force_baseline, on); }

#if defined(__x86_64__) || defined(_M_X64)
PK_COMBINATION(double, combination_f64_avx2, __attribute__((target("avx2"))))
PK_COMBINATION(float, combination_f32_avx2, __attribute__((target("avx2"))))
PK_CONTRACTION(double, contraction_f64_avx2, __attribute__((target("avx2"))))
PK_CONTRACTION(float, contraction_f32_avx2, __attribute__((target("avx2"))))

int pk_kernels_avx2(void) {
    static atomic_int cached = -1;  /* every thread computes the same value: a race is harmless */
    int known = atomic_load(&cached);
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") ? 1 : 0;
        atomic_store(&cached, known);
    }
    return known && !atomic_load(&force_baseline);
}
#else
int pk_kernels_avx2(void) { (void)atomic_load(&force_baseline); return 0; }
#endif

void pk_scaled_combination_f64(double *o, const double *s, const double *a0, const double *a1,
                               const double *a2, const double *a3, double c0, double c1, double c2,
                               double c3, double dec, int mode, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if (pk_kernels_avx2()) { combination_f64_avx2(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n); return; }
#endif
    combination_f64_base(o, s, a0, a1, a2, a3, c0, c1, c2, c3, dec, mode, n);
}

void pk_scaled_combination_f32(float *o, const float *s, const float *a0, const float *a1,
                               const float *a2, const float *a3, float c0, float c1, float c2,
                               float c3, float dec, int mode, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
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
