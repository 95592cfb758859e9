#include "runtime/init_ops.h"

#include <algorithm>

#include "core/error.h"
#include "jit/kernels/init_random.h"

namespace switchyard {

void fill_random(Context& context, const Tensor& out, const RandomFill& fill) {
  Device& device = context.device(out.device());
  const KernelFamily& family = find_kernel_family("init_random");
  const auto& dtypes = device.is_cuda() ? family.cuda_dtypes : family.cpu_dtypes;
  SY_CHECK(out.is_contiguous() && std::find(dtypes.begin(), dtypes.end(), out.dtype()) != dtypes.end())
      << "random fill of " << out.describe() << ": expected a contiguous tensor of a dtype " << device.name()
      << " can fill";
  SY_CHECK(fill.first >= 0) << "random fill of '" << fill.name << "' starts at " << fill.first
                            << "; expected an index >= 0";
  if (out.numel() == 0) return;
  const KernelSpec spec = kernels::init_random_spec(out.dtype(), device.target());
  kernels::InitArgs args{out.data(),
                         kernels::init_seed(fill.seed, fill.name),
                         static_cast<long>(fill.first),
                         static_cast<long>(out.numel()),
                         fill.scale,
                         fill.normal ? 1 : 0};
  void* params[] = {&args};
  device.launch(context.kernel(device, spec),
                kernels::init_random_launch_config(spec, out.numel(), device.parallelism()), params);
}

}  // namespace switchyard
