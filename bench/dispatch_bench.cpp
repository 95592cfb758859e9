// Dispatch encode and combine decode throughput, against a device memcpy of the same bytes
// measured in the same run, on random data. JSON on stdout at the end, a line per case on stderr
// as it is measured. Usage: dispatch_bench [cpu|cuda] [dtype...]
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <random>

#include "bench/random_fill.h"
#include "core/error.h"
#include "runtime/dispatch_ops.h"

using namespace switchyard;

namespace {

struct Shape {
  const char* name;
  int64_t tokens, model_dim, experts, top_k;
};

// Seconds per call of `body`, best of 5 rounds of `iterations` calls.
template <typename F>
double time_per_call(Device& device, int iterations, F body) {
  body();
  device.synchronize();
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) body();
    device.synchronize();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations);
  }
  return best;
}

nlohmann::json run_shape(Context& context, Device& device, const Shape& shape, DType dtype) {
  const int64_t s = shape.tokens, m = shape.model_dim, e = shape.experts, k = shape.top_k;
  const int64_t capacity = k * ((s + e - 1) / e);  // capacity_factor 1
  std::mt19937 rng(5);
  std::vector<int> idx(k * s), loc(k * s), count(e, 0);
  std::vector<float> gates(k * s, 0.5f);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t t = 0; t < s; ++t) {
      int expert = static_cast<int>((t + j * (e / k + 1) + rng() % 2) % e);
      idx[j * s + t] = expert;
      loc[j * s + t] = count[expert]++;
    }
  size_t el = dtype_size(dtype), token_bytes = s * m * el, slot_bytes = e * capacity * m * el;
  Buffer x(device, token_bytes), slots(device, slot_bytes), out(device, token_bytes);
  Buffer bi(device, idx.size() * 4), bl(device, loc.size() * 4), bg(device, gates.size() * 4);
  bench::fill_random(device, x.data(), token_bytes, dtype, 3);
  device.copy_from_host(bi.data(), idx.data(), idx.size() * 4);
  device.copy_from_host(bl.data(), loc.data(), loc.size() * 4);
  device.copy_from_host(bg.data(), gates.data(), gates.size() * 4);
  Routing r{bi.view(DType::kInt32, {k, s}), bl.view(DType::kInt32, {k, s}), bg.view(DType::kFloat32, {k, s}), capacity,
            e};
  int64_t kept = 0;
  for (int v : loc) kept += v < capacity;
  Tensor tx = x.view(dtype, {s, m}), ts = slots.view(dtype, {e, capacity, m}), to = out.view(dtype, {s, m});
  int iterations = device.is_cuda() ? 50 : 5;
  double encode = time_per_call(device, iterations, [&] { dispatch_encode(context, tx, r, true, ts); });
  double decode = time_per_call(device, iterations, [&] { combine_decode(context, ts, r, true, to); });
  // Bytes each must move at least: encode reads the kept rows and writes every slot (zeros
  // included); decode reads the kept rows and writes every token row.
  double encode_bytes = static_cast<double>(kept * m * el + slot_bytes);
  double decode_bytes = static_cast<double>(kept * m * el + token_bytes);
  Buffer copy_dst(device, slot_bytes);
  double copy =
      time_per_call(device, iterations, [&] { device.copy_within(copy_dst.data(), slots.data(), slot_bytes); });
  double copy_gbps = 2.0 * static_cast<double>(slot_bytes) / copy / 1e9;
  double encode_gbps = encode_bytes / encode / 1e9, decode_gbps = decode_bytes / decode / 1e9;
  std::cerr << "dispatch_bench: " << shape.name << " " << dtype_name(dtype) << " encode " << encode_gbps / copy_gbps
            << ", decode " << decode_gbps / copy_gbps << " of memcpy (" << copy_gbps << " GB/s)" << std::endl;
  return {{"shape", shape.name},
          {"dtype", dtype_name(dtype)},
          {"tokens", s},
          {"model_dim", m},
          {"experts", e},
          {"top_k", k},
          {"encode_us", encode * 1e6},
          {"decode_us", decode * 1e6},
          {"encode_gbps", encode_gbps},
          {"decode_gbps", decode_gbps},
          {"memcpy_gbps", copy_gbps},
          {"encode_vs_memcpy", encode_gbps / copy_gbps},
          {"decode_vs_memcpy", decode_gbps / copy_gbps}};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Context& context = Context::global();
    bool cuda = argc > 1 && std::string(argv[1]) == "cuda";
    Device& device = cuda ? context.cuda(0) : context.cpu();
    std::vector<DType> dtypes;
    for (int i = 2; i < argc; ++i) dtypes.push_back(parse_dtype(argv[i]));
    if (dtypes.empty())
      dtypes = cuda ? std::vector<DType>{DType::kFloat32, DType::kBFloat16} : std::vector<DType>{DType::kFloat32};
    const Shape shapes[] = {{"tiny", 512, 64, 4, 2}, {"mid", 4096, 1024, 8, 2}, {"mixtral", 8192, 4096, 8, 2}};
    nlohmann::json results = nlohmann::json::array();
    for (DType dtype : dtypes)
      for (const Shape& shape : shapes) results.push_back(run_shape(context, device, shape, dtype));
    std::cout << nlohmann::json{{"device", device.name()}, {"results", results}}.dump(2) << "\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "dispatch_bench: " << e.what() << "\n";
    return 1;
  }
}
