// all_to_all and all_to_all_v of the MPI engine against plain MPI_Alltoall(v) on the same bytes,
// in the same run. Run under mpirun (e.g. mpirun -np 4 --oversubscribe comm_bench); rank 0 prints
// JSON: per message size, GB/s per rank (bytes sent + received / time) and the ratio.
#include <mpi.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <vector>

#include "comm/mpi_communicator.h"

using namespace switchyard;

namespace {

// Best seconds per call over 5 rounds of `iterations` calls, every rank in step.
template <typename F>
double best_seconds(int iterations, F body) {
  body();
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) body();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
    MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    best = std::min(best, seconds);
  }
  return best;
}

nlohmann::json plain_case(comm::Communicator& world, size_t bytes_per_peer) {
  const int w = world.size();
  std::vector<char> send(bytes_per_peer * w, 1), recv(send.size());
  const int iterations = bytes_per_peer >= (1 << 20) ? 5 : 50;
  const double ours = best_seconds(
      iterations, [&] { world.all_to_all(send.data(), recv.data(), bytes_per_peer, comm::Element::kByte); });
  const double mpi = best_seconds(iterations, [&] {
    MPI_Alltoall(send.data(), static_cast<int>(bytes_per_peer), MPI_BYTE, recv.data(), static_cast<int>(bytes_per_peer),
                 MPI_BYTE, MPI_COMM_WORLD);
  });
  const double moved = 2.0 * static_cast<double>(bytes_per_peer) * (w - 1);
  return {{"bytes_per_peer", bytes_per_peer},
          {"switchyard_gbps", moved / ours * 1e-9},
          {"mpi_gbps", moved / mpi * 1e-9},
          {"vs_mpi", mpi / ours}};
}

nlohmann::json uneven_case(comm::Communicator& world, size_t base) {
  const int w = world.size(), me = world.rank();
  std::vector<size_t> send_counts(w);
  for (int q = 0; q < w; ++q) send_counts[q] = base * static_cast<size_t>(1 + (me + 2 * q) % 3);  // 1x to 3x
  const std::vector<size_t> recv_counts = comm::exchange_counts(world, send_counts);
  std::vector<int> sc(w), sd(w), rc(w), rd(w);
  size_t send_total = 0, recv_total = 0;
  for (int q = 0; q < w; ++q) {
    sc[q] = static_cast<int>(send_counts[q]);
    sd[q] = static_cast<int>(send_total);
    rc[q] = static_cast<int>(recv_counts[q]);
    rd[q] = static_cast<int>(recv_total);
    send_total += send_counts[q];
    recv_total += recv_counts[q];
  }
  std::vector<char> send(send_total, 1), recv(recv_total);
  const int iterations = base >= (1 << 20) ? 5 : 50;
  const double ours = best_seconds(iterations, [&] {
    world.all_to_all_v(send.data(), send_counts, recv.data(), recv_counts, comm::Element::kByte);
  });
  const double mpi = best_seconds(iterations, [&] {
    MPI_Alltoallv(send.data(), sc.data(), sd.data(), MPI_BYTE, recv.data(), rc.data(), rd.data(), MPI_BYTE,
                  MPI_COMM_WORLD);
  });
  const double moved = static_cast<double>(send_total - send_counts[me] + recv_total - recv_counts[me]);
  return {{"base_bytes", base},
          {"switchyard_gbps", moved / ours * 1e-9},
          {"mpi_gbps", moved / mpi * 1e-9},
          {"vs_mpi", mpi / ours}};
}

}  // namespace

int main(int argc, char** argv) {
  comm::MpiSession mpi(&argc, &argv);
  comm::Communicator& world = mpi.world();
  nlohmann::json out = {{"ranks", world.size()}};
  for (size_t bytes : {size_t{1} << 10, size_t{64} << 10, size_t{1} << 20, size_t{8} << 20})
    out["all_to_all"].push_back(plain_case(world, bytes));
  for (size_t bytes : {size_t{1} << 10, size_t{64} << 10, size_t{1} << 20})
    out["all_to_all_v"].push_back(uneven_case(world, bytes));
  if (world.rank() == 0) std::cout << out.dump(2) << "\n";
  return 0;
}
