// Tutel's nccl_all_to_all_v example on the MPI engine (2 ranks: mpirun -np 2 all_to_all_v):
// rank 0 sends [10] x 5 with counts [1, 4], rank 1 sends [20] x 3 with counts [2, 1]; rank 0
// receives [10, 20, 20] and rank 1 [10, 10, 10, 10, 20].
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
    if (world.size() != 2)
      throw UserError("all_to_all_v runs on 2 ranks (mpirun -np 2); this world has " + std::to_string(world.size()));
    const bool first = world.rank() == 0;
    const std::vector<size_t> send_counts = first ? std::vector<size_t>{1, 4} : std::vector<size_t>{2, 1};
    std::vector<float> send(std::accumulate(send_counts.begin(), send_counts.end(), size_t{0}), first ? 10.f : 20.f);
    const std::vector<size_t> recv_counts = comm::exchange_counts(world, send_counts);
    std::vector<float> recv(std::accumulate(recv_counts.begin(), recv_counts.end(), size_t{0}));
    world.all_to_all_v(send.data(), send_counts, recv.data(), recv_counts, comm::Element::kFloat32);
    auto list = [](const std::vector<float>& v) {
      std::string text;
      for (float x : v) text += (text.empty() ? "" : ", ") + std::to_string(static_cast<int>(x));
      return "[" + text + "]";
    };
    std::printf("Device-%d sends: %s\nDevice-%d recvs: %s\n", world.rank(), list(send).c_str(), world.rank(),
                list(recv).c_str());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "all_to_all_v: error: %s\n", e.what());
    return 1;
  }
}
