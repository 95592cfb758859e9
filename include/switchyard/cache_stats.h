// What the kernel cache did in this process (Context::counters()): disk hits, misses, compiles.
#pragma once

#include <cstdint>

namespace switchyard {

struct StoreCounters {
  uint64_t disk_hits = 0;
  uint64_t misses = 0;
  uint64_t compiles = 0;
  double compile_ms = 0;
  uint64_t corrupt_entries = 0;
};

}  // namespace switchyard
