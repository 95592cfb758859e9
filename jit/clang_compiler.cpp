#include "jit/clang_compiler.h"

#include <clang/Basic/Diagnostic.h>
#include <clang/Basic/DiagnosticOptions.h>
#include <clang/CodeGen/CodeGenAction.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/CompilerInvocation.h>
#include <clang/Frontend/TextDiagnosticPrinter.h>
#include <llvm/ADT/SmallString.h>
#include <llvm/ADT/Triple.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/VirtualFileSystem.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include <chrono>
#include <mutex>

#include "core/error.h"
#include "jit/compile_error.h"
#include "templates/embedded_templates.h"

namespace switchyard {
namespace {

constexpr const char* kSourceRoot = "/switchyard-jit/";
constexpr const char* kIncludeRoot = "/switchyard-jit/include";

// NOTE: without the target initialised, clang silently produces unvectorized code.
void initialize_native_target_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

// Every target this LLVM was built with, for a compiler whose triple is another architecture's
// (kernels compiled here for Arm machines: checked and exported, never run here).
void initialize_all_targets_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
    llvm::InitializeAllAsmParsers();
  });
}

void initialize_llvm_for(const std::string& triple) {
  initialize_native_target_once();
  if (llvm::Triple(triple).getArch() != llvm::Triple(llvm::sys::getProcessTriple()).getArch())
    initialize_all_targets_once();
}

std::unique_ptr<llvm::TargetMachine> make_target_machine(const CpuTarget& cpu) {
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(cpu.triple, error);
  if (target == nullptr) SY_THROW(BackendError) << "LLVM has no target for " << cpu.triple << ": " << error;
  llvm::TargetOptions options;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(cpu.triple, cpu.cpu, cpu.feature_string(),
                                                                          options, llvm::Reloc::PIC_, std::nullopt,
                                                                          llvm::CodeGenOpt::Aggressive));
}

std::string emit(llvm::TargetMachine& machine, llvm::Module& module, llvm::CodeGenFileType kind) {
  llvm::SmallString<0> buffer;
  llvm::raw_svector_ostream stream(buffer);
  llvm::legacy::PassManager passes;
  if (machine.addPassesToEmitFile(passes, stream, nullptr, kind)) {
    SY_THROW(BackendError) << "LLVM cannot emit this file type for " << machine.getTargetTriple().str();
  }
  passes.run(module);
  return std::string(buffer.data(), buffer.size());
}

llvm::IntrusiveRefCntPtr<llvm::vfs::InMemoryFileSystem> source_tree(const Source& source) {
  auto files = llvm::makeIntrusiveRefCnt<llvm::vfs::InMemoryFileSystem>();
  files->addFile(std::string(kSourceRoot) + source.file_name, 0, llvm::MemoryBuffer::getMemBufferCopy(source.text));
  for (const auto& header : source.headers) {
    const auto* file = templates::find_embedded(header);
    SY_INTERNAL_CHECK(file != nullptr) << header;
    files->addFile(
        std::string(kIncludeRoot) + "/" + header, 0,
        llvm::MemoryBuffer::getMemBuffer(llvm::StringRef(file->contents.data(), file->contents.size()), header, false));
  }
  return files;
}

}  // namespace

std::string llvm_version() {
  return LLVM_VERSION_STRING;
}

bool cpu_jit_built() {
  return true;
}

ClangCompiler::ClangCompiler(const std::string& requested_cpu)
    : ClangCompiler(resolve_cpu_target(HostCpu::detect(), requested_cpu)) {}

ClangCompiler::ClangCompiler(CpuTarget target) : target_(std::move(target)) {
  initialize_llvm_for(target_.triple);
}

std::string ClangCompiler::identity() const {
  return "clang-llvm-" + llvm_version() + " " + target_.triple + " cpu=" + target_.cpu +
         " features=" + target_.feature_string();
}

