// The Ampere tensor-core primitives the mma.sync GEMMs use (templates/switchyard/cuda/mma.cuh and
// gemm_tf32.cuh's TF32 pair), run on the host threads of cuda_emulation.h, so that CI machines
// without a GPU check gemm_mma and gemm_tf32 (the tensor-core kernels of every GPU before Hopper,
// and the fallback on Hopper):
// - cp.async copies 16 bytes (zero-filling past the source size) only when its thread waits for
//   its group (cp.async.wait_group), as late as the hardware may: a stage read before its wait
//   shows the garbage or the previous stage; a group never waited for is an error at block end;
// - ldmatrix (.x4, .x4.trans, .x2, .x2.trans) is a rendezvous of the warp: each lane gives a row address (16-byte
//   aligned), and each lane gets its fragments of the 8 x 8 matrices as the PTX ISA lays them out;
// - mma.sync m16n8k16 (float16/bfloat16) and m16n8k8 (TF32) take every lane's fragments at a
//   warp rendezvous and add the exact products' sum to each lane's fp32 accumulators;
// - cvt.rna.tf32.f32 rounds to TF32's 10 mantissa bits, ties away from zero.
// Addresses are cuda_emulation.h's shared_window_offset (dynamic or static shared memory).
// Include it first, before any template.
#pragma once

#include <cstdint>
#include <cstring>

#include "tests/support/cuda_emulation.h"

namespace switchyard::emulation {

/// Queues 16 bytes of `global` (the first `bytes`, the rest zeros) into shared memory at `shared`
/// in the calling thread's open cp.async group.
void cp_async_16(unsigned shared, const void* global, int bytes);
void cp_async_commit();
/// Completes the calling thread's oldest cp.async groups until at most `pending` remain.
void cp_async_wait(int pending);

/// ldmatrix.sync.aligned.m8n8.x{matrices}[.trans].shared.b16: the calling lane's `matrices`
/// registers, from the row addresses every lane of the warp gives.
void ldmatrix(unsigned* r, int matrices, bool trans, unsigned address);

/// Reads one 16-bit element (its bits) as the tensor cores see it.
using HalfLoad = float (*)(uint16_t);
/// mma.sync m16n8k16.row.col with fp32 accumulators: the warp's 16 x 16 A and 16 x 8 B from its
/// lanes' fragments (a[4], b[2] of 16-bit pairs), added to the calling lane's d[4].
void mma_m16n8k16(float* d, const unsigned* a, const unsigned* b, HalfLoad load);
/// mma.sync m16n8k8.row.col TF32 (a[4], b[2] float32 bits read as TF32).
void mma_m16n8k8_tf32(float* d, const unsigned* a, const unsigned* b);
/// cvt.rna.tf32.f32: the float's bits rounded to 10 mantissa bits (ties away from zero).
unsigned round_to_tf32(float value);

}  // namespace switchyard::emulation

namespace switchyard::cuda {

inline unsigned shared_address(const void* pointer) {
  return emulation::shared_window_offset(pointer);
}
inline void cp_async_16(unsigned shared, const void* global, int bytes) {
  emulation::cp_async_16(shared, global, bytes);
}
inline void cp_async_commit() {
  emulation::cp_async_commit();
}
template <int kPending>
void cp_async_wait() {
  emulation::cp_async_wait(kPending);
}
inline void ldmatrix_x4(unsigned (&r)[4], unsigned address) {
  emulation::ldmatrix(r, 4, false, address);
}
inline void ldmatrix_x4_trans(unsigned (&r)[4], unsigned address) {
  emulation::ldmatrix(r, 4, true, address);
}
inline void ldmatrix_x2(unsigned (&r)[2], unsigned address) {
  emulation::ldmatrix(r, 2, false, address);
}
inline void ldmatrix_x2_trans(unsigned (&r)[2], unsigned address) {
  emulation::ldmatrix(r, 2, true, address);
}
template <typename T>
void mma_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  emulation::mma_m16n8k16(d, a, b, [](uint16_t bits) {
    T value;
    std::memcpy(&value, &bits, sizeof(T));
    return to_float(value);  // the templates' conversion, found when T is known
  });
}
inline unsigned to_tf32(float value) {
  return emulation::round_to_tf32(value);
}
inline void mma_1688_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  emulation::mma_m16n8k8_tf32(d, a, b);
}

}  // namespace switchyard::cuda
