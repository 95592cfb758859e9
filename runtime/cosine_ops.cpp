#include "runtime/cosine_ops.h"

#include <switchyard/common/cosine_args.h>

#include "core/error.h"
#include "jit/kernels/cosine.h"
#include "jit/kernels/gating.h"

namespace switchyard {
namespace {

void expect_like(const Tensor& t, const Tensor& like, const char* op, const char* what) {
  SY_CHECK(t.numel() == like.numel() && t.dtype() == like.dtype() && t.device() == like.device() && t.is_contiguous())
      << op << ": " << what << " is " << t.describe() << "; expected contiguous " << dtype_name(like.dtype())
      << " with " << like.numel() << " elements on " << like.device().to_string();
}

void expect_layout(const Tensor& x, const Tensor& norms, const VectorLayout& v, const char* op) {
  SY_CHECK(x.is_contiguous() && v.vectors >= 0 && v.length >= 1 && v.vector_stride >= 0 && v.element_stride >= 1 &&
           (v.vectors == 0 || (v.vectors - 1) * v.vector_stride + (v.length - 1) * v.element_stride < x.numel()))
      << op << ": " << v.vectors << " vectors of " << v.length << " (strides " << v.vector_stride << ", "
      << v.element_stride << ") do not fit " << x.describe();
  const DType compute = kernels::score_dtype_for(x.dtype());
  SY_CHECK(norms.numel() == v.vectors && norms.dtype() == compute && norms.device() == x.device() &&
           norms.is_contiguous())
      << op << ": norms are " << norms.describe() << "; expected contiguous " << dtype_name(compute) << "[" << v.vectors
      << "]";
}

void launch(Context& context, const Tensor& like, kernels::CosineOp op, int64_t items, kernels::CosineArgs args,
            const PlannedKernel* planned) {
  Device& device = context.device(like.device());
  const ChosenKernel chosen(context, device, planned,
                            [&] { return kernels::cosine_spec(like.dtype(), op, device.target()); });
  if (items == 0) return;
  void* params[] = {&args};
  device.launch(chosen.loaded(), kernels::cosine_launch_config(chosen.spec(), items, device.parallelism()), params);
}

kernels::CosineArgs vector_args(const VectorLayout& v) {
  kernels::CosineArgs args{};
  args.vectors = static_cast<long>(v.vectors);
  args.length = static_cast<long>(v.length);
  args.vector_stride = static_cast<long>(v.vector_stride);
  args.element_stride = static_cast<long>(v.element_stride);
  return args;
}

void expect_temperature(const Tensor& t, const Tensor& x, const char* op) {
  SY_CHECK(t.numel() == 1 && t.dtype() == x.dtype() && t.device() == x.device())
      << op << ": the temperature is " << t.describe() << "; expected one " << dtype_name(x.dtype()) << " on "
      << x.device().to_string();
}

}  // namespace

void normalize_vectors(Context& context, const Tensor& x, const Tensor& out, const Tensor& norms,
                       const VectorLayout& layout, const PlannedKernel* planned) {
  expect_layout(x, norms, layout, "normalize");
  expect_like(out, x, "normalize", "the output");
  kernels::CosineArgs args = vector_args(layout);
  args.x = x.data();
  args.out = out.data();
  args.norms = norms.data();
  launch(context, x, kernels::kCosNormalize, layout.vectors, args, planned);
}

void normalize_vectors_backward(Context& context, const Tensor& y, const Tensor& dy, const Tensor& norms,
                                const Tensor& dx, const VectorLayout& layout, const PlannedKernel* planned) {
  expect_layout(y, norms, layout, "normalize backward");
  expect_like(dy, y, "normalize backward", "the output gradient");
  expect_like(dx, y, "normalize backward", "the input gradient");
  kernels::CosineArgs args = vector_args(layout);
  args.x = y.data();
  args.dy = dy.data();
  args.out = dx.data();
  args.norms = norms.data();
  launch(context, y, kernels::kCosNormalizeBackward, layout.vectors, args, planned);
}

void scale_by_temperature(Context& context, const Tensor& x, const Tensor& t, const Tensor& out,
                          const PlannedKernel* planned) {
  SY_CHECK(x.is_contiguous()) << "temperature scale: the input is " << x.describe() << "; expected contiguous";
  expect_like(out, x, "temperature scale", "the output");
  expect_temperature(t, x, "temperature scale");
  kernels::CosineArgs args{};
  args.x = x.data();
  args.out = out.data();
  args.t = t.data();
  args.vectors = static_cast<long>(x.numel());
  launch(context, x, kernels::kCosScale, x.numel(), args, planned);
}

void scale_by_temperature_backward(Context& context, const Tensor& x, const Tensor& dy, const Tensor& t,
                                   const Tensor& dx, const Tensor& dt, const PlannedKernel* planned) {
  SY_CHECK(x.is_contiguous()) << "temperature scale backward: the input is " << x.describe() << "; expected contiguous";
  expect_like(dy, x, "temperature scale backward", "the output gradient");
  expect_like(dx, x, "temperature scale backward", "the input gradient");
  expect_temperature(t, x, "temperature scale backward");
  expect_temperature(dt, x, "temperature scale backward");
  kernels::CosineArgs args{};
  args.x = x.data();
  args.dy = dy.data();
  args.out = dx.data();
  args.t = t.data();
  args.grad_t = dt.data();
  args.vectors = static_cast<long>(x.numel());
  launch(context, x, kernels::kCosScaleBackward, 1, args, planned);
}

}  // namespace switchyard
