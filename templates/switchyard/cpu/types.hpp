// Storage types of CPU templates: float16 and bfloat16 are stored as 16 bits and computed in
// float, as on CUDA (cuda/types.cuh); float and double compute in themselves. Every CPU template
// reads through `load` and writes through `store<T>`, which cost nothing for float and double.
#pragma once

namespace switchyard {
namespace cpu {

struct alignas(2) half_t {
  unsigned short bits;
};
struct alignas(2) bf16_t {
  unsigned short bits;
};

// The type a template computes in for storage type T.
template <typename T>
struct ComputeType {
  using type = T;
};
template <>
struct ComputeType<half_t> {
  using type = float;
};
template <>
struct ComputeType<bf16_t> {
  using type = float;
};
template <typename T>
using compute_t = typename ComputeType<T>::type;

template <typename T>
constexpr bool kIsNarrow = sizeof(T) == 2;
template <typename T>
constexpr bool kIsFloat = false;
template <>
constexpr bool kIsFloat<float> = true;

inline float load(half_t v) {
  // NOTE: _Float16 is an arithmetic type in clang on x86-64 (SSE2) and AArch64; the conversion is
  // one vcvtph2ps where F16C is present. __bf16 is storage-only in clang 16, hence the bits below.
  return static_cast<float>(__builtin_bit_cast(_Float16, v.bits));
}
inline float load(bf16_t v) {
  return __builtin_bit_cast(float, static_cast<unsigned>(v.bits) << 16);
}
inline float load(float v) {
  return v;
}
inline double load(double v) {
  return v;
}

// kCount values of T from `src` in the compute type at `dst`, through local copies so that the
// conversion runs in vectors: converted straight from `src` to `dst`, clang 16 could not rule out
// that the stores overwrite the 16-bit source and converted one value at a time (packing a small
// batch's bfloat16 weights then cost as much as its FMAs).
template <typename T, int kCount>
inline void load_run(const T* src, compute_t<T>* dst) {
  T in[kCount];
  __builtin_memcpy(in, src, sizeof in);
  compute_t<T> out[kCount];
#pragma GCC unroll 64
  for (int j = 0; j < kCount; ++j) out[j] = load(in[j]);
  __builtin_memcpy(dst, out, sizeof out);
}

template <typename T>
inline T store(compute_t<T> v) {
  return v;
}
template <>
inline half_t store<half_t>(float v) {
  return half_t{__builtin_bit_cast(unsigned short, static_cast<_Float16>(v))};
}
// Round to nearest even; NaN stays a quiet NaN (core/half.cpp's float_to_bf16_bits on the host).
template <>
inline bf16_t store<bf16_t>(float v) {
  unsigned u = __builtin_bit_cast(unsigned, v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{static_cast<unsigned short>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t{static_cast<unsigned short>(u >> 16)};
}

// `d` rounded once to T (nearest even): through float rounded to odd, whose 24 bits leave the
// final rounding to float16 or bfloat16 exact (cuda/types.cuh's from_double does the same).
template <typename T>
inline T store_double(double d) {
  if constexpr (!kIsNarrow<T>) {
    return static_cast<T>(d);
  } else {
    float f = static_cast<float>(d);
    if (static_cast<double>(f) != d && f == f) {
      unsigned u = __builtin_bit_cast(unsigned, f);
      const double magnitude = d < 0 ? -d : d, rounded = f < 0 ? -static_cast<double>(f) : f;
      if (rounded > magnitude) --u;  // toward zero first: one step down in magnitude
      f = __builtin_bit_cast(float, u | 1u);
    }
    return store<T>(f);
  }
}

}  // namespace cpu
}  // namespace switchyard
