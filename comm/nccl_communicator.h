// The NCCL engine: collectives on GPU buffers, enqueued on the stream the hooks give
// (CudaDevice::communication_hooks(): a stream of its own, ordered after the compute stream's
// work at each collective, so a started all-to-all overlaps the kernels launched after it).
// Each call returns when its work has completed, polled under the same watchdog as the MPI
// engine (a timeout aborts the NCCL communicator and throws CommError). MPI bootstraps it: rank
// 0 makes the unique id and every rank joins.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "comm/cuda_stream_hooks.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_library.h"

namespace switchyard::comm {

class NcclCommunicator : public Communicator {
 public:
  /// Collective over `bootstrap`. The current CUDA context's device is this rank's GPU.
  NcclCommunicator(MpiCommunicator& bootstrap, CudaStreamHooks hooks);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  std::string describe() const override;
  Memory memory() const override { return Memory::kDevice; }
  Communicator& control() override { return bootstrap_; }
  void all_to_all(const void* send, void* recv, size_t count, Element element) override;
  std::unique_ptr<PendingOp> start_all_to_all(const void* send, void* recv, size_t count, Element element) override;
  void all_to_all_v(const void* send, const std::vector<size_t>& send_counts, void* recv,
                    const std::vector<size_t>& recv_counts, Element element) override;
  void all_gather_v(const void* send, size_t count, void* recv, const std::vector<size_t>& counts,
                    Element element) override;
  void all_reduce(const void* send, void* recv, size_t count, Element element, ReduceOp op) override;
  void reduce_scatter(const void* send, void* recv, size_t count, Element element, ReduceOp op) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  class Pending;
  // One grouped round of sends and receives: send_counts[q] elements to rank q (each from the
  // start of `send` when same_send, else packed in rank order), recv_counts[q] from it.
  void enqueue_exchange(const char* op, const void* send, const std::vector<size_t>& send_counts, bool same_send,
                        void* recv, const std::vector<size_t>& recv_counts, Element element);
  void enqueue_all_to_all(const void* send, void* recv, size_t count, Element element);
  void check(int result, const char* op, const char* call);
  void check_usable(const char* op) const;
  // Orders the engine's stream after the compute stream's work (hooks_.after_compute).
  void fence() const;
  // Polls `poll` (default: the whole stream) and NCCL's async error until the work is done, or
  // the timeout.
  void wait(const char* op, const std::function<int()>& poll = nullptr);

  const NcclLibrary& nccl_;
  MpiCommunicator& bootstrap_;
  std::unique_ptr<Communicator> owned_bootstrap_;  // for communicators made by split()
  CudaStreamHooks hooks_;
  double timeout_sec_;
  nccl::Comm comm_ = nullptr;
  std::string broken_;
};

}  // namespace switchyard::comm
