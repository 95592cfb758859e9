// Per-batch row counts of grouped GEMMs and sum_rows: int32 [batch], where a forward's routing
// left them (on the op's device) or on the host. Each count is clamped to the rows of its batch
// by the kernels, so a layer passes its experts' true counts straight from routing.
#pragma once

#include <memory>

#include "runtime/device.h"
#include "runtime/tensor.h"

namespace switchyard {

class RowCounts {
 public:
  /// `counts` may be null (every batch uses all `rows`). Host counts are checked (no negative
  /// count) and, for a CUDA device, uploaded; device counts are read where they are, unchecked.
  /// Throws UserError naming `op` for a wrong shape, dtype or device.
  RowCounts(Device& device, const Tensor* counts, int64_t batch, int64_t rows, const char* op);

  /// What the kernel reads, or null.
  const int* data() const { return data_; }
  /// The launch's bound: the largest host count (clamped to rows), or rows for device counts.
  int64_t max_rows() const { return max_rows_; }
  /// The counts where the kernel reads them, for the op's other launches (host counts are then
  /// uploaded once), or null.
  const Tensor* read_by_kernels() const { return data_ ? &read_ : nullptr; }

 private:
  std::unique_ptr<Buffer> upload_;
  Tensor read_;
  const int* data_ = nullptr;
  int64_t max_rows_ = 0;
};

}  // namespace switchyard
