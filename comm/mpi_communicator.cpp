#include "comm/mpi_communicator.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/half.h"
#include "core/settings.h"

namespace switchyard::comm {
namespace {

// Set when any communicator broke: MPI_Finalize would then wait for the dead peer.
std::atomic<bool> g_any_broken{false};

// NOTE: MPI counts are int; messages are cut into pieces of at most 1 GiB.
constexpr size_t kMaxMessage = size_t{1} << 30;

template <typename T>
void reduce_into(T* acc, const T* term, size_t count, ReduceOp op) {
  for (size_t i = 0; i < count; ++i)
    acc[i] = op == ReduceOp::kSum ? acc[i] + term[i] : (term[i] > acc[i] ? term[i] : acc[i]);
}

// The half types reduce in float, rounding each partial result back to the type (nearest even).
template <float (*kToFloat)(uint16_t), uint16_t (*kFromFloat)(float)>
void reduce_half(uint16_t* acc, const uint16_t* term, size_t count, ReduceOp op) {
  for (size_t i = 0; i < count; ++i) {
    const float a = kToFloat(acc[i]), t = kToFloat(term[i]);
    acc[i] = kFromFloat(op == ReduceOp::kSum ? a + t : (t > a ? t : a));
  }
}

void reduce_typed(void* acc, const void* term, size_t count, Element element, ReduceOp op) {
  switch (element) {
    case Element::kFloat16:
      return reduce_half<half_bits_to_float, float_to_half_bits>(static_cast<uint16_t*>(acc),
                                                                 static_cast<const uint16_t*>(term), count, op);
    case Element::kBFloat16:
      return reduce_half<bf16_bits_to_float, float_to_bf16_bits>(static_cast<uint16_t*>(acc),
                                                                 static_cast<const uint16_t*>(term), count, op);
    case Element::kInt32:
      return reduce_into(static_cast<int32_t*>(acc), static_cast<const int32_t*>(term), count, op);
    case Element::kInt64:
      return reduce_into(static_cast<int64_t*>(acc), static_cast<const int64_t*>(term), count, op);
    case Element::kFloat32:
      return reduce_into(static_cast<float*>(acc), static_cast<const float*>(term), count, op);
    case Element::kFloat64:
      return reduce_into(static_cast<double*>(acc), static_cast<const double*>(term), count, op);
    case Element::kByte:
      return reduce_into(static_cast<uint8_t*>(acc), static_cast<const uint8_t*>(term), count, op);
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, double timeout_sec, bool owned)
    : comm_(comm), name_(std::move(name)), timeout_sec_(timeout_sec), owned_(owned) {
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "setup", "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(comm_, &rank_), "setup", "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "setup", "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  if (owned_ && broken_.empty() && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiCommunicator::describe() const {
  return "mpi " + name_ + " (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")";
}

void MpiCommunicator::check(int code, const char* op, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  broken_ = std::string(call) + " failed: " + text;
  g_any_broken = true;
  SY_THROW(CommError) << op << " on " << describe() << ": " << broken_;
}

void MpiCommunicator::check_usable(const char* op) const {
  if (!broken_.empty())
    SY_THROW(CommError) << op << " on " << describe() << ": the communicator broke earlier (" << broken_ << ")";
}

void MpiCommunicator::wait(const char* op, std::vector<MPI_Request>& requests, const std::vector<int>& peers) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<int> done(requests.size());
  size_t pending = requests.size();
  for (int spin = 0; pending > 0; ++spin) {
    int count = 0;
    check(MPI_Testsome(static_cast<int>(requests.size()), requests.data(), &count, done.data(), MPI_STATUSES_IGNORE),
          op, "MPI_Testsome");
    if (count == MPI_UNDEFINED) break;  // every request is null: all complete
    pending -= static_cast<size_t>(count);
    if (pending == 0) break;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout_sec_) {
      std::string missing;
      std::vector<bool> listed(static_cast<size_t>(size_), false);
      for (size_t i = 0; i < requests.size(); ++i) {
        if (requests[i] == MPI_REQUEST_NULL || listed[static_cast<size_t>(peers[i])]) continue;
        listed[static_cast<size_t>(peers[i])] = true;
        missing += (missing.empty() ? "" : ", ") + std::to_string(peers[i]);
        MPI_Cancel(&requests[i]);
        MPI_Request_free(&requests[i]);
      }
      broken_ = op + std::string(" timed out waiting for rank(s) ") + missing;
      g_any_broken = true;
      SY_THROW(CommError) << op << " on " << describe() << ": rank(s) " << missing << " did not answer within "
                          << timeout_sec_ << " s (SWITCHYARD_COMM_TIMEOUT_SEC); a peer stalled or died";
    }
    if (spin > 200) std::this_thread::sleep_for(std::chrono::microseconds(spin > 2000 ? 500 : 20));
  }
}

