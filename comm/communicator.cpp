#include "comm/communicator.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace switchyard::comm {

PendingOp::~PendingOp() = default;
Communicator::~Communicator() = default;

size_t element_bytes(Element element) {
  switch (element) {
    case Element::kByte:
      return 1;
    case Element::kFloat16:
    case Element::kBFloat16:
      return 2;
    case Element::kInt32:
    case Element::kFloat32:
      return 4;
    case Element::kInt64:
    case Element::kFloat64:
      return 8;
  }
  return 1;
}

const char* element_name(Element element) {
  switch (element) {
    case Element::kByte:
      return "byte";
    case Element::kInt32:
      return "int32";
    case Element::kInt64:
      return "int64";
    case Element::kFloat32:
      return "float32";
    case Element::kFloat64:
      return "float64";
    case Element::kFloat16:
      return "float16";
    case Element::kBFloat16:
      return "bfloat16";
  }
  return "?";
}

void PendingOp::wait_quietly() noexcept {
  try {
    wait();
  } catch (const Error&) {
  }
}

MemoryOps host_memory_ops() {
  MemoryOps ops;
  ops.allocate = [](size_t bytes) { return std::shared_ptr<void>(new char[bytes], std::default_delete<char[]>()); };
  ops.copy_2d = [](void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
    for (size_t i = 0; i < rows; ++i)
      std::memcpy(static_cast<char*>(dst) + i * dst_pitch, static_cast<const char*>(src) + i * src_pitch, width);
  };
  return ops;
}

std::vector<size_t> exchange_counts(Communicator& comm, const std::vector<size_t>& send_counts) {
  SY_CHECK(send_counts.size() == static_cast<size_t>(comm.size()))
      << "exchange_counts: " << send_counts.size() << " counts for " << comm.size() << " ranks";
  std::vector<int64_t> send(send_counts.begin(), send_counts.end()), recv(send.size());
  comm.control().all_to_all(send.data(), recv.data(), 1, Element::kInt64);
  return std::vector<size_t>(recv.begin(), recv.end());
}

std::vector<size_t> gather_counts(Communicator& comm, size_t count) {
  const int64_t mine = static_cast<int64_t>(count);
  std::vector<int64_t> all(static_cast<size_t>(comm.size()));
  comm.control().all_gather_v(&mine, 1, all.data(), std::vector<size_t>(all.size(), 1), Element::kInt64);
  return std::vector<size_t>(all.begin(), all.end());
}

}  // namespace switchyard::comm
