#ifndef PATHKERNEL_CRC32_H
#define PATHKERNEL_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* 1 when pk_crc32_fold can run on this CPU (x86-64 with PCLMULQDQ and SSE4.1), else 0. */
int pk_crc32_fold_available(void);

/* Advances the CRC-32 (zlib's polynomial, reflected) *register* `state` (the running value
 * before the final inversion: ~crc) over `len` bytes with carry-less multiplication.
 * Requires pk_crc32_fold_available(), len >= 64 and len a multiple of 16. */
uint32_t pk_crc32_fold(uint32_t state, const unsigned char *buf, size_t len);

#endif
