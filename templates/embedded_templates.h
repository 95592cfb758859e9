// The kernel template headers, embedded into the library at build time.
#pragma once

#include <span>
#include <string_view>

namespace switchyard::templates {

struct EmbeddedFile {
  std::string_view path;  // include spelling, e.g. "switchyard/cpu/dispatch_encode.hpp"
  std::string_view contents;
};

/// Every embedded template file, sorted by path.
std::span<const EmbeddedFile> embedded_files();
/// The file with this include spelling, or nullptr.
const EmbeddedFile* find_embedded(std::string_view path);

}  // namespace switchyard::templates
