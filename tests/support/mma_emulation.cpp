#include "tests/support/mma_emulation.h"

#include <vector>

#include "core/error.h"

namespace switchyard::emulation {
namespace {

constexpr int kLanes = 32;

// Per block: each thread's cp.async groups, copied when it waits for them.
struct BlockCopies {
  std::vector<AsyncGroups> threads;
};

// A copy still in flight when its block ends would land in the next block's shared memory (or
// nowhere): every group must have been waited for.
void check_copies_waited(const BlockCopies& copies) {
  for (size_t t = 0; t < copies.threads.size(); ++t)
    SY_CHECK(copies.threads[t].idle())
        << "emulated block " << block_index.x << ", thread " << t
        << ": cp.async copies issued but never waited for (cp.async.wait_group) before the block ended";
}

AsyncGroups& this_thread_copies() {
  BlockCopies& copies = per_block(check_copies_waited);
  copies.threads.resize(block_dim.x);
  return copies.threads[thread_index.x];
}

// The warp's fragments of one mma.sync, every lane's.
struct Fragments {
  unsigned a[4];
  unsigned b[2];
};

// The 16-bit half `k % 2` of a register holding a pair.
uint16_t half_of(unsigned pair, int k) {
  return static_cast<uint16_t>(k % 2 == 0 ? pair & 0xffffu : pair >> 16);
}

float tf32_of(unsigned bits) {
  bits &= 0xffffe000u;  // the tensor cores read 10 mantissa bits
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// Adds row g (+8) and columns 2t, 2t + 1 of A B (the calling lane's accumulators, as the PTX ISA
// lays out the m16n8 C fragment) to d, with A(r, k) and B(k, n) read from the warp's fragments.
template <typename ElementA, typename ElementB>
void accumulate(float* d, int depth, ElementA a_at, ElementB b_at) {
  const int lane = static_cast<int>(thread_index.x % kLanes), g = lane / 4, t = lane % 4;
  for (int j = 0; j < 4; ++j) {
    const int row = g + 8 * (j / 2), col = 2 * t + j % 2;
    double sum = 0;
    for (int k = 0; k < depth; ++k) sum += static_cast<double>(a_at(row, k)) * b_at(k, col);
    d[j] = static_cast<float>(d[j] + sum);
  }
}

}  // namespace

void cp_async_16(unsigned shared, const void* global, int bytes) {
  SY_CHECK(bytes >= 0 && bytes <= 16) << "emulated cp.async of " << bytes << " source bytes; expected 0 to 16";
  unsigned char* destination = shared_window_pointer(shared);
  SY_CHECK(shared % 16 == 0 && reinterpret_cast<uintptr_t>(global) % 16 == 0)
      << "emulated cp.async of 16 bytes: shared address " << shared << " and global " << global
      << " must be 16-byte aligned";
  this_thread_copies().open.push_back([=] {
    std::memcpy(destination, global, static_cast<size_t>(bytes));
    std::memset(destination + bytes, 0, static_cast<size_t>(16 - bytes));
  });
}

void cp_async_commit() {
  this_thread_copies().commit();
}

void cp_async_wait(int pending) {
  this_thread_copies().wait(pending);
}

void ldmatrix(unsigned* r, int matrices, bool trans, unsigned address) {
  unsigned rows[kLanes];
  warp_gather(&address, sizeof(address), rows);
  const int lane = static_cast<int>(thread_index.x % kLanes), g = lane / 4, t = lane % 4;
  // Lanes 8i..8i+7 give the rows of matrix i; each row is 8 16-bit elements (16 bytes).
  auto row = [&](int i, int j) {
    const unsigned at = rows[8 * i + j];
    SY_CHECK(at % 16 == 0) << "emulated ldmatrix: row address " << at << " is not 16-byte aligned";
    return shared_window_pointer(at);
  };
  for (int i = 0; i < matrices; ++i) {
    if (!trans) {  // (row g, columns 2t and 2t + 1)
      std::memcpy(&r[i], row(i, g) + 4 * t, sizeof(unsigned));
    } else {  // the transpose: (rows 2t and 2t + 1, column g)
      uint16_t low, high;
      std::memcpy(&low, row(i, 2 * t) + 2 * g, sizeof(low));
      std::memcpy(&high, row(i, 2 * t + 1) + 2 * g, sizeof(high));
      r[i] = low | static_cast<unsigned>(high) << 16;
    }
  }
}

// A(r, k) of 16 x 16: lane (r % 8) * 4 + (k % 8) / 2, register r / 8 + 2 (k / 8), half k % 2;
// B(k, n) of 16 x 8: lane n * 4 + (k % 8) / 2, register k / 8, half k % 2.
void mma_m16n8k16(float* d, const unsigned* a, const unsigned* b, HalfLoad load) {
  Fragments mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}}, all[kLanes];
  warp_gather(&mine, sizeof(mine), all);
  accumulate(
      d, 16, [&](int r, int k) { return load(half_of(all[(r % 8) * 4 + (k % 8) / 2].a[r / 8 + 2 * (k / 8)], k)); },
      [&](int k, int n) { return load(half_of(all[n * 4 + (k % 8) / 2].b[k / 8], k)); });
}

// A(r, k) of 16 x 8: lane (r % 8) * 4 + k % 4, register r / 8 + 2 (k / 4); B(k, n) of 8 x 8:
// lane n * 4 + k % 4, register k / 4.
void mma_m16n8k8_tf32(float* d, const unsigned* a, const unsigned* b) {
  Fragments mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}}, all[kLanes];
  warp_gather(&mine, sizeof(mine), all);
  accumulate(
      d, 8, [&](int r, int k) { return tf32_of(all[(r % 8) * 4 + k % 4].a[r / 8 + 2 * (k / 4)]); },
      [&](int k, int n) { return tf32_of(all[n * 4 + k % 4].b[k / 4]); });
}

unsigned round_to_tf32(float value) {
  unsigned bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7f800000u) == 0x7f800000u) return bits;  // infinities and NaN as they are
  return (bits + 0x1000u) & 0xffffe000u;                 // half of the dropped bits rounds the magnitude up
}

}  // namespace switchyard::emulation
