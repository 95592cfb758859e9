#include "comm/hierarchical.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace switchyard::comm {

HierarchicalAllToAll::HierarchicalAllToAll(Communicator& world, int local_size)
    : world_(world), local_size_(local_size), nodes_(local_size > 0 ? world.size() / local_size : 0) {
  SY_CHECK(local_size >= 1 && world.size() % local_size == 0)
      << "2DH all-to-all: local size " << local_size << " does not divide the world size " << world.size();
  const int node = world.rank() / local_size, local = world.rank() % local_size;
  local_ = world.split(node, local);
  cross_ = world.split(local_size + local, node);  // colors past the node ids keep the two splits apart
}

// One 2DH exchange: stage 1 (across nodes) posted at construction, the rest in wait().
class HierarchicalAllToAll::Pending : public PendingOp {
 public:
  Pending(HierarchicalAllToAll& owner, const void* send, void* recv, size_t count, Element element)
      : owner_(owner), recv_(recv), count_(count), element_(element) {
    const size_t total = count * element_bytes(element) * static_cast<size_t>(owner.world_.size());
    first_.resize(total);
    second_.resize(total);
    // 1. Across nodes: the L blocks for node n (contiguous, node-major) go to that node's rank of
    //    this local index. first_ = [source node][destination local].
    cross_ =
        owner.cross_->start_all_to_all(send, first_.data(), count * static_cast<size_t>(owner.local_size_), element);
  }
  ~Pending() override {
    try {
      wait();
    } catch (const Error&) {  // the communicators are marked broken; the next collective reports it
    }
  }
  void wait() override {
    if (done_) return;
    done_ = true;
    cross_->wait();
    const int l_size = owner_.local_size_, n_size = owner_.nodes_;
    const size_t block = count_ * element_bytes(element_);
    // 2. Transpose to [destination local][source node].
    for (int n = 0; n < n_size; ++n)
      for (int l = 0; l < l_size; ++l)
        std::memcpy(&second_[(static_cast<size_t>(l) * n_size + n) * block],
                    &first_[(static_cast<size_t>(n) * l_size + l) * block], block);
    // 3. Inside the node: the N blocks for local rank l go to it. first_ = [source local][source node].
    owner_.local_->all_to_all(second_.data(), first_.data(), count_ * static_cast<size_t>(n_size), element_);
    // 4. Source-rank order: rank = node * L + local.
    char* out = static_cast<char*>(recv_);
    for (int l = 0; l < l_size; ++l)
      for (int n = 0; n < n_size; ++n)
        std::memcpy(out + (static_cast<size_t>(n) * l_size + l) * block,
                    &first_[(static_cast<size_t>(l) * n_size + n) * block], block);
  }

 private:
  HierarchicalAllToAll& owner_;
  void* recv_;
  size_t count_;
  Element element_;
  std::vector<char> first_, second_;
  std::unique_ptr<PendingOp> cross_;
  bool done_ = false;
};

std::unique_ptr<PendingOp> HierarchicalAllToAll::start(const void* send, void* recv, size_t count, Element element) {
  if (local_size_ == 1 || nodes_ == 1) return world_.start_all_to_all(send, recv, count, element);
  return std::make_unique<Pending>(*this, send, recv, count, element);
}

void HierarchicalAllToAll::run(const void* send, void* recv, size_t count, Element element) {
  start(send, recv, count, element)->wait();
}

int local_size_from_environment(int fallback) {
  for (const char* name : {"LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    const long size = std::strtol(value, &end, 10);
    SY_CHECK(*end == '\0' && size >= 1) << name << "='" << value << "' is not a positive number of ranks per node";
    return static_cast<int>(size);
  }
  return fallback;
}

}  // namespace switchyard::comm
