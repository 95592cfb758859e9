// Tutel's helloworld (tutel-semantics 8.1) on Switchyard: one MoE layer, output summed over
// model_dim, log-softmax over tokens, NLL against label 0 (+ l_aux_wt * l_aux), trained by SGD
// (lr 1e-5) unless --eval; prints Tutel's lines. Built a second time with SY_HELLOWORLD_SWITCH as
// helloworld_switch (tutel-semantics 8.2): every step switches adaptive_r and the overlap degree
// (and, beyond Tutel, top_k and the capacity factor), printing " (f = .., r = .., o = ..)".
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "comm/communicator.h"
#include "comm/hierarchical.h"
#if SY_WITH_MPI
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#endif
#include "core/error.h"
#include "core/fs.h"
#include "core/half.h"
#include "jit/kernels/gemm.h"
#include "runtime/checkpoint_reshard.h"
#include "runtime/comm_element.h"
#include "runtime/cuda_device.h"
#include "runtime/cuda_driver.h"
#include "runtime/example_loss.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"

using namespace switchyard;

namespace {

struct Flags {
  int local_rank = -1, batch_size = 16, num_tokens = 512, model_dim = 2048, hidden_size = 2048;
  int num_local_experts = 2, top = 2, a2a_ffn_overlap_degree = 1, allreduce_degree = 1, num_steps = 100;
  int megablocks_size = 0;
  std::string dtype = "float32", parallel_type = "adaptive:1", checkpoint_path, device, expert_type = "ffn";
  std::string comm = "auto", gate = "top";
  int proj_dim = 256;
  double init_t = 0.5;
  std::string load_weights, save_weights, save_output, save_input, losses;
  bool fp32_gate = false, use_2dh = false, eval = false, use_tensorcore = false;
  double l_aux_wt = 0.0, capacity_factor = 1.0;
};

void add_flags(CLI::App& app, Flags& f) {
  app.add_option("--local_rank", f.local_rank);
  app.add_option("--batch_size", f.batch_size)->check(CLI::PositiveNumber);
  app.add_option("--num_tokens", f.num_tokens)->check(CLI::PositiveNumber);
  app.add_option("--model_dim", f.model_dim)->check(CLI::PositiveNumber);
  app.add_option("--hidden_size", f.hidden_size)->check(CLI::PositiveNumber);
  app.add_option("--num_local_experts", f.num_local_experts);
  app.add_option("--dtype", f.dtype)->check(CLI::IsMember({"float32", "float64", "float16", "bfloat16"}));
  app.add_flag("--fp32_gate", f.fp32_gate);
  app.add_option("--top", f.top);
  app.add_option("--l_aux_wt", f.l_aux_wt);
  app.add_option("--a2a_ffn_overlap_degree", f.a2a_ffn_overlap_degree)->check(CLI::Range(1, 32));
  app.add_option("--allreduce_degree", f.allreduce_degree);
  app.add_option("--num_steps", f.num_steps)->check(CLI::NonNegativeNumber);
  app.add_option("--parallel_type", f.parallel_type);
  app.add_option("--checkpoint_path", f.checkpoint_path);
  app.add_option("--device", f.device)->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--comm", f.comm,
                 "GPU ranks under mpirun: nccl, mpi (staged through the host), or auto (nccl when it loads and "
                 "every rank of a node has its own GPU)")
      ->check(CLI::IsMember({"auto", "nccl", "mpi"}));
  app.add_flag("--use_2dh", f.use_2dh);
  app.add_flag("--eval", f.eval);
  app.add_option("--capacity_factor", f.capacity_factor, "0.0 for dMoE (dropless), negative for no-padded");
  app.add_option("--megablocks_size", f.megablocks_size, "> 0: dropless grouped GEMM (only real tokens)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--use_tensorcore", f.use_tensorcore);
  app.add_option("--expert_type", f.expert_type)->check(CLI::IsMember({"ffn", "llama_ffn"}));
  app.add_option("--gate", f.gate, "top, or cosine_top (Swin-MoE's cosine router)")
      ->check(CLI::IsMember({"top", "cosine_top"}));
  app.add_option("--proj_dim", f.proj_dim, "cosine_top: the projector's width")->check(CLI::PositiveNumber);
  app.add_option("--init_t", f.init_t, "cosine_top: the initial temperature (the parameter starts at log(1/init_t))")
      ->check(CLI::PositiveNumber);
  app.add_option("--load-weights", f.load_weights, "safetensors file of the layer's parameters");
  app.add_option("--save-weights", f.save_weights, "write the layer's parameters (safetensors) before the first step");
  app.add_option("--save-output", f.save_output, "write the first step's layer output (safetensors)");
  app.add_option("--save-input", f.save_input, "write the input x [B * T, M] every step reads (safetensors)");
  app.add_option("--losses", f.losses, "write every step's loss to FILE, one per line, exactly (%.17g)");
}