std::string ClangCompiler::why_kernels_cannot_run_here() const {
  if (target_.missing_on_host.empty()) return {};
  std::string missing;
  for (const auto& feature : target_.missing_on_host) missing += (missing.empty() ? "" : ",") + feature;
  return "CPU kernels are compiled for " + target_.reason + ", which needs " + missing +
         " that this host lacks; they can be warmed and exported here but not run (unset SWITCHYARD_CPU "
         "to compile for this host)";
}

std::vector<std::string> ClangCompiler::options(const Target& target) const {
  SY_INTERNAL_CHECK(target.is_cpu()) << target.to_string();
  // NOTE: LLVM tunes Skylake-SP and later Intel CPUs to prefer 256-bit vectors, which split the
  // templates' 64-byte vector types into ymm pairs: the GEMM ran at 66 instead of 94 GFLOP/s on
  // one Sapphire Rapids core. The templates choose their widths, so let them have zmm.
  std::vector<std::string> options = {"-O3",
                                      "-std=c++20",
                                      "-vectorize-loops",
                                      "-vectorize-slp",
                                      "-fno-rtti",
                                      "-ffp-contract=on",
                                      "-nostdsysteminc",
                                      "-nobuiltininc",
                                      "-mrelocation-model",
                                      "pic",
                                      "-pic-level",
                                      "2"};
  if (target_.triple.rfind("x86_64", 0) == 0) options.push_back("-mprefer-vector-width=512");
  return options;
}

Binary ClangCompiler::compile(const KernelSpec& spec, const Source& source) const {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> args = options(spec.target);
  for (const std::string& extra : {std::string("-triple"), target_.triple, std::string("-target-cpu"), target_.cpu,
                                   std::string("-I"), std::string(kIncludeRoot), std::string("-x"), std::string("c++"),
                                   std::string(kSourceRoot) + source.file_name}) {
    args.push_back(extra);
  }
  std::vector<std::string> feature_args;
  for (const std::string& feature : target_.features) {
    feature_args.push_back("-target-feature");
    feature_args.push_back(feature);
  }
  args.insert(args.end() - 1, feature_args.begin(), feature_args.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());

  std::string log;
  llvm::raw_string_ostream log_stream(log);
  auto diag_options = llvm::makeIntrusiveRefCnt<clang::DiagnosticOptions>();
  auto* printer = new clang::TextDiagnosticPrinter(log_stream, diag_options.get());
  clang::CompilerInstance compiler;
  compiler.createDiagnostics(printer, /*ShouldOwnClient=*/true);
  auto invocation = std::make_shared<clang::CompilerInvocation>();
  bool parsed = clang::CompilerInvocation::CreateFromArgs(*invocation, argv, compiler.getDiagnostics());
  compiler.setInvocation(invocation);
  compiler.createFileManager(source_tree(source));

  llvm::LLVMContext context;
  clang::EmitLLVMOnlyAction action(&context);
  bool ok = parsed && compiler.ExecuteAction(action);
  std::unique_ptr<llvm::Module> module = ok ? action.takeModule() : nullptr;
  log_stream.flush();
  if (module == nullptr) throw_compile_error("clang", spec, source, join_options(options(spec.target)), log);

  auto machine = make_target_machine(target_);
  module->setDataLayout(machine->createDataLayout());
  Binary binary;
  binary.spec_text = spec.to_string();
  binary.symbol = source.entry;
  binary.loadable = "kernel.o";
  binary.log = log;
  {
    std::string ir;
    llvm::raw_string_ostream ir_stream(ir);
    module->print(ir_stream, nullptr);
    ir_stream.flush();
    binary.artifacts["kernel.ll"] = ir;
  }
  // NOTE: code generation mutates the module, so the assembly comes from a clone.
  std::unique_ptr<llvm::Module> clone = llvm::CloneModule(*module);
  binary.artifacts["kernel.s"] = emit(*machine, *clone, llvm::CGFT_AssemblyFile);
  binary.artifacts["kernel.o"] = emit(*machine, *module, llvm::CGFT_ObjectFile);
  binary.compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return binary;
}

}  // namespace switchyard
