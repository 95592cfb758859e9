// Inline-PTX building blocks of the tensor-core GEMM (sm_80+): shared-memory addresses,
// cp.async copies, ldmatrix loads and the m16n8k16 mma with fp32 accumulation.
#pragma once

#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

// On the host (tests/support/cuda_emulation.h) there is no PTX: tests/support/mma_emulation.h
// stands in for these.
#ifndef SY_CUDA_EMULATION
__device__ __forceinline__ unsigned shared_address(const void* pointer) {
  unsigned address;
  asm("{ .reg .u64 p; cvta.to.shared.u64 p, %1; cvt.u32.u64 %0, p; }" : "=r"(address) : "l"(pointer));
  return address;
}

// 16 bytes global -> shared, bypassing L1; `bytes` < 16 zero-fills the rest (0 = all zeros).
__device__ __forceinline__ void cp_async_16(unsigned shared, const void* global, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared), "l"(global), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x2(unsigned (&r)[2], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x2_trans(unsigned (&r)[2], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(address));
}

// D = A * B + D for one 16x8 tile, k = 16; A row-major fragment, B column fragment.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]);

template <>
__device__ __forceinline__ void mma_16816<half_t>(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <>
__device__ __forceinline__ void mma_16816<bf16_t>(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif  // SY_CUDA_EMULATION

// A kRows x kCols tile of 16-byte chunks (element type E) into shared memory rows kStride
// elements apart, one cp.async per chunk over the block's threads: from `src`, rows `pitch`
// elements apart; rows from `valid_rows` on are zero-filled (nothing read).
template <typename E, int kRows, int kCols, int kStride, int kThreads>
__device__ __forceinline__ void cp_async_tile(E* tile, const E* src, long pitch, int valid_rows) {
  constexpr int kChunk = 16 / static_cast<int>(sizeof(E));
  static_assert(kCols % kChunk == 0 && kStride % kChunk == 0, "cp_async_tile: rows of whole 16-byte chunks");
  for (int chunk = threadIdx.x; chunk < kRows * kCols / kChunk; chunk += kThreads) {
    const int r = chunk / (kCols / kChunk), c = (chunk % (kCols / kChunk)) * kChunk;
    const bool valid = r < valid_rows;
    cp_async_16(shared_address(&tile[r * kStride + c]), src + (valid ? r : 0) * pitch + c, valid ? 16 : 0);
  }
}

// One step of a two-stage cp.async pipeline over `steps` slices of kSlice: queues the next slice's
// loads (load(stage, offset)) into the other stage while this one is used, waits for this one,
// and syncs the block.
template <int kSlice, typename Load>
__device__ __forceinline__ void cp_async_next_stage(int step, int steps, Load&& load) {
  if (step + 1 < steps) {
    load((step + 1) & 1, (step + 1) * kSlice);
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
  __syncthreads();
}

}  // namespace cuda
}  // namespace switchyard
