// Software prefetch of the CPU GEMM's next B panel (gemm.hpp), paced over the micro-kernels' steps.
#pragma once

namespace switchyard {
namespace cpu {

// The next B panel prefetched into L2 a slice at a time while the micro-kernels run on this
// one's (a span of panels also fetches its rows ahead as it is packed: prefetch_rows.hpp), so B streams from memory
// under the arithmetic instead of stalling its packing: `rows` runs of `row_bytes` at a pitch of `pitch` bytes (B's
// rows of a column tile, or with trans_b its columns' runs along the reduction). Packing read a row pitch apart per
// step and cost a tenth of the micro-kernels' time, a small batch's weights most of it.
struct PanelPrefetch {
  const char* row = nullptr;  // the row the next line is in
  long pitch = 0;
  long line_count = 0;  // cache lines in all
  int lines_per_row = 0;
  long issued = 0;
  int line_in_row = 0;  // NOTE: counters, not a division per line: that cost as much as the arithmetic
  int every = 1;        // pace(): `lines_each` lines every `every` steps, `countdown` to the next
  long lines_each = 0;
  int countdown = 1;

  // `share` of the lines is fetched per step: the lines over `steps`.
  long start(const void* first, long row_pitch, int rows, long row_bytes, long steps) {
    const long misaligned = reinterpret_cast<unsigned long>(first) % 64;
    row = static_cast<const char*>(first) - misaligned;
    pitch = row_pitch;
    lines_per_row = row_bytes > 0 ? static_cast<int>((misaligned + row_bytes + 63) / 64) : 0;
    line_count = static_cast<long>(rows) * lines_per_row;
    issued = 0;
    line_in_row = 0;
    return steps > 0 ? (line_count + steps - 1) / steps : line_count;
  }
  // Nothing (more) to fetch: the last panel of a chunk. Returns the share, 0.
  long stop() {
    issued = line_count = 0;
    return 0;
  }
  // Spreads `share` lines over each micro-kernel call of `steps` steps: issued at once per call,
  // the prefetches filled the miss queues and stalled the micro-kernel (a small batch's bfloat16
  // forward took 185 ms, spread 151). At least kMinRun steps apart, so the micro-kernel's runs
  // between them are loops of FMAs, not a branch per step.
  static constexpr int kMinRun = 8;
  void pace(long share, int steps) {
    every = share == 0 ? steps + 1 : share >= steps ? 1 : steps / static_cast<int>(share);
    if (share > 0 && every < kMinRun) every = kMinRun;
    lines_each = share == 0 ? 0 : (share * every + steps - 1) / steps;
    countdown = every;
  }
  // Steps until the next prefetch (paced_steps).
  int due() const { return countdown; }
  // `steps` steps are about to run: issues the prefetch they reach.
  void ran(int steps) {
    countdown -= steps;
    if (countdown <= 0) {
      countdown = every;
      step(lines_each);
    }
  }
  // Up to `share` of the lines not yet fetched.
  void step(long share) {
    const long end = issued + share < line_count ? issued + share : line_count;
    for (; issued < end; ++issued) {
      __builtin_prefetch(row + line_in_row * 64, 0, 2);
      if (++line_in_row == lines_per_row) {
        line_in_row = 0;
        row += pitch;
      }
    }
  }
};

}  // namespace cpu
}  // namespace switchyard
