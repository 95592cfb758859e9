// The cosine gate's element-wise pieces (kernels in templates/*/cosine.*): L2 normalization of
// strided vectors and the temperature scale, each with its backward.
#pragma once

#include "runtime/context.h"
#include "runtime/planned_kernel.h"
#include "runtime/tensor.h"

namespace switchyard {

/// Which elements of a contiguous tensor form the vectors: vector v's element i is at
/// v * vector_stride + i * element_stride (rows of [R, C]: {R, C, C, 1}; columns: {C, R, 1, C}).
struct VectorLayout {
  int64_t vectors;
  int64_t length;
  int64_t vector_stride;
  int64_t element_stride;
};

/// out = x / max(|x|, 1e-12) per vector (torch's F.normalize), norms [vectors] = |x| in the compute
/// dtype (float32; float64 for float64 data). out may be x.
void normalize_vectors(Context& context, const Tensor& x, const Tensor& out, const Tensor& norms,
                       const VectorLayout& layout, const PlannedKernel* planned = nullptr);
/// dx for y = normalize(x) given y, dy and the forward's norms. dx may be dy.
void normalize_vectors_backward(Context& context, const Tensor& y, const Tensor& dy, const Tensor& norms,
                                const Tensor& dx, const VectorLayout& layout, const PlannedKernel* planned = nullptr);
/// out = x * exp(min(t, log 100)), t a one-element tensor on the device (read there). out may be x.
void scale_by_temperature(Context& context, const Tensor& x, const Tensor& t, const Tensor& out,
                          const PlannedKernel* planned = nullptr);
/// Backward of scale_by_temperature at the unscaled x: dx = dy * scale, dt = scale * sum(dy * x)
/// while t <= log 100 (0 past the clamp). dx may be dy.
void scale_by_temperature_backward(Context& context, const Tensor& x, const Tensor& dy, const Tensor& t,
                                   const Tensor& dx, const Tensor& dt, const PlannedKernel* planned = nullptr);

}  // namespace switchyard
