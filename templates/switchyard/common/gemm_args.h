// Arguments of the batched GEMM kernels, shared verbatim by host code and templates.
// For each batch b: C[b][m, n] = epilogue(sum_k A[b][m, k] * B[b](k, n) + bias[b][n]),
// with B[b](k, n) = B[b][k * N + n], or B[b][n * K + k] when the kernel is specialized
// with trans_b. Rows are run-time (tokens, capacity); N and K are template parameters.
// Specialized with trans_a (the weight gradient of such a GEMM), the reduction runs over the
// rows instead: C[b][k, n] = sum_r A[b][r, k] * B[b][r, n], A [rows, K], B [rows, N], C [K, N].
#pragma once

#include <switchyard/common/activation.h>
#include <switchyard/common/macros.h>

namespace switchyard {
namespace kernels {

// True for the epilogues that read aux.
SY_HOST_DEVICE constexpr bool gemm_uses_aux(int activation) {
  return activation >= kActSwiglu;
}

// CUDA launch shapes (256 threads a block): the SIMT kernel covers 128x128 of C per block (64x64
// where N is at most 64), the mma.sync kernel 128x128. Blocks are numbered batch-major, then row tiles, then column
// tiles.
constexpr int kGemmThreads = 256;
constexpr int kGemmSimtTile = 128;
constexpr int kGemmSimtTileNarrow = 64;
constexpr int kGemmMmaTileM = 128;
constexpr int kGemmMmaTileN = 128;
constexpr int kGemmMmaTileK = 32;

// The CPU kernel's chunk of the reduction (see cpu/gemm.hpp); the host sizes the packed groups
// of A's rows by it.
constexpr int kGemmCpuChunk = 256;

// The CPU kernel's register block is row_tile rows by tile_vecs vectors of vec_bytes (chosen for
// the register file: jit/kernels/gemm.cpp); a column tile is that many vectors of the compute type
// (float, or double for float64).
SY_HOST_DEVICE constexpr int gemm_cpu_tile_cols(int tile_vecs, int vec_bytes, int compute_bytes) {
  return tile_vecs * vec_bytes / compute_bytes;
}

// How the `parts` CPU blocks of one batch share its C: ranges of row tiles, and where a batch has
// fewer row tiles than parts (few tokens per expert, many threads), ranges of whole column tiles
// too; parts past rows x cols have nothing to do. The columns past the last whole tile go to the
// last column range.
struct GemmCpuSplit {
  int rows;
  int cols;
};
SY_HOST_DEVICE constexpr GemmCpuSplit gemm_cpu_split(int parts, int row_tiles, int col_tiles) {
  const int rows = row_tiles < 1 ? 1 : (parts < row_tiles ? parts : row_tiles);
  const int cols = parts / rows < col_tiles ? parts / rows : col_tiles;
  return {rows, cols < 1 ? 1 : cols};
}

struct GemmArgs {
  const void* a;          // [batch][rows_stride, K]
  const void* b;          // [batch][K, N] or [batch][N, K] (trans_b)
  const void* bias;       // [batch][N] or null (only read when specialized with bias)
  const void* aux;        // [batch][rows_stride, N] for kActSwiglu, else null
  void* c;                // [batch][rows_stride, N]
  const int* row_counts;  // [batch] rows used per batch (grouped GEMM), clamped to rows; or null = rows
  long a_batch_stride;    // elements between batches of A (and of C/aux per their own strides)
  long b_batch_stride;
  long c_batch_stride;
  int rows;  // rows per batch (upper bound when row_counts is given)
  int batch;
  // B's panels packed ahead (gemm_pack_b, GemmPackArgs) or null: a CPU GEMM with bf16_dot or in
  // float32, without amx, then reads its whole column tiles from them instead of packing B itself.
  const void* b_panels;
  long b_panels_batch_stride;  // 32-bit words between batches' panels
};

// The CPU GEMM's B panels packed once ahead of its calls (a layer's weights, which a small batch's
// GEMMs would otherwise pack at every call): for each batch, each whole column tile of tile_cols
// columns as the micro-kernels read it, one 32-bit word a column and step: in bfloat16, pairs of
// adjacent reduction steps as [tile][k / 2][tile_cols] (an odd K's last partner zero, the
// bf16_dot layout of cpu/gemm_bf16_dot.hpp); in float32, [tile][k][tile_cols]. Columns past the
// last whole tile are not packed: the GEMM reads them from B itself.
struct GemmPackArgs {
  const void* b;             // [batch][K, N] or [batch][N, K] (trans_b)
  void* panels;              // [batch][N / tile_cols][steps][tile_cols] words (gemm_panels_words)
  long b_batch_stride;       // elements
  long panels_batch_stride;  // words
  int batch;
};

// Words of one batch's packed panels: bfloat16 `pairs` take a word for two reduction steps.
SY_HOST_DEVICE constexpr long gemm_panels_words(long n, long k, long tile_cols, bool pairs) {
  return n / tile_cols * tile_cols * (pairs ? (k + 1) / 2 : k);
}

// The rows batch `b` uses: its count clamped to the batch's rows (a layer passes its experts'
// true counts, which may exceed the capacity), or all rows.
SY_HOST_DEVICE int rows_used(const int* row_counts, int b, int rows) {
  if (row_counts == nullptr) return rows;
  const int count = row_counts[b];
  return count < rows ? count : rows;
}

}  // namespace kernels
}  // namespace switchyard
