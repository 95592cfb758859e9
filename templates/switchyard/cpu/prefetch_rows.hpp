// Software prefetch for packing a span of B's columns row by row (gemm_pack_b_span and its pairs
// form): a small batch's GEMMs read each weight once, so packing is a stream from memory, and
// runs of a few cache lines a row pitch apart are too short for the hardware prefetchers alone.
// Measured on a small batch at Mixtral's dims (bfloat16, 2 threads, Intel Sapphire Rapids class
// VM): packing read B at 13.6 GB/s with the next span fetched during the micro-kernels (which are
// short there), about 24 GB/s fetching rows ahead of the packing itself into L2, where plain loads
// of the same runs reach 28; L1 (prefetcht0) was 10% slower than L2, 2 or 8 rows ahead slower than 4.
#pragma once

namespace switchyard {
namespace cpu {

constexpr int kPackAheadRows = 4;

// `bytes` of memory from `from` fetched into L2.
inline void prefetch_run(const void* from, long bytes) {
  for (long at = 0; at < bytes; at += 64) __builtin_prefetch(static_cast<const char*>(from) + at, 0, 2);
}

// The packer of rows [k0, k_end) of B [K, kN]'s columns [n0, n0 + cols) is at row `row`, about to
// pack `rows` rows: fetches those kPackAheadRows further on, which past k_end are the first rows
// of the next span's `next_cols` columns (none: nothing).
template <int kN, typename T>
inline void prefetch_rows_ahead(const T* b, int k0, int k_end, int row, int rows, int n0, int cols, int next_cols) {
  for (int ahead = row + kPackAheadRows; ahead < row + kPackAheadRows + rows; ++ahead) {
    if (ahead < k_end)
      prefetch_run(b + static_cast<long>(ahead) * kN + n0, static_cast<long>(cols) * sizeof(T));
    else if (next_cols > 0 && ahead - k_end < k_end - k0)
      prefetch_run(b + static_cast<long>(k0 + ahead - k_end) * kN + n0 + cols,
                   static_cast<long>(next_cols) * sizeof(T));
  }
}

}  // namespace cpu
}  // namespace switchyard