// `values` in `dtype` on the device (rounded to nearest even for the half types).
Buffer upload(Device& device, DType dtype, const std::vector<double>& values) {
  const std::string host = encode_host_values(values, dtype);
  Buffer buffer(device, host.size());
  device.copy_from_host(buffer.data(), host.data(), host.size());
  return buffer;
}

// x ~ N(0, 1) [S, M] from the fixed seed 0, in the layer's dtype, on the device.
Buffer make_input(Device& device, DType dtype, int64_t s, int64_t m) {
  std::mt19937_64 rng(0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> values(static_cast<size_t>(s * m));
  for (auto& v : values) v = normal(rng);
  return upload(device, dtype, values);
}

#ifdef SY_HELLOWORLD_SWITCH
constexpr bool kSwitching = true;
#else
constexpr bool kSwitching = false;
#endif

// Tutel's [Statistics] line, the model description and the [Benchmark] line.
void print_header(const Flags& f, const MoeLayer& layer, Device& device, int world_size) {
  const auto& config = layer.config();
  const int64_t m = config.model_dim;
  std::cout << "[Statistics] param count for MoE local_experts = " << layer.expert_parameter_count()
            << ", param count for MoE gate = " << layer.gate_parameter_count() << ".\n\n";
  std::cout << "ExampleModel(\n  (_moe_layer): MoeLayer(\n    Top-K(s) = ['k=" << f.top
            << ", noise=0.0'], Total-Experts = " << config.num_experts << " [managed by " << world_size
            << " device(s)],\n    (experts): " << f.expert_type << "(model_dim=" << m
            << ", hidden_size=" << f.hidden_size << ", output_dim=" << m
            << ", num_experts_per_device=" << layer.local_experts() << ")\n  )\n)\n";
  std::cout << "[Benchmark] world_size = " << world_size << ", dtype = " << f.dtype << ", model_dim = " << m
            << ", hidden_size = " << f.hidden_size << ", samples = " << int64_t{f.batch_size} * f.num_tokens
            << ", num_local_experts = " << f.num_local_experts << ", topK = " << f.top
            << ", a2a_ffn_overlap_degree = " << f.a2a_ffn_overlap_degree;
  if (!kSwitching) std::cout << ", parallel_type = `" << f.parallel_type << "`";  // helloworld_switch has none
  std::cout << ", device = `" << device.name() << "`\n";
}

// helloworld_switch's schedule for step i (Tutel's idx = i - 1): r = valid_rs[(idx / 8) % 2] with
// valid_rs = {0, 1}, o = idx % 8 + 1; then every 16 steps the capacity factor cycles through
// --capacity_factor, 0 (dropless) and its negative, and every 48 steps top_k through 1..--top.
void switch_options(int step, const Flags& f, int64_t experts, ForwardOptions& options) {
  const int idx = step - 1 < 0 ? 15 : step - 1;  // step 0 runs like Tutel's first call (last r, o = 8)
  options.adaptive_r = (idx / 8) % 2;
  options.overlap_degree = idx % 8 + 1;
  const double factors[] = {f.capacity_factor, 0.0, -std::abs(f.capacity_factor)};
  options.capacity_factor = factors[(idx / 16) % 3];
  options.top_k = 1 + (idx / 48) % std::min<int64_t>(f.top, experts);
}

// --parallel_type: data (r = 0), model (r = s, the ranks sharing an expert), adaptive:R.
int parse_parallel_type(const std::string& text, int shards) {
  if (text == "data") return 0;
  if (text == "model") return shards;
  if (text.rfind("adaptive:", 0) == 0) {
    try {
      size_t used = 0;
      const int r = std::stoi(text.substr(9), &used);
      if (used == text.size() - 9) return r;
    } catch (const std::exception&) {
    }
  }
  SY_THROW(UserError) << "--parallel_type '" << text << "'; expected data, model or adaptive:R";
}

// As Tutel's helloworld: the gradients of shared (non-expert) parameters are averaged over the
// ranks (grad /= W, then all-reduce SUM); --allreduce_degree -1 skips it.
void allreduce_shared_gradients(MoeLayer& layer, int degree) {
  comm::Communicator* group = layer.exchange_group();  // it takes the gradients' memory
  if (group == nullptr || group->size() == 1 || degree == -1) return;
  for (const auto& name : layer.parameter_names()) {
    if (name.rfind("experts.", 0) == 0) continue;
    Tensor g = layer.gradient(name);
    scale(Context::global(), g, 1.0 / group->size(), g);
    group->all_reduce(g.data(), g.data(), static_cast<size_t>(g.numel()), comm_element(g.dtype()),
                      comm::ReduceOp::kSum);
  }
}

// This rank's device: the CPU, or the GPU of its index within the node (ranks are node-major).
Device& rank_device(const std::string& wanted, comm::Communicator* group) {
  Context& context = Context::global();
  const bool cuda = wanted.empty() ? Context::cuda_unavailable_reason().empty() : wanted == "cuda";
  if (!cuda) return context.cpu();
  if (group == nullptr) return context.cuda(0);
  const int local = group->rank() % comm::local_size_from_environment(group->size());
  return context.cuda(local % CudaDriver::get().device_count);
}

// NCCL for a GPU rank where --comm picks it; null otherwise: the layer uses the MPI group
// (a CUDA layer stages it through the host itself).
std::unique_ptr<comm::Communicator> nccl_group(const Flags& f, Device& device, comm::Communicator* group) {
  SY_CHECK(f.comm != "nccl" || device.is_cuda())
      << "--comm nccl exchanges GPU memory; this rank runs on " << device.name() << " (pass --device cuda)";
  if (group == nullptr || !device.is_cuda()) return nullptr;
#if SY_WITH_MPI
  const bool own_gpu = comm::local_size_from_environment(group->size()) <= CudaDriver::get().device_count;
  const std::string nccl_missing = comm::NcclLibrary::unavailable_reason();
  SY_CHECK(f.comm != "nccl" || (nccl_missing.empty() && own_gpu))
      << "--comm nccl: "
      << (nccl_missing.empty() ? "NCCL needs a GPU per rank; this node has more ranks than GPUs" : nccl_missing);
  if (f.comm == "nccl" || (f.comm == "auto" && nccl_missing.empty() && own_gpu)) {
    auto& gpu = dynamic_cast<CudaDevice&>(device);
    return std::make_unique<comm::NcclCommunicator>(dynamic_cast<comm::MpiCommunicator&>(*group),
                                                    gpu.communication_hooks());
  }
#endif
  return nullptr;
}

int run(const Flags& f, comm::Communicator* group) {
  const int world = group ? group->size() : 1, rank = group ? group->rank() : 0;
  if (rank != 0) std::cout.setstate(std::ios::failbit);  // Tutel prints on rank 0 only
  // Tutel's num_local_experts: n > 0 experts per rank, or -s: one expert shared by s ranks.
  SY_CHECK(f.num_local_experts >= 1 || (f.num_local_experts <= -1 && world % -f.num_local_experts == 0))
      << "--num_local_experts " << f.num_local_experts << " does not fit " << world
      << " rank(s): expected n >= 1, or -s with s dividing the world size";
  const int shards = f.num_local_experts < 0 ? -f.num_local_experts : 1;
  Context& context = Context::global();
  Device& device = rank_device(f.device, group);
  const std::unique_ptr<comm::Communicator> nccl = nccl_group(f, device, group);
  if (nccl) group = nccl.get();
  MoeLayerConfig config;
  config.model_dim = f.model_dim;
  config.hidden_size = f.hidden_size;
  config.num_experts = f.num_local_experts > 0 ? int64_t{f.num_local_experts} * world : world / shards;
  config.dtype = parse_dtype(f.dtype);
  config.expert_type = f.expert_type == "ffn" ? ExpertType::kFfn : ExpertType::kSwiglu;
  config.fp32_gate = f.fp32_gate;
  config.allow_tf32 = f.use_tensorcore;
  config.gates = {GateConfig{.type = parse_gate_type(f.gate), .proj_dim = f.proj_dim, .init_t = f.init_t}};
  MoeLayer layer(context, device, config, group);
  if (!f.load_weights.empty()) layer.load(f.load_weights);
  const std::string checkpoint = checkpoint_path(f.checkpoint_path, rank, world);
  if (!checkpoint.empty()) {
    if (fs::exists(checkpoint))
      layer.load(checkpoint);
    else  // every rank says it, as Tutel's plain print does
      std::printf("Checkpoint not loaded: file `%s` is not found. Will train the model from start.\n",
                  checkpoint.c_str());
  }
  if (!f.save_weights.empty()) layer.save(f.save_weights);

  const int64_t b = f.batch_size, t = f.num_tokens, m = f.model_dim, s = b * t;
  Buffer input = make_input(device, config.dtype, s, m);
  Tensor x = input.view(config.dtype, {s, m});
  if (!f.save_input.empty() && rank == 0) {
    StoredTensor in{safetensors_dtype_name(config.dtype), {s, m}, std::string(x.nbytes(), '\0')};
    device.copy_to_host(in.bytes.data(), x.data(), in.bytes.size());
    write_safetensors(f.save_input, {{"input", in}});
  }
  print_header(f, layer, device, world);
  ForwardOptions options;
  options.top_k = f.top;
  options.capacity_factor = f.capacity_factor;
  options.dropless_grouped = f.megablocks_size > 0;
  options.megablocks_size = f.megablocks_size;
  options.save_for_backward = !f.eval;
  options.adaptive_r = kSwitching ? 0 : parse_parallel_type(f.parallel_type, shards);
  options.overlap_degree = f.a2a_ffn_overlap_degree;
  options.use_2dh = f.use_2dh;
  SgdOptions sgd;  // Tutel's torch.optim.SGD(lr=1e-5): no momentum, no weight decay
  sgd.lr = 1e-5;
  // NOTE: the loss and its gradient stay on the layer's device; only B per-sample losses come back.
  ExampleLoss example_loss(context, device, b, t, m);
  Buffer grad_buffer(device, f.eval ? 0 : static_cast<size_t>(s * m) * dtype_size(config.dtype));
  const Tensor grad_output = f.eval ? Tensor() : grad_buffer.view(config.dtype, {s, m});
  std::vector<double> times;
  std::string losses;
  const double cap = std::min<int64_t>(f.top, config.num_experts);
  // x is data, not a parameter (Tutel's is a plain tensor): its gradient is never read.
  BackwardOptions backward_options;
  backward_options.l_aux_weight = f.l_aux_wt;
  backward_options.input_gradient = false;
  for (int step = 0; step < f.num_steps; ++step) {
    if (kSwitching) switch_options(step, f, config.num_experts, options);
    auto start = std::chrono::steady_clock::now();
    ForwardResult result = layer.forward(x, options);
    double loss = example_loss(result.output, f.eval ? nullptr : &grad_output) + f.l_aux_wt * result.l_aux();
    if (!f.eval) {
      layer.backward(grad_output, backward_options);
      allreduce_shared_gradients(layer, f.allreduce_degree);
      layer.sgd_step(sgd);
    }
    device.synchronize();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    times.push_back(seconds);
    if (step == 0 && !f.save_output.empty()) {
      StoredTensor out{safetensors_dtype_name(config.dtype), {b, t, m}, std::string(result.output.nbytes(), '\0')};
      device.copy_to_host(out.bytes.data(), result.output.data(), out.bytes.size());
      write_safetensors(f.save_output, {{"output", out}});
    }
    const int passes = f.eval ? 1 : 3;  // Tutel's formula: 3 GEMM passes when training
    double tflops = static_cast<double>(s) * m * f.hidden_size * 4 * passes * cap * 1e-12 / seconds;
    char line[160];
    std::snprintf(line, sizeof line, "STEP-%d: loss = %.5f, step_time = %.6f sec, perf = %.2f tflops.", step, loss,
                  seconds, tflops);
    std::cout << line;
    if (kSwitching) {
      std::snprintf(line, sizeof line, " (f = %.1f, r = %d, o = %d)", options.capacity_factor, options.adaptive_r,
                    options.overlap_degree);
      std::cout << line;
    }
    std::cout << "\n" << std::flush;
    char exact[32];
    std::snprintf(exact, sizeof exact, "%.17g\n", loss);
    losses += exact;
  }
  if (!f.losses.empty() && rank == 0) fs::write_file(f.losses, losses);
  // The mean of the last 10 steps, or of all when fewer ran (Tutel divides by 10 even then).
  const size_t first_averaged = times.size() > 10 ? times.size() - 10 : 0;
  double last = 0;
  for (size_t i = first_averaged; i < times.size(); ++i) last += times[i];
  const double averaged = static_cast<double>(std::max<size_t>(1, times.size() - first_averaged));
  std::cout << "\n[Summary] Average synchronized step_time = " << last / averaged << " sec.\n";
  if (device.is_cuda()) {
    const CudaDevice::MemoryHighWater high = dynamic_cast<CudaDevice&>(device).memory_high_water();
    std::printf("[Memory] %s: buffers peaked at %.1f MiB (the pool reserved %.1f MiB)\n", device.name().c_str(),
                static_cast<double>(high.used) / (1 << 20), static_cast<double>(high.reserved) / (1 << 20));
  }
  if (!checkpoint.empty()) layer.save(checkpoint);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Switchyard helloworld: Tutel's MoE helloworld"};
  Flags flags;
  add_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  try {
#if SY_WITH_MPI
    if (comm::MpiSession::launched_by_mpirun()) {  // under mpirun: one rank of the group
      comm::MpiSession mpi(&argc, &argv);
      return run(flags, &mpi.world());
    }
#endif
    return run(flags, nullptr);
  } catch (const Error& e) {
    std::cerr << "helloworld: error: " << e.what() << "\n";
    return 1;
  }
}
