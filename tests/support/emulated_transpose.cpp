#include "tests/support/emulated_transpose.h"

#include "tests/support/cuda_emulation.h"  // before the templates

#include <cmath>
#include <switchyard/cuda/elementwise.cuh>

#include "jit/kernels/elementwise.h"

namespace switchyard::testing {

std::vector<float> emulated_transpose(const void* x, const int* counts, int batch, int rows, int cols, int padded) {
  std::vector<float> out(static_cast<size_t>(batch) * cols * padded, NAN);
  kernels::ElementwiseArgs args{};
  args.x = x;
  args.out = out.data();
  args.row_counts = counts;
  args.count = static_cast<long>(out.size());
  args.rows = rows;
  args.cols = cols;
  args.batch = batch;
  args.padded_rows = padded;
  const KernelSpec spec =
      kernels::elementwise_spec(DType::kFloat32, kernels::kEwTranspose, kernels::kActNone, Target::cuda(90));
  emulation::launch(kernels::transpose_launch_config(spec, batch, rows, cols, padded, 132),
                    [&] { cuda::elementwise<float, kernels::kEwTranspose, kernels::kActNone>(args); });
  return out;
}

}  // namespace switchyard::testing
