// Capacity and alignment with Tutel's semantics (tutel-semantics 1.2 step 5, 1.3 step 13).
#pragma once

#include <cstdint>

namespace switchyard {

/// Slots per expert. spe = ceil(tokens / experts); cf > 0: k * floor(cf * spe); cf == 0: the
/// largest expert count (dropless, padded); cf < 0: min(largest count, k * floor(|cf| * spe));
/// then rounded up to a multiple of `alignment`. No minimum: a small cf can give 0.
int64_t moe_capacity(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor, int64_t max_count,
                     int64_t alignment);

/// Alignment of C: ceil(sharded * overlap / mega) * mega (mega = max(megablocks, 1)), raised to
/// a multiple of 128 when it exceeds 256.
int64_t moe_alignment(int64_t sharded_count, int64_t overlap_degree, int64_t megablocks_size);

}  // namespace switchyard
