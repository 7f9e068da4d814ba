// GEMM body for baseline x86-64 (SSE2 vectors).
#include "gemm.h"
#define GEMM_FN gemm_rows_generic
#define GEMM_VEC 4
#include "gemm_body.h"
