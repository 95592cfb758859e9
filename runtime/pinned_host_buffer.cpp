#include "runtime/pinned_host_buffer.h"

#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#include "runtime/cuda_device.h"

namespace switchyard {

namespace {
constexpr size_t kPageBytes = 4096;
}  // namespace

void PinnedHostBuffer::Free::operator()(char* p) const noexcept {
  std::free(p);
}

PinnedHostBuffer::~PinnedHostBuffer() {
  unpin();
}

void PinnedHostBuffer::reserve(Device& device, size_t bytes) {
  // NOTE: a refusal stands until the memory grows: every tensor of a load reserves again, and one
  // failing driver call per tensor would buy nothing.
  if (bytes <= bytes_ && (pinned_for_ == &device || refused_by_ == &device || !device.is_cuda())) return;
  unpin();
  refused_by_ = nullptr;
  if (bytes > bytes_) {
    data_.reset();  // the old block goes first: two large staging blocks at once may not fit
    bytes_ = 0;
    const size_t size = (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
    data_.reset(static_cast<char*>(std::aligned_alloc(kPageBytes, size)));
    if (!data_) SY_THROW(BackendError) << "cannot allocate " << size << " bytes of staging memory";
    bytes_ = size;
  }
  auto* cuda = dynamic_cast<CudaDevice*>(&device);
  if (cuda == nullptr) return;
  if (cuda->register_host(data_.get(), bytes_)) {
    pinned_for_ = cuda;
    return;
  }
  refused_by_ = cuda;
  log_warn_once("pinned-staging", "cuMemHostRegister refused " + std::to_string(bytes_) +
                                      " bytes of staging memory (a memlock limit?): loads into " + device.name() +
                                      " copy from pageable memory, more slowly");
}

void PinnedHostBuffer::unpin() noexcept {
  if (pinned_for_ == nullptr) return;
  pinned_for_->unregister_host(data_.get());
  pinned_for_ = nullptr;
}

}  // namespace switchyard
