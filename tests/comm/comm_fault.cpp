// A worker for comm_watchdog_test: `comm_fault stall|exit|split-stall|split-exit` under mpirun.
// Rank 1 stalls (sleeps three timeouts) or exits before an all_to_all, or, in the split modes,
// after the barrier that opens a split (between it and MPI_Comm_split); every other rank prints
// how its collective ended.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi_communicator.h"
#include "core/error.h"
#include "core/settings.h"

using namespace switchyard;

namespace {

// Runs `collective`, printing how it ended ("rank R: NAME completed" or the error and when);
// the exit status is 3 on an error.
int report(int rank, const char* name, const std::function<void()>& collective) {
  const auto start = std::chrono::steady_clock::now();
  try {
    collective();
    std::printf("rank %d: %s completed\n", rank, name);
    return 0;
  } catch (const Error& e) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("rank %d: error after %.1f s: %s\n", rank, waited, e.what());
    std::fflush(stdout);
    return 3;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  comm::MpiSession session(&argc, &argv);
  comm::Communicator& world = session.world();
  world.barrier();
  const double timeout = Settings::from_environment().comm_timeout_sec;
  if (mode.rfind("split-", 0) == 0) {
    if (world.rank() == 1) {
      world.barrier();  // the barrier split() opens with, then nothing
      if (mode == "split-stall") std::this_thread::sleep_for(std::chrono::duration<double>(3 * timeout));
      // NOTE: no MPI_Finalize: rank 0 has left without one (its split broke), and a finalize
      // would wait for it.
      std::_Exit(0);
    }
    return report(world.rank(), "split", [&] { world.split(0, world.rank()); });
  }
  if (world.rank() == 1 && mode == "stall") std::this_thread::sleep_for(std::chrono::duration<double>(3 * timeout));
  if (world.rank() == 1 && mode == "exit") std::_Exit(0);
  std::vector<double> send(1000 * world.size(), 1.0), recv(send.size());
  return report(world.rank(), "all_to_all",
                [&] { world.all_to_all(send.data(), recv.data(), 1000, comm::Element::kFloat64); });
}
