// The 2DH all-to-all (tutel-semantics 5.3): ranks are node-major (rank = node * L + local); an
// all-to-all across nodes between ranks of one local index, a local transpose, an all-to-all
// inside each node, and a reorder to source-rank order. The result equals the flat all_to_all;
// large worlds gain because each rank talks to N + L peers instead of N * L.
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"

namespace switchyard::comm {

class HierarchicalAllToAll {
 public:
  /// Collective over `world`: builds the intra-node and cross-node groups. local_size must
  /// divide world.size() (UserError otherwise). `memory` allocates and permutes in the memory of
  /// world's buffers (host memory by default).
  HierarchicalAllToAll(Communicator& world, int local_size, MemoryOps memory = host_memory_ops());
  /// Same contract as Communicator::all_to_all.
  void run(const void* send, void* recv, size_t count, Element element);
  /// Started in the background: the cross-node stage travels until wait(), which then runs the
  /// intra-node stage. Several may be in flight (each has its own staging).
  std::unique_ptr<PendingOp> start(const void* send, void* recv, size_t count, Element element);
  int local_size() const { return local_size_; }

 private:
  Communicator& world_;
  MemoryOps memory_;
  int local_size_;
  int nodes_;
  std::unique_ptr<Communicator> local_;  // the L ranks of this node, by local index
  std::unique_ptr<Communicator> cross_;  // the N ranks of this local index, by node
  class Pending;
};

/// Ranks per node: LOCAL_SIZE (Tutel's variable, to override), else the launcher's
/// OMPI_COMM_WORLD_LOCAL_SIZE, else `fallback`. UserError for a value that is not a positive count.
int local_size_from_environment(int fallback);

}  // namespace switchyard::comm
