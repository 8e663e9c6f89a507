#ifndef PATHKERNEL_CZLIB_SHIM_H
#define PATHKERNEL_CZLIB_SHIM_H
#include <zlib.h>
#endif
