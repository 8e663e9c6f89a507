#ifndef PATHKERNEL_CBLAS_SHIM_H
#define PATHKERNEL_CBLAS_SHIM_H
#include <stddef.h>
#include <cblas.h>

/* Debian's OpenBLAS ships no lapacke.h, but libopenblas exports the Fortran LAPACK symbols.
   Prototypes follow gfortran's ABI: every argument by pointer, hidden string lengths last. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
             double *b, const int *ldb, int *info, size_t uplo_len);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

/* Which kernels OpenBLAS chose at load time (a DYNAMIC_ARCH build picks them from the CPU, or from
   OPENBLAS_CORETYPE when set) and how it was built. OpenBLAS's cblas.h declares both; declared
   weak here, so that a BLAS library without them still links, and these return NULL. */
char *openblas_get_corename(void) __attribute__((weak));
char *openblas_get_config(void) __attribute__((weak));
static inline const char *pathkernel_openblas_corename(void) {
    return openblas_get_corename ? openblas_get_corename() : NULL;
}
static inline const char *pathkernel_openblas_config(void) {
    return openblas_get_config ? openblas_get_config() : NULL;
}

/* The widest x86 vector extension the CPU has, for `BLASInfo.slowCoreAdvice`: 2 AVX-512
   (foundation and DQ), 1 AVX2 with FMA, 0 neither or not x86 (GCC/Clang's cpu builtins). */
static inline int pathkernel_cpu_vector_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* The heap policy of `AllocatorPolicy` (PKNumerics): glibc's mallopt, 1 when every setting was
   accepted, 0 otherwise or off glibc. */
#if defined(__GLIBC__)
#include <malloc.h>
#include <limits.h>
static inline int pathkernel_keep_freed_blocks(int mmap_threshold) {
    int a = mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    int b = mallopt(M_TRIM_THRESHOLD, INT_MAX);
    int c = mallopt(M_MMAP_MAX, 0);
    return a == 1 && b == 1 && c == 1;
}
#else
static inline int pathkernel_keep_freed_blocks(int mmap_threshold) { (void)mmap_threshold; return 0; }
#endif
#endif
