// GEMM body compiled with AVX2 + FMA (this file only; chosen at run time).
#include "gemm.h"
#define GEMM_FN gemm_rows_avx2
#define GEMM_VEC 8
#include "gemm_body.h"
