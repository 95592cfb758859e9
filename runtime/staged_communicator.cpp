#include "runtime/staged_communicator.h"

#include <numeric>

#include "core/error.h"
#include "runtime/tensor.h"

namespace switchyard {
namespace {

size_t total(const std::vector<size_t>& counts, comm::Element element) {
  return std::accumulate(counts.begin(), counts.end(), size_t{0}) * comm::element_bytes(element);
}

}  // namespace

// The host exchange in flight; wait() completes it and copies the result to the device.
class StagedCommunicator::Pending : public comm::PendingOp {
 public:
  Pending(StagedCommunicator& owner, const void* send, void* recv, size_t count, comm::Element element)
      : owner_(owner), recv_(recv) {
    const size_t bytes = count * comm::element_bytes(element) * static_cast<size_t>(owner.size());
    send_ = owner.to_host(send, bytes);
    recv_host_.resize(bytes);
    inner_ = owner.host_.start_all_to_all(send_.data(), recv_host_.data(), count, element);
  }
  ~Pending() override { wait_quietly(); }

 protected:
  void complete() override {
    inner_->wait();
    owner_.device_.copy_from_host(recv_, recv_host_.data(), recv_host_.size());
  }

 private:
  StagedCommunicator& owner_;
  void* recv_;
  std::vector<char> send_, recv_host_;
  std::unique_ptr<comm::PendingOp> inner_;
};

StagedCommunicator::StagedCommunicator(comm::Communicator& host, Device& device) : host_(host), device_(device) {
  SY_CHECK(host.memory() == comm::Memory::kHost)
      << "staging through the host needs a host-memory communicator; " << host.describe() << " takes device memory";
}

StagedCommunicator::StagedCommunicator(std::unique_ptr<comm::Communicator> host, Device& device)
    : StagedCommunicator(*host, device) {
  owned_ = std::move(host);
}

std::string StagedCommunicator::describe() const {
  return host_.describe() + " staging " + device_.name() + " memory through the host";
}

std::vector<char> StagedCommunicator::to_host(const void* device_data, size_t bytes) {
  std::vector<char> host(bytes);
  device_.copy_to_host(host.data(), device_data, bytes);
  return host;
}

void StagedCommunicator::all_to_all(const void* send, void* recv, size_t count, comm::Element element) {
  start_all_to_all(send, recv, count, element)->wait();
}

std::unique_ptr<comm::PendingOp> StagedCommunicator::start_all_to_all(const void* send, void* recv, size_t count,
                                                                      comm::Element element) {
  return std::make_unique<Pending>(*this, send, recv, count, element);
}

void StagedCommunicator::all_to_all_v(const void* send, const std::vector<size_t>& send_counts, void* recv,
                                      const std::vector<size_t>& recv_counts, comm::Element element) {
  const std::vector<char> in = to_host(send, total(send_counts, element));
  std::vector<char> out(total(recv_counts, element));
  host_.all_to_all_v(in.data(), send_counts, out.data(), recv_counts, element);
  device_.copy_from_host(recv, out.data(), out.size());
}

void StagedCommunicator::all_gather_v(const void* send, size_t count, void* recv, const std::vector<size_t>& counts,
                                      comm::Element element) {
  const std::vector<char> in = to_host(send, count * comm::element_bytes(element));
  std::vector<char> out(total(counts, element));
  host_.all_gather_v(in.data(), count, out.data(), counts, element);
  device_.copy_from_host(recv, out.data(), out.size());
}

void StagedCommunicator::all_reduce(const void* send, void* recv, size_t count, comm::Element element,
                                    comm::ReduceOp op) {
  std::vector<char> data = to_host(send, count * comm::element_bytes(element));
  host_.all_reduce(data.data(), data.data(), count, element, op);
  device_.copy_from_host(recv, data.data(), data.size());
}

void StagedCommunicator::reduce_scatter(const void* send, void* recv, size_t count, comm::Element element,
                                        comm::ReduceOp op) {
  const size_t block = count * comm::element_bytes(element);
  const std::vector<char> in = to_host(send, block * static_cast<size_t>(size()));
  std::vector<char> out(block);
  host_.reduce_scatter(in.data(), out.data(), count, element, op);
  device_.copy_from_host(recv, out.data(), out.size());
}

std::unique_ptr<comm::Communicator> StagedCommunicator::split(int color, int key) {
  return std::make_unique<StagedCommunicator>(host_.split(color, key), device_);
}

comm::MemoryOps device_memory_ops(Device& device) {
  comm::MemoryOps ops;
  ops.allocate = [&device](size_t bytes) {
    auto buffer = std::make_shared<Buffer>(device, bytes);
    void* data = buffer->data();
    return std::shared_ptr<void>(std::move(buffer), data);  // the buffer lives as long as its data is shared
  };
  ops.copy_2d = [&device](void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
    device.copy_2d(dst, dst_pitch, src, src_pitch, width, rows);
  };
  return ops;
}

}  // namespace switchyard
