#include "jit/compile_error.h"

#include <regex>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "templates/embedded_templates.h"

namespace switchyard {
namespace {

struct ErrorLocation {
  std::string file;
  int line = 0;
};

// First "file:line:" (clang) or "file(line):" (NVRTC) location tagged as an error in the log.
ErrorLocation first_error(const std::string& log) {
  static const std::regex clang_style(R"(([^\s:()]+):(\d+):\d+: (fatal )?error)");
  static const std::regex nvrtc_style(R"(([^\s:()]+)\((\d+)\): (catastrophic )?error)");
  std::smatch match;
  if (std::regex_search(log, match, clang_style) || std::regex_search(log, match, nvrtc_style)) {
    return {match[1].str(), std::stoi(match[2].str())};
  }
  return {};
}

}  // namespace

std::string numbered_excerpt(const std::string& text, int line, int context) {
  std::istringstream lines(text);
  std::ostringstream out;
  std::string current;
  for (int number = 1; std::getline(lines, current); ++number) {
    if (number < line - context || number > line + context) continue;
    out << (number == line ? ">" : " ")
        << (number < 10     ? "   "
            : number < 100  ? "  "
            : number < 1000 ? " "
                            : "")
        << number << " | " << current << "\n";
  }
  return out.str();
}

void throw_compile_error(const std::string& compiler, const KernelSpec& spec, const Source& source,
                         const std::string& options, const std::string& log) {
  std::ostringstream message;
  message << compiler << " failed to compile " << spec.to_string() << "\n";
  ErrorLocation where = first_error(log);
  std::string excerpt;
  std::string excerpt_name = source.file_name;
  if (where.line > 0 && where.file.find(source.file_name) == std::string::npos) {
    // The error is inside a template header: show that header around the line.
    for (const auto& header : source.headers) {
      if (where.file.size() >= header.size() &&
          where.file.compare(where.file.size() - header.size(), header.size(), header) == 0) {
        excerpt = numbered_excerpt(std::string(templates::find_embedded(header)->contents), where.line, 4);
        excerpt_name = header;
      }
    }
  }
  if (excerpt.empty())
    excerpt = numbered_excerpt(source.text, where.line > 0 ? where.line : 1, where.line > 0 ? 4 : 1000);
  message << "--- " << excerpt_name << " ---\n" << excerpt;
  if (excerpt_name != source.file_name)
    message << "--- " << source.file_name << " ---\n" << numbered_excerpt(source.text, 1, 1000);
  message << "--- options ---\n" << options << "\n--- " << compiler << " log ---\n" << log;
  throw CompileError(message.str(), log, options);
}

}  // namespace switchyard
