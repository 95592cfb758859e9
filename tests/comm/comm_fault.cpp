// A worker for comm_watchdog_test: `comm_fault stall|exit` under mpirun. Rank 1 stalls (sleeps
// three timeouts) or exits before an all_to_all; every rank prints how its all_to_all ended.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi_communicator.h"
#include "core/error.h"
#include "core/settings.h"

using namespace switchyard;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  comm::MpiSession session(&argc, &argv);
  comm::Communicator& world = session.world();
  world.barrier();
  if (world.rank() == 1 && mode == "stall") {
    std::this_thread::sleep_for(std::chrono::duration<double>(3 * Settings::from_environment().comm_timeout_sec));
  }
  if (world.rank() == 1 && mode == "exit") std::_Exit(0);
  const auto start = std::chrono::steady_clock::now();
  std::vector<double> send(1000 * world.size(), 1.0), recv(send.size());
  try {
    world.all_to_all(send.data(), recv.data(), 1000, comm::Element::kFloat64);
    std::printf("rank %d: all_to_all completed\n", world.rank());
  } catch (const Error& e) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("rank %d: error after %.1f s: %s\n", world.rank(), waited, e.what());
    std::fflush(stdout);
    return 3;
  }
  return 0;
}
