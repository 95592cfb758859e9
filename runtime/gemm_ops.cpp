#include "runtime/gemm_ops.h"

#include <limits>
#include <memory>
#include <optional>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "runtime/cuda_device.h"
#include "runtime/elementwise_ops.h"
#include "runtime/row_counts.h"

namespace switchyard {
namespace {

void expect(const Tensor& t, const std::vector<int64_t>& shape, DType dtype, DeviceRef device, const char* what) {
  SY_CHECK(t.shape() == shape && t.dtype() == dtype && t.device() == device && t.is_contiguous())
      << "gemm " << what << " is " << t.describe() << "; expected contiguous " << dtype_name(dtype)
      << shape_string(shape) << " on " << device.to_string();
}

bool aligned_16(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % 16 == 0;
}

// The operands of a GEMM that reads them transposed (kernels::gemm_reads_transposed_operands: the
// TF32 weight gradient on Hopper): A [B, R, K] and B [B, R, N] as A^T [B, K, P] and B^T [B, N, P],
// P the rows in whole 16-byte rows (at least one), zero past each batch's count.
struct TransposedOperands {
  int64_t padded_rows;
  Buffer a;
  Buffer b;
};

TransposedOperands transpose_operands(Context& context, Device& device, const Tensor& a, const Tensor& w,
                                      const Tensor* row_counts, const PlannedKernel* planned) {
  const int64_t batch = a.dim(0), rows = a.dim(1), k = a.dim(2), n = w.dim(2);
  const size_t element = dtype_size(a.dtype());
  const int64_t padded = kernels::wgmma_transposed_rows(rows, static_cast<int>(element));
  TransposedOperands t{padded, Buffer(device, static_cast<size_t>(batch * k * padded) * element),
                       Buffer(device, static_cast<size_t>(batch * n * padded) * element)};
  transpose(context, a, t.a.view(a.dtype(), {batch, k, padded}), row_counts, planned);
  transpose(context, w, t.b.view(a.dtype(), {batch, n, padded}), row_counts, planned);
  return t;
}

}  // namespace

void batched_gemm(Context& context, const Tensor& a, const Tensor& w, const Tensor& c, const GemmOptions& options) {
  SY_CHECK(a.ndim() == 3 && w.ndim() == 3)
      << "gemm operands are " << a.describe() << " and " << w.describe() << "; expected a [B, R, K] and w [B, K, N]";
  const int64_t batch = a.dim(0), rows = a.dim(1), k = a.dim(2);
  const int64_t n = options.trans_b ? w.dim(1) : w.dim(2);
  SY_CHECK(batch >= 1 && rows <= std::numeric_limits<int>::max())
      << "gemm batch " << batch << " x rows " << rows << " is out of range";
  SY_CHECK(!options.trans_a || (!options.trans_b && !options.bias && options.activation == kernels::kActNone))
      << "gemm: the weight-gradient form (trans_a) takes no trans_b, bias or activation";
  expect(a, {batch, rows, k}, a.dtype(), a.device(), "input a");
  const std::vector<int64_t> w_shape = options.trans_a   ? std::vector<int64_t>{batch, rows, n}
                                       : options.trans_b ? std::vector<int64_t>{batch, n, k}
                                                         : std::vector<int64_t>{batch, k, n};
  expect(w, w_shape, a.dtype(), a.device(), "weight");
  expect(c, options.trans_a ? std::vector<int64_t>{batch, k, n} : std::vector<int64_t>{batch, rows, n}, a.dtype(),
         a.device(), "output");
  if (options.bias) expect(*options.bias, {batch, n}, a.dtype(), a.device(), "bias");
  SY_CHECK(kernels::gemm_uses_aux(options.activation) == (options.aux != nullptr))
      << "gemm: the swiglu and gradient epilogues take an aux tensor, and only they do";
  if (options.aux) expect(*options.aux, {batch, rows, n}, a.dtype(), a.device(), "swiglu gate input");
  Device& device = context.device(a.device());
  const kernels::GemmShape shape{.dtype = a.dtype(),
                                 .n = n,
                                 .k = k,
                                 .trans_b = options.trans_b,
                                 .bias = options.bias != nullptr,
                                 .activation = options.activation,
                                 .allow_tf32 = options.allow_tf32,
                                 .trans_a = options.trans_a,
                                 .aligned_16 = aligned_16(a.data()) && aligned_16(w.data()) && aligned_16(c.data()),
                                 .grouped = options.row_counts != nullptr};
  const bool in_plan =
      options.planned != nullptr && options.planned->kernel != nullptr && options.planned->shape == shape;
  const ChosenKernel chosen(context, device, in_plan ? options.planned->kernel : nullptr,
                            [&] { return kernels::gemm_spec(shape, device.target()); });
  const KernelSpec& spec = chosen.spec();
  const LoadedKernel& kernel = chosen.loaded();
  const RowCounts counts(device, options.row_counts, batch, rows, "gemm");
  const int64_t max_rows = counts.max_rows();
  if (max_rows == 0 && !options.trans_a) return;
  kernels::GemmArgs args{a.data(),
                         w.data(),
                         options.bias ? options.bias->data() : nullptr,
                         options.aux ? options.aux->data() : nullptr,
                         c.data(),
                         counts.data(),
                         rows * k,
                         options.trans_a ? rows * n : n * k,
                         options.trans_a ? k * n : rows * n,
                         static_cast<int>(rows),
                         static_cast<int>(batch),
                         nullptr,
                         0};
  std::optional<TransposedOperands> transposed;
  if (kernels::gemm_reads_transposed_operands(spec)) {
    transposed.emplace(transpose_operands(context, device, a, w, counts.read_by_kernels(),
                                          in_plan ? options.planned->transpose : nullptr));
    args.a = transposed->a.data();
    args.b = transposed->b.data();
    args.rows = static_cast<int>(transposed->padded_rows);
    args.a_batch_stride = k * transposed->padded_rows;
    args.b_batch_stride = n * transposed->padded_rows;
  }
  if (options.b_panels != nullptr) {  // sized from the chosen spec: the hot path builds none
    SY_CHECK(kernels::gemm_reads_packed_b(spec)) << "gemm: " << spec.to_string() << " reads no packed panels of B";
    const int64_t words =
        batch * kernels::gemm_panels_words(n, k, kernels::gemm_tile_shape(spec).n, kernels::gemm_packs_pairs(spec));
    expect(*options.b_panels, {words}, DType::kInt32, a.device(), "b_panels");
    args.b_panels = options.b_panels->data();
    args.b_panels_batch_stride = words / batch;
  }
  const kernels::GemmProblem problem{
      .batch = batch, .rows = rows, .max_rows = max_rows, .k = k, .n = n, .parallelism = device.parallelism()};
  const LaunchConfig config = kernels::gemm_launch_config(spec, problem);
  if (spec.family == "gemm_wgmma") {
    const auto& cuda = static_cast<CudaDevice&>(device);
    kernels::GemmWgmmaArgs wgmma =
        kernels::gemm_wgmma_args(spec, args, [&](const void* base, const kernels::TmaOperand& operand) {
          SY_INTERNAL_CHECK(dtype_size(a.dtype()) == operand.element_bytes)
              << "a TMA operand of " << operand.element_bytes << "-byte elements for " << dtype_name(a.dtype());
          return cuda.tma_descriptor(a.dtype(), base, operand.dims, operand.strides, operand.box);
        });
    void* params[] = {&wgmma};
    device.launch(kernel, config, params);
    return;
  }
  void* params[] = {&args};
  device.launch(kernel, config, params);
}

namespace {

// The packing of B's panels that the GEMM of `shape` on `target` reads, or none where it packs B itself.
std::optional<KernelSpec> panel_packing(const kernels::GemmShape& shape, const Target& target) {
  if (!target.is_cpu()) return std::nullopt;
  const KernelSpec gemm = kernels::gemm_spec(shape, target);
  if (!kernels::gemm_reads_packed_b(gemm)) return std::nullopt;
  return kernels::gemm_pack_b_spec(gemm);
}

}  // namespace

int64_t gemm_panels_words(const kernels::GemmShape& shape, int64_t batch, const Target& target) {
  const std::optional<KernelSpec> pack = panel_packing(shape, target);
  return pack ? batch * kernels::gemm_panels_words(*pack) : 0;
}

void pack_gemm_b(Context& context, const Tensor& w, const kernels::GemmShape& shape, const Tensor& panels) {
  SY_CHECK(w.ndim() == 3 && w.dtype() == shape.dtype && w.is_contiguous())
      << "pack_gemm_b: weight is " << w.describe() << "; expected contiguous " << dtype_name(shape.dtype)
      << " [B, K, N] (or [B, N, K] with trans_b)";
  const int64_t batch = w.dim(0);
  const std::vector<int64_t> w_shape =
      shape.trans_b ? std::vector<int64_t>{batch, shape.n, shape.k} : std::vector<int64_t>{batch, shape.k, shape.n};
  expect(w, w_shape, shape.dtype, w.device(), "weight to pack");
  Device& device = context.device(w.device());
  const std::optional<KernelSpec> pack = panel_packing(shape, device.target());
  SY_CHECK(pack.has_value())
      << "pack_gemm_b: the " << dtype_name(shape.dtype) << " GEMM of N " << shape.n << ", K " << shape.k << " on "
      << device.target().to_string()
      << " reads no packed panels (CPU float32 FMAs or bfloat16 dot products, without AMX, only)";
  const int64_t words = batch * kernels::gemm_panels_words(*pack);
  expect(panels, {words}, DType::kInt32, w.device(), "panels");
  kernels::GemmPackArgs args{w.data(), panels.data(), shape.n * shape.k, words / batch, static_cast<int>(batch)};
  void* params[] = {&args};
  device.launch(context.kernel(device, *pack), kernels::gemm_pack_b_launch_config(*pack, batch, device.parallelism()),
                params);
}

}  // namespace switchyard
