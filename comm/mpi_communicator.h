// The MPI engine: collectives over CPU memory, built from non-blocking point-to-point messages
// so that a watchdog can bound every wait and name the peers that did not answer. OpenMPI from
// Debian; launched with mpirun (see docs/distributed.md).
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace switchyard::comm {

class MpiCommunicator : public Communicator {
 public:
  /// Wraps `comm` (owned when `owned`: freed on destruction). timeout_sec bounds every wait.
  MpiCommunicator(MPI_Comm comm, std::string name, double timeout_sec, bool owned);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override;
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

  MPI_Comm handle() const { return comm_; }

 private:
  struct Piece {
    int peer;
    char* data;
    size_t bytes;
  };
  struct Posted {
    const char* op;
    std::vector<MPI_Request> requests;
    std::vector<int> peers;
  };
  class Pending;
  // Posts every receive, then every send (self pieces are copied).
  Posted post(const char* op, const std::vector<Piece>& sends, const std::vector<Piece>& recvs);
  // post() and wait under the watchdog.
  void exchange(const char* op, const std::vector<Piece>& sends, const std::vector<Piece>& recvs);
  void wait(const char* op, std::vector<MPI_Request>& requests, const std::vector<int>& peers);
  void all_to_all_pieces(const void* send, void* recv, size_t count, Element element, std::vector<Piece>& sends,
                         std::vector<Piece>& recvs) const;
  void check(int code, const char* op, const char* call);
  void check_usable(const char* op) const;
  MPI_Comm split_within_timeout(int color, int key);

  MPI_Comm comm_;
  std::string name_;
  double timeout_sec_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
  int next_tag_ = 0;
  std::string broken_;  // why the communicator is unusable, or empty
};

/// MPI_Init / MPI_Finalize for the process, and its world communicator. The destructor skips
/// MPI_Finalize after a collective failed (finalize would wait for the dead peer): the process
/// then exits without it and mpirun reports that.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  MpiCommunicator& world() { return *world_; }
  /// True when this process was started by mpirun (OMPI_COMM_WORLD_SIZE is set).
  static bool launched_by_mpirun();
  /// The MPI library's own description (MPI_Get_library_version; needs no MPI_Init).
  static std::string library_version();

 private:
  bool initialized_here_ = false;
  std::unique_ptr<MpiCommunicator> world_;
};

}  // namespace switchyard::comm
