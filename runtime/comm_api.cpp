// The public group constructors (switchyard/comm.h) over comm/'s MPI and NCCL engines.
#include <switchyard/comm.h>

#include "core/error.h"
#include "runtime/cuda_device.h"

#if SY_WITH_MPI
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#else
namespace switchyard::comm {
class MpiSession {};  // a build without MPI never makes one
}  // namespace switchyard::comm
#endif

namespace switchyard {

#if SY_WITH_MPI

MpiWorld::MpiWorld(int* argc, char*** argv) : session_(std::make_unique<comm::MpiSession>(argc, argv)) {}

comm::Communicator& MpiWorld::world() {
  return session_->world();
}

bool MpiWorld::launched_by_mpirun() {
  return comm::MpiSession::launched_by_mpirun();
}

std::unique_ptr<comm::Communicator> make_nccl_communicator(Device& device, comm::Communicator& mpi_group) {
  auto* gpu = dynamic_cast<CudaDevice*>(&device);
  SY_CHECK(gpu != nullptr) << "NCCL exchanges GPU memory; the device is " << device.name();
  auto* bootstrap = dynamic_cast<comm::MpiCommunicator*>(&mpi_group);
  SY_CHECK(bootstrap != nullptr) << "NCCL is bootstrapped over an MPI group; got " << mpi_group.describe();
  const std::string missing = comm::NcclLibrary::unavailable_reason();
  if (!missing.empty()) SY_THROW(BackendError) << "NCCL: " << missing;
  return std::make_unique<comm::NcclCommunicator>(*bootstrap, gpu->communication_hooks());
}

#else

namespace {
constexpr const char* kNoMpi = "this build of Switchyard has no MPI (install libopenmpi-dev and rebuild)";
}  // namespace

MpiWorld::MpiWorld(int*, char***) {
  SY_THROW(BackendError) << kNoMpi;
}

comm::Communicator& MpiWorld::world() {
  SY_THROW(BackendError) << kNoMpi;
}

bool MpiWorld::launched_by_mpirun() {
  return false;
}

std::unique_ptr<comm::Communicator> make_nccl_communicator(Device&, comm::Communicator&) {
  SY_THROW(BackendError) << kNoMpi << "; NCCL is bootstrapped over MPI";
}

#endif

MpiWorld::~MpiWorld() = default;

}  // namespace switchyard
