#include "runtime/orc_loader.h"

#include <llvm/Demangle/Demangle.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Object/SymbolSize.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>

#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "runtime/cpu_scratch.h"

namespace switchyard {
namespace {

std::string to_text(llvm::Error error) {
  std::string text;
  llvm::handleAllErrors(std::move(error), [&](const llvm::ErrorInfoBase& info) { text += info.message(); });
  return text;
}

struct FunctionSymbol {
  std::string name;
  uint64_t section_offset = 0;
  uint64_t size = 0;
  uint64_t section = 0;  // the section's index in the object
  bool global = false;
};

// The object's functions with their sizes, where they sit in their sections.
std::vector<FunctionSymbol> function_symbols(const std::string& object, const std::string& label) {
  std::vector<FunctionSymbol> out;
  auto file = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(object, label));
  if (!file) {
    llvm::consumeError(file.takeError());
    return out;
  }
  using llvm::expectedToOptional;
  for (const auto& [symbol, size] : llvm::object::computeSymbolSizes(**file)) {
    const auto type = expectedToOptional(symbol.getType());
    const auto name = expectedToOptional(symbol.getName());
    const auto offset = expectedToOptional(symbol.getAddress());  // section-relative in a relocatable object
    const auto section = expectedToOptional(symbol.getSection());
    const auto flags = expectedToOptional(symbol.getFlags());
    if (!type || !name || !offset || !section || !flags || *type != llvm::object::SymbolRef::ST_Function || size == 0 ||
        *section == (*file)->section_end())
      continue;
    out.push_back(
        {name->str(), *offset, size, (*section)->getIndex(), (*flags & llvm::object::BasicSymbolRef::SF_Global) != 0});
  }
  return out;
}

// Appends "start size name" lines for the kernel's functions. Global ones are looked up by name;
// local ones take their offset from a global function of the same section (the section is
// loaded whole). A map that cannot be written costs a warning, never the load.
void write_perf_map(llvm::orc::LLJIT& jit, llvm::orc::JITDylib& dylib, const std::string& object,
                    const std::string& label) {
  const std::vector<FunctionSymbol> functions = function_symbols(object, label);
  std::map<uint64_t, uint64_t> section_base;  // section index -> its load address
  std::vector<std::pair<const FunctionSymbol*, uint64_t>> placed;
  for (const FunctionSymbol& f : functions) {
    if (!f.global) continue;
    auto address = jit.lookup(dylib, f.name);
    if (!address) {
      llvm::consumeError(address.takeError());
      continue;
    }
    section_base[f.section] = address->getValue() - f.section_offset;
    placed.emplace_back(&f, address->getValue());
  }
  for (const FunctionSymbol& f : functions)
    if (!f.global && section_base.count(f.section)) placed.emplace_back(&f, section_base[f.section] + f.section_offset);
  const std::string path = perf_map_path();
  std::FILE* map = std::fopen(path.c_str(), "a");
  if (map == nullptr) return log_warn_once("perf-map", "cannot append to the perf map " + path);
  for (const auto& [f, address] : placed)
    std::fprintf(map, "%llx %llx %s [%s]\n", static_cast<unsigned long long>(address),
                 static_cast<unsigned long long>(f->size), llvm::demangle(f->name).c_str(), label.c_str());
  std::fclose(map);
}

}  // namespace

struct OrcLoader::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

OrcLoader::OrcLoader(bool perf_map) : impl_(std::make_unique<Impl>()), perf_map_(perf_map) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) SY_THROW(BackendError) << "cannot create the LLVM ORC JIT: " << to_text(jit.takeError());
  impl_->jit = std::move(*jit);
}

OrcLoader::~OrcLoader() = default;

CpuKernelFunction OrcLoader::load(const std::string& object, const std::string& symbol, const std::string& label) {
  std::lock_guard<std::mutex> lock(mutex_);
  llvm::orc::LLJIT& jit = *impl_->jit;
  auto dylib = jit.createJITDylib("sy_kernel_" + std::to_string(next_id_++));
  if (!dylib) SY_THROW(BackendError) << "cannot create a JITDylib for " << label << ": " << to_text(dylib.takeError());
  // NOTE: generated code may call memset/memcpy/expf; resolve those from the host process.
  auto host = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(jit.getDataLayout().getGlobalPrefix());
  if (!host) SY_THROW(BackendError) << "cannot expose host symbols to " << label << ": " << to_text(host.takeError());
  dylib->addGenerator(std::move(*host));
  // The kernels' per-thread working memory is ours, not the C library's: define it by address
  // (a symbol search of the process would depend on how the library was linked and exported).
  llvm::orc::SymbolMap ours;
  ours[jit.mangleAndIntern("sy_cpu_thread_scratch")] =
      llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(&sy_cpu_thread_scratch), llvm::JITSymbolFlags::Exported);
  if (auto error = dylib->define(llvm::orc::absoluteSymbols(std::move(ours))))
    SY_THROW(BackendError) << "cannot define the host symbols of " << label << ": " << to_text(std::move(error));
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(object, label);
  if (auto error = jit.addObjectFile(*dylib, std::move(buffer))) {
    SY_THROW(BackendError) << "cannot link the object of " << label << ": " << to_text(std::move(error));
  }
  auto address = jit.lookup(*dylib, symbol);
  if (!address)
    SY_THROW(BackendError) << "cannot find '" << symbol << "' in " << label << ": " << to_text(address.takeError());
  if (perf_map_) write_perf_map(jit, *dylib, object, label);
  return address->toPtr<CpuKernelFunction>();
}

}  // namespace switchyard
