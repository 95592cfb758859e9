// main() for the test binaries run under mpirun: one MPI session for the whole run.
#include <gtest/gtest.h>

#include "tests/support/gtest_exit.h"
#include "tests/support/mpi_test_world.h"

namespace switchyard::testing {
namespace {
comm::MpiCommunicator* g_world = nullptr;
}  // namespace

comm::MpiCommunicator& mpi_world() {
  return *g_world;
}

}  // namespace switchyard::testing

int main(int argc, char** argv) {
  switchyard::comm::MpiSession session(&argc, &argv);
  switchyard::testing::g_world = &session.world();
  ::testing::InitGoogleTest(&argc, argv);
  return switchyard::testing::exit_status(RUN_ALL_TESTS());
}
