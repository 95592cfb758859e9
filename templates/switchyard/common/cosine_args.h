// Arguments of the cosine gate's kernels (Swin-MoE's cosine_top router, tutel-semantics 1.1),
// shared by host code and templates. logits = normalize(proj rows) . normalize(sim columns) *
// exp(min(temperature, log 100)); the GEMMs around them are the gemm family's.
#pragma once

namespace switchyard {
namespace kernels {

enum CosineOp {
  kCosNormalize = 0,          // out[v] = x[v] / max(|x[v]|, 1e-12); norms[v] = |x[v]|
  kCosNormalizeBackward = 1,  // out[v] = (dy[v] - y[v] <y[v], dy[v]>) / |x[v]|, or dy[v] / 1e-12 past the clamp
  kCosScale = 2,              // out[i] = x[i] * exp(min(t, log 100)) (out may be x)
  kCosScaleBackward = 3,      // out[i] = dy[i] * scale; dt = scale [t <= log 100] sum_i dy[i] x[i] (one block)
};

// F.normalize's eps and Tutel's clamp of the temperature (log(1 / 0.01)).
constexpr double kCosineEps = 1e-12;
constexpr double kCosineMaxLogScale = 4.605170185988091368;

struct CosineArgs {
  const void* x;        // vectors (normalize), y (normalize backward), or the unscaled logits (scale)
  const void* dy;       // the gradient flowing in (backward ops)
  void* out;            // same layout as x
  void* norms;          // [vectors] |x[v]|, in the compute type (float, double for float64)
  const void* t;        // the temperature parameter [1] (scale ops)
  void* grad_t;         // [1] its gradient (scale backward)
  long vectors;         // normalize: how many vectors; scale: elements
  long length;          // elements per vector
  long vector_stride;   // between the first elements of two vectors
  long element_stride;  // between two elements of one vector
};

}  // namespace kernels
}  // namespace switchyard
