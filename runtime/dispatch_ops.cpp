#include "runtime/dispatch_ops.h"

#include <switchyard/common/dispatch_args.h>

#include <limits>
#include <memory>
#include <vector>

#include "core/error.h"
#include "jit/kernels/dispatch.h"

namespace switchyard {
namespace {

void check_shape(const Tensor& t, const std::vector<int64_t>& expected, const char* what) {
  SY_CHECK(t.shape() == expected) << what << " is " << t.describe() << "; expected shape " << shape_string(expected);
  SY_CHECK(t.is_contiguous()) << what << " is " << t.describe() << "; it must be contiguous";
}

// Checks the routing tensors against S and returns k.
int64_t check_routing(const Routing& r, int64_t tokens, DType data, const DeviceRef& device) {
  SY_CHECK(r.indices.ndim() == 2) << "routing indices are " << r.indices.describe() << "; expected int32[k, S]";
  int64_t k = r.indices.dim(0);
  SY_CHECK(k >= 1 && k <= 4096) << "routing has top_k = " << k << " choices; expected 1 to 4096";
  SY_CHECK(r.num_experts >= 1 && r.num_experts <= std::numeric_limits<int>::max())
      << "num_experts = " << r.num_experts << "; expected a positive count";
  SY_CHECK(r.capacity >= 0 && r.capacity <= std::numeric_limits<int>::max())
      << "capacity = " << r.capacity << "; expected 0 or more";
  SY_CHECK(r.indices.dtype() == DType::kInt32 && r.locations.dtype() == DType::kInt32)
      << "routing indices and locations must be int32; got " << r.indices.describe() << " and "
      << r.locations.describe();
  check_shape(r.indices, {k, tokens}, "routing indices");
  check_shape(r.locations, {k, tokens}, "routing locations");
  check_shape(r.gates, {k, tokens}, "routing gates");
  SY_CHECK(r.gates.dtype() == gate_dtype_for(data))
      << "routing gates are " << r.gates.describe() << "; expected " << dtype_name(gate_dtype_for(data)) << " for "
      << dtype_name(data) << " data";
  for (const Tensor* t : {&r.indices, &r.locations, &r.gates}) {
    SY_CHECK(t->device() == device) << "routing tensor " << t->describe() << " is not on " << device.to_string();
  }
  if (device.kind == DeviceRef::Kind::kCpu) {
    // Host memory: catch an out-of-range expert here rather than skipping it silently.
    const int* idx = r.indices.data_as<const int>();
    for (int64_t i = 0; i < k * tokens; ++i) {
      SY_CHECK(idx[i] < r.num_experts) << "routing index " << idx[i] << " at choice " << i / tokens << ", token "
                                       << i % tokens << " is not below num_experts = " << r.num_experts;
    }
  }
  return k;
}

bool aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Views not aligned to the spec's packs fall back to scalar loads (vec, the last parameter, = 1).
void scalar_if_misaligned(KernelSpec& spec, DType dtype, const void* a, const void* b) {
  const size_t pack_bytes = static_cast<size_t>(spec.int_param("vec")) * dtype_size(dtype);
  if (!aligned(a, pack_bytes) || !aligned(b, pack_bytes)) spec.params.back().second = int64_t{1};
}

// A plan's kernel reads whole vector packs: views off their alignment take the scalar spec instead.
const PlannedKernel* usable_plan(const PlannedKernel* planned, DType dtype, const void* a, const void* b) {
  if (planned == nullptr || planned->loaded == nullptr) return nullptr;
  const size_t pack_bytes = static_cast<size_t>(planned->spec.int_param("vec")) * dtype_size(dtype);
  return aligned(a, pack_bytes) && aligned(b, pack_bytes) ? planned : nullptr;
}

void run(Context& context, bool encode, const Tensor& input, const Routing& routing, bool is_postscore,
         const Tensor& out, int64_t tokens, int64_t model_dim, int64_t k, const PlannedKernel* planned) {
  Device& device = context.device(input.device());
  const ChosenKernel chosen(context, device, usable_plan(planned, input.dtype(), input.data(), out.data()), [&] {
    KernelSpec spec = kernels::dispatch_spec(encode, input.dtype(), model_dim, k, is_postscore, device.target());
    scalar_if_misaligned(spec, input.dtype(), input.data(), out.data());
    return spec;
  });
  const KernelSpec& spec = chosen.spec();
  const LoadedKernel& kernel = chosen.loaded();
  kernels::DispatchArgs args{input.data(),
                             routing.indices.data_as<const int>(),
                             routing.locations.data_as<const int>(),
                             routing.gates.data(),
                             out.data(),
                             static_cast<int>(tokens),
                             static_cast<int>(routing.capacity),
                             static_cast<int>(routing.num_experts),
                             nullptr,
                             nullptr};
  // NOTE: on the CPU the kernel zeroes only the rows no choice writes (flags from one pass over
  // the routing), so each output row is written once instead of zero-filled and then written. The
  // flags come from the device's buffer cache: nothing is allocated in a steady state.
  std::unique_ptr<Buffer> used_rows;
  if (encode && !device.is_cuda() && tokens > 0) {
    const auto rows = static_cast<size_t>(routing.num_experts * routing.capacity);
    used_rows = std::make_unique<Buffer>(device, rows);
    auto* flags = static_cast<unsigned char*>(used_rows->data());
    device.fill_zero(flags, rows);
    for (int j = 0; j < k; ++j)
      for (int64_t s = 0; s < tokens; ++s) {
        const long row = kernels::dispatch_row(args, j, s);
        if (row >= 0) flags[row] = 1;
      }
    args.used_rows = flags;
  } else if (encode) {
    device.fill_zero(out.data(), out.nbytes());
  }
  if (tokens == 0) return;
  void* params[] = {&args};
  device.launch(kernel, kernels::dispatch_launch_config(spec, tokens, device.parallelism()), params);
}

}  // namespace

DType gate_dtype_for(DType data) {
  return data == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

void dispatch_encode(Context& context, const Tensor& tokens, const Routing& routing, bool is_postscore,
                     const Tensor& out) {
  dispatch_encode(context, tokens, routing, is_postscore, out, nullptr);
}

void dispatch_encode(Context& context, const Tensor& tokens, const Routing& routing, bool is_postscore,
                     const Tensor& out, const PlannedKernel* planned) {
  SY_CHECK(tokens.ndim() == 2) << "dispatch_encode input is " << tokens.describe() << "; expected [S, M]";
  int64_t s = tokens.dim(0), m = tokens.dim(1);
  check_shape(tokens, {s, m}, "dispatch_encode input");
  int64_t k = check_routing(routing, s, tokens.dtype(), tokens.device());
  check_shape(out, {routing.num_experts, routing.capacity, m}, "dispatch_encode output");
  SY_CHECK(out.dtype() == tokens.dtype() && out.device() == tokens.device())
      << "dispatch_encode output is " << out.describe() << "; expected " << dtype_name(tokens.dtype()) << " on "
      << tokens.device().to_string();
  run(context, true, tokens, routing, is_postscore, out, s, m, k, planned);
}

void combine_decode(Context& context, const Tensor& slots, const Routing& routing, bool is_postscore,
                    const Tensor& out) {
  combine_decode(context, slots, routing, is_postscore, out, nullptr);
}

void combine_decode(Context& context, const Tensor& slots, const Routing& routing, bool is_postscore, const Tensor& out,
                    const PlannedKernel* planned) {
  SY_CHECK(slots.ndim() == 3) << "combine_decode input is " << slots.describe() << "; expected [E, C, M]";
  int64_t m = slots.dim(2);
  check_shape(slots, {routing.num_experts, routing.capacity, m}, "combine_decode input");
  SY_CHECK(out.ndim() == 2) << "combine_decode output is " << out.describe() << "; expected [S, M]";
  int64_t s = out.dim(0);
  check_shape(out, {s, m}, "combine_decode output");
  int64_t k = check_routing(routing, s, slots.dtype(), slots.device());
  SY_CHECK(out.dtype() == slots.dtype() && out.device() == slots.device())
      << "combine_decode output is " << out.describe() << "; expected " << dtype_name(slots.dtype()) << " on "
      << slots.device().to_string();
  run(context, false, slots, routing, is_postscore, out, s, m, k, planned);
}

void dispatch_gate_grad(Context& context, const Tensor& slots, const Tensor& other, const Routing& routing,
                        const Tensor& out) {
  dispatch_gate_grad(context, slots, other, routing, out, nullptr);
}

void dispatch_gate_grad(Context& context, const Tensor& slots, const Tensor& other, const Routing& routing,
                        const Tensor& out, const PlannedKernel* planned) {
  SY_CHECK(slots.ndim() == 3 && other.ndim() == 2) << "gate_grad operands are " << slots.describe() << " and "
                                                   << other.describe() << "; expected [E, C, M] and [S, M]";
  const int64_t s = other.dim(0), m = other.dim(1);
  check_shape(slots, {routing.num_experts, routing.capacity, m}, "gate_grad slots");
  check_shape(other, {s, m}, "gate_grad tokens");
  const int64_t k = check_routing(routing, s, slots.dtype(), slots.device());
  check_shape(out, {k, s}, "gate_grad output");
  SY_CHECK(other.dtype() == slots.dtype() && other.device() == slots.device() &&
           out.dtype() == gate_dtype_for(slots.dtype()) && out.device() == slots.device())
      << "gate_grad tensors " << slots.describe() << ", " << other.describe() << ", " << out.describe()
      << ": expected one data dtype, a " << dtype_name(gate_dtype_for(slots.dtype())) << " output, one device";
  Device& device = context.device(slots.device());
  const ChosenKernel chosen(context, device, usable_plan(planned, slots.dtype(), slots.data(), other.data()), [&] {
    KernelSpec spec = kernels::gate_grad_spec(slots.dtype(), m, k, device.target());
    scalar_if_misaligned(spec, slots.dtype(), slots.data(), other.data());
    return spec;
  });
  const KernelSpec& spec = chosen.spec();
  const LoadedKernel& kernel = chosen.loaded();
  if (s == 0) return;
  kernels::DispatchArgs args{slots.data(),
                             routing.indices.data_as<const int>(),
                             routing.locations.data_as<const int>(),
                             routing.gates.data(),
                             out.data(),
                             static_cast<int>(s),
                             static_cast<int>(routing.capacity),
                             static_cast<int>(routing.num_experts),
                             nullptr,
                             other.data()};
  void* params[] = {&args};
  device.launch(kernel, kernels::gate_grad_launch_config(spec, s, device.parallelism()), params);
}

}  // namespace switchyard
