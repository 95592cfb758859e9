// Batched GEMM on Hopper tensor cores (sm_90a) for float16 and bfloat16, and float32 read as
// TF32 (a layer's allow_tf32), fp32 accumulation:
// C[b] = epilogue(A[b] * op(B[b]) + bias[b]) with A [rows, K] and B [N, K] (trans_b) or [K, N];
// or the weight gradient (trans_a) C[b] [K, N] = A[b]^T B[b], A [rows, K], B [rows, N], reducing
// over the run-time rows, or each batch's count of them when grouped (both operands M/N-major in
// shared memory, wgmma's transpose flags). TF32 takes only K-major operands (wgmma has no
// transpose for it): A [rows, K] with B [N, K], and for the weight gradient A^T [K, rows] with
// B^T [N, rows], transposed ahead by the caller (wgmma_pre_transposed); it reads the top 19 bits
// of each float.
// TMA loads 128 x tile_k tiles of A and tile_n x tile_k of B (tile_k: 128 bytes of K, 64 16-bit
// values or 32 float32) into a ring of shared-memory stages that complete on mbarriers; one
// producer thread keeps the ring full while two consumer warpgroups (setmaxnreg gives them the
// registers) multiply with wgmma straight from shared memory, one k-block in flight while the
// next is issued, and release each stage. The grid is persistent over
// (batch, row tile, column tile) work items, so the next tile's loads overlap this tile's
// epilogue, and the epilogue (bias, activation, SwiGLU) leaves through shared memory and TMA
// stores that drain while the next tile multiplies (rows a grouped count cuts are stored row by
// row instead). Rows and K past the end read as zeros (TMA bounds).
#pragma once

#include <switchyard/common/gemm_wgmma_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>
#include <switchyard/cuda/hopper.cuh>
#include <switchyard/cuda/wgmma_ops.cuh>

