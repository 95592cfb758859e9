// Arguments of the Hopper batched GEMM (gemm_wgmma, sm_90a), shared verbatim by host code and
// the template: the batched GEMM's arguments plus the TMA descriptors of A and B, all passed by
// value as one __grid_constant__ parameter (TMA reads its descriptors from parameter space).
//
// Block: a producer warpgroup (one thread issues the TMA loads) and two consumer warpgroups,
// each computing 64 rows x tile_n columns of a 128 x tile_n output tile with wgmma, then storing
// it through shared memory with TMA, 128 bytes of each row at a time (64 columns of 16-bit C, 32
// of float32), while it goes on to the next tile. Every shared-memory box has rows of 128 bytes
// (the swizzle's), so a k-block is 64 16-bit values deep or 32 float32 (TF32) ones. The
// grid is persistent: block i takes tiles i, i + grid, ... of batch-major, then grouped
// row/column order; with row counts (grouped), only the row tiles of each batch's count, read on
// the device.
#pragma once

#include <switchyard/common/gemm_args.h>

namespace switchyard {
namespace kernels {

constexpr int kWgmmaThreads = 384;
constexpr int kWgmmaTileM = 128;
constexpr int kWgmmaRowBytes = 128;      // a row of the 128-byte swizzle: a k-block's depth
constexpr int kWgmmaGroupRows = 8;       // row tiles walked together, so that B tiles stay in L2
constexpr int kWgmmaBarrierBytes = 256;  // the ring's mbarriers, after the stages
// The epilogue's staging: per consumer warpgroup, two boxes of 64 rows x 128 bytes (one being
// stored by TMA while the next is written), after the stages.
constexpr int kWgmmaStoreBoxBytes = 64 * kWgmmaRowBytes;
constexpr int kWgmmaStagingBytes = 2 * 2 * kWgmmaStoreBoxBytes;

// The depth of a k-block for elements of `element_bytes` (2: float16/bfloat16; 4: float32 read
// as TF32): one swizzled row. Also the width of the epilogue's boxes and of an MN-major box.
SY_HOST_DEVICE constexpr int wgmma_tile_k(int element_bytes) {
  return kWgmmaRowBytes / element_bytes;
}
// What K must be a multiple of: rows of whole 16 bytes (TMA's strides and global alignment). The
// last k-block may be partial: TMA reads the columns past K as zeros, in both operands.
SY_HOST_DEVICE constexpr int wgmma_k_unit(int element_bytes) {
  return 16 / element_bytes;
}

// Whether the weight gradient (trans_a) reads its operands transposed, the rows of the reduction
// innermost: A^T as [K, rows] and B^T as [N, rows], padded to whole 16-byte rows and zero past
// each batch's count (the caller's transpose writes them so). TF32's wgmma reads only K-major
// operands, and for the weight gradient K is the rows; 16-bit types read A and B as stored.
SY_HOST_DEVICE constexpr bool wgmma_pre_transposed(int element_bytes, bool trans_a) {
  return trans_a && element_bytes == 4;
}

// The row length of such transposed operands: the reduction's rows in whole 16 bytes (one unit
// at the least, so that a GEMM of no rows still has a TMA box to read zeros from).
SY_HOST_DEVICE constexpr long wgmma_transposed_rows(long rows, int element_bytes) {
  const long unit = wgmma_k_unit(element_bytes);
  return rows <= unit ? unit : (rows + unit - 1) / unit * unit;
}

// Shared-memory stages of the load ring for a tile width (about 192 KB either way).
SY_HOST_DEVICE constexpr int wgmma_stages(int tile_n) {
  return tile_n == 256 ? 4 : 6;
}
SY_HOST_DEVICE constexpr int wgmma_stage_bytes(int tile_n) {
  return (kWgmmaTileM + tile_n) * kWgmmaRowBytes;
}
// Dynamic shared memory of a block: the stages, the epilogue's staging, 1024 bytes to align them
// (the swizzle's period), and the barriers: 225.25 KB of the 227 KB a Hopper block may have.
SY_HOST_DEVICE constexpr int wgmma_shared_bytes(int tile_n) {
  return wgmma_stages(tile_n) * wgmma_stage_bytes(tile_n) + kWgmmaStagingBytes + 1024 + kWgmmaBarrierBytes;
}

// CUtensorMap's size and alignment (runtime/cuda_driver.h checks that they agree).
struct alignas(128) TmaDescriptor {
  unsigned long long opaque[16];
};

struct alignas(128) GemmWgmmaArgs {
  TmaDescriptor a;  // A [batch, rows, K]: box K tile_k x rows 128 (pre-transposed: A^T [batch, K, rows])
  TmaDescriptor b;  // B [batch, N, K] (trans_b; pre-transposed: B^T [batch, N, rows]): box K tile_k x N tile_n;
                    // B [batch, K, N]: box N 64 x K 64
  TmaDescriptor c;  // C [batch, rows, N] (trans_a: [batch, K, N]): box N tile_k x rows 64
  GemmArgs gemm;    // pointers for the epilogue (bias, aux, C), row counts and strides
  int tiles_m;      // row tiles per batch (of gemm.rows)
  int tiles_n;
  int tiles;  // batch * tiles_m * tiles_n
};

}  // namespace kernels
}  // namespace switchyard
