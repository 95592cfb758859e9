// How a GPU communicator engine (NCCL) sees the CUDA streams of the device that holds its
// buffers. comm/ does not know the CUDA driver: CudaDevice::communication_hooks() fills these.
#pragma once

#include <functional>

namespace switchyard::comm {

struct CudaStreamHooks {
  void* stream = nullptr;      // the CUstream the engine enqueues its collectives on
  std::function<int()> query;  // poll of all the work on `stream`: 0 done, 1 running, < 0 failed
  /// Optional: makes `stream` wait for the work already enqueued on the device's compute stream
  /// (which writes the buffers), called before each collective is enqueued. Unset when `stream`
  /// is the compute stream itself.
  std::function<void()> after_compute;
  /// Optional: a poll, like `query`, of only the work enqueued on `stream` so far (an event), so
  /// that waiting for one started collective does not also wait for those started after it.
  std::function<std::function<int()>()> mark;
};

}  // namespace switchyard::comm
