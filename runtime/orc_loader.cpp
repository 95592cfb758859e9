#include "runtime/orc_loader.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>

#include "core/error.h"
#include "runtime/cpu_scratch.h"

namespace switchyard {
namespace {

std::string to_text(llvm::Error error) {
  std::string text;
  llvm::handleAllErrors(std::move(error), [&](const llvm::ErrorInfoBase& info) { text += info.message(); });
  return text;
}

}  // namespace

struct OrcLoader::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

OrcLoader::OrcLoader() : impl_(std::make_unique<Impl>()) {
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
  return address->toPtr<CpuKernelFunction>();
}

}  // namespace switchyard
