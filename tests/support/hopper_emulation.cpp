#include "tests/support/hopper_emulation.h"

#include <array>
#include <memory>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace switchyard::emulation {
namespace {

constexpr unsigned kSwizzleBytes = 128;
constexpr unsigned kSwizzlePeriod = 1024;  // 8 rows of 128 bytes
constexpr uint32_t kMapMagic = 0x5459414du;
constexpr unsigned kReleaseLagRounds = 3;

// What our tma_descriptor writes into the opaque 128 bytes.
struct TensorMap {
  const unsigned char* base;
  unsigned long long dims[3];
  unsigned long long strides[2];
  unsigned box[3];
  unsigned element_bytes;
  uint32_t magic;
};
static_assert(sizeof(TensorMap) <= sizeof(kernels::TmaDescriptor));

// An mbarrier's state, kept in its 8 bytes of shared memory.
struct Barrier {
  uint16_t expected;  // arrivals a phase takes
  uint16_t pending;   // arrivals still missing in this phase
  uint32_t tx : 31;   // transaction bytes still to come
  uint32_t phase : 1;
};
static_assert(sizeof(Barrier) == sizeof(unsigned long long));

// Per block: the barriers initialized, and each thread's wgmma and bulk (TMA store) groups.
struct BlockState {
  std::unordered_set<const void*> barriers;
  struct Thread {
    AsyncGroups wgmma, bulk;
  };
  std::vector<Thread> threads;
};

// At a block's end every asynchronous operation a thread issued must have been waited for: a
// TMA store still reading shared memory, or a wgmma still writing registers, after the block
// exits is undefined on a GPU (its output would be lost or torn).
void check_groups_waited(const BlockState& state) {
  for (size_t t = 0; t < state.threads.size(); ++t) {
    const BlockState::Thread& thread = state.threads[t];
    SY_CHECK(thread.bulk.idle()) << "emulated block " << block_index.x << ", thread " << t
                                 << ": TMA stores issued but never waited for "
                                 << "(cp.async.bulk.wait_group) before the block ended";
    SY_CHECK(thread.wgmma.idle()) << "emulated block " << block_index.x << ", thread " << t
                                  << ": wgmma issued but never waited for (wgmma.wait_group) before the block ended";
  }
}

BlockState& block_state() {
  return per_block(check_groups_waited);
}

BlockState::Thread& this_thread() {
  BlockState& state = block_state();
  state.threads.resize(block_dim.x);
  return state.threads[thread_index.x];
}

Barrier load_barrier(const unsigned long long* barrier) {
  SY_CHECK(block_state().barriers.count(barrier) != 0)
      << "emulated mbarrier at shared address " << shared_window_offset(barrier) << " used before mbarrier.init";
  Barrier state;
  std::memcpy(&state, barrier, sizeof(state));
  return state;
}

void store_barrier(unsigned long long* barrier, Barrier state) {
  if (state.pending == 0 && state.tx == 0) {  // the phase completes; the next one begins
    state.phase ^= 1;
    state.pending = state.expected;
  }
  std::memcpy(barrier, &state, sizeof(state));
  note_progress();
}

// Where byte `offset` of a 128-byte swizzled layout really is: the 16-byte chunk index (bits
// 4-6) XOR the row within the 1024-byte period (bits 7-9).
unsigned swizzled(unsigned offset) {
  return offset ^ (((offset >> 7) & 7u) << 4);
}

// One wgmma operand, read through its shared-memory matrix descriptor: element (mn, k) of an
// m64/nN x k slice, K-major (rows of mn, 128-byte swizzled rows of K, 8-row groups `stride`
// apart) or MN-major (rows of k holding 128 bytes of mn each, 8-row groups `stride` apart,
// 128-byte wide chunks of mn `leading` apart).
struct Operand {
  unsigned start, leading, stride;
  bool k_major;
  ElementLoad load;
  unsigned element_bytes;

