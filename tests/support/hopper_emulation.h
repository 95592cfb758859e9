// The Hopper primitives the wgmma GEMM uses (templates/switchyard/cuda/hopper.cuh, wgmma_ops.cuh's
// Wgmma; mma.cuh's shared_address is mma_emulation.h's), run on the host threads of cuda_emulation.h, so that CI
// machines without a GPU check the kernel's ring, phases, tile walk and epilogue:
// - mbarriers keep their arrival count, transaction bytes and phase; a wait spins until its
//   phase completes; arriving past the count, or completing bytes no arrive.expect_tx announced,
//   is an error;
// - a TMA load copies its box at once (zeros out of bounds) into shared memory with the 128-byte
//   swizzle (16-byte chunk c of 128-byte row r lands at chunk c ^ (r % 8), on the address bits,
//   hence the 1024-byte alignment it requires) and completes its bytes on the barrier; a TMA
//   store reads such a box only when its thread waits for its bulk group, and writes what lies
//   inside the tensor;
// - wgmma m64nNk16 (fp32 accumulators; m64nNk8 for TF32, which reads the top 19 bits of each
//   float32) reads its operands through the same descriptors the GPU reads (start address,
//   leading and stride byte offsets, 128-byte swizzle; K-major or MN-major),
//   but only when its thread waits for its group (wgmma.wait_group), as late as the hardware may:
//   a stage released before its wgmma completed, or accumulators read early, show as wrong sums;
//   the wait is a rendezvous of the warp (.sync.aligned), so no lane releases a stage that
//   another lane of its warp has still to read.
// What it cannot see: the proxies' memory ordering (fence.proxy.async), register allocation
// (setmaxnreg), and anything about speed. Include it first, before any template.
#pragma once

#include <cstdint>
#include <cstring>

#include <switchyard/common/gemm_wgmma_args.h>
#include "tests/support/mma_emulation.h"  // mma.cuh's primitives: shared_address among them

namespace switchyard::emulation {

/// What CudaDevice::tma_descriptor asks cuTensorMapEncodeTiled for (elements of `element_bytes`,
/// 2 or 4; 128-byte swizzle, zeros out of bounds), with the driver's checks: dims and byte strides
/// innermost first.
kernels::TmaDescriptor tma_descriptor(const void* base, const unsigned long long (&dims)[3],
                                      const unsigned long long (&strides)[2], const unsigned (&box)[3],
                                      unsigned element_bytes);

void mbarrier_init(unsigned long long* barrier, unsigned count);
/// Announces `tx_bytes` more bytes to come (0: none), then arrives.
void mbarrier_arrive(unsigned long long* barrier, unsigned tx_bytes);
/// Whether the barrier's phase of parity `parity` has completed.
bool mbarrier_phase_done(const unsigned long long* barrier, unsigned parity);
void tma_load_3d(void* shared, const void* descriptor, unsigned long long* barrier, int c0, int c1, int c2);
/// Queues a TMA store of a box of shared memory into the calling thread's open bulk group; it
/// reads the shared memory (and writes the tensor, clipped to its bounds) only when the thread
/// waits for the group, as late as a GPU may.
void tma_store_3d(const void* descriptor, const void* shared, int c0, int c1, int c2);
void bulk_commit_group();
/// Completes the calling thread's oldest bulk groups until at most `pending` remain.
void bulk_wait_group(int pending);

/// Reads one element as the tensor cores see it: float16 or bfloat16, or float32 as TF32.
using ElementLoad = float (*)(const unsigned char*);
/// Queues the calling thread's share of one wgmma (its accumulators d[width / 2]) until it waits:
/// k16 of 2-byte elements or k8 of 4-byte ones (32 bytes of K).
void wgmma_issue(float* d, int width, bool a_k_major, bool b_k_major, ElementLoad load, unsigned element_bytes,
                 uint64_t desc_a, uint64_t desc_b, bool accumulate);
/// A float32 as TF32 reads it: the low 13 bits of its mantissa ignored.
float tf32_value(float value);
void wgmma_commit();
/// Runs the calling thread's oldest committed groups until at most `pending` remain.
void wgmma_wait(int pending);

}  // namespace switchyard::emulation

namespace switchyard::cuda {

inline unsigned char* dynamic_shared_memory() {
  return emulation::dynamic_shared_memory();
}
inline void mbarrier_init(unsigned long long* barrier, unsigned count) {
  emulation::mbarrier_init(barrier, count);
}
inline void mbarrier_init_fence() {}
inline void mbarrier_arrive_expect_tx(unsigned long long* barrier, unsigned bytes) {
  emulation::mbarrier_arrive(barrier, bytes);
}
inline void mbarrier_arrive(unsigned long long* barrier) {
  emulation::mbarrier_arrive(barrier, 0);
}
inline void mbarrier_wait(unsigned long long* barrier, unsigned parity) {
  while (!emulation::mbarrier_phase_done(barrier, parity)) emulation::spin();
  emulation::note_progress();
}
inline void tma_load_3d(void* shared, const void* descriptor, unsigned long long* barrier, int c0, int c1, int c2) {
  emulation::tma_load_3d(shared, descriptor, barrier, c0, c1, c2);
}
inline void tma_prefetch_descriptor(const void*) {}
inline void tma_store_3d(const void* descriptor, const void* shared, int c0, int c1, int c2) {
  emulation::tma_store_3d(descriptor, shared, c0, c1, c2);
}
inline void bulk_commit_group() {
  emulation::bulk_commit_group();
}
template <int kPending>
void bulk_wait_group_read() {
  emulation::bulk_wait_group(kPending);
}
template <int kPending>
void bulk_wait_group() {
  emulation::bulk_wait_group(kPending);
}
inline void fence_proxy_async_shared() {}
inline void named_barrier_sync(int id, int threads) {
  emulation::named_barrier(static_cast<unsigned>(id), static_cast<unsigned>(threads));
}
inline void wgmma_fence() {}
inline void wgmma_commit() {
  emulation::wgmma_commit();
}
template <int kPending>
void wgmma_wait() {
  emulation::wgmma_wait(kPending);
}
template <int kCount>
void wgmma_fence_registers(float (&)[kCount]) {}
template <int kRegisters>
void setmaxnreg_dec() {}
template <int kRegisters>
void setmaxnreg_inc() {}

template <typename T, int kWidth, bool kAKMajor, bool kBKMajor>
struct Wgmma {
  static void mma(float (&d)[kWidth / 2], unsigned long long desc_a, unsigned long long desc_b, int scale_d) {
    const emulation::ElementLoad load = [](const unsigned char* bytes) -> float {
      T value;
      std::memcpy(&value, bytes, sizeof(T));
      if constexpr (sizeof(T) == 4)
        return emulation::tf32_value(value);  // float32 is read as TF32
      else
        return to_float(value);  // the templates' conversion, found when T is known
    };
    emulation::wgmma_issue(d, kWidth, kAKMajor, kBKMajor, load, sizeof(T), desc_a, desc_b, scale_d != 0);
  }
};

}  // namespace switchyard::cuda