class MpiCommunicator::Pending : public PendingOp {
 public:
  Pending(MpiCommunicator& owner, Posted posted) : owner_(owner), posted_(std::move(posted)) {}
  ~Pending() override { wait_quietly(); }

 protected:
  void complete() override { owner_.wait(posted_.op, posted_.requests, posted_.peers); }

 private:
  MpiCommunicator& owner_;
  Posted posted_;
};

void MpiCommunicator::exchange(const char* op, const std::vector<Piece>& sends, const std::vector<Piece>& recvs) {
  Posted posted = post(op, sends, recvs);
  wait(op, posted.requests, posted.peers);
}

MpiCommunicator::Posted MpiCommunicator::post(const char* op, const std::vector<Piece>& sends,
                                              const std::vector<Piece>& recvs) {
  check_usable(op);
  const int tag = 1 + (next_tag_++ % 30000);  // collectives run in the same order on every rank
  Posted posted{op, {}, {}};
  // One request per part of at most kMaxMessage bytes (one empty message for an empty piece).
  auto post_parts = [&](const Piece& p, bool receive) {
    for (size_t at = 0; at == 0 || at < p.bytes; at += kMaxMessage) {
      const int bytes = static_cast<int>(std::min(kMaxMessage, p.bytes - at));
      posted.requests.emplace_back();
      posted.peers.push_back(p.peer);
      MPI_Request* request = &posted.requests.back();
      if (receive)
        check(MPI_Irecv(p.data + at, bytes, MPI_BYTE, p.peer, tag, comm_, request), op, "MPI_Irecv");
      else
        check(MPI_Isend(p.data + at, bytes, MPI_BYTE, p.peer, tag, comm_, request), op, "MPI_Isend");
    }
  };
  for (const Piece& r : recvs)
    if (r.peer != rank_) post_parts(r, true);
  for (const Piece& s : sends) {
    if (s.peer != rank_) {
      post_parts(s, false);
      continue;
    }
    for (const Piece& r : recvs)
      if (r.peer == rank_ && s.bytes > 0) std::memmove(r.data, s.data, s.bytes);
  }
  return posted;
}

void MpiCommunicator::all_to_all_pieces(const void* send, void* recv, size_t count, Element element,
                                        std::vector<Piece>& sends, std::vector<Piece>& recvs) const {
  const size_t bytes = count * element_bytes(element);
  for (int q = 0; q < size_; ++q) {
    sends.push_back({q, const_cast<char*>(static_cast<const char*>(send)) + q * bytes, bytes});
    recvs.push_back({q, static_cast<char*>(recv) + q * bytes, bytes});
  }
}

void MpiCommunicator::all_to_all(const void* send, void* recv, size_t count, Element element) {
  std::vector<Piece> sends, recvs;
  all_to_all_pieces(send, recv, count, element, sends, recvs);
  exchange("all_to_all", sends, recvs);
}

std::unique_ptr<PendingOp> MpiCommunicator::start_all_to_all(const void* send, void* recv, size_t count,
                                                             Element element) {
  std::vector<Piece> sends, recvs;
  all_to_all_pieces(send, recv, count, element, sends, recvs);
  return std::make_unique<Pending>(*this, post("all_to_all", sends, recvs));
}

void MpiCommunicator::all_to_all_v(const void* send, const std::vector<size_t>& send_counts, void* recv,
                                   const std::vector<size_t>& recv_counts, Element element) {
  SY_CHECK(send_counts.size() == static_cast<size_t>(size_) && recv_counts.size() == static_cast<size_t>(size_))
      << "all_to_all_v on " << describe() << ": " << send_counts.size() << " send and " << recv_counts.size()
      << " receive counts; expected one per rank (" << size_ << ")";
  SY_CHECK(send_counts[static_cast<size_t>(rank_)] == recv_counts[static_cast<size_t>(rank_)])
      << "all_to_all_v on " << describe() << ": sends " << send_counts[static_cast<size_t>(rank_)]
      << " elements to itself but expects " << recv_counts[static_cast<size_t>(rank_)];
  const size_t el = element_bytes(element);
  std::vector<Piece> sends, recvs;
  size_t send_at = 0, recv_at = 0;
  for (int q = 0; q < size_; ++q) {
    sends.push_back({q, const_cast<char*>(static_cast<const char*>(send)) + send_at * el, send_counts[q] * el});
    recvs.push_back({q, static_cast<char*>(recv) + recv_at * el, recv_counts[q] * el});
    send_at += send_counts[q];
    recv_at += recv_counts[q];
  }
  exchange("all_to_all_v", sends, recvs);
}

