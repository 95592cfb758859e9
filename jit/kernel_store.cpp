#include "jit/kernel_store.h"

#include <ctime>

#include "core/error.h"
#include "core/log.h"
#include "jit/clang_compiler.h"
#include "jit/dump.h"
#include "jit/nvrtc_compiler.h"
#include "templates/embedded_templates.h"

namespace switchyard {

cache::CacheEntry to_cache_entry(const std::string& key, const Binary& binary, const Source& source,
                                 const cache::KeyParts& parts) {
  cache::CacheEntry entry;
  entry.key = key;
  entry.files = binary.artifacts;
  entry.files[source.file_name] = source.text;
  entry.meta = {{"spec", binary.spec_text},        {"symbol", binary.symbol},
                {"loadable", binary.loadable},     {"source_file", source.file_name},
                {"compile_ms", binary.compile_ms}, {"log", binary.log},
                {"key_parts", parts.to_json()},    {"created_unix", static_cast<int64_t>(std::time(nullptr))}};
  return entry;
}

Binary from_cache_entry(const cache::CacheEntry& entry) {
  Binary binary;
  const auto& meta = entry.meta;
  binary.spec_text = meta.value("spec", "");
  binary.symbol = meta.value("symbol", "");
  binary.loadable = meta.value("loadable", "");
  binary.log = meta.value("log", "");
  binary.compile_ms = meta.value("compile_ms", 0.0);
  std::string source_file = meta.value("source_file", "");
  for (const auto& [name, bytes] : entry.files) {
    if (name != source_file) binary.artifacts[name] = bytes;
  }
  SY_INTERNAL_CHECK(binary.artifacts.count(binary.loadable))
      << "cache entry " << entry.key << " lacks " << binary.loadable;
  return binary;
}

KernelStore::KernelStore(const Settings& settings)
    : settings_(settings), disk_(settings.cache_dir, settings.cache_mode, settings.cache_max_bytes) {}

KernelStore::~KernelStore() = default;

const Compiler& KernelStore::compiler_for(const Target& target) {
  std::lock_guard<std::mutex> lock(compilers_mutex_);
  auto& slot = target.is_cpu() ? clang_ : nvrtc_;
  if (!slot) {
    if (target.is_cpu())
      slot = std::make_unique<ClangCompiler>(settings_.cpu);
    else
      slot = std::make_unique<NvrtcCompiler>();
  }
  return *slot;
}

const CpuTarget& KernelStore::cpu_target() {
  return static_cast<const ClangCompiler&>(compiler_for(Target::cpu())).cpu_target();
}

cache::KeyParts KernelStore::key_parts(const KernelSpec& spec, const Source& source) {
  const Compiler& compiler = compiler_for(spec.target);
  cache::KeyParts parts;
  parts.add("spec", spec.to_string());
  parts.add("source", source.text);
  for (const auto& header : source.headers) {
    parts.add("header:" + header, std::string(templates::find_embedded(header)->contents));
  }
  parts.add("compiler", compiler.identity());
  parts.add("target", spec.target.to_string());
  parts.add("options", join_options(compiler.options(spec.target)));
  return parts;
}

void KernelStore::explain_miss(const KernelSpec& spec, const cache::KeyParts& parts) {
  if (log_level() < LogLevel::kInfo) return;
  std::string text = spec.to_string();
  auto previous = disk_.key_for_label(text);
  auto meta = previous ? disk_.peek_meta(*previous) : std::nullopt;
  if (!meta || !meta->contains("key_parts")) {
    SY_LOG(kInfo) << "cache miss " << parts.key() << " for " << text << ": never compiled with this cache";
    return;
  }
  std::string changed;
  for (const auto& name : cache::KeyParts::differences(cache::KeyParts::from_json((*meta)["key_parts"]), parts)) {
    changed += (changed.empty() ? "" : ", ") + name;
  }
  SY_LOG(kInfo) << "cache miss " << parts.key() << " for " << text << ": previous key " << *previous << " differs in "
                << (changed.empty() ? "nothing recorded (entry removed or corrupt)" : changed);
}

ObtainResult KernelStore::obtain(const KernelSpec& spec) {
  Source source = generate_source(spec);
  cache::KeyParts parts = key_parts(spec, source);
  std::string key = parts.key();
  ObtainResult result;
  if (!settings_.force_compile) {
    if (auto entry = disk_.load(key)) {
      ++disk_hits_;
      result = {from_cache_entry(*entry), key, false, std::move(source)};
    }
  }
  if (result.key.empty()) {
    ++misses_;
    explain_miss(spec, parts);
    cache::FileLock lock = disk_.lock(key);
    // NOTE: re-check under the lock; another process may have published while we waited.
    auto entry = settings_.force_compile ? std::nullopt : disk_.load(key);
    if (entry)
      result = {from_cache_entry(*entry), key, false, std::move(source)};
    else
      result = compile_and_publish(spec, std::move(source), parts);
  }
  if (!settings_.dump_dir.empty()) dump_kernel(settings_.dump_dir, spec, result.key, result.binary, result.source);
  return result;
}

ObtainResult KernelStore::compile_and_publish(const KernelSpec& spec, Source source, const cache::KeyParts& parts) {
  std::string key = parts.key();
  Binary binary = compiler_for(spec.target).compile(spec, source);
  ++compiles_;
  compile_us_ += static_cast<uint64_t>(binary.compile_ms * 1000);
  SY_LOG(kDebug) << "compiled " << spec.to_string() << " in " << binary.compile_ms << " ms (key " << key << ")";
  disk_.publish(to_cache_entry(key, binary, source, parts), /*replace=*/settings_.force_compile);
  disk_.record_label(spec.to_string(), key);
  return {std::move(binary), key, true, std::move(source)};
}

StoreCounters KernelStore::counters() const {
  StoreCounters c;
  c.disk_hits = disk_hits_.load();
  c.misses = misses_.load();
  c.compiles = compiles_.load();
  c.compile_ms = static_cast<double>(compile_us_.load()) / 1000.0;
  c.corrupt_entries = disk_.corrupt_count();
  return c;
}

}  // namespace switchyard