  Operand(uint64_t descriptor, bool k_major_, ElementLoad load_, unsigned element_bytes_)
      : start(static_cast<unsigned>(descriptor & 0x3FFFu) << 4),
        leading(static_cast<unsigned>((descriptor >> 16) & 0x3FFFu) << 4),
        stride(static_cast<unsigned>((descriptor >> 32) & 0x3FFFu) << 4),
        k_major(k_major_),
        load(load_),
        element_bytes(element_bytes_) {
    SY_CHECK(descriptor >> 62 == 1) << "emulated wgmma descriptor " << descriptor
                                    << ": only the 128-byte swizzle (layout type 1) is emulated";
    SY_CHECK(((descriptor >> 49) & 7u) == 0) << "emulated wgmma descriptor " << descriptor
                                             << ": a base offset is not emulated (tiles are 1024-byte aligned)";
  }
  float at(unsigned mn, unsigned k) const {
    const unsigned per_row = kSwizzleBytes / element_bytes;
    const unsigned offset = k_major ? start + mn / 8 * stride + mn % 8 * kSwizzleBytes + k * element_bytes
                                    : start + mn / per_row * leading + k / 8 * stride + k % 8 * kSwizzleBytes +
                                          mn % per_row * element_bytes;
    return load(shared_window_pointer(swizzled(offset)));
  }
};

TensorMap tensor_map(const void* descriptor, const char* what) {
  TensorMap map;
  std::memcpy(&map, descriptor, sizeof(map));
  SY_CHECK(map.magic == kMapMagic) << "emulated TMA " << what
                                   << ": the descriptor was not made by emulation::tma_descriptor";
  return map;
}

// The shared address of a TMA box, which the 128-byte swizzle needs 1024-byte aligned.
unsigned box_offset(const void* shared, const char* what) {
  const unsigned offset = shared_window_offset(shared);
  SY_CHECK(offset % kSwizzlePeriod == 0) << "emulated TMA " << what << " shared address " << offset
                                         << ": the 128-byte swizzle needs 1024-byte alignment";
  return offset;
}

// Calls visit(element, shared offset) for each element of the box at `coords`, in the box's
// order: the tensor's element, or null where it lies outside the tensor, and where the element
// sits in the swizzled box at shared offset `box`. Returns the box's bytes.
template <typename Visit>
unsigned for_each_in_box(const TensorMap& map, unsigned box, const std::array<int, 3>& coords, Visit visit) {
  unsigned offset = box;
  for (unsigned z = 0; z < map.box[2]; ++z)
    for (unsigned y = 0; y < map.box[1]; ++y)
      for (unsigned x = 0; x < map.box[0]; ++x, offset += map.element_bytes) {
        const long long at[3] = {coords[0] + static_cast<long long>(x), coords[1] + static_cast<long long>(y),
                                 coords[2] + static_cast<long long>(z)};
        bool inside = true;
        for (int d = 0; d < 3; ++d) inside = inside && at[d] >= 0 && at[d] < static_cast<long long>(map.dims[d]);
        unsigned char* element = inside ? const_cast<unsigned char*>(map.base) + at[0] * map.element_bytes +
                                              at[1] * map.strides[0] + at[2] * map.strides[1]
                                        : nullptr;
        visit(element, swizzled(offset));
      }
  return offset - box;
}

}  // namespace

kernels::TmaDescriptor tma_descriptor(const void* base, const unsigned long long (&dims)[3],
                                      const unsigned long long (&strides)[2], const unsigned (&box)[3],
                                      unsigned element_bytes) {
  SY_CHECK(element_bytes == 2 || element_bytes == 4)
      << "emulated cuTensorMapEncodeTiled: elements of " << element_bytes << " bytes; expected 2 or 4";
  SY_CHECK(reinterpret_cast<uintptr_t>(base) % 16 == 0 && strides[0] % 16 == 0 && strides[1] % 16 == 0)
      << "emulated cuTensorMapEncodeTiled: the base " << base << " and byte strides " << strides[0] << ", "
      << strides[1] << " must be multiples of 16";
  SY_CHECK(box[0] * element_bytes <= kSwizzleBytes)
      << "emulated cuTensorMapEncodeTiled: an inner box of " << box[0] * element_bytes
      << " bytes; the 128-byte swizzle takes at most 128";
  for (int d = 0; d < 3; ++d)
    SY_CHECK(dims[d] >= 1 && box[d] >= 1 && box[d] <= 256)
        << "emulated cuTensorMapEncodeTiled: dim " << d << " of " << dims[d] << " with a box of " << box[d];
  TensorMap map{static_cast<const unsigned char*>(base),
                {dims[0], dims[1], dims[2]},
                {strides[0], strides[1]},
                {box[0], box[1], box[2]},
                element_bytes,
                kMapMagic};
  kernels::TmaDescriptor descriptor{};
  std::memcpy(&descriptor, &map, sizeof(map));
  return descriptor;
}

void mbarrier_init(unsigned long long* barrier, unsigned count) {
  SY_CHECK(count >= 1 && count < (1u << 16)) << "emulated mbarrier.init with a count of " << count;
  block_state().barriers.insert(barrier);
  const Barrier state{static_cast<uint16_t>(count), static_cast<uint16_t>(count), 0, 0};
  std::memcpy(barrier, &state, sizeof(state));
}

