// Storage types and float conversions for CUDA templates, written with inline PTX so that no
// CUDA toolkit header (cuda_fp16.h, cuda_bf16.h) is needed under NVRTC.
#pragma once

namespace switchyard {
namespace cuda {

struct alignas(2) half_t {
  unsigned short bits;
};
struct alignas(2) bf16_t {
  unsigned short bits;
};

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(half_t v) {
#ifdef __CUDA_ARCH__
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
  return f;
#else  // a host compiler running the templates (tests/support/cuda_emulation.h)
  _Float16 h;
  __builtin_memcpy(&h, &v.bits, 2);
  return static_cast<float>(h);
#endif
}
__device__ __forceinline__ float to_float(bf16_t v) {
  return __uint_as_float(static_cast<unsigned>(v.bits) << 16);
}

template <typename T>
__device__ __forceinline__ T from_float(float f);

template <>
__device__ __forceinline__ float from_float<float>(float f) {
  return f;
}
template <>
__device__ __forceinline__ half_t from_float<half_t>(float f) {
  half_t h;
#ifdef __CUDA_ARCH__
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
#else
  const _Float16 rounded = static_cast<_Float16>(f);
  __builtin_memcpy(&h.bits, &rounded, 2);
#endif
  return h;
}
template <>
__device__ __forceinline__ bf16_t from_float<bf16_t>(float f) {
  bf16_t h;
#if __CUDA_ARCH__ >= 800
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
#else
  // Round to nearest even by hand where the instruction is missing (NaN kept quiet).
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.bits = static_cast<unsigned short>((u >> 16) | 0x40u);
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    h.bits = static_cast<unsigned short>(u >> 16);
  }
#endif
  return h;
}

// `d` rounded once to T (nearest even): through float rounded to odd, whose 24 bits leave the
// final rounding to float16 or bfloat16 exact (core/half.cpp's double_to_half_bits is the host's).
template <typename T>
__device__ __forceinline__ T from_double(double d) {
  float f = __double2float_rz(d);
  if (static_cast<double>(f) != d) f = __uint_as_float(__float_as_uint(f) | 1u);
  return from_float<T>(f);
}
template <>
__device__ __forceinline__ float from_double<float>(double d) {
  return __double2float_rn(d);
}

// kVec consecutive elements moved as one aligned load or store (up to 16 bytes).
template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

}  // namespace cuda
}  // namespace switchyard
