#include "jit/dump.h"

#include <unistd.h>

#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "core/settings.h"

namespace switchyard {
namespace {

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// SASS text of a CUBIN already written at `cubin_path`, or "" when nvdisasm is unavailable.
std::string disassemble(const std::string& cubin_path, const std::string& sass_path) {
  std::string tool = find_nvdisasm();
  if (tool.empty()) return "";
  std::string command = shell_quote(tool) + " -c " + shell_quote(cubin_path) + " > " + shell_quote(sass_path) + " 2>&1";
  if (std::system(command.c_str()) != 0) return "";
  return "kernel.sass";
}

}  // namespace

std::string find_nvdisasm() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string all = path;
    for (size_t pos = 0; pos <= all.size();) {
      size_t colon = all.find(':', pos);
      dirs.push_back(all.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos));
      if (colon == std::string::npos) break;
      pos = colon + 1;
    }
  }
  for (const std::string& root : cuda_roots()) dirs.push_back(root + "/bin");
  for (const auto& dir : dirs) {
    std::string candidate = fs::join(dir, "nvdisasm");
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

nlohmann::json dump_kernel(const std::string& dir, const KernelSpec& spec, const std::string& key, const Binary& binary,
                           const Source& source) {
  std::string relative = spec.target.to_string() + "/" + spec.family + "-" + key.substr(0, 12);
  std::string out = fs::join(dir, relative);
  SY_CHECK(fs::make_directories(out) && fs::is_writable_directory(out))
      << "cannot write the dump directory '" << out << "'; choose a writable --out or SWITCHYARD_DUMP_DIR";
  nlohmann::json files = nlohmann::json::array();
  fs::write_file(fs::join(out, source.file_name), source.text);
  files.push_back(relative + "/" + source.file_name);
  for (const auto& [name, bytes] : binary.artifacts) {
    fs::write_file(fs::join(out, name), bytes);
    files.push_back(relative + "/" + name);
  }
  if (binary.artifacts.count("kernel.cubin")) {
    std::string sass = disassemble(fs::join(out, "kernel.cubin"), fs::join(out, "kernel.sass"));
    if (!sass.empty()) files.push_back(relative + "/" + sass);
  }
  nlohmann::json info = {{"spec", spec.to_string()}, {"key", key},     {"target", spec.target.to_string()},
                         {"symbol", binary.symbol},  {"files", files}, {"compile_ms", binary.compile_ms},
                         {"log", binary.log}};
  fs::write_file(fs::join(out, "kernel.json"), info.dump(2));
  return info;
}

}  // namespace switchyard
