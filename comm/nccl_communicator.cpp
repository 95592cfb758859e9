#include "comm/nccl_communicator.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "core/settings.h"

namespace switchyard::comm {
namespace {

int data_type(Element element) {
  switch (element) {
    case Element::kByte:
      return nccl::kInt8;
    case Element::kInt32:
      return nccl::kInt32;
    case Element::kInt64:
      return nccl::kInt64;
    case Element::kFloat32:
      return nccl::kFloat32;
    case Element::kFloat64:
      return nccl::kFloat64;
    case Element::kFloat16:
      return nccl::kFloat16;
    case Element::kBFloat16:
      return nccl::kBFloat16;
  }
  return nccl::kInt8;
}

int reduce_op(ReduceOp op) {
  return op == ReduceOp::kSum ? nccl::kSum : nccl::kMax;
}

const char* at(const void* base, size_t elements, Element element) {
  return static_cast<const char*>(base) + elements * element_bytes(element);
}

}  // namespace

class NcclCommunicator::Pending : public PendingOp {
 public:
  Pending(NcclCommunicator& owner, std::function<int()> poll) : owner_(owner), poll_(std::move(poll)) {}
  ~Pending() override { wait_quietly(); }

 protected:
  void complete() override { owner_.wait("all_to_all", poll_); }

