// Load-time weight repacking for the decode kernels: Q4_0 / Q8_0 / Q2_K / Q3_K / Q4_K / Q5_K / Q6_K
// matrices are rewritten, row by row, into block-interleaved layouts (Q4_0_R16 / Q8_0_R16 /
// Q2_K_R16 / Q4_K_R16 / Q5_K_R16 / Q6_K_R16) that the decode
// matrix x vector kernels read with one 64-byte load per 4 elements of 16 blocks.
//
// Layouts (a row of n elements, n % 512 == 0, is n / 512 groups of 512 consecutive elements):
//   Q4_0_R16 group (288 bytes): qs[4][16][4]: piece j (64 bytes) holds qs bytes 4j..4j+3 of blocks
//     0..15, 4 bytes per block (so low nibbles = elements 4j..4j+3, high = 16+4j..16+4j+3);
//     then d[16], the blocks' fp16 scales. Values exactly as Q4_0: ((nibble) - 8) * d.
//   Q8_0_R16 group (544 bytes): u[8][16][4]: piece j holds elements 4j..4j+3 of blocks 0..15 as
//     unsigned bytes q + 128; then d[16] fp16. Values exactly as Q8_0: (u - 128) * d.
//   Q4_K_R16 group (288 bytes, as Q4_K): two super-blocks as 16 sub-blocks of 32: qs as in
//     Q4_0_R16 (pair byte i of sub-block l = element i low, element 16 + i high), the 6-bit scales
//     and mins as 16 12-bit lanes (sc | m << 6 at bits 12l..12l+11 of 24 bytes), d[2], dmin[2]
//     fp16 (per super-block). Values exactly
//     as Q4_K: d * sc * nibble - dmin * m. Its dot uses Q8_0_A16 activations (a scale per 32
//     elements, as the prefill GEMM), not Q8_K, so decode results differ from the file layout's
//     by activation rounding only.
//   Q2_K_R16 group (168 bytes, as Q2_K): two super-blocks as 16 blocks of 32 (sub-block pairs): the
//     2-bit values in two pieces (piece h = elements 16h..16h+15 of each block; byte 4b + k, bits
//     2j..2j+1 = element 16h + 4j + k), the even / odd sub-blocks' scale bytes as in Q2_K (sc | m
//     << 4), d[2], dmin[2]. Values exactly as Q2_K: d * sc * q - dmin * m.
//   Q5_K_R16 group (352 bytes, as Q5_K): the low 4 bits exactly as Q4_K_R16 (256), the 5th
//     bits in one piece (64: byte 4l + k, bit 2j + h = element 16h + 4j + k of sub-block l), then
//     the scale lanes, d[2], dmin[2] as Q4_K_R16. Values exactly as Q5_K: d * sc * q - dmin * m.
//   Q6_K_R16 group (420 bytes, as Q6_K): two super-blocks as 16 blocks of 32 (sub-block pairs):
//     the 6-bit values' low nibbles as Q4_0_R16 pair bytes (256), their 2 high bits in two pieces
//     (128: piece h holds elements 16h..16h+15 of each block, byte k bits 2j..2j+1 = element
//     16h + 4j + k), int8 scales of the even and odd sub-blocks (16 + 16), d[2] fp16. Values as
//     Q6_K: d * sc * (q - 32). Dots Q8_0_A16 activations, like Q4_K_R16. Prefill packs it into the 16-scale
//     GEMM panels (gemm.h kGemm16BlockBytes), as Q2_K_R16, Q6_K and Q3_K. Q3_K widens into it
//     losslessly (q = q3 + 32, sc = its 6-bit scale - 32): 420 bytes per 512 elements instead of
//     220, for SIMD decode instead of a scalar dot; Model does it only when memory allows.
//   Q8_0_A16 group (640 bytes), the activation format of all of them: q[8][16][4] int8 in the same piece
//     order, d[16] float (the Q8_0 block scale, fp16-rounded then widened), s[16] int32 = sum of
//     the block's q. Bytes equal to quantize_q8_0's blocks, rearranged.
// With 4 bytes of 16 blocks per 64-byte piece, each int32 lane of a VPDPBUSD is one block: a row's
// 16 blocks are dotted with 4 (Q4_0) or 8 (Q8_0) instructions and one scale multiply, and no
// horizontal reduction or activation shuffling happens inside the loop (see avx512_repack.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "modu/kernels/dispatch.h"
#include "modu/kernels/dtype.h"

namespace modu {

constexpr int64_t kRepackCols = 512;  // elements per group: rows must be a multiple of this

// The layout `t` is repacked into (Q4_0 -> Q4_0_R16, Q8_0 -> Q8_0_R16, Q4_K -> Q4_K_R16,
// Q2_K -> Q2_K_R16, Q5_K -> Q5_K_R16, Q6_K and Q3_K -> Q6_K_R16), or `t` itself.
DType repacked_dtype(DType t);

// Whether a matrix of dtype t with `cols` columns is worth repacking for the kernels in `kt`:
// t has a repacked layout, cols % 512 == 0, kt has a decode kernel (vec_dot_rows) for it and, if
// t has a prefill GEMM packer, one for the repacked layout too. False on levels without such
// kernels (they keep the file layout).
bool repack_pays(DType t, int64_t cols, const KernelTable& kt);

// Rewrites nrows rows of n elements (n % 512 == 0) of dtype t into repacked_dtype(t): source rows
// are dtype_row_bytes(t, n) apart, destination rows dtype_row_bytes(repacked_dtype(t), n) (equal
// for Q4_0, Q8_0, Q4_K, Q5_K and Q6_K; Q3_K widened to Q6_K_R16 1.9x as long).
void repack_rows(DType t, const void* src, void* dst, int64_t n, int64_t nrows);

}  // namespace modu