namespace switchyard {
namespace cuda {

// Whether the grid walks only the row tiles that hold rows: a grouped forward or data gradient,
// whose counts bound the output rows (the weight gradient's output rows, K, are all used).
template <bool kTransA>
__device__ __forceinline__ bool wgmma_counted_rows(const kernels::GemmWgmmaArgs& p) {
  return !kTransA && p.gemm.row_counts != nullptr;
}

// The row tiles of a batch's used rows.
__device__ __forceinline__ int wgmma_row_tiles(const kernels::GemmWgmmaArgs& p, int batch, int out_rows) {
  return (kernels::rows_used(p.gemm.row_counts, batch, out_rows) + kernels::kWgmmaTileM - 1) / kernels::kWgmmaTileM;
}

// The persistent grid's work items: every tile, or (counted rows) those of each batch's count,
// read from the device's counts, so that the blocks share out only real work.
template <bool kTransA>
__device__ __forceinline__ int wgmma_work(const kernels::GemmWgmmaArgs& p, int out_rows) {
  if (!wgmma_counted_rows<kTransA>(p)) return p.tiles;
  int work = 0;
  for (int b = 0; b < p.gemm.batch; ++b) work += wgmma_row_tiles(p, b, out_rows) * p.tiles_n;
  return work;
}

// Work item t: batch-major, then groups of kWgmmaGroupRows row tiles walked column by column, so
// that the blocks running at once share A and B tiles in L2.
template <bool kTransA>
__device__ __forceinline__ GemmTile wgmma_tile(const kernels::GemmWgmmaArgs& p, int t, int tile_n, int out_rows) {
  GemmTile tile;
  int tiles_m = p.tiles_m;
  if (wgmma_counted_rows<kTransA>(p)) {
    tile.batch = 0;
    for (;; ++tile.batch) {  // t < wgmma_work: some batch holds it
      tiles_m = wgmma_row_tiles(p, tile.batch, out_rows);
      if (t < tiles_m * p.tiles_n) break;
      t -= tiles_m * p.tiles_n;
    }
  } else {
    tile.batch = t / (tiles_m * p.tiles_n);
    t %= tiles_m * p.tiles_n;
  }
  const int span = kernels::kWgmmaGroupRows * p.tiles_n;
  const int first_m = (t / span) * kernels::kWgmmaGroupRows;
  const int group = min(kernels::kWgmmaGroupRows, tiles_m - first_m);
  const int in_group = t % span;
  tile.m0 = (first_m + in_group % group) * kernels::kWgmmaTileM;
  tile.n0 = (in_group / group) * tile_n;
  tile.rows = kTransA ? out_rows : kernels::rows_used(p.gemm.row_counts, tile.batch, out_rows);
  return tile;
}

// The kBK-deep k-blocks of a tile: K's, or for the weight gradient the rows its batch sums (its
// count when grouped).
template <bool kTransA, int kK, int kBK>
__device__ __forceinline__ int wgmma_k_blocks(const kernels::GemmWgmmaArgs& p, int batch) {
  const int depth = kTransA ? kernels::rows_used(p.gemm.row_counts, batch, p.gemm.rows) : kK;
  return (depth + kBK - 1) / kBK;
}

// Zeroes rows [valid, 64) of the weight gradient's 64-row boxes in a stage: rows of the reduction
// past a batch's count, which TMA loads (they lie inside the tensor) but which must not count (a
// pool's memory may hold NaN there). A warpgroup clears its own A box and every other B box; the
// caller fences them for wgmma and waits for the other warpgroup's share. A 128-byte swizzled row
// stays within its 128 bytes. (Weight gradients are 16-bit: 64 rows of 64 values a box.)
template <int kTileN>
__device__ __forceinline__ void wgmma_clear_rows(unsigned char* slot, int half, int valid) {
  constexpr int kRows = kernels::wgmma_tile_k(2), kBoxBytes = kRows * kernels::kWgmmaRowBytes;
  constexpr int kABytes = kernels::kWgmmaTileM * kernels::kWgmmaRowBytes;
  const int words = (kRows - valid) * kernels::kWgmmaRowBytes / 8;
#pragma unroll
  for (int box = 0; box <= kTileN / 128; ++box) {
    unsigned char* rows =
        (box == 0 ? slot + half * kBoxBytes : slot + kABytes + (2 * (box - 1) + half) * kBoxBytes) + valid * 128;
    for (int i = threadIdx.x % 128; i < words; i += 128) reinterpret_cast<unsigned long long*>(rows)[i] = 0ull;
  }
}

// A slot of the ring of kStages shared-memory stages, and the parity of the pass over the ring
// (what mbarrier waits compare with). Producer and consumers walk the same sequence.
template <int kStages>
struct RingSlot {
  int stage = 0;
  unsigned phase = 0;
  __device__ __forceinline__ void advance() {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
  }
};

// Accumulator layout of m64nNk16: warp w holds rows 16w..16w+15; per 8 columns i, a thread
// holds (row lane/4, columns 2*(lane%4) + 0, 1) in acc[4i], acc[4i + 1], and the same 8 rows
// below in acc[4i + 2], acc[4i + 3].

// The epilogue of a warpgroup's 64 rows whose rows a count cuts (grouped): straight to global
// memory, row by row, skipping the rows past the count.
template <typename T, int kN, bool kBias, int kAct, int kTileN>
__device__ __forceinline__ void wgmma_store_rows(const kernels::GemmArgs& gemm, const GemmTile& tile, int half,
                                                 const float (&acc)[kTileN / 2]) {
  const int warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
  const int row = tile.m0 + half * 64 + warp * 16 + lane / 4;
#pragma unroll
  for (int i = 0; i < kTileN / 8; ++i) {
    const int col = tile.n0 + i * 8 + (lane % 4) * 2;
    if (row < tile.rows) gemm_store_pair<T, kN, kBias, kAct>(gemm, tile.batch, row, col, acc[4 * i], acc[4 * i + 1]);
    if (row + 8 < tile.rows)
      gemm_store_pair<T, kN, kBias, kAct>(gemm, tile.batch, row + 8, col, acc[4 * i + 2], acc[4 * i + 3]);
  }
}

// The epilogue of a warpgroup's 64 rows through shared memory: each box of 128 bytes of columns
// (64 16-bit, 32 float32) is written into one of the warpgroup's two staging boxes (128-byte
// swizzled, as TMA reads it) and stored by TMA, which clips the rows past the tensor, while the
// warpgroup writes the next box and then goes on to its next tile. A staging box is rewritten
// only once the store that read it two boxes ago has read it.
template <typename T, int kN, bool kBias, int kAct, int kTileN>
__device__ __forceinline__ void wgmma_store_boxes(const kernels::GemmWgmmaArgs& p, const GemmTile& tile, int half,
                                                  const float (&acc)[kTileN / 2], unsigned char* staging, bool leader,
                                                  int& boxes_stored) {
  using Word = typename GemmPairWord<sizeof(T)>::type;
  constexpr int kBoxCols = kernels::wgmma_tile_k(sizeof(T)), kRow = kernels::kWgmmaRowBytes;
  const int warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
  const int box_row = warp * 16 + lane / 4, row = tile.m0 + half * 64 + box_row;
#pragma unroll
  for (int j = 0; j < kTileN / kBoxCols; ++j, ++boxes_stored) {
    unsigned char* box = staging + (boxes_stored & 1) * kernels::kWgmmaStoreBoxBytes;
    if (leader) bulk_wait_group_read<1>();
    named_barrier_sync(1 + half, 128);
#pragma unroll
    for (int i = 0; i < kBoxCols / 8; ++i) {
      const int box_col = i * 8 + (lane % 4) * 2, col = tile.n0 + j * kBoxCols + box_col;
      const int a = 4 * (kBoxCols / 8 * j + i);
      // Rows past the tensor are clipped by the store; their values are never computed (their aux is not there).
      const Word top =
          row < tile.rows ? gemm_pair_bits<T, kN, kBias, kAct>(p.gemm, tile.batch, row, col, acc[a], acc[a + 1]) : 0u;
      const Word bottom = row + 8 < tile.rows ? gemm_pair_bits<T, kN, kBias, kAct>(p.gemm, tile.batch, row + 8, col,
                                                                                   acc[a + 2], acc[a + 3])
                                              : 0u;
      const int byte = box_col * static_cast<int>(sizeof(T));
      *reinterpret_cast<Word*>(box + swizzle_128b(box_row * kRow + byte)) = top;
      *reinterpret_cast<Word*>(box + swizzle_128b((box_row + 8) * kRow + byte)) = bottom;
    }
    fence_proxy_async_shared();
    named_barrier_sync(1 + half, 128);
    if (leader) {
      tma_store_3d(&p.c, box, tile.n0 + j * kBoxCols, tile.m0 + half * 64, tile.batch);
      bulk_commit_group();
    }
  }
}

template <typename T, int kN, int kK, bool kBias, int kAct, bool kTransB, int kTileN, bool kTransA>
__global__ void __launch_bounds__(kernels::kWgmmaThreads, 1)
    gemm_wgmma(const __grid_constant__ kernels::GemmWgmmaArgs p) {
  static_assert(sizeof(T) == 2 || (sizeof(T) == 4 && kTransB != kTransA),
                "gemm_wgmma: float16 or bfloat16, or float32 as TF32 with both operands K-major (trans_b, or "
                "the weight gradient's transposed operands)");
  static_assert(kTileN == 128 || kTileN == 256, "gemm_wgmma: tiles of 128 or 256 columns");
  static_assert(kN % kTileN == 0 && kK % kernels::wgmma_k_unit(sizeof(T)) == 0,
                "gemm_wgmma: N % tile_n == 0 and rows of K in whole 16 bytes");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm_wgmma: the weight gradient has no B transpose and no epilogue");
  constexpr int kBM = kernels::kWgmmaTileM, kBK = kernels::wgmma_tile_k(sizeof(T)), kRow = kernels::kWgmmaRowBytes;
  constexpr int kStages = kernels::wgmma_stages(kTileN);
  constexpr int kABytes = kBM * kRow, kStageBytes = kernels::wgmma_stage_bytes(kTileN);
  constexpr int kChunkBytes = kBK * kRow;  // an M/N-major box (16-bit): 64 rows of the reduction, 64 columns
  constexpr int kStepBytes = 32;           // one wgmma's depth along a K-major row: k16 of 16 bits, k8 of TF32
  // Which operands are K-major (the reduction along their 128-byte rows) in shared memory: A
  // unless the weight gradient reads it as stored, B with trans_b or where the weight gradient's
  // come transposed.
  constexpr bool kPreTransposed = kernels::wgmma_pre_transposed(sizeof(T), kTransA);
  constexpr bool kAKMajor = !kTransA || kPreTransposed, kBKMajor = kTransB || kPreTransposed;
  // trans_a: the output has K rows and the reduction runs over the rows of A and B.
  const int out_rows = kTransA ? kK : p.gemm.rows;

  unsigned char* shared = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<unsigned long long>(dynamic_shared_memory()) + 1023) & ~static_cast<unsigned long long>(1023));
  unsigned long long* full =
      reinterpret_cast<unsigned long long*>(shared + kStages * kStageBytes + kernels::kWgmmaStagingBytes);
  unsigned long long* empty = full + kStages;
  const int warpgroup = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 8);  // each consumer warp releases the stage
    }
    mbarrier_init_fence();
    tma_prefetch_descriptor(&p.a);
    tma_prefetch_descriptor(&p.b);
  }
  __syncthreads();

  if (warpgroup == 0) {  // producer
    setmaxnreg_dec<40>();
    if (threadIdx.x != 0) return;
    RingSlot<kStages> ring;
    const int work = wgmma_work<kTransA>(p, out_rows);
    for (int t = blockIdx.x; t < work; t += gridDim.x) {
      const GemmTile tile = wgmma_tile<kTransA>(p, t, kTileN, out_rows);
      if (tile.m0 >= tile.rows) continue;
      const int k_blocks = wgmma_k_blocks<kTransA, kK, kBK>(p, tile.batch);
      for (int kb = 0; kb < k_blocks; ++kb) {
        mbarrier_wait(&empty[ring.stage], ring.phase ^ 1);
        unsigned char* slot = shared + ring.stage * kStageBytes;
        mbarrier_arrive_expect_tx(&full[ring.stage], kStageBytes);
        if (!kAKMajor) {  // two 64-column boxes of A^T: output rows m0..m0+63, m0+64..m0+127
          tma_load_3d(slot, &p.a, &full[ring.stage], tile.m0, kb * kBK, tile.batch);
          tma_load_3d(slot + kChunkBytes, &p.a, &full[ring.stage], tile.m0 + 64, kb * kBK, tile.batch);
        } else {
          tma_load_3d(slot, &p.a, &full[ring.stage], kb * kBK, tile.m0, tile.batch);
        }
        if (kBKMajor) {
          tma_load_3d(slot + kABytes, &p.b, &full[ring.stage], kb * kBK, tile.n0, tile.batch);
        } else {
#pragma unroll
          for (int j = 0; j < kTileN / 64; ++j)
            tma_load_3d(slot + kABytes + j * kChunkBytes, &p.b, &full[ring.stage], tile.n0 + j * 64, kb * kBK,
                        tile.batch);
        }
        ring.advance();
      }
    }
    return;
  }

  // consumers: warpgroup 1 takes rows 0-63 of the tile, warpgroup 2 rows 64-127
  setmaxnreg_inc<232>();
  const int half = warpgroup - 1, lane = threadIdx.x % 32;
  const bool leader = threadIdx.x % 128 == 0;  // issues and waits for this warpgroup's TMA stores
  unsigned char* staging = shared + kStages * kStageBytes + half * 2 * kernels::kWgmmaStoreBoxBytes;
  float acc[kTileN / 2];
  RingSlot<kStages> ring;
  int boxes_stored = 0;
  const int work = wgmma_work<kTransA>(p, out_rows);
  for (int t = blockIdx.x; t < work; t += gridDim.x) {
    const GemmTile tile = wgmma_tile<kTransA>(p, t, kTileN, out_rows);
    if (tile.m0 >= tile.rows) continue;
    const int k_blocks = wgmma_k_blocks<kTransA, kK, kBK>(p, tile.batch);
    if (k_blocks == 0) {  // a weight gradient over no rows: zeros
#pragma unroll
      for (int i = 0; i < kTileN / 2; ++i) acc[i] = 0.0f;
    }
    // The rows of the last k-block that a grouped weight gradient counts (transposed ahead, the
    // rows past the count are zeros already).
    const int last_rows = kTransA && !kPreTransposed && p.gemm.row_counts != nullptr
                              ? kernels::rows_used(p.gemm.row_counts, tile.batch, p.gemm.rows) - (k_blocks - 1) * kBK
                              : kBK;
    // One k-block's wgmma stays in flight while the next is issued; a stage is released once the
    // wgmma that read it has completed.
    RingSlot<kStages> reading;
    for (int kb = 0; kb < k_blocks; ++kb) {
      mbarrier_wait(&full[ring.stage], ring.phase);
      if (kTransA && !kPreTransposed && kb == k_blocks - 1 && last_rows < kBK) {
        wgmma_clear_rows<kTileN>(shared + ring.stage * kStageBytes, half, last_rows);
        fence_proxy_async_shared();
        named_barrier_sync(3, 256);  // both consumer warpgroups: each read the other's B boxes
      }
      const unsigned a_base = shared_address(shared + ring.stage * kStageBytes) + half * 64 * kRow;
      const unsigned b_base = shared_address(shared + ring.stage * kStageBytes + kABytes);
      wgmma_fence_registers(acc);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kRow / kStepBytes; ++kk) {
        // A K-major advances 32 bytes along its 128-byte rows; M-major A (trans_a: this
        // warpgroup's 64-column box) 16 rows.
        const unsigned long long da = kAKMajor ? wgmma_descriptor(a_base + kk * kStepBytes, 16, 1024)
                                               : wgmma_descriptor(a_base + kk * 16 * kRow, kChunkBytes, 1024);
        // K-major B advances 32 bytes along its 128-byte rows; N-major B 16 rows.
        const unsigned long long db = kBKMajor ? wgmma_descriptor(b_base + kk * kStepBytes, 16, 1024)
                                               : wgmma_descriptor(b_base + kk * 16 * kRow, kChunkBytes, 1024);
        Wgmma<T, kTileN, kAKMajor, kBKMajor>::mma(acc, da, db, (kb | kk) != 0);
      }
      wgmma_commit();
      wgmma_wait<1>();
      wgmma_fence_registers(acc);
      if (kb > 0 && lane == 0) mbarrier_arrive(&empty[reading.stage]);
      reading = ring;
      ring.advance();
    }
    wgmma_wait<0>();
    wgmma_fence_registers(acc);
    if (k_blocks > 0 && lane == 0) mbarrier_arrive(&empty[reading.stage]);
    const bool whole = kTransA || p.gemm.row_counts == nullptr || tile.m0 + half * 64 + 64 <= tile.rows;
    if (whole) {
      wgmma_store_boxes<T, kN, kBias, kAct, kTileN>(p, tile, half, acc, staging, leader, boxes_stored);
    } else {
      wgmma_store_rows<T, kN, kBias, kAct, kTileN>(p.gemm, tile, half, acc);
    }
  }
  if (leader) bulk_wait_group<0>();  // the stores have read the staging before the block ends
}

}  // namespace cuda
}  // namespace switchyard
