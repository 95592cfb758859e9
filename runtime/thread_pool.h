// A fixed pool of worker threads that runs the blocks of a CPU "grid". The calling thread
// takes part, so a pool of N threads has N-1 workers. Between grids the workers, and the caller
// waiting for a grid's last block, spin for a few tens of microseconds before they sleep: a layer
// launches its kernels back to back, and a sleeping thread costs a futex call and a wake-up
// (11% of a tiny layer's forward on the 2-core CI machine).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace switchyard {

class ThreadPool {
 public:
  /// `threads` = 0 means the hardware concurrency.
  explicit ThreadPool(unsigned threads = 0);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  /// Calls body(i) for i in [0, count) across the pool and returns when all are done. The
  /// first exception thrown by a body is rethrown here. Not reentrant.
  void parallel_for(uint32_t count, const std::function<void(uint32_t)>& body);

 private:
  void worker_loop();
  void run_items();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::mutex launch_mutex_;  // one grid at a time
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(uint32_t)>* body_ = nullptr;
  uint32_t count_ = 0;
  uint32_t next_ = 0;
  std::atomic<uint32_t> finished_{0};    // written under mutex_; read without it while spinning
  std::atomic<uint64_t> generation_{0};  // likewise
  std::atomic<bool> stopping_{false};
  std::exception_ptr error_;
};

}  // namespace switchyard
