#include "runtime/cast_ops.h"

#include <switchyard/common/cast_args.h>

#include "core/error.h"
#include "jit/kernels/cast.h"

namespace switchyard {

void cast_tensor(Context& context, const Tensor& input, const Tensor& output, const PlannedKernel* planned) {
  SY_CHECK(input.shape() == output.shape() && input.is_contiguous() && output.is_contiguous() &&
           input.device() == output.device())
      << "cast from " << input.describe() << " to " << output.describe()
      << ": expected contiguous tensors of one shape on one device";
  Device& device = context.device(input.device());
  const ChosenKernel chosen(context, device, planned,
                            [&] { return kernels::cast_spec(input.dtype(), output.dtype(), device.target()); });
  const KernelSpec& spec = chosen.spec();
  const LoadedKernel& kernel = chosen.loaded();
  const long count = static_cast<long>(input.numel());
  if (count == 0) return;
  kernels::CastArgs args{input.data(), output.data(), count};
  void* params[] = {&args};
  device.launch(kernel, kernels::cast_launch_config(spec, count, device.parallelism()), params);
}

}  // namespace switchyard
