#include "jit/compiler.h"

namespace switchyard {

std::string join_options(const std::vector<std::string>& options) {
  std::string text;
  for (const auto& option : options) text += (text.empty() ? "" : " ") + option;
  return text;
}

}  // namespace switchyard
