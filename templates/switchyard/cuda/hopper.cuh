// Hopper (sm_90) primitives: mbarriers, TMA tensor loads, wgmma fences and shared-memory matrix
// descriptors, setmaxnreg. The wgmma and setmaxnreg instructions need the sm_90a target.
#pragma once

#include <switchyard/cuda/mma.cuh>

namespace switchyard {
namespace cuda {

// On the host the instructions below are tests/support/hopper_emulation.h's.
#ifndef SY_CUDA_EMULATION
// The block's dynamic shared memory (what the launch's shared_bytes sized).
__device__ __forceinline__ unsigned char* dynamic_shared_memory() {
  extern __shared__ unsigned char shared_raw[];
  return shared_raw;
}

__device__ __forceinline__ void mbarrier_init(unsigned long long* barrier, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(barrier)), "r"(count));
}

// Makes the barriers' initialization visible to the copy engine before any TMA uses them.
__device__ __forceinline__ void mbarrier_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned long long* barrier, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(barrier)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void mbarrier_arrive(unsigned long long* barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(shared_address(barrier)) : "memory");
}

// Waits until the barrier's phase of parity `parity` has completed. A fresh barrier counts as
// having completed the phase of parity 1, so a producer's first wait on an empty slot passes.
__device__ __forceinline__ void mbarrier_wait(unsigned long long* barrier, unsigned parity) {
  const unsigned address = shared_address(barrier);
  unsigned done = 0;
  do {
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(address), "r"(parity)
                 : "memory");
  } while (!done);
}

// A 3-D tile of `descriptor` at coordinates (c0 innermost) into shared memory, completing
// its bytes on `barrier`. Out-of-bounds elements are filled with zeros (and still counted).
__device__ __forceinline__ void tma_load_3d(void* shared, const void* descriptor, unsigned long long* barrier, int c0,
                                            int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];" ::
          "r"(shared_address(shared)),
      "l"(reinterpret_cast<unsigned long long>(descriptor)), "r"(shared_address(barrier)), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

__device__ __forceinline__ void tma_prefetch_descriptor(const void* descriptor) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<unsigned long long>(descriptor)) : "memory");
}

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
}
// Keeps the compiler from moving accumulator reads or writes across the asynchronous wgmma.
template <int kCount>
__device__ __forceinline__ void wgmma_fence_registers(float (&d)[kCount]) {
#pragma unroll
  for (int i = 0; i < kCount; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// A 3-D box of shared memory (laid out as tma_load_3d writes it) to `descriptor`'s tensor at
// coordinates (c0 innermost), asynchronously, in the calling thread's current bulk group. Out of
// bounds elements are not written.
__device__ __forceinline__ void tma_store_3d(const void* descriptor, const void* shared, int c0, int c1, int c2) {
  asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.bulk_group [%0, {%2, %3, %4}], [%1];" ::"l"(
                   reinterpret_cast<unsigned long long>(descriptor)),
               "r"(shared_address(shared)), "r"(c0), "r"(c1), "r"(c2)
               : "memory");
}
__device__ __forceinline__ void bulk_commit_group() {
  asm volatile("cp.async.bulk.commit_group;" ::: "memory");
}
// Waits until at most kPending of the thread's bulk groups still read their shared memory.
template <int kPending>
__device__ __forceinline__ void bulk_wait_group_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(kPending) : "memory");
}
// Waits until at most kPending of the thread's bulk groups are still incomplete.
template <int kPending>
__device__ __forceinline__ void bulk_wait_group() {
  asm volatile("cp.async.bulk.wait_group %0;" ::"n"(kPending) : "memory");
}
// Makes this thread's shared-memory writes visible to the async proxy (a TMA store of them).
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
// The barrier of the `threads` threads (whole warps) that name `id` (1-15; 0 is __syncthreads).
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

template <int kRegisters>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kRegisters));
}
#endif  // SY_CUDA_EMULATION

// Where byte `offset` of a 1024-byte aligned, 128-byte swizzled box lies: its 16-byte chunk
// (bits 4-6) XOR its row within the 8-row period (bits 7-9), as TMA lays boxes out.
__device__ __forceinline__ int swizzle_128b(int offset) {
  return offset ^ (((offset >> 7) & 7) << 4);
}

// The shared-memory matrix descriptor of a 128-byte-swizzled operand (the layout TMA writes
// with CU_TENSOR_MAP_SWIZZLE_128B into 1024-byte aligned tiles). Byte offsets: `leading`
// between 64-element chunks of an MN-major operand (unused K-major), `stride` between groups of
// 8 rows of 128 bytes.
__device__ __forceinline__ unsigned long long wgmma_descriptor(unsigned shared, unsigned leading, unsigned stride) {
  unsigned long long d = (shared & 0x3FFFFu) >> 4;
  d |= static_cast<unsigned long long>((leading >> 4) & 0x3FFFu) << 16;
  d |= static_cast<unsigned long long>((stride >> 4) & 0x3FFFu) << 32;
  d |= 1ull << 62;  // 128-byte swizzle
  return d;
}

}  // namespace cuda
}  // namespace switchyard
