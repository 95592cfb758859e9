#include "runtime/elementwise_ops.h"

#include <switchyard/common/elementwise_args.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/gemm.h"
#include "runtime/row_counts.h"

namespace switchyard {
namespace {

void expect_like(const Tensor& t, const Tensor& like, const char* what, const char* op) {
  SY_CHECK(t.shape() == like.shape() && t.dtype() == like.dtype() && t.device() == like.device() && t.is_contiguous())
      << op << ": " << what << " is " << t.describe() << "; expected contiguous " << dtype_name(like.dtype())
      << shape_string(like.shape()) << " on " << like.device().to_string();
}

void launch(Context& context, const Tensor& like, kernels::ElementwiseOp op, kernels::GemmActivation act,
            kernels::ElementwiseArgs args, long work = -1, const PlannedKernel* planned = nullptr) {
  SY_CHECK(like.is_contiguous() && like.dtype() != DType::kInt32)
      << "element-wise op on " << like.describe() << ": expected a contiguous floating tensor";
  Device& device = context.device(like.device());
  const ChosenKernel chosen(context, device, planned,
                            [&] { return kernels::elementwise_spec(like.dtype(), op, act, device.target()); });
  if (args.count == 0) return;
  void* params[] = {&args};
  device.launch(chosen.loaded(),
                kernels::elementwise_launch_config(chosen.spec(), args.count, work, device.parallelism()), params);
}

}  // namespace

void activate(Context& context, const Tensor& x, kernels::GemmActivation act, const Tensor& out,
              const PlannedKernel* planned) {
  SY_CHECK(act == kernels::kActRelu || act == kernels::kActGelu || act == kernels::kActSilu)
      << "activate: activation " << kernels::activation_name(act) << " is not relu, gelu or silu";
  expect_like(out, x, "output", "activate");
  kernels::ElementwiseArgs args{};
  args.x = x.data();
  args.out = out.data();
  args.count = static_cast<long>(x.numel());
  launch(context, x, kernels::kEwActivate, act, args, -1, planned);
}

void swiglu(Context& context, const Tensor& gate, const Tensor& up, const Tensor& out, const PlannedKernel* planned) {
  expect_like(up, gate, "up projection", "swiglu");
  expect_like(out, gate, "output", "swiglu");
  kernels::ElementwiseArgs args{};
  args.x = gate.data();
  args.y = up.data();
  args.out = out.data();
  args.count = static_cast<long>(gate.numel());
  launch(context, gate, kernels::kEwSwiglu, kernels::kActNone, args, -1, planned);
}

void swiglu_backward(Context& context, const Tensor& gate, const Tensor& up, const Tensor& grad, const Tensor& d_gate,
                     const Tensor& d_up, const PlannedKernel* planned) {
  for (const auto& [t, what] :
       {std::pair{&up, "up projection"}, {&grad, "gradient"}, {&d_gate, "gate gradient"}, {&d_up, "up gradient"}})
    expect_like(*t, gate, what, "swiglu_backward");
  kernels::ElementwiseArgs args{};
  args.x = gate.data();
  args.y = up.data();
  args.z = grad.data();
  args.out = d_gate.data();
  args.out2 = d_up.data();
  args.count = static_cast<long>(gate.numel());
  launch(context, gate, kernels::kEwSwigluBackward, kernels::kActNone, args, -1, planned);
}

void add(Context& context, const Tensor& a, const Tensor& b, const Tensor& out, const PlannedKernel* planned) {
  expect_like(b, a, "second operand", "add");
  expect_like(out, a, "output", "add");
  kernels::ElementwiseArgs args{};
  args.x = a.data();
  args.y = b.data();
  args.out = out.data();
  args.count = static_cast<long>(a.numel());
  launch(context, a, kernels::kEwAdd, kernels::kActNone, args, -1, planned);
}

void scale(Context& context, const Tensor& x, double factor, const Tensor& out) {
  SY_CHECK(std::isfinite(factor)) << "scale: factor " << factor << " is not finite";
  expect_like(out, x, "output", "scale");
  kernels::ElementwiseArgs args{};
  args.x = x.data();
  args.out = out.data();
  args.count = static_cast<long>(x.numel());
  args.scale = factor;
  launch(context, x, kernels::kEwScale, kernels::kActNone, args);
}

void transpose(Context& context, const Tensor& x, const Tensor& out, const Tensor* row_counts,
               const PlannedKernel* planned) {
  SY_CHECK(x.ndim() == 2 || x.ndim() == 3) << "transpose input is " << x.describe() << "; expected [R, C] or [B, R, C]";
  const int64_t batch = x.ndim() == 3 ? x.dim(0) : 1, rows = x.dim(x.ndim() - 2), cols = x.dim(x.ndim() - 1);
  // out's rows may be longer than x's (padded with zeros): [.., C, P], P >= R
  const int64_t padded = std::max(out.ndim() == x.ndim() ? out.dim(out.ndim() - 1) : 0, rows);
  std::vector<int64_t> shape = {cols, rows}, padded_shape = {cols, padded};
  if (x.ndim() == 3) {
    shape.insert(shape.begin(), batch);
    padded_shape.insert(padded_shape.begin(), batch);
  }
  SY_CHECK(out.shape() == padded_shape && out.dtype() == x.dtype() && out.device() == x.device() && out.is_contiguous())
      << "transpose output is " << out.describe() << "; expected contiguous " << dtype_name(x.dtype())
      << shape_string(shape) << " (its last dimension may be longer, padded with zeros) on " << x.device().to_string();
  SY_CHECK(x.data() != out.data()) << "transpose cannot run in place (input and output share " << x.describe() << ")";
  constexpr int64_t kMaxDim = std::numeric_limits<int>::max();
  SY_CHECK(batch <= kMaxDim && padded <= kMaxDim && cols <= kMaxDim)
      << "transpose output " << out.describe() << " has a dimension past " << kMaxDim;
  Device& device = context.device(x.device());
  const RowCounts counts(device, row_counts, batch, rows, "transpose");
  const ChosenKernel chosen(context, device, planned, [&] {
    return kernels::elementwise_spec(x.dtype(), kernels::kEwTranspose, kernels::kActNone, device.target());
  });
  if (out.numel() == 0) return;
  kernels::ElementwiseArgs args{};
  args.x = x.data();
  args.out = out.data();
  args.row_counts = counts.data();
  args.count = static_cast<long>(out.numel());
  args.rows = static_cast<int>(rows);
  args.cols = static_cast<int>(cols);
  args.batch = static_cast<int>(batch);
  args.padded_rows = static_cast<int>(padded);
  void* params[] = {&args};
  device.launch(chosen.loaded(),
                kernels::transpose_launch_config(chosen.spec(), batch, rows, cols, padded, device.parallelism()),
                params);
}

void sum_rows(Context& context, const Tensor& x, const Tensor& out, const Tensor* row_counts,
              const PlannedKernel* planned) {
  SY_CHECK(x.ndim() == 3) << "sum_rows input is " << x.describe() << "; expected [B, R, C]";
  const int64_t batch = x.dim(0), rows = x.dim(1), cols = x.dim(2);
  SY_CHECK(out.shape() == std::vector<int64_t>({batch, cols}) && out.dtype() == x.dtype() &&
           out.device() == x.device() && out.is_contiguous())
      << "sum_rows output is " << out.describe() << "; expected contiguous " << dtype_name(x.dtype())
      << shape_string({batch, cols});
  kernels::ElementwiseArgs args{};
  args.x = x.data();
  args.out = out.data();
  args.count = static_cast<long>(batch * cols);
  args.rows = static_cast<int>(rows);
  args.cols = static_cast<int>(cols);
  args.batch = static_cast<int>(batch);
  const RowCounts counts(context.device(x.device()), row_counts, batch, rows, "sum_rows");
  args.row_counts = counts.data();
  launch(context, x, kernels::kEwSumRows, kernels::kActNone, args, static_cast<long>(x.numel()), planned);
}

void sgd_step(Context& context, const Tensor& param, const Tensor& grad, const Tensor* velocity,
              const SgdOptions& options, const PlannedKernel* planned) {
  SY_CHECK(std::isfinite(options.lr) && options.lr >= 0) << "sgd lr = " << options.lr << "; expected a finite lr >= 0";
  SY_CHECK(std::isfinite(options.momentum) && options.momentum >= 0)
      << "sgd momentum = " << options.momentum << "; expected a finite value >= 0";
  SY_CHECK(std::isfinite(options.weight_decay) && options.weight_decay >= 0)
      << "sgd weight_decay = " << options.weight_decay << "; expected a finite value >= 0";
  SY_CHECK(options.momentum == 0 || velocity != nullptr)
      << "sgd with momentum " << options.momentum << " needs a velocity buffer";
  expect_like(grad, param, "gradient", "sgd");
  if (velocity) expect_like(*velocity, param, "velocity", "sgd");
  kernels::ElementwiseArgs args{};
  args.y = grad.data();
  args.out = param.data();
  args.out2 = options.momentum != 0 ? velocity->data() : nullptr;
  args.count = static_cast<long>(param.numel());
  args.lr = options.lr;
  args.momentum = options.momentum;
  args.weight_decay = options.weight_decay;
  launch(context, param, kernels::kEwSgd, kernels::kActNone, args, -1, planned);
}

}  // namespace switchyard
