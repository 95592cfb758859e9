// A host-memory communicator (MPI) used with buffers in a device's memory: each collective copies
// its inputs to the host, runs there and copies its results back. It lets a CUDA layer run in a
// group without NCCL, or with several ranks on one GPU (which NCCL refuses), at the price of two
// host copies per collective. MoeLayer wraps a host group in one when its device is a GPU.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "runtime/device.h"

namespace switchyard {

class StagedCommunicator : public comm::Communicator {
 public:
  /// `host` (memory() == kHost, UserError otherwise) must outlive this.
  StagedCommunicator(comm::Communicator& host, Device& device);
  /// Owns `host` (what split() returns).
  StagedCommunicator(std::unique_ptr<comm::Communicator> host, Device& device);

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string describe() const override;
  /// The device's memory (host memory when the device is the CPU).
  comm::Memory memory() const override { return device_.is_cuda() ? comm::Memory::kDevice : comm::Memory::kHost; }
  comm::Communicator& control() override { return host_.control(); }
  void all_to_all(const void* send, void* recv, size_t count, comm::Element element) override;
  std::unique_ptr<comm::PendingOp> start_all_to_all(const void* send, void* recv, size_t count,
                                                    comm::Element element) override;
  void all_to_all_v(const void* send, const std::vector<size_t>& send_counts, void* recv,
                    const std::vector<size_t>& recv_counts, comm::Element element) override;
  void all_gather_v(const void* send, size_t count, void* recv, const std::vector<size_t>& counts,
                    comm::Element element) override;
  void all_reduce(const void* send, void* recv, size_t count, comm::Element element, comm::ReduceOp op) override;
  void reduce_scatter(const void* send, void* recv, size_t count, comm::Element element, comm::ReduceOp op) override;
  void barrier() override { host_.barrier(); }
  std::unique_ptr<comm::Communicator> split(int color, int key) override;

 private:
  class Pending;
  std::vector<char> to_host(const void* device_data, size_t bytes);

  std::unique_ptr<comm::Communicator> owned_;
  comm::Communicator& host_;
  Device& device_;
};

/// comm::MemoryOps over `device`'s memory (scratch buffers and strided copies).
comm::MemoryOps device_memory_ops(Device& device);

}  // namespace switchyard
