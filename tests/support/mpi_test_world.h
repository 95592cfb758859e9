// The MPI world of a multi-rank test binary, set up by tests/support/mpi_test_main.cpp (which
// exits 77 when every test skipped, like the GPU suites).
#pragma once

#include "comm/mpi_communicator.h"

namespace switchyard::testing {

comm::MpiCommunicator& mpi_world();

}  // namespace switchyard::testing
