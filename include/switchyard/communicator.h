// One interface for the collectives of expert parallelism (public: what MoeLayer takes as its
// group; switchyard/comm.h makes the MPI and NCCL ones) (tutel-semantics 5.2, 5.5). Engines:
// MPI (CPU memory; comm/mpi_communicator.h). Every collective is bounded by a watchdog: a peer
// that stalls or dies makes it throw CommError naming the collective and the ranks that did not
// answer, after SWITCHYARD_COMM_TIMEOUT_SEC, instead of hanging.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <switchyard/export.h>

namespace switchyard::comm {

enum class Element { kByte, kInt32, kInt64, kFloat32, kFloat64, kFloat16, kBFloat16 };
enum class ReduceOp { kSum, kMax };
/// Where the buffers given to a communicator live: host memory (MPI) or one GPU's (NCCL).
enum class Memory { kHost, kDevice };

/// How comm/ allocates scratch and moves bytes in a communicator's memory (the permutes of 2DH).
struct MemoryOps {
  std::function<std::shared_ptr<void>(size_t bytes)> allocate;
  /// `rows` rows of `width` bytes from src + i * src_pitch to dst + i * dst_pitch.
  std::function<void(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows)>
      copy_2d;
};
/// MemoryOps for host memory (new[] and memcpy).
SWITCHYARD_API MemoryOps host_memory_ops();

SWITCHYARD_API size_t element_bytes(Element element);
SWITCHYARD_API const char* element_name(Element element);

/// A collective in flight; wait() completes it (under the watchdog) and must be called before
/// its buffers are touched. Destroying it unwaited waits first.
class SWITCHYARD_API PendingOp {
 public:
  virtual ~PendingOp();
  /// Completes the collective; later calls return at once.
  void wait() {
    if (done_) return;
    done_ = true;
    complete();
  }

 protected:
  virtual void complete() = 0;
  /// For an engine's destructor: wait(), leaving a failure to the next collective (the engine
  /// is marked broken and reports it there).
  void wait_quietly() noexcept;

 private:
  bool done_ = false;
};

class SWITCHYARD_API Communicator {
 public:
  virtual ~Communicator();  // out of line (comm/communicator.cpp): typeinfo in the library
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// e.g. "mpi world (rank 1 of 4)".
  virtual std::string describe() const = 0;
  /// Where the buffers of every collective below must be.
  virtual Memory memory() const { return Memory::kHost; }
  /// The same ranks in the same order over host memory, for small control messages (counts,
  /// options): this communicator for a host engine, the one that bootstrapped it otherwise.
  virtual Communicator& control() { return *this; }

  /// send and recv hold size() blocks of `count` elements; block q of send goes to rank q, block
  /// q of recv comes from rank q.
  virtual void all_to_all(const void* send, void* recv, size_t count, Element element) = 0;
  /// all_to_all started in the background (for overlapping it with computation). Collectives,
  /// started or not, must be issued in the same order on every rank.
  virtual std::unique_ptr<PendingOp> start_all_to_all(const void* send, void* recv, size_t count, Element element) = 0;
  /// send_counts[q] elements go to rank q and recv_counts[q] come from it, both packed in rank
  /// order. Zero counts are allowed; the counts must agree pairwise (see exchange_counts).
  virtual void all_to_all_v(const void* send, const std::vector<size_t>& send_counts, void* recv,
                            const std::vector<size_t>& recv_counts, Element element) = 0;
  /// Every rank's `count` elements, concatenated in rank order; counts[q] is rank q's count.
  virtual void all_gather_v(const void* send, size_t count, void* recv, const std::vector<size_t>& counts,
                            Element element) = 0;
  /// recv = op over ranks of send (recv may be send). Bit-identical on every rank: the terms
  /// are combined in rank order.
  virtual void all_reduce(const void* send, void* recv, size_t count, Element element, ReduceOp op) = 0;
  /// send holds size() blocks of `count`; recv gets block rank() reduced over the ranks.
  virtual void reduce_scatter(const void* send, void* recv, size_t count, Element element, ReduceOp op) = 0;
  virtual void barrier() = 0;
  /// The ranks passing the same color, ordered by key then rank, as a new communicator.
  /// Collective over this communicator.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

/// The counts each rank will receive from every peer, given what this rank sends to each
/// (an all_to_all of the counts, over comm.control()).
SWITCHYARD_API std::vector<size_t> exchange_counts(Communicator& comm, const std::vector<size_t>& send_counts);
/// Every rank's count (an all-gather of one number, over comm.control()).
SWITCHYARD_API std::vector<size_t> gather_counts(Communicator& comm, size_t count);

}  // namespace switchyard::comm
