#include "templates/embedded_templates.h"

namespace switchyard::templates {

const EmbeddedFile* find_embedded(std::string_view path) {
  for (const auto& file : embedded_files()) {
    if (file.path == path) return &file;
  }
  return nullptr;
}

}  // namespace switchyard::templates
