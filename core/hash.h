// Content hashes (xxHash): 128-bit hex digests for cache keys, 64-bit for file checksums.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace switchyard {

/// XXH3-128 of `data` as 32 lowercase hex digits.
std::string hash128_hex(std::string_view data);
/// XXH3-64 of `data` as 16 lowercase hex digits.
std::string hash64_hex(std::string_view data);
uint64_t hash64(std::string_view data);

}  // namespace switchyard
