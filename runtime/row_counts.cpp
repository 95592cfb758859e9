#include "runtime/row_counts.h"

#include <algorithm>

#include "core/error.h"

namespace switchyard {

RowCounts::RowCounts(Device& device, const Tensor* counts, int64_t batch, int64_t rows, const char* op)
    : max_rows_(rows) {
  if (counts == nullptr) return;
  const bool on_host = counts->device() == DeviceRef{};
  SY_CHECK(counts->shape() == std::vector<int64_t>{batch} && counts->dtype() == DType::kInt32 &&
           counts->is_contiguous() && (on_host || counts->device() == device.ref()))
      << op << " row counts are " << counts->describe() << "; expected int32[" << batch << "] on the host or on "
      << device.name();
  data_ = counts->data_as<const int>();
  read_ = *counts;
  if (!on_host) return;
  int64_t largest = 0;
  for (int64_t b = 0; b < batch; ++b) {
    SY_CHECK(data_[b] >= 0) << op << " row count " << data_[b] << " of batch " << b << " is negative";
    largest = std::max<int64_t>(largest, data_[b]);
  }
  max_rows_ = std::min(largest, rows);
  if (device.is_cuda()) {
    upload_ = std::make_unique<Buffer>(device, static_cast<size_t>(batch) * 4);
    device.copy_from_host(upload_->data(), data_, static_cast<size_t>(batch) * 4);
    data_ = static_cast<const int*>(upload_->data());
    read_ = upload_->view(DType::kInt32, {batch});
  }
}

}  // namespace switchyard
