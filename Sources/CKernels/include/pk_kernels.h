#ifndef PATHKERNEL_KERNELS_H
#define PATHKERNEL_KERNELS_H
#include <stddef.h>

/* Elementwise kernels of the analyzer's hot loops, compiled for several instruction sets on x86-64
 * (baseline SSE2, AVX2, and for pk_scaled_combination and pk_signal_contraction_rows AVX-512F,
 * chosen once per process by CPUID) and with floating-point contraction off, so that all compute
 * the same operations in the same order and give the same bits (no FMA).
 *
 * pk_scaled_combination_f64 / _f32: for k < n,
 *     v[k] = s[k] * (c0*a0[k] + c1*a1[k] + c2*a2[k] + c3*a3[k])   (sums left to right)
 *     mode 0: o[k] = v[k];  mode 1: o[k] = o[k] + v[k];  mode 2: o[k] = dec*o[k] + v[k].
 * `s` may be NULL: every s[k] is 1 (the same bits, s not read). `o` may not alias the inputs. */
void pk_scaled_combination_f64(double *o, const double *s, const double *a0, const double *a1,
                               const double *a2, const double *a3, double c0, double c1, double c2,
                               double c3, double dec, int mode, size_t n);
void pk_scaled_combination_f32(float *o, const float *s, const float *a0, const float *a1,
                               const float *a2, const float *a3, float c0, float c1, float c2,
                               float c3, float dec, int mode, size_t n);

/* pk_signal_contraction_f64 / _f32: for each channel k of `channels` (nch of them), z[k*nb + i]
 * is set to the sum over j < dout (j ascending) of coef_j[i] * sT[(k*dout + j)*nb + i], i < nb,
 * where coef_j[i] = base_j[i] + bias_j, base_j[i] = (sw*u[j]) * gram[i] when `u` is not NULL
 * (a factored layer) and y[j*nb + i] otherwise, bias_j = sb*b[j] when `b` is not NULL, else 0.
 * `coef` is scratch of nb scalars. Each z[k*nb + i] starts at 0 and adds its terms in j order. */
void pk_signal_contraction_f64(double *z, const int *channels, int nch, const double *y,
                               const double *u, const double *gram, double sw, const double *b,
                               double sb, const double *sT, size_t dout, size_t nb, double *coef);
void pk_signal_contraction_f32(float *z, const int *channels, int nch, const float *y,
                               const float *u, const float *gram, float sw, const float *b,
                               float sb, const float *sT, size_t dout, size_t nb, float *coef);

/* pk_signal_contraction_rows_f64 / _f32: pk_signal_contraction for `rows` query rows at once, the
 * same bits: row q writes z + q*zs and reads y + q*ys (or u + q*us and gram + q*gs) and b + q*bs
 * (each pointer may be NULL as above; the strides of a NULL pointer are ignored). Rows in groups of
 * 4 share each load of sT (AVX-512F, nb a multiple of 16 doubles or 32 floats); the others go one
 * at a time. */
void pk_signal_contraction_rows_f64(double *z, size_t zs, const int *channels, int nch, int rows,
                                    const double *y, size_t ys, const double *u, size_t us,
                                    const double *gram, size_t gs, double sw, const double *b,
                                    size_t bs, double sb, const double *sT, size_t dout, size_t nb,
                                    double *coef);
void pk_signal_contraction_rows_f32(float *z, size_t zs, const int *channels, int nch, int rows,
                                    const float *y, size_t ys, const float *u, size_t us,
                                    const float *gram, size_t gs, float sw, const float *b,
                                    size_t bs, float sb, const float *sT, size_t dout, size_t nb,
                                    float *coef);

