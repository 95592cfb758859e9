#include "runtime/example_loss.h"

#include <switchyard/common/example_loss_args.h>

#include "core/error.h"
#include "jit/kernels/example_loss.h"

namespace switchyard {

ExampleLoss::ExampleLoss(Context& context, Device& device, int64_t batch, int64_t tokens, int64_t model_dim)
    : context_(context),
      device_(device),
      batch_(batch),
      tokens_(tokens),
      model_dim_(model_dim),
      logits_(device, static_cast<size_t>(batch * tokens) * sizeof(double)),
      losses_(device, static_cast<size_t>(batch) * sizeof(double)),
      host_losses_(static_cast<size_t>(batch)) {
  SY_CHECK(batch >= 1 && tokens >= 1 && model_dim >= 1 && batch * tokens <= (int64_t{1} << 31))
      << "example loss of " << batch << " x " << tokens << " x " << model_dim
      << ": expected positive sizes and at most 2^31 tokens";
}

void ExampleLoss::launch(DType dtype, int op, const Tensor& y, const Tensor* grad) {
  const KernelSpec spec = kernels::example_loss_spec(dtype, static_cast<kernels::ExampleLossOp>(op), device_.target());
  const LoadedKernel& kernel = context_.kernel(device_, spec);
  kernels::ExampleLossArgs args{y.data(),
                                static_cast<double*>(logits_.data()),
                                static_cast<double*>(losses_.data()),
                                grad ? grad->data() : nullptr,
                                static_cast<int>(batch_),
                                static_cast<int>(tokens_),
                                static_cast<int>(model_dim_)};
  void* params[] = {&args};
  const kernels::ExampleLossProblem problem{batch_, tokens_, model_dim_, device_.parallelism()};
  device_.launch(kernel, kernels::example_loss_launch_config(spec, problem), params);
}

double ExampleLoss::operator()(const Tensor& y, const Tensor* grad) {
  const std::vector<int64_t> shape{batch_ * tokens_, model_dim_};
  SY_CHECK(y.shape() == shape && y.is_contiguous() && y.device() == device_.ref())
      << "example loss: the output is " << y.describe() << "; expected contiguous " << shape_string(shape) << " on "
      << device_.name();
  SY_CHECK(!grad || (grad->shape() == shape && grad->dtype() == y.dtype() && grad->is_contiguous() &&
                     grad->device() == device_.ref()))
      << "example loss: the gradient is " << grad->describe() << "; expected contiguous " << dtype_name(y.dtype())
      << shape_string(shape) << " on " << device_.name();
  launch(y.dtype(), kernels::kLossLogits, y, grad);
  launch(y.dtype(), kernels::kLossSoftmax, y, grad);
  if (grad) launch(y.dtype(), kernels::kLossGrad, y, grad);
  device_.copy_to_host(host_losses_.data(), losses_.data(), losses_.bytes());
  double loss = 0;
  for (double l : host_losses_) loss += l;  // in sample order, as Tutel's mean
  return loss / static_cast<double>(batch_);
}

}  // namespace switchyard