 private:
  NcclCommunicator& owner_;
  std::function<int()> poll_;  // this collective's work only (or the whole stream)
};

NcclCommunicator::NcclCommunicator(MpiCommunicator& bootstrap, CudaStreamHooks hooks)
    : nccl_(NcclLibrary::get()),
      bootstrap_(bootstrap),
      hooks_(std::move(hooks)),
      timeout_sec_(Settings::from_environment().comm_timeout_sec) {
  SY_CHECK(hooks_.query != nullptr) << "the NCCL engine needs a stream query to bound its waits";
  nccl::UniqueId id{};
  if (bootstrap_.rank() == 0) check(nccl_.get_unique_id(&id), "setup", "ncclGetUniqueId");
  std::vector<nccl::UniqueId> ids(static_cast<size_t>(bootstrap_.size()));
  bootstrap_.all_gather_v(&id, sizeof id, ids.data(), std::vector<size_t>(ids.size(), sizeof id), Element::kByte);
  check(nccl_.comm_init_rank(&comm_, bootstrap_.size(), ids[0], bootstrap_.rank()), "setup", "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ == nullptr) return;
  if (broken_.empty())
    nccl_.comm_destroy(comm_);
  else
    nccl_.comm_abort(comm_);
}

std::string NcclCommunicator::describe() const {
  return "nccl (rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ")";
}

void NcclCommunicator::check(int result, const char* op, const char* call) {
  if (result == nccl::kSuccess || result == nccl::kInProgress) return;
  broken_ = std::string(call) + " failed: " + nccl_.get_error_string(result);
  SY_THROW(CommError) << op << " on " << describe() << ": " << broken_;
}

void NcclCommunicator::check_usable(const char* op) const {
  if (!broken_.empty())
    SY_THROW(CommError) << op << " on " << describe() << ": the communicator broke earlier (" << broken_ << ")";
}

void NcclCommunicator::fence() const {
  if (hooks_.after_compute) hooks_.after_compute();
}

void NcclCommunicator::wait(const char* op, const std::function<int()>& poll) {
  const auto start = std::chrono::steady_clock::now();
  for (int spin = 0;; ++spin) {
    const int state = poll ? poll() : hooks_.query();
    if (state == 0) return;
    if (state < 0) {
      broken_ = "the CUDA stream reported an error";
      SY_THROW(CommError) << op << " on " << describe() << ": " << broken_;
    }
    int async = nccl::kSuccess;
    check(nccl_.comm_get_async_error(comm_, &async), op, "ncclCommGetAsyncError");
    check(async, op, "NCCL (asynchronous)");
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout_sec_) {
      broken_ = std::string(op) + " timed out";
      nccl_.comm_abort(comm_);
      comm_ = nullptr;
      SY_THROW(CommError) << op << " on " << describe() << ": not complete within " << timeout_sec_
                          << " s (SWITCHYARD_COMM_TIMEOUT_SEC); a peer stalled or died";
    }
    if (spin > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void NcclCommunicator::enqueue_exchange(const char* op, const void* send, const std::vector<size_t>& send_counts,
                                        bool same_send, void* recv, const std::vector<size_t>& recv_counts,
                                        Element element) {
  check_usable(op);
  fence();
  check(nccl_.group_start(), op, "ncclGroupStart");
  size_t send_at = 0, recv_at = 0;
  for (int q = 0; q < size(); ++q) {
    if (send_counts[q] > 0)
      check(nccl_.send(at(send, send_at, element), send_counts[q], data_type(element), q, comm_, hooks_.stream), op,
            "ncclSend");
    if (recv_counts[q] > 0)
      check(nccl_.recv(const_cast<char*>(at(recv, recv_at, element)), recv_counts[q], data_type(element), q, comm_,
                       hooks_.stream),
            op, "ncclRecv");
    if (!same_send) send_at += send_counts[q];
    recv_at += recv_counts[q];
  }
  check(nccl_.group_end(), op, "ncclGroupEnd");
}

void NcclCommunicator::enqueue_all_to_all(const void* send, void* recv, size_t count, Element element) {
  const std::vector<size_t> counts(static_cast<size_t>(size()), count);
  enqueue_exchange("all_to_all", send, counts, false, recv, counts, element);
}

void NcclCommunicator::all_to_all(const void* send, void* recv, size_t count, Element element) {
  enqueue_all_to_all(send, recv, count, element);
  wait("all_to_all");
}

std::unique_ptr<PendingOp> NcclCommunicator::start_all_to_all(const void* send, void* recv, size_t count,
                                                              Element element) {
  enqueue_all_to_all(send, recv, count, element);
  return std::make_unique<Pending>(*this, hooks_.mark ? hooks_.mark() : nullptr);
}

void NcclCommunicator::all_to_all_v(const void* send, const std::vector<size_t>& send_counts, void* recv,
                                    const std::vector<size_t>& recv_counts, Element element) {
  SY_CHECK(send_counts.size() == static_cast<size_t>(size()) && recv_counts.size() == static_cast<size_t>(size()))
      << "all_to_all_v on " << describe() << ": expected one send and one receive count per rank (" << size() << ")";
  enqueue_exchange("all_to_all_v", send, send_counts, false, recv, recv_counts, element);
  wait("all_to_all_v");
}

void NcclCommunicator::all_gather_v(const void* send, size_t count, void* recv, const std::vector<size_t>& counts,
                                    Element element) {
  SY_CHECK(counts.size() == static_cast<size_t>(size()) && counts[static_cast<size_t>(rank())] == count)
      << "all_gather_v on " << describe() << ": counts must have one entry per rank and this rank's must be " << count;
  // This rank's block goes to every rank, each receiving every rank's in rank order.
  enqueue_exchange("all_gather_v", send, std::vector<size_t>(counts.size(), count), true, recv, counts, element);
  wait("all_gather_v");
}

void NcclCommunicator::all_reduce(const void* send, void* recv, size_t count, Element element, ReduceOp op) {
  check_usable("all_reduce");
  fence();
  check(nccl_.all_reduce(send, recv, count, data_type(element), reduce_op(op), comm_, hooks_.stream), "all_reduce",
        "ncclAllReduce");
  wait("all_reduce");
}

void NcclCommunicator::reduce_scatter(const void* send, void* recv, size_t count, Element element, ReduceOp op) {
  check_usable("reduce_scatter");
  fence();
  check(nccl_.reduce_scatter(send, recv, count, data_type(element), reduce_op(op), comm_, hooks_.stream),
        "reduce_scatter", "ncclReduceScatter");
  wait("reduce_scatter");
}

void NcclCommunicator::barrier() {
  check_usable("barrier");
  fence();
  wait("barrier");  // this rank's enqueued work first, then every rank's
  bootstrap_.barrier();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  check_usable("split");
  std::unique_ptr<Communicator> sub = bootstrap_.split(color, key);
  auto* mpi = dynamic_cast<MpiCommunicator*>(sub.get());
  SY_CHECK(mpi != nullptr) << "NCCL split: the bootstrap did not split into an MPI communicator";
  auto result = std::make_unique<NcclCommunicator>(*mpi, hooks_);
  result->owned_bootstrap_ = std::move(sub);
  return result;
}

}  // namespace switchyard::comm