/* pk_rows_times_batch_f64 / _f32: y[i*nb + j] = alpha * acc, acc the chain of fused multiply-adds
 * acc = fma(r[i*k + kk], bt[kk*ldb + j], acc) over kk = 0 … k−1 from acc = 0, for i < m, j < nb:
 * R's m rows (k scalars each) times the batch's inputs transposed (k × nb, row stride ldb ≥ nb),
 * without packing R. Versions for AVX-512F, AVX2 with FMA and the baseline (fma() from libm), all
 * with the same bits. Fast when bt is 64-byte aligned and ldb a multiple of 64 bytes (unaligned
 * 64-byte loads ran at 0.63× in a microbenchmark). */
void pk_rows_times_batch_f64(double *y, const double *r, const double *bt, size_t ldb, double alpha, size_t m, size_t k, size_t nb);
void pk_rows_times_batch_f32(float *y, const float *r, const float *bt, size_t ldb, float alpha, size_t m, size_t k, size_t nb);

/* pk_rows_times_batch_indexed_f64 / _f32: pk_rows_times_batch with R's column kk meeting the batch's
 * row idx[kk] (bt + idx[kk]*ldb) instead of row kk: R's rows kept over a subset of the inputs (a
 * query's nonzero inputs, in ascending order), the same chains of fused multiply-adds as the full
 * product less the terms whose R entry is 0, so the same values. From 16 rows on (and ldb a whole
 * number of 64-byte lines) the rows idx[kk] are first copied into a contiguous panel and the plain
 * kernel runs on it (the same chains, faster: pk_kernels.c, PK_GATHER_ROWS). */
void pk_rows_times_batch_indexed_f64(double *y, const double *r, const double *bt, size_t ldb, const int *idx,
                                     double alpha, size_t m, size_t k, size_t nb);
void pk_rows_times_batch_indexed_f32(float *y, const float *r, const float *bt, size_t ldb, const int *idx,
                                     float alpha, size_t m, size_t k, size_t nb);

/* pk_scaled_combination_indexed_f64 / _f32: pk_scaled_combination with s read at s[idx[k]] (a row
 * of the preconditioner at a query's nonzero inputs); the a's are read at k. The same operations. */
void pk_scaled_combination_indexed_f64(double *o, const double *s, const int *idx, const double *a0,
                                       const double *a1, const double *a2, const double *a3, double c0,
                                       double c1, double c2, double c3, double dec, int mode, size_t n);
void pk_scaled_combination_indexed_f32(float *o, const float *s, const int *idx, const float *a0,
                                       const float *a1, const float *a2, const float *a3, float c0,
                                       float c1, float c2, float c3, float dec, int mode, size_t n);

/* 1 when the AVX2 versions run on this CPU, else 0 (the baseline versions run). */
int pk_kernels_avx2(void);

/* Tests: 1 runs the baseline versions whatever the CPU (0, the default, chooses by CPUID). */
void pk_kernels_force_baseline(int on);

/* Tests: the widest version any kernel may run, 2 (AVX-512F, the default), 1 (AVX2) or 0 (the
 * baseline), each where the CPU has it. */
void pk_kernels_force_max_level(int level);

/* pk_tanh: tanh x within 2 ulp of the exact value (±1 from |x| ≥ 20, ±1 for ±∞, NaN
 * for NaN, −0 for −0), computed by one fixed sequence of correctly rounded operations without FMA
 * (pk_kernels.c), so that every version gives the same bits. pk_tanh_in_place_f64 / _f32: for
 * k < n, t = pk_tanh(z[k]) (a float widened to double first), z[k] = t and d[k] = 1 − t·t, each
 * rounded once to the array's type: the bits of pk_tanh, in 8, 4 or 2 lanes (AVX-512F, AVX2,
 * SSE2). */
double pk_tanh(double x);
void pk_tanh_in_place_f64(double *z, double *d, size_t n);
void pk_tanh_in_place_f32(float *z, float *d, size_t n);

/* A hint to the core that the caller is spinning on a flag (x86 `pause`; nothing elsewhere):
 * the spinning thread yields the core's shared resources and saves power. Parallel's workers
 * call it while they wait for the next region. */
static inline void pk_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
