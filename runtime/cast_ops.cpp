#include "runtime/cast_ops.h"

#include <switchyard/common/cast_args.h>

#include <algorithm>

#include "core/error.h"
#include "jit/kernels/cast.h"

namespace switchyard {

void cast_tensor(Context& context, const Tensor& input, const Tensor& output) {
  SY_CHECK(input.shape() == output.shape() && input.is_contiguous() && output.is_contiguous() &&
           input.device() == output.device())
      << "cast from " << input.describe() << " to " << output.describe()
      << ": expected contiguous tensors of one shape on one device";
  Device& device = context.device(input.device());
  const LoadedKernel& kernel =
      context.kernel(device, kernels::cast_spec(input.dtype(), output.dtype(), device.target()));
  const long count = static_cast<long>(input.numel());
  if (count == 0) return;
  kernels::CastArgs args{input.data(), output.data(), count};
  void* params[] = {&args};
  LaunchConfig config;
  if (device.is_cuda()) {
    config.block = 256;
    config.grid = static_cast<unsigned>((count + 255) / 256);
  } else {
    config.grid = static_cast<unsigned>(std::clamp<long>(count / 4096, 1, long{device.parallelism()}));
  }
  device.launch(kernel, config, params);
}

}  // namespace switchyard