void mbarrier_arrive(unsigned long long* barrier, unsigned tx_bytes) {
  Barrier state = load_barrier(barrier);
  SY_CHECK(state.pending > 0) << "emulated mbarrier at " << shared_window_offset(barrier) << ": arrival past its count";
  state.tx += tx_bytes;
  --state.pending;
  store_barrier(barrier, state);
  // A plain arrival releases something (a consumed stage): the releasing thread lags a few rounds,
  // so that a waiter (a producer refilling the stage) runs first, as it may on a GPU. An arrival
  // announcing bytes goes straight on to the copies it announced.
  if (tx_bytes == 0) spin(kReleaseLagRounds);
}

bool mbarrier_phase_done(const unsigned long long* barrier, unsigned parity) {
  return load_barrier(barrier).phase != (parity & 1u);
}

void tma_load_3d(void* shared, const void* descriptor, unsigned long long* barrier, int c0, int c1, int c2) {
  const TensorMap map = tensor_map(descriptor, "load");
  const unsigned destination = box_offset(shared, "load into");
  const unsigned bytes = for_each_in_box(map, destination, {c0, c1, c2}, [&](unsigned char* element, unsigned offset) {
    unsigned char* to = shared_window_pointer(offset);
    if (element != nullptr)
      std::memcpy(to, element, map.element_bytes);
    else
      std::memset(to, 0, map.element_bytes);
  });
  Barrier state = load_barrier(barrier);
  SY_CHECK(state.tx >= bytes) << "emulated TMA load of " << bytes << " bytes completes on a barrier expecting "
                              << state.tx << " (arrive.expect_tx must announce them first)";
  state.tx -= bytes;
  store_barrier(barrier, state);
}

void tma_store_3d(const void* descriptor, const void* shared, int c0, int c1, int c2) {
  const TensorMap map = tensor_map(descriptor, "store");
  const unsigned source = box_offset(shared, "store from");
  const size_t bytes = size_t{map.box[0]} * map.box[1] * map.box[2] * map.element_bytes;
  // The copy engine reads the box at some time between the issue and the wait: what it reads
  // must be the same at both ends.
  const unsigned char* box = shared_window_pointer(source);
  auto issued = std::make_shared<std::vector<unsigned char>>(box, box + bytes);
  this_thread().bulk.open.push_back([=] {
    SY_CHECK(std::memcmp(issued->data(), shared_window_pointer(source), bytes) == 0)
        << "emulated TMA store from shared address " << source
        << ": the box changed between the store's issue and its wait (written before the store read it)";
    for_each_in_box(map, source, {c0, c1, c2}, [&](unsigned char* element, unsigned offset) {
      if (element != nullptr) std::memcpy(element, issued->data() + (offset - source), map.element_bytes);
    });
  });
}

void bulk_commit_group() {
  this_thread().bulk.commit();
}

void bulk_wait_group(int pending) {
  this_thread().bulk.wait(pending);
}

void wgmma_issue(float* d, int width, bool a_k_major, bool b_k_major, ElementLoad load, unsigned element_bytes,
                 uint64_t desc_a, uint64_t desc_b, bool accumulate) {
  SY_CHECK(block_dim.x % 128 == 0) << "emulated wgmma: blocks of whole warpgroups, not " << block_dim.x;
  SY_CHECK(element_bytes == 2 || (element_bytes == 4 && a_k_major && b_k_major))
      << "emulated wgmma: elements of " << element_bytes << " bytes (TF32 reads both operands K-major)";
  const Operand a(desc_a, a_k_major, load, element_bytes), b(desc_b, b_k_major, load, element_bytes);
  const unsigned depth = 32 / element_bytes;  // k16, or TF32's k8
  const unsigned warp = thread_index.x % 128 / 32, lane = thread_index.x % 32;
  // m64nNk16's accumulators: warp w holds rows 16w..16w+15; per 8 columns i, a thread holds
  // (row lane/4, columns 2*(lane%4) + 0, 1), then the same 8 rows below.
  this_thread().wgmma.open.push_back([=] {
    for (int i = 0; i < width / 8; ++i)
      for (unsigned half = 0; half < 2; ++half)
        for (unsigned pair = 0; pair < 2; ++pair) {
          const unsigned row = warp * 16 + lane / 4 + half * 8, col = i * 8 + lane % 4 * 2 + pair;
          float& sum = d[4 * i + 2 * half + pair];
          if (!accumulate) sum = 0.0f;
          for (unsigned k = 0; k < depth; ++k) sum += a.at(row, k) * b.at(col, k);
        }
  });
}

void wgmma_commit() {
  this_thread().wgmma.commit();
}

float tf32_value(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits &= ~uint32_t{0x1FFF};
  std::memcpy(&value, &bits, sizeof(bits));
  return value;
}

void wgmma_wait(int pending) {
  this_thread().wgmma.wait(pending);
  // wait_group is .sync.aligned: no lane goes on (to release a stage, say) before its whole warp
  // has its results, which on a GPU come from reads made before the wait returns.
  warp_sync();
}

}  // namespace switchyard::emulation
