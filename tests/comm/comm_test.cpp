// The MPI engine's collectives, run under mpirun with 2 and 4 ranks: every rank builds its
// inputs from (source, destination, index) so each can compute what it must receive, with
// zero-length and uneven counts; sub-groups; the 2DH all-to-all against the flat one.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>

#include "comm/hierarchical.h"
#include "comm/mpi_communicator.h"
#include "core/error.h"
#include "core/half.h"
#include "tests/support/mpi_test_world.h"

namespace switchyard::comm {
namespace {

double value(int source, int destination, size_t i) {
  return source * 1000.0 + destination * 10.0 + static_cast<double>(i) * 0.5;
}

TEST(Mpi, AllToAllDeliversEveryBlock) {
  Communicator& w = testing::mpi_world();
  for (size_t count : {size_t{0}, size_t{1}, size_t{37}, size_t{100000}}) {
    std::vector<double> send(count * w.size()), recv(send.size(), -1);
    for (int q = 0; q < w.size(); ++q)
      for (size_t i = 0; i < count; ++i) send[q * count + i] = value(w.rank(), q, i);
    w.all_to_all(send.data(), recv.data(), count, Element::kFloat64);
    for (int q = 0; q < w.size(); ++q)
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(recv[q * count + i], value(q, w.rank(), i)) << q << "," << i;
  }
}

TEST(Mpi, StartedAllToAllsCompleteInAnyOrder) {
  Communicator& w = testing::mpi_world();
  const size_t count = 5000;
  std::vector<std::vector<double>> send(3, std::vector<double>(count * w.size())), recv = send;
  for (int op = 0; op < 3; ++op)
    for (int q = 0; q < w.size(); ++q)
      for (size_t i = 0; i < count; ++i) send[op][q * count + i] = value(w.rank(), q, i) + op * 1e6;
  std::vector<std::unique_ptr<PendingOp>> pending;
  for (int op = 0; op < 3; ++op)
    pending.push_back(w.start_all_to_all(send[op].data(), recv[op].data(), count, Element::kFloat64));
  pending[2]->wait();
  pending[0]->wait();
  pending.clear();  // the unwaited one completes in its destructor
  for (int op = 0; op < 3; ++op)
    for (int q = 0; q < w.size(); ++q)
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(recv[op][q * count + i], value(q, w.rank(), i) + op * 1e6);
}

size_t uneven(int source, int destination) {
  return static_cast<size_t>((source * 3 + destination * 5) % 4) * 7;  // some pairs send nothing
}

TEST(Mpi, AllToAllVWithZeroAndUnevenCounts) {
  Communicator& w = testing::mpi_world();
  std::vector<size_t> send_counts(w.size());
  for (int q = 0; q < w.size(); ++q) send_counts[q] = uneven(w.rank(), q);
  std::vector<size_t> recv_counts = exchange_counts(w, send_counts);
  for (int q = 0; q < w.size(); ++q) ASSERT_EQ(recv_counts[q], uneven(q, w.rank()));
  std::vector<float> send, recv(std::accumulate(recv_counts.begin(), recv_counts.end(), size_t{0}), -1.f);
  for (int q = 0; q < w.size(); ++q)
    for (size_t i = 0; i < send_counts[q]; ++i) send.push_back(static_cast<float>(value(w.rank(), q, i)));
  w.all_to_all_v(send.data(), send_counts, recv.data(), recv_counts, Element::kFloat32);
  size_t at = 0;
  for (int q = 0; q < w.size(); ++q)
    for (size_t i = 0; i < recv_counts[q]; ++i) ASSERT_EQ(recv[at++], static_cast<float>(value(q, w.rank(), i)));
}

TEST(Mpi, AllGatherVConcatenatesInRankOrder) {
  Communicator& w = testing::mpi_world();
  const size_t mine = static_cast<size_t>(w.rank() % 3) * 5;  // rank 0 contributes nothing
  std::vector<int64_t> send(mine);
  for (size_t i = 0; i < mine; ++i) send[i] = w.rank() * 100 + static_cast<int64_t>(i);
  std::vector<size_t> counts = gather_counts(w, mine);
  std::vector<int64_t> recv(std::accumulate(counts.begin(), counts.end(), size_t{0}));
  w.all_gather_v(send.data(), mine, recv.data(), counts, Element::kInt64);
  size_t at = 0;
  for (int q = 0; q < w.size(); ++q) {
    ASSERT_EQ(counts[q], static_cast<size_t>(q % 3) * 5);
    for (size_t i = 0; i < counts[q]; ++i) ASSERT_EQ(recv[at++], q * 100 + static_cast<int64_t>(i));
  }
}

TEST(Mpi, AllReduceAndReduceScatter) {
  Communicator& w = testing::mpi_world();
  const size_t n = 1001;
  std::vector<double> x(n), sum(n), max(n);
  for (size_t i = 0; i < n; ++i) x[i] = value(w.rank(), 0, i) * (i % 2 ? 1 : -1);
  w.all_reduce(x.data(), sum.data(), n, Element::kFloat64, ReduceOp::kSum);
  w.all_reduce(x.data(), max.data(), n, Element::kFloat64, ReduceOp::kMax);
  for (size_t i = 0; i < n; ++i) {
    double want_sum = 0, want_max = -1e300;
    for (int q = 0; q < w.size(); ++q) {
      const double v = value(q, 0, i) * (i % 2 ? 1 : -1);
      want_sum += v;  // rank order, as the engine sums
      want_max = std::max(want_max, v);
    }
    ASSERT_EQ(sum[i], want_sum);
    ASSERT_EQ(max[i], want_max);
  }
  std::vector<int32_t> in_place(n, w.rank() + 1);
  w.all_reduce(in_place.data(), in_place.data(), n, Element::kInt32, ReduceOp::kSum);
  EXPECT_EQ(in_place[n - 1], w.size() * (w.size() + 1) / 2);
  std::vector<float> blocks(3 * w.size()), mine(3);
  for (int q = 0; q < w.size(); ++q)
    for (int i = 0; i < 3; ++i) blocks[q * 3 + i] = static_cast<float>(w.rank() + 10 * q + i);
  w.reduce_scatter(blocks.data(), mine.data(), 3, Element::kFloat32, ReduceOp::kSum);
  for (int i = 0; i < 3; ++i) {
    float want = 0;
    for (int q = 0; q < w.size(); ++q) want += static_cast<float>(q + 10 * w.rank() + i);
    EXPECT_EQ(mine[i], want);
  }
  w.barrier();
}

// float16 and bfloat16 (gradients of half-precision layers): summed in float in rank order,
// each partial sum rounded back to the type, bit-identical on every rank.
TEST(Mpi, HalfTypesReduceInFloatInRankOrder) {
  Communicator& w = testing::mpi_world();
  const size_t n = 257;
  struct Half {
    Element element;
    uint16_t (*from_float)(float);
    float (*to_float)(uint16_t);
  };
  for (const Half& h : {Half{Element::kFloat16, float_to_half_bits, half_bits_to_float},
                        Half{Element::kBFloat16, float_to_bf16_bits, bf16_bits_to_float}}) {
    SCOPED_TRACE(element_name(h.element));
    auto term = [&](int rank, size_t i) { return h.from_float(static_cast<float>(value(rank, 1, i) * 0.37)); };
    std::vector<uint16_t> mine(n), sum(n), max(n);
    for (size_t i = 0; i < n; ++i) mine[i] = term(w.rank(), i);
    w.all_reduce(mine.data(), sum.data(), n, h.element, ReduceOp::kSum);
    w.all_reduce(mine.data(), max.data(), n, h.element, ReduceOp::kMax);
    for (size_t i = 0; i < n; ++i) {
      uint16_t want_sum = term(0, i), want_max = term(0, i);
      for (int q = 1; q < w.size(); ++q) {
        want_sum = h.from_float(h.to_float(want_sum) + h.to_float(term(q, i)));
        if (h.to_float(term(q, i)) > h.to_float(want_max)) want_max = term(q, i);
      }
      ASSERT_EQ(sum[i], want_sum) << i;
      ASSERT_EQ(max[i], want_max) << i;
    }
    std::vector<uint16_t> blocks(2 * static_cast<size_t>(w.size())), block(2);
    for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = term(w.rank(), i);
    w.reduce_scatter(blocks.data(), block.data(), 2, h.element, ReduceOp::kSum);
    for (size_t i = 0; i < 2; ++i) {
      const size_t at = static_cast<size_t>(w.rank()) * 2 + i;
      uint16_t want = term(0, at);
      for (int q = 1; q < w.size(); ++q) want = h.from_float(h.to_float(want) + h.to_float(term(q, at)));
      EXPECT_EQ(block[i], want) << i;
    }
  }
}

TEST(Mpi, SubGroupsCommunicateAmongThemselves) {
  Communicator& w = testing::mpi_world();
  auto group = w.split(w.rank() % 2, -w.rank());  // odd and even ranks, in reverse order
  int expected_size = 0;
  for (int q = 0; q < w.size(); ++q) expected_size += q % 2 == w.rank() % 2;
  ASSERT_EQ(group->size(), expected_size);
  int64_t me = w.rank(), total = 0;
  group->all_reduce(&me, &total, 1, Element::kInt64, ReduceOp::kSum);
  int64_t want = 0;
  for (int q = 0; q < w.size(); ++q) want += q % 2 == w.rank() % 2 ? q : 0;
  EXPECT_EQ(total, want);
  std::vector<int64_t> ranks(group->size());
  group->all_gather_v(&me, 1, ranks.data(), std::vector<size_t>(ranks.size(), 1), Element::kInt64);
  for (size_t i = 1; i < ranks.size(); ++i) EXPECT_GT(ranks[i - 1], ranks[i]) << "ordered by key (descending rank)";
}

TEST(Mpi, HierarchicalAllToAllEqualsTheFlatOne) {
  Communicator& w = testing::mpi_world();
  for (int local = 1; local <= w.size(); ++local) {
    if (w.size() % local != 0) continue;
    SCOPED_TRACE("local size " + std::to_string(local));
    HierarchicalAllToAll two_d(w, local);
    const size_t count = 13;
    std::vector<double> send(count * w.size()), flat(send.size()), hier(send.size());
    for (int q = 0; q < w.size(); ++q)
      for (size_t i = 0; i < count; ++i) send[q * count + i] = value(w.rank(), q, i);
    w.all_to_all(send.data(), flat.data(), count, Element::kFloat64);
    two_d.run(send.data(), hier.data(), count, Element::kFloat64);
    EXPECT_EQ(hier, flat);
    std::vector<double> first(send.size()), second(send.size());  // two in flight at once
    auto a = two_d.start(send.data(), first.data(), count, Element::kFloat64);
    auto b = two_d.start(send.data(), second.data(), count, Element::kFloat64);
    a->wait();
    b->wait();
    EXPECT_EQ(first, flat);
    EXPECT_EQ(second, flat);
  }
  EXPECT_THROW(HierarchicalAllToAll(w, w.size() + 1), UserError);
}

TEST(Mpi, BadCountsAreClearErrors) {
  Communicator& w = testing::mpi_world();
  std::vector<size_t> wrong(w.size() + 1, 0);
  EXPECT_THROW(w.all_to_all_v(nullptr, wrong, nullptr, wrong, Element::kByte), UserError);
  EXPECT_THROW(exchange_counts(w, wrong), UserError);
  std::vector<size_t> counts(w.size(), 1);
  int64_t v = 0;
  EXPECT_THROW(w.all_gather_v(&v, 2, nullptr, counts, Element::kInt64), UserError);
  w.barrier();  // every rank threw before sending: the communicator still works
}

}  // namespace
}  // namespace switchyard::comm
