#include "jit/nvrtc_compiler.h"

#include <chrono>

#include "core/error.h"
#include "jit/compile_error.h"
#include "jit/nvrtc_library.h"
#include "templates/embedded_templates.h"

namespace switchyard {
namespace {

// Owns an nvrtcProgram.
class Program {
 public:
  Program(const NvrtcLibrary& nvrtc, const Source& source) : nvrtc_(nvrtc) {
    std::vector<const char*> names;
    std::vector<const char*> contents;
    for (const auto& header : source.headers) {
      const auto* file = templates::find_embedded(header);
      SY_INTERNAL_CHECK(file != nullptr) << header;
      names.push_back(file->path.data());
      contents.push_back(file->contents.data());
    }
    nvrtc_check(nvrtc_,
                nvrtc_.nvrtcCreateProgram(&program_, source.text.c_str(), source.file_name.c_str(),
                                          static_cast<int>(names.size()), contents.data(), names.data()),
                "nvrtcCreateProgram");
  }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  ~Program() {
    if (program_ != nullptr) nvrtc_.nvrtcDestroyProgram(&program_);
  }
  nvrtcProgram get() const { return program_; }

  std::string log() const {
    size_t size = 0;
    nvrtc_check(nvrtc_, nvrtc_.nvrtcGetProgramLogSize(program_, &size), "nvrtcGetProgramLogSize");
    std::string text(size, '\0');
    nvrtc_check(nvrtc_, nvrtc_.nvrtcGetProgramLog(program_, text.data()), "nvrtcGetProgramLog");
    while (!text.empty() && (text.back() == '\0' || text.back() == '\n')) text.pop_back();
    return text;
  }

  std::string cubin() const {
    size_t size = 0;
    nvrtc_check(nvrtc_, nvrtc_.nvrtcGetCUBINSize(program_, &size), "nvrtcGetCUBINSize");
    std::string bytes(size, '\0');
    nvrtc_check(nvrtc_, nvrtc_.nvrtcGetCUBIN(program_, bytes.data()), "nvrtcGetCUBIN");
    return bytes;
  }

  std::string ptx() const {
    size_t size = 0;
    nvrtc_check(nvrtc_, nvrtc_.nvrtcGetPTXSize(program_, &size), "nvrtcGetPTXSize");
    std::string text(size, '\0');
    nvrtc_check(nvrtc_, nvrtc_.nvrtcGetPTX(program_, text.data()), "nvrtcGetPTX");
    while (!text.empty() && text.back() == '\0') text.pop_back();
    return text;
  }

 private:
  const NvrtcLibrary& nvrtc_;
  nvrtcProgram program_ = nullptr;
};

// Compiles once; returns the log; throws CompileError on failure.
std::string compile_program(const Program& program, const std::vector<std::string>& options, const KernelSpec& spec,
                            const Source& source) {
  const NvrtcLibrary& nvrtc = NvrtcLibrary::get();
  std::vector<const char*> argv;
  for (const auto& option : options) argv.push_back(option.c_str());
  nvrtcResult result = nvrtc.nvrtcCompileProgram(program.get(), static_cast<int>(argv.size()), argv.data());
  std::string log = program.log();
  if (result != 0) throw_compile_error("nvrtc", spec, source, join_options(options), log);
  return log;
}

}  // namespace

std::string NvrtcCompiler::identity() const {
  const NvrtcLibrary& nvrtc = NvrtcLibrary::get();
  return "nvrtc-" + std::to_string(nvrtc.major) + "." + std::to_string(nvrtc.minor);
}

std::vector<std::string> NvrtcCompiler::options(const Target& target) const {
  SY_INTERNAL_CHECK(target.is_cuda()) << target.to_string();
  return {"--gpu-architecture=" + target.to_string(), "--std=c++17", "-Xptxas=-v", "-lineinfo"};
}

Binary NvrtcCompiler::compile(const KernelSpec& spec, const Source& source) const {
  const NvrtcLibrary& nvrtc = NvrtcLibrary::get();
  auto start = std::chrono::steady_clock::now();
  Binary binary;
  binary.spec_text = spec.to_string();
  binary.loadable = "kernel.cubin";
  {
    Program program(nvrtc, source);
    nvrtc_check(nvrtc, nvrtc.nvrtcAddNameExpression(program.get(), source.entry.c_str()), "nvrtcAddNameExpression");
    binary.log = compile_program(program, options(spec.target), spec, source);
    const char* lowered = nullptr;
    nvrtc_check(nvrtc, nvrtc.nvrtcGetLoweredName(program.get(), source.entry.c_str(), &lowered), "nvrtcGetLoweredName");
    binary.symbol = lowered;
    binary.artifacts["kernel.cubin"] = program.cubin();
  }
  {
    // NOTE: a program compiled for a real sm_XX carries no PTX, so PTX comes from a second,
    // virtual-architecture compile (compute_XX) of the same source.
    Program program(nvrtc, source);
    std::vector<std::string> ptx_options = options(spec.target);
    ptx_options[0] = "--gpu-architecture=compute_" + spec.target.to_string().substr(3);
    ptx_options.erase(ptx_options.begin() + 2);  // -Xptxas=-v is meaningless without ptxas
    compile_program(program, ptx_options, spec, source);
    binary.artifacts["kernel.ptx"] = program.ptx();
  }
  SY_INTERNAL_CHECK(binary.artifacts["kernel.cubin"].rfind("\x7f"
                                                           "ELF",
                                                           0) == 0)
      << "NVRTC returned a CUBIN that is not an ELF image for " << binary.spec_text;
  binary.compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return binary;
}

}  // namespace switchyard
