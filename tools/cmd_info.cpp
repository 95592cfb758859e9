// switchyard info [--json]
#include <nlohmann/json.hpp>

#include <iostream>

#include "comm/nccl_library.h"
#if SY_WITH_MPI
#include "comm/mpi_communicator.h"
#endif
#include "jit/clang_compiler.h"
#include "jit/nvrtc_library.h"
#include "runtime/context.h"
#include "runtime/cuda_device.h"
#include "runtime/cuda_driver.h"
#include "tools/commands.h"

namespace switchyard::tools {
namespace {

nlohmann::json collect_info() {
  Context& context = Context::global();
  nlohmann::json info;
  info["version"] = SY_VERSION;
  const CpuTarget& cpu = context.store().cpu_target();
  info["llvm"] = llvm_version();
  info["cpu"] = {{"name", cpu.cpu},
                 {"chosen_by", cpu.reason},
                 {"threads", context.cpu().parallelism()},
                 {"features", cpu.feature_string()}};
  info["nvrtc"] =
      NvrtcLibrary::available()
          ? nlohmann::json(std::to_string(NvrtcLibrary::get().major) + "." + std::to_string(NvrtcLibrary::get().minor))
          : nlohmann::json(nullptr);
  nlohmann::json gpus = nlohmann::json::array();
  if (CudaDriver::available()) {
    for (int i = 0; i < CudaDriver::get().device_count; ++i) {
      auto& device = static_cast<CudaDevice&>(context.cuda(i));
      gpus.push_back({{"name", device.name()},
                      {"device", device.device_name()},
                      {"target", device.target().to_string()},
                      {"multiprocessors", device.parallelism()}});
    }
  }
  info["cuda_devices"] = gpus;
  info["cuda_status"] = CudaDriver::available() ? "ok" : CudaDriver::unavailable_reason();
  // The communicator engines: a string when usable, null with the reason otherwise.
#if SY_WITH_MPI
  info["mpi"] = comm::MpiSession::library_version();
  info["mpi_status"] = "ok";
#else
  info["mpi"] = nullptr;
  info["mpi_status"] = "built without MPI (libopenmpi-dev was not found)";
#endif
  const std::string nccl_missing = comm::NcclLibrary::unavailable_reason();
  info["nccl"] = nccl_missing.empty() ? nlohmann::json(comm::NcclLibrary::get().version()) : nlohmann::json(nullptr);
  info["nccl_status"] = nccl_missing.empty() ? "ok" : nccl_missing;
  auto& disk = context.store().disk();
  auto entries = disk.list();
  uint64_t bytes = 0;
  for (const auto& e : entries) bytes += e.bytes;
  info["cache"] = {{"dir", disk.root()},
                   {"mode", cache_mode_name(disk.mode())},
                   {"writable", disk.writable()},
                   {"entries", entries.size()},
                   {"bytes", bytes}};
  return info;
}

void print_text(const nlohmann::json& info) {
  std::cout << "switchyard " << info["version"].get<std::string>() << "\n"
            << "devices:\n  cpu: " << info["cpu"]["name"].get<std::string>() << " ("
            << info["cpu"]["chosen_by"].get<std::string>() << "), " << info["cpu"]["threads"] << " threads\n";
  for (const auto& gpu : info["cuda_devices"]) {
    std::cout << "  " << gpu["name"].get<std::string>() << ": " << gpu["device"].get<std::string>() << " ("
              << gpu["target"].get<std::string>() << ", " << gpu["multiprocessors"] << " SMs)\n";
  }
  if (info["cuda_devices"].empty()) std::cout << "  cuda: none (" << info["cuda_status"].get<std::string>() << ")\n";
  std::cout << "compilers:\n  llvm " << info["llvm"].get<std::string>() << "\n  nvrtc "
            << (info["nvrtc"].is_null() ? std::string("not found") : info["nvrtc"].get<std::string>()) << "\n"
            << "communicators:\n  mpi "
            << (info["mpi"].is_null() ? "none (" + info["mpi_status"].get<std::string>() + ")"
                                      : info["mpi"].get<std::string>())
            << "\n  nccl "
            << (info["nccl"].is_null() ? "none (" + info["nccl_status"].get<std::string>() + ")"
                                       : info["nccl"].get<std::string>())
            << "\n"
            << "cpu kernels compiled for features: " << info["cpu"]["features"].get<std::string>() << "\n"
            << "cache:\n  dir " << info["cache"]["dir"].get<std::string>() << "\n  mode "
            << info["cache"]["mode"].get<std::string>()
            << (info["cache"]["writable"].get<bool>() ? "" : " (not writable)") << "\n  entries "
            << info["cache"]["entries"] << ", " << info["cache"]["bytes"] << " bytes\n";
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Version, devices, compilers, communicators, host CPU features and the cache");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([json] {
    nlohmann::json info = collect_info();
    if (*json)
      std::cout << info.dump(2) << "\n";
    else
      print_text(info);
  });
}

}  // namespace switchyard::tools
