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
#endif
