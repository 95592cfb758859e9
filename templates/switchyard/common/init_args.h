// Parameter initialization by a counter-based generator, shared verbatim by host code and the
// CPU and CUDA templates: element i of a tensor is a pure function of (seed, i), computed in
// integer arithmetic and one double multiply, so every device (and every rank, each drawing only
// its slice) produces the same bits, and a big layer's weights are drawn where they live.
#pragma once

#include <switchyard/common/macros.h>

namespace switchyard {
namespace kernels {

struct InitArgs {
  void* out;                // [count] of the spec's dtype
  unsigned long long seed;  // the layer's seed mixed with the tensor's name (init_seed)
  long first;               // index of out[0] in the whole tensor (a rank's slice starts there)
  long count;
  double scale;  // uniform: values in [-scale, scale); normal: the standard deviation
  int normal;    // 0 uniform; 1 approximately normal (the sum of twelve uniforms, Irwin-Hall)
};

// splitmix64's finalizer: a bijection of 64-bit integers that mixes every input bit.
SY_HOST_DEVICE unsigned long long init_mix(unsigned long long x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 64 random bits number `j` of element `i`.
SY_HOST_DEVICE unsigned long long init_bits(unsigned long long seed, long i, int j) {
  return init_mix(seed + init_mix(static_cast<unsigned long long>(i) * 8 + static_cast<unsigned long long>(j) + 1));
}

// Element i's value in double. Uniform: 53 random bits u in [0, 1), (2u - 1) exact, times scale
// (one rounding). Normal: twelve 32-bit uniforms summed exactly as integers, minus their mean,
// over 2^32 (exact), times scale (one rounding); variance 12 / 12 = 1.
SY_HOST_DEVICE double init_uniform(unsigned long long seed, long i, double scale) {
  const double u = static_cast<double>(init_bits(seed, i, 0) >> 11) * 0x1p-53;
  return (2.0 * u - 1.0) * scale;
}

SY_HOST_DEVICE double init_normal(unsigned long long seed, long i, double scale) {
  long long sum = 0;
  for (int j = 0; j < 6; ++j) {
    const unsigned long long bits = init_bits(seed, i, j);
    sum += static_cast<long long>(bits & 0xffffffffull) + static_cast<long long>(bits >> 32);
  }
  sum -= 6 * 0x100000000ll;  // twelve means of 2^31
  return static_cast<double>(sum) * 0x1p-32 * scale;
}

SY_HOST_DEVICE double init_value(const InitArgs& a, long i) {
  return a.normal == 0 ? init_uniform(a.seed, i, a.scale) : init_normal(a.seed, i, a.scale);
}

}  // namespace kernels
}  // namespace switchyard
