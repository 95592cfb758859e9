// The groups a distributed MoeLayer takes (docs/distributed.md): MPI ranks over host memory, and
// NCCL over each rank's GPU memory, bootstrapped through MPI.
#pragma once

#include <memory>

#include <switchyard/communicator.h>
#include <switchyard/device.h>
#include <switchyard/export.h>

namespace switchyard {

namespace comm {
class MpiSession;  // internal: MPI_Init/MPI_Finalize and the world
}  // namespace comm

/// MPI for this process: MPI_Init in the constructor, MPI_Finalize in the destructor (skipped
/// after a collective failed, so a broken peer cannot hang the exit), and the world's ranks as a
/// host-memory group: what a CPU layer takes, and what a GPU layer stages through the host.
/// Every collective is bounded by SWITCHYARD_COMM_TIMEOUT_SEC. Needs the library's mpi
/// component; BackendError otherwise. One per process.
class SWITCHYARD_API MpiWorld {
 public:
  MpiWorld(int* argc, char*** argv);
  ~MpiWorld();
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  comm::Communicator& world();
  /// True when mpirun (or mpiexec) started this process as one rank of a group.
  static bool launched_by_mpirun();

 private:
  std::unique_ptr<comm::MpiSession> session_;
};

/// The ranks of `mpi_group` (MpiWorld::world() or a split of it) over `device`'s GPU memory
/// through NCCL, on the device's communication stream: a CUDA layer exchanges through it without
/// staging. Collective over the group. BackendError saying why when NCCL cannot be loaded, and
/// UserError when `device` is not a GPU or `mpi_group` is not an MPI group.
SWITCHYARD_API std::unique_ptr<comm::Communicator> make_nccl_communicator(Device& device,
                                                                          comm::Communicator& mpi_group);

}  // namespace switchyard
