// GEMM body compiled with AVX-512F (this file only; chosen at run time).
#include "gemm.h"
#define GEMM_FN gemm_rows_avx512
#define GEMM_VEC 16
#include "gemm_body.h"
