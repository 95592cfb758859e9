// The cosine gate's kernels on the CPU (see common/cosine_args.h). One call handles one block of
// the grid: a range of vectors (normalize) or elements (scale); the scale backward's sum runs in
// one block, in index order.
#pragma once

#include <switchyard/common/cosine_args.h>
#include <switchyard/cpu/math.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename C>
inline C math_sqrt(C x) {
  return __builtin_sqrt(x);
}

template <typename T>
compute_t<T> cosine_scale_of(const kernels::CosineArgs& args) {
  using C = compute_t<T>;
  const C t = load(*static_cast<const T*>(args.t));
  return math_exp(t < C(kernels::kCosineMaxLogScale) ? t : C(kernels::kCosineMaxLogScale));
}

template <typename T, int kOp>
void cosine(const kernels::CosineArgs& args, unsigned block, unsigned grid) {
  static_assert(kOp >= kernels::kCosNormalize && kOp <= kernels::kCosScaleBackward, "cosine: unknown op");
  using C = compute_t<T>;
  const T* x = static_cast<const T*>(args.x);
  const T* dy = static_cast<const T*>(args.dy);
  T* out = static_cast<T*>(args.out);
  C* norms = static_cast<C*>(args.norms);
  const long begin = args.vectors * block / grid, end = args.vectors * (block + 1) / grid;
  const long vs = args.vector_stride, es = args.element_stride;
  if (kOp == kernels::kCosNormalize) {
    for (long v = begin; v < end; ++v) {
      C sum = C(0);
      for (long i = 0; i < args.length; ++i) sum += load(x[v * vs + i * es]) * load(x[v * vs + i * es]);
      const C norm = math_sqrt(sum), denom = norm > C(kernels::kCosineEps) ? norm : C(kernels::kCosineEps);
      norms[v] = norm;
      for (long i = 0; i < args.length; ++i) out[v * vs + i * es] = store<T>(load(x[v * vs + i * es]) / denom);
    }
  } else if (kOp == kernels::kCosNormalizeBackward) {
    for (long v = begin; v < end; ++v) {
      const bool clamped = !(norms[v] > C(kernels::kCosineEps));
      C dot = C(0);
      for (long i = 0; i < args.length; ++i) dot += load(x[v * vs + i * es]) * load(dy[v * vs + i * es]);
      if (clamped) dot = C(0);  // past the clamp the output is x / eps: linear in x
      const C denom = clamped ? C(kernels::kCosineEps) : norms[v];
      for (long i = 0; i < args.length; ++i) {
        const long at = v * vs + i * es;
        out[at] = store<T>((load(dy[at]) - load(x[at]) * dot) / denom);
      }
    }
  } else if (kOp == kernels::kCosScale) {
    const C scale = cosine_scale_of<T>(args);
    for (long i = begin; i < end; ++i) out[i] = store<T>(load(x[i]) * scale);
  } else {  // one block: the sum for dt, then du
    const C t = load(*static_cast<const T*>(args.t));
    const C scale = cosine_scale_of<T>(args);
    C sum = C(0);
    for (long i = 0; i < args.vectors; ++i) sum += load(dy[i]) * load(x[i]);
    *static_cast<T*>(args.grad_t) = store<T>(t <= C(kernels::kCosineMaxLogScale) ? sum * scale : C(0));
    for (long i = 0; i < args.vectors; ++i) out[i] = store<T>(load(dy[i]) * scale);
  }
}

}  // namespace cpu
}  // namespace switchyard
