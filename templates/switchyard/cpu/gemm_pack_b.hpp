// B's panels for the CPU GEMM packed once ahead of its calls (GemmPackArgs): bfloat16 pairs for
// its dot products, or float32's floats. A small batch's expert GEMMs use each weight for a few
// rows, so packing it at every call cost about a third of their time, and its panels, gathered
// from runs a row pitch apart, came from memory at half the speed of one contiguous run.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cpu/gemm_pack.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

// Block `block` of `grid` packs its share of the batches' whole column tiles (batch-major).
template <typename T, int kN, int kK, bool kTransB, int kTileCols>
void gemm_pack_b(const kernels::GemmPackArgs& args, unsigned block, unsigned grid) {
  static_assert(kIsBf16<T> || kIsFloat<T>, "gemm_pack_b: bfloat16 pairs or floats");
  static_assert(kTileCols % (kIsBf16<T> ? 16 : 4) == 0, "gemm_pack_b: whole vectors of 16 pairs or 4 floats");
  constexpr int kTiles = kN / kTileCols;
  constexpr int kDepth = kIsBf16<T> ? bf16_pair_depth(kK) / 2 : kK;  // words a column
  const long items = static_cast<long>(args.batch) * kTiles;
  const long begin = items * block / grid, end = items * (block + 1) / grid;
  for (long item = begin; item < end; ++item) {
    const long batch = item / kTiles;
    const int tile = static_cast<int>(item % kTiles);
    const T* b = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
    unsigned* panel = static_cast<unsigned*>(args.panels) + args.panels_batch_stride * batch +
                      static_cast<long>(tile) * kDepth * kTileCols;
    if constexpr (kIsBf16<T>)
      gemm_pack_b_pairs<kN, kK, kTransB, kTileCols>(b, panel, tile * kTileCols, 0, kK, kDepth);
    else
      gemm_pack_b<T, kN, kK, kTransB, kTileCols>(b, reinterpret_cast<float*>(panel), tile * kTileCols, 0, kK);
  }
}

}  // namespace cpu
}  // namespace switchyard
