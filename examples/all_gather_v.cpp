// Tutel's nccl_all_gather_v example on the MPI engine (mpirun -np N all_gather_v): rank r
// contributes 5 values of 10 * (r + 1) when r is even and 3 when odd; every rank receives the
// concatenation in rank order (with 2 ranks: [10, 10, 10, 10, 10, 20, 20, 20]).
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <switchyard/switchyard.h>

using namespace switchyard;

int main(int argc, char** argv) {
  try {
    MpiWorld mpi(&argc, &argv);  // the public API: MPI_Init .. MPI_Finalize, and the world group
    comm::Communicator& world = mpi.world();
    std::vector<float> mine(world.rank() % 2 == 0 ? 5 : 3, 10.f * static_cast<float>(world.rank() + 1));
    const std::vector<size_t> counts = comm::gather_counts(world, mine.size());
    std::vector<float> all(std::accumulate(counts.begin(), counts.end(), size_t{0}));
    world.all_gather_v(mine.data(), mine.size(), all.data(), counts, comm::Element::kFloat32);
    std::string text;
    for (float x : all) text += (text.empty() ? "" : ", ") + std::to_string(static_cast<int>(x));
    std::printf("Device-%d recvs: [%s]\n", world.rank(), text.c_str());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "all_gather_v: error: %s\n", e.what());
    return 1;
  }
}
