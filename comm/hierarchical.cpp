#include "comm/hierarchical.h"

#include <cstdlib>
#include <utility>

#include "core/error.h"

namespace switchyard::comm {

HierarchicalAllToAll::HierarchicalAllToAll(Communicator& world, int local_size, MemoryOps memory)
    : world_(world),
      memory_(std::move(memory)),
      local_size_(local_size),
      nodes_(local_size > 0 ? world.size() / local_size : 0) {
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
    first_ = owner.memory_.allocate(total);
    second_ = owner.memory_.allocate(total);
    // 1. Across nodes: the L blocks for node n (contiguous, node-major) go to that node's rank of
    //    this local index. first_ = [source node][destination local].
    cross_ =
        owner.cross_->start_all_to_all(send, first_.get(), count * static_cast<size_t>(owner.local_size_), element);
  }
  ~Pending() override { wait_quietly(); }

 protected:
  void complete() override {
    cross_->wait();
    const size_t block = count_ * element_bytes(element_);
    const auto nodes = static_cast<size_t>(owner_.nodes_), locals = static_cast<size_t>(owner_.local_size_);
    char* first = static_cast<char*>(first_.get());
    char* second = static_cast<char*>(second_.get());
    // 2. Transpose to [destination local][source node]: node n's L blocks go to column n.
    for (size_t n = 0; n < nodes; ++n)
      owner_.memory_.copy_2d(second + n * block, nodes * block, first + n * locals * block, block, block, locals);
    // 3. Inside the node: the N blocks for local rank l go to it. first = [source local][source node].
    owner_.local_->all_to_all(second, first, count_ * nodes, element_);
    // 4. Source-rank order: rank = node * L + local.
    char* out = static_cast<char*>(recv_);
    for (size_t l = 0; l < locals; ++l)
      owner_.memory_.copy_2d(out + l * block, locals * block, first + l * nodes * block, block, block, nodes);
  }

 private:
  HierarchicalAllToAll& owner_;
  void* recv_;
  size_t count_;
  Element element_;
  std::shared_ptr<void> first_, second_;  // staging in the world's memory
  std::unique_ptr<PendingOp> cross_;
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