void MpiCommunicator::all_gather_v(const void* send, size_t count, void* recv, const std::vector<size_t>& counts,
                                   Element element) {
  SY_CHECK(counts.size() == static_cast<size_t>(size_) && counts[static_cast<size_t>(rank_)] == count)
      << "all_gather_v on " << describe() << ": counts must have one entry per rank (" << size_
      << ") and this rank's must be its count " << count;
  const size_t el = element_bytes(element);
  std::vector<Piece> sends, recvs;
  size_t at = 0;
  for (int q = 0; q < size_; ++q) {
    sends.push_back({q, const_cast<char*>(static_cast<const char*>(send)), count * el});
    recvs.push_back({q, static_cast<char*>(recv) + at * el, counts[q] * el});
    at += counts[q];
  }
  exchange("all_gather_v", sends, recvs);
}

void MpiCommunicator::all_reduce(const void* send, void* recv, size_t count, Element element, ReduceOp op) {
  const size_t bytes = count * element_bytes(element);
  std::vector<char> terms(bytes * static_cast<size_t>(size_));
  std::vector<Piece> sends, recvs;
  for (int q = 0; q < size_; ++q) {
    sends.push_back({q, const_cast<char*>(static_cast<const char*>(send)), bytes});
    recvs.push_back({q, terms.data() + q * bytes, bytes});
  }
  exchange("all_reduce", sends, recvs);
  std::memcpy(recv, terms.data(), bytes);
  for (int q = 1; q < size_; ++q) reduce_typed(recv, terms.data() + q * bytes, count, element, op);
}

void MpiCommunicator::reduce_scatter(const void* send, void* recv, size_t count, Element element, ReduceOp op) {
  const size_t bytes = count * element_bytes(element);
  std::vector<char> terms(bytes * static_cast<size_t>(size_));
  std::vector<Piece> sends, recvs;
  for (int q = 0; q < size_; ++q) {
    sends.push_back({q, const_cast<char*>(static_cast<const char*>(send)) + q * bytes, bytes});
    recvs.push_back({q, terms.data() + q * bytes, bytes});
  }
  exchange("reduce_scatter", sends, recvs);
  std::memcpy(recv, terms.data(), bytes);
  for (int q = 1; q < size_; ++q) reduce_typed(recv, terms.data() + q * bytes, count, element, op);
}

void MpiCommunicator::barrier() {
  std::vector<Piece> sends, recvs;
  char dummy = 0;
  for (int q = 0; q < size_; ++q) {
    sends.push_back({q, &dummy, 0});
    recvs.push_back({q, &dummy, 0});
  }
  exchange("barrier", sends, recvs);
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  check_usable("split");
  barrier();  // a peer missing from the start is named by the watchdog here
  MPI_Comm sub = MPI_COMM_NULL;
  int threads = MPI_THREAD_SINGLE;
  MPI_Query_thread(&threads);
  if (threads < MPI_THREAD_SERIALIZED) {  // MPI only on this thread: split here, unbounded
    check(MPI_Comm_split(comm_, color, key, &sub), "split", "MPI_Comm_split");
  } else {
    sub = split_within_timeout(color, key);
  }
  return std::make_unique<MpiCommunicator>(sub, name_ + "/" + std::to_string(color), timeout_sec_, true);
}

MPI_Comm MpiCommunicator::split_within_timeout(int color, int key) {
  // NOTE: MPI_Comm_split has no non-blocking form. It runs on a helper thread that this one
  // waits for under the timeout; one that never returns (a peer stalled or died between the
  // barrier and the split) is left behind and the communicator marked broken, as MPI cannot
  // cancel the call. This thread makes no MPI call meanwhile (MPI_THREAD_SERIALIZED holds).
  struct State {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    int code = MPI_SUCCESS;
    MPI_Comm sub = MPI_COMM_NULL;
  };
  auto state = std::make_shared<State>();
  std::thread([state, comm = comm_, color, key] {
    MPI_Comm sub = MPI_COMM_NULL;
    const int code = MPI_Comm_split(comm, color, key, &sub);
    const std::lock_guard<std::mutex> lock(state->mutex);
    state->code = code;
    state->sub = sub;
    state->done = true;
    state->finished.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(state->mutex);
  if (!state->finished.wait_for(lock, std::chrono::duration<double>(timeout_sec_), [&] { return state->done; })) {
    broken_ = "MPI_Comm_split timed out";
    g_any_broken = true;
    SY_THROW(CommError) << "split on " << describe() << ": MPI_Comm_split did not complete within " << timeout_sec_
                        << " s (SWITCHYARD_COMM_TIMEOUT_SEC); a peer stalled or died after the barrier before it";
  }
  check(state->code, "split", "MPI_Comm_split");
  return state->sub;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
      SY_THROW(BackendError) << "MPI_Init_thread failed";
    initialized_here_ = true;
  }
  world_ =
      std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world", Settings::from_environment().comm_timeout_sec, false);
}

MpiSession::~MpiSession() {
  world_.reset();
  if (initialized_here_ && !g_any_broken) MPI_Finalize();
}

std::string MpiSession::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, static_cast<size_t>(length));
  if (const size_t end = version.find_first_of(",\n"); end != std::string::npos) version.resize(end);
  return version;
}

bool MpiSession::launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr;
}

}  // namespace switchyard::comm
