// Routes random tokens to experts and back through the JIT-compiled dispatch encode and
// combine decode kernels, on the GPU when one is present, else on the CPU, and checks that an
// identity expert gives back every kept token scaled by its gate.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <iostream>
#include <random>

#include <switchyard/switchyard.h>

using namespace switchyard;

int main(int argc, char** argv) {
  CLI::App app{"Dispatch encode + combine decode round trip"};
  int64_t tokens = 4096, model_dim = 1024, experts = 8, top_k = 2;
  double capacity_factor = 1.0;
  std::string device_name = Context::cuda_unavailable_reason().empty() ? "cuda" : "cpu";
  app.add_option("--num_tokens", tokens)->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--model_dim", model_dim)->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  app.add_option("--num_experts", experts)->check(CLI::Range(1, 1024));
  app.add_option("--top", top_k)->check(CLI::Range(1, 64));
  app.add_option("--capacity_factor", capacity_factor)->check(CLI::PositiveNumber);
  app.add_option("--device", device_name)->check(CLI::IsMember({"cpu", "cuda"}));
  CLI11_PARSE(app, argc, argv);
  try {
    if (top_k > experts)
      throw UserError("--top " + std::to_string(top_k) + " exceeds --num_experts " + std::to_string(experts));
    Context& context = Context::global();
    Device& device = device_name == "cuda" ? context.cuda(0) : context.cpu();
    // Routing: k distinct random experts per token; locations in Tutel's order.
    std::mt19937 rng(0);
    std::vector<int> indices(top_k * tokens), locations(top_k * tokens), count(experts, 0);
    std::vector<float> gates(top_k * tokens);
    std::uniform_real_distribution<float> unit(0.1f, 1.0f);
    for (int64_t s = 0; s < tokens; ++s) {
      for (int64_t j = 0; j < top_k; ++j) {
        int e = static_cast<int>((s * 7 + j * 3 + rng() % 5) % experts);
        indices[j * tokens + s] = e;
        gates[j * tokens + s] = unit(rng);
      }
    }
    for (int64_t j = 0; j < top_k; ++j)
      for (int64_t s = 0; s < tokens; ++s) locations[j * tokens + s] = count[indices[j * tokens + s]]++;
    int64_t capacity = top_k * static_cast<int64_t>(std::floor(capacity_factor * ((tokens + experts - 1) / experts)));
    std::vector<float> x(tokens * model_dim);
    for (auto& v : x) v = unit(rng);

    size_t x_bytes = x.size() * 4, slot_bytes = experts * capacity * model_dim * 4;
    Buffer bx(device, x_bytes), bslots(device, slot_bytes), bout(device, x_bytes);
    Buffer bidx(device, indices.size() * 4), bloc(device, locations.size() * 4), bgate(device, gates.size() * 4);
    device.copy_from_host(bx.data(), x.data(), x_bytes);
    device.copy_from_host(bidx.data(), indices.data(), indices.size() * 4);
    device.copy_from_host(bloc.data(), locations.data(), locations.size() * 4);
    device.copy_from_host(bgate.data(), gates.data(), gates.size() * 4);
    Routing routing{bidx.view(DType::kInt32, {top_k, tokens}), bloc.view(DType::kInt32, {top_k, tokens}),
                    bgate.view(DType::kFloat32, {top_k, tokens}), capacity, experts};
    Tensor tx = bx.view(DType::kFloat32, {tokens, model_dim});
    Tensor tslots = bslots.view(DType::kFloat32, {experts, capacity, model_dim});
    Tensor tout = bout.view(DType::kFloat32, {tokens, model_dim});

    auto start = std::chrono::steady_clock::now();
    dispatch_encode(context, tx, routing, true, tslots);
    combine_decode(context, tslots, routing, true, tout);
    device.synchronize();
    double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const int steps = 20;
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      dispatch_encode(context, tx, routing, true, tslots);
      combine_decode(context, tslots, routing, true, tout);
    }
    device.synchronize();
    double step_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / steps;

    std::vector<float> out(x.size());
    device.copy_to_host(out.data(), bout.data(), x_bytes);
    double max_error = 0;
    int64_t kept = 0;
    for (int64_t s = 0; s < tokens; ++s) {
      double scale = 0;
      for (int64_t j = 0; j < top_k; ++j) {
        bool keep = locations[j * tokens + s] < capacity;
        kept += keep;
        scale += keep ? gates[j * tokens + s] : 0.0;
      }
      for (int64_t m = 0; m < model_dim; ++m)
        max_error = std::max(max_error, std::abs(out[s * model_dim + m] - scale * x[s * model_dim + m]));
    }
    double gbytes = 2.0 * (2.0 * x_bytes + static_cast<double>(kept) * model_dim * 4 * 2) / 1e9;
    std::cout << "[Dispatch] device = " << device.name() << ", tokens = " << tokens << ", model_dim = " << model_dim
              << ", experts = " << experts << ", top = " << top_k << ", capacity = " << capacity << "\n"
              << "[Dispatch] kept " << kept << " of " << top_k * tokens << " choices; max |error| = " << max_error
              << "\n"
              << "[Dispatch] first call (kernel lookup included) = " << first_ms << " ms, step = " << step_ms
              << " ms, ~" << gbytes / (step_ms / 1e3) << " GB/s\n";
    auto c = context.counters();
    std::cout << "[Cache] memory hits = " << c.memory_hits << ", disk hits = " << c.store.disk_hits
              << ", compiles = " << c.store.compiles << "\n";
    return max_error < 1e-5 ? 0 : 1;
  } catch (const Error& e) {
    std::cerr << "dispatch_roundtrip: error: " << e.what() << "\n";
    return 1;
  }
}
