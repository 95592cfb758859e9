// MoE forward benchmark (JSON): expert GEMM GFLOP/s against this machine's FMA peak, OpenBLAS
// and oneDNN sgemm on the same shapes; layer forward against the plain reference and a dense FFN
// of the same per-token FLOPs. All baselines measured in the same run. A GEMM figure above the
// peak means the peak is wrong: it is flagged (peak_exceeded) and the exit status is 3.
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <span>
#include <thread>

#if SY_BENCH_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "bench/onednn_matmul.h"
#endif

#include "bench/fma_peak.h"
#include "jit/kernels/gemm.h"
#include "runtime/gemm_ops.h"
#include "runtime/moe_layer.h"
#include "runtime/tensor.h"
#include "tests/reference/backward_reference.h"
#include "tests/reference/moe_reference.h"

extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
void openblas_set_num_threads(int);
}

using namespace switchyard;
using Clock = std::chrono::steady_clock;

namespace {

template <typename F>
double best_seconds(int repeats, F body) {
  body();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto start = Clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

// The best time of each body over `rounds` rounds that run every body in turn: on a shared VM
// whose speed drifts by tens of percent over seconds, contenders timed in one interleaved window
// are compared fairly where back-to-back series are not. Each body's turn starts with a pause, so
// the previous one's idle workers have stopped spinning (OpenBLAS spins about 2^28 cycles,
// OpenMP and our pool less) and do not take its cores, then an untimed call (waking its threads
// and warming the caches), then `runs` timed calls.
std::vector<double> best_seconds_interleaved(int rounds, int runs, const std::vector<std::function<void()>>& bodies) {
  std::vector<double> best(bodies.size(), 1e30);
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < bodies.size(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      bodies[i]();
      for (int run = 0; run < runs; ++run) {
        auto start = Clock::now();
        bodies[i]();
        best[i] = std::min(best[i], std::chrono::duration<double>(Clock::now() - start).count());
      }
    }
  return best;
}

// The three passes of an expert GEMM with weight W [k, n]: forward x [rows, k] W; data gradient
// dy [rows, n] W^T (W read as [n, k], trans_b); weight gradient x^T dy, reduced over the rows.
enum class Pass { kForward, kData, kWeight };

const char* pass_name(Pass pass) {
  return pass == Pass::kForward ? "forward" : pass == Pass::kData ? "data_grad" : "weight_grad";
}

struct GemmShape {
  const char* name;
  Pass pass;
  int64_t batch, rows, k, n;      // the forward GEMM's shape; each pass derives its operands from it
  DType dtype = DType::kFloat32;  // ours; the baselines are sgemm (float32) on the same shapes
};

// A Buffer of the CPU device seen as floats: the operands live where a layer's buffers do (large
// ones on huge pages, which the baselines read as well).
std::span<float> floats(const Buffer& buffer) {
  return {static_cast<float*>(buffer.data()), buffer.bytes() / sizeof(float)};
}

// `values` in 16-bit storage (bfloat16 or float16) for our GEMM's operands; nothing for float32.
Buffer narrow_copy(Device& device, std::span<const float> values, DType dtype) {
  if (dtype == DType::kFloat32) return Buffer(device, 0);
  const std::string bytes = encode_host_values(std::vector<double>(values.begin(), values.end()), dtype);
  Buffer copy(device, bytes.size());
  std::copy(bytes.begin(), bytes.end(), static_cast<char*>(copy.data()));
  return copy;
}

nlohmann::json gemm_case(const GemmShape& shape) {
  const auto [name, pass, batch, rows, k, n, dtype] = shape;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  // Operand extents per batch: forward a [rows, k] b [k, n] c [rows, n]; data a [rows, n] b [k, n]
  // (as [N', K'] = [k, n]) c [rows, k]; weight a [rows, k] b [rows, n] c [k, n].
  const int64_t a_cols = pass == Pass::kData ? n : k, b_rows = pass == Pass::kWeight ? rows : k;
  const int64_t c_rows = pass == Pass::kWeight ? k : rows, c_cols = pass == Pass::kData ? k : n;
  Context& context = Context::global();
  Device& cpu = context.cpu();
  const Buffer a_buffer(cpu, sizeof(float) * batch * rows * a_cols), w_buffer(cpu, sizeof(float) * batch * b_rows * n),
      c_buffer(cpu, sizeof(float) * batch * c_rows * c_cols);
  const std::span<float> a = floats(a_buffer), w = floats(w_buffer), c = floats(c_buffer);
  for (auto& v : a) v = u(rng);
  for (auto& v : w) v = u(rng);
  GemmOptions options;
  options.trans_b = pass == Pass::kData;
  options.trans_a = pass == Pass::kWeight;
  const bool narrow = dtype != DType::kFloat32;
  const Buffer a16 = narrow_copy(cpu, a, dtype), w16 = narrow_copy(cpu, w, dtype), c16(cpu, narrow ? c.size() * 2 : 0);
  Tensor ta(narrow ? a16.data() : a.data(), dtype, {batch, rows, a_cols}),
      tw(narrow ? w16.data() : w.data(), dtype,
         pass == Pass::kData ? std::vector<int64_t>{batch, c_cols, a_cols} : std::vector<int64_t>{batch, b_rows, n}),
      tc(narrow ? c16.data() : c.data(), dtype, {batch, c_rows, c_cols});
  // Every pass does the forward's 2 * rows * k * n FLOPs.
  const double flops = 2.0 * batch * rows * k * n;
  const bool large = flops > 1e10;
  // The same product for the baselines (row-major): C [m, nn] = op(A) op(B) over kk.
  const int m = static_cast<int>(c_rows), nn = static_cast<int>(c_cols);
  const int kk = static_cast<int>(pass == Pass::kData ? n : pass == Pass::kWeight ? rows : k);
  const bool at = pass == Pass::kWeight, bt = pass == Pass::kData;
  const int lda = static_cast<int>(a_cols), ldb = static_cast<int>(pass == Pass::kData ? a_cols : n);
  std::vector<std::function<void()>> contenders = {
      [&] { batched_gemm(context, ta, tw, tc, options); },
      [&] {
        for (int64_t b = 0; b < batch; ++b)
          cblas_sgemm(101, at ? 112 : 111, bt ? 112 : 111, m, nn, kk, 1.0f, a.data() + b * rows * a_cols, lda,
                      w.data() + b * b_rows * n, ldb, 0.0f, c.data() + b * c_rows * c_cols, nn);
      }};
#if SY_BENCH_ONEDNN
  contenders.push_back([&] {
    for (int64_t b = 0; b < batch; ++b)
      dnnl_sgemm(at ? 'T' : 'N', bt ? 'T' : 'N', m, nn, kk, 1.0f, a.data() + b * rows * a_cols, lda,
                 w.data() + b * b_rows * n, ldb, 0.0f, c.data() + b * c_rows * c_cols, nn);
  });
  // bfloat16: oneDNN's own bfloat16 matmul on the same 16-bit operands as ours, beside its sgemm.
  std::unique_ptr<bench::OnednnBf16Matmul> dnnl_bf16;
  if (dtype == DType::kBFloat16) dnnl_bf16 = bench::OnednnBf16Matmul::create(batch, m, nn, kk, at, bt);
  if (dnnl_bf16) contenders.push_back([&] { dnnl_bf16->run(a16.data(), w16.data(), c16.data()); });
#endif
  // A forward whose GEMM reads B's panels packed ahead (a layer's pack_expert_weights): ours again,
  // given them, packed once outside the timing.
  const kernels::GemmShape gemm_shape{.dtype = dtype, .n = n, .k = k};
  const int64_t panel_words = pass == Pass::kForward ? gemm_panels_words(gemm_shape, batch, cpu.target()) : 0;
  const Buffer panel_buffer(cpu, static_cast<size_t>(panel_words) * sizeof(int32_t));
  const Tensor panels = panel_buffer.view(DType::kInt32, {panel_words});
  GemmOptions packed_options = options;
  packed_options.b_panels = &panels;
  const size_t packed_at = contenders.size();
  if (panel_words > 0) {
    pack_gemm_b(context, tw, gemm_shape, panels);
    contenders.push_back([&] { batched_gemm(context, ta, tw, tc, packed_options); });
  }
  const std::vector<double> best = best_seconds_interleaved(large ? 3 : 5, large ? 1 : 20, contenders);
  const double ours = best[0], blas = best[1];
  const double ours_gflops = flops / ours / 1e9, blas_gflops = flops / blas / 1e9;
  nlohmann::json result = {{"name", name},
                           {"dtype", dtype_name(dtype)},
                           {"pass", pass_name(pass)},
                           {"batch", batch},
                           {"rows", rows},
                           {"k", k},
                           {"n", n},
                           {"switchyard_gflops", ours_gflops},
                           // How fast B was read (the weights, but in the weight gradient): a small batch's bound.
                           {"switchyard_b_gbps", static_cast<double>(tw.nbytes()) / ours / 1e9},
                           {"openblas_gflops", blas_gflops},
                           {"vs_openblas", ours_gflops / blas_gflops}};
#if SY_BENCH_ONEDNN
  const double dnnl = best[2];
  const double dnnl_gflops = flops / dnnl / 1e9;
  result["onednn_gflops"] = dnnl_gflops;
  result["vs_onednn"] = ours_gflops / dnnl_gflops;
  if (dnnl_bf16) {
    const double bf16_gflops = flops / best[3] / 1e9;
    result["onednn_bf16_gflops"] = bf16_gflops;
    result["vs_onednn_bf16"] = ours_gflops / bf16_gflops;
    result["onednn_bf16_implementation"] = dnnl_bf16->implementation();
  } else if (dtype == DType::kBFloat16) {
    result["onednn_bf16_implementation"] = "none: oneDNN has no bfloat16 matmul for this CPU";
  }
#endif
  if (panel_words > 0) {
    const double packed_gflops = flops / best[packed_at] / 1e9;
    result["switchyard_packed_b_gflops"] = packed_gflops;
    result["packed_b_vs_packing"] = packed_gflops / ours_gflops;
    if (result.contains("onednn_bf16_gflops"))
      result["packed_b_vs_onednn_bf16"] = packed_gflops / result["onednn_bf16_gflops"].get<double>();
  }
  return result;
}

// What bounds our GEMMs in one dtype: its name and peak in GFLOP/s.
struct Roofline {
  const char* name;
  double gflops;
};

// The roofline of our GEMMs in `dtype` on this host: for bfloat16, the peak of what the kernel
// gemm_spec chooses for the CPU compiled for runs on (AMX's tiles or AVX512_BF16's dot products)
// where this host measured one (a peak is 0 where it has none); else the FMA peak.
Roofline roofline_for(DType dtype, double fma_peak, double bf16_dot_peak, double amx_peak) {
  if (dtype == DType::kBFloat16) {
    const KernelSpec kernel = kernels::gemm_spec({.dtype = dtype, .n = 64, .k = 64}, Context::global().cpu().target());
    if (kernel.bool_param("amx")) {
      if (amx_peak > 0) return {"bfloat16 AMX tiles", amx_peak};
    } else if (kernel.bool_param("bf16_dot") && bf16_dot_peak > 0) {
      return {"bfloat16 dot products", bf16_dot_peak};
    }
  }
  return {"float32 FMA", fma_peak};
}

// Each figure's fraction of its roofline (roofline_for), beside it ("switchyard_gflops" ->
// "fraction_of_peak"). The baselines' fractions are of the FMA peak.
void add_peak_fractions(nlohmann::json& gemms, double peak, double bf16_dot_peak, double amx_peak) {
  for (auto& g : gemms) {
    const DType dtype = g["dtype"] == "bfloat16" ? DType::kBFloat16 : DType::kFloat32;
    const Roofline roofline = roofline_for(dtype, peak, bf16_dot_peak, amx_peak);
    g["roofline"] = roofline.name;
    g["fraction_of_peak"] = g["switchyard_gflops"].get<double>() / roofline.gflops;
    for (const char* baseline : {"openblas", "onednn"})
      if (g.contains(std::string(baseline) + "_gflops"))
        g[std::string(baseline) + "_fraction_of_peak"] = g[std::string(baseline) + "_gflops"].get<double>() / peak;
  }
}

// Every "*fraction_of_peak" above 1: the peak is not a peak (the figures are then meaningless).
nlohmann::json figures_above_peak(const nlohmann::json& gemms) {
  nlohmann::json above = nlohmann::json::array();
  for (const auto& g : gemms)
    for (const auto& [key, value] : g.items())
      if (key.find("fraction_of_peak") != std::string::npos && value.get<double>() > 1.0)
        above.push_back(g["name"].get<std::string>() + " " + g["pass"].get<std::string>() + " " + key + " " +
                        std::to_string(value.get<double>()));
  return above;
}

nlohmann::json layer_case(const char* name, int64_t s, int64_t m, int64_t h, int64_t e, int64_t k,
                          bool with_reference) {
  Context& context = Context::global();
  MoeLayerConfig config;
  config.model_dim = m;
  config.hidden_size = h;
  config.num_experts = e;
  MoeLayer layer(context, context.cpu(), config);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  std::vector<float> x(s * m);
  for (auto& v : x) v = normal(rng);
  Tensor tx(x.data(), DType::kFloat32, {s, m});
  ForwardOptions options;
  options.top_k = k;
  double forward = best_seconds(3, [&] { layer.forward(tx, options); });
  // Training: forward keeping what backward needs, then backward (Tutel's 3 GEMM passes); the
  // SGD step (and the refresh of the kernels' transposed weight copies) is timed apart.
  ForwardOptions train = options;
  train.save_for_backward = true;
  std::vector<float> grad(s * m, 1e-3f);
  Tensor tg(grad.data(), DType::kFloat32, {s, m});
  double saved_per_token = 0;
  double training = best_seconds(3, [&] {
    layer.forward(tx, train);
    saved_per_token = layer.saved_bytes_per_token();
    layer.backward(tg, 0.01);
  });
  SgdOptions sgd;
  double sgd_step = best_seconds(3, [&] { layer.sgd_step(sgd); });
  // Dense FFN with the same FLOPs per token: hidden k * H, one expert, every token.
  std::vector<float> w1(m * k * h, 0.01f), w2(k * h * m, 0.01f), hid(s * k * h), out(s * m);
  double dense = best_seconds(3, [&] {
    batched_gemm(context, tx.dtype() == DType::kFloat32 ? Tensor(x.data(), DType::kFloat32, {1, s, m}) : tx,
                 Tensor(w1.data(), DType::kFloat32, {1, m, k * h}), Tensor(hid.data(), DType::kFloat32, {1, s, k * h}));
    batched_gemm(context, Tensor(hid.data(), DType::kFloat32, {1, s, k * h}),
                 Tensor(w2.data(), DType::kFloat32, {1, k * h, m}), Tensor(out.data(), DType::kFloat32, {1, s, m}));
  });
  nlohmann::json result = {{"name", name},
                           {"tokens", s},
                           {"model_dim", m},
                           {"hidden", h},
                           {"experts", e},
                           {"top_k", k},
                           {"forward_ms", forward * 1e3},
                           {"dense_ffn_ms", dense * 1e3},
                           {"vs_dense_ffn", forward / dense},
                           {"train_step_ms", training * 1e3},
                           {"train_vs_forward", training / forward},
                           {"sgd_step_ms", sgd_step * 1e3},
                           {"saved_bytes_per_token", saved_per_token}};
  if (with_reference) {
    // The routed rows: each token once per route (s * k rows of x, as the experts see them).
    std::vector<double> xd(s * k * m), wd(m * h, 0.01);
    for (size_t i = 0; i < xd.size(); ++i) xd[i] = x[i % x.size()];
    auto start = Clock::now();
    // The plain reference's cost: the two expert GEMMs over every routed token, in double loops.
    reference::gemm(xd, wd, nullptr, 1, s * k, m, h, false, reference::Act::kRelu);
    double reference_s = 2 * std::chrono::duration<double>(Clock::now() - start).count();
    result["reference_ms"] = reference_s * 1e3;
    result["speedup_vs_reference"] = reference_s / forward;
    // The reference's training GEMMs: forward, data gradient (same cost) and weight gradient.
    std::vector<double> gd(s * k * h, 0.01);
    start = Clock::now();
    reference::weight_grad(xd, gd, 1, s * k, m, h, nullptr);
    double weight_s = 2 * std::chrono::duration<double>(Clock::now() - start).count();
    result["reference_train_ms"] = (2 * reference_s + weight_s) * 1e3;
    result["train_speedup_vs_reference"] = (2 * reference_s + weight_s) / training;
  }
  return result;
}

// Seconds to read every expert weight of `layer` once with the device's threads: the floor of a
// forward that must read them all (small batches).
double read_weights_seconds(Context& context, const MoeLayer& layer) {
  std::vector<std::pair<const float*, size_t>> spans;  // each thread's share of every weight
  const unsigned threads = context.cpu().parallelism();
  for (const std::string& name : layer.parameter_names()) {
    if (name.rfind("experts.", 0) != 0) continue;
    const Tensor w = layer.parameter(name);  // read 4 bytes at a time whatever the dtype
    spans.emplace_back(static_cast<const float*>(w.data()), w.nbytes() / sizeof(float));
  }
  std::vector<float> sums(threads);
  return best_seconds(3, [&] {
    std::vector<std::thread> readers;
    for (unsigned t = 0; t < threads; ++t)
      readers.emplace_back([&, t] {
        float acc[16] = {};
        for (const auto& [data, size] : spans) {
          const size_t chunk = (size + threads - 1) / threads;
          const size_t begin = std::min(size, t * chunk), end = std::min(size, begin + chunk);
          for (size_t i = begin; i + 16 <= end; i += 16)
            for (int j = 0; j < 16; ++j) acc[j] += data[i + j];
        }
        for (float v : acc) sums[t] += v;  // kept, so the reads are not optimized away
      });
    for (auto& reader : readers) reader.join();
  });
}

// Forwards of a few tokens (each of `token_counts`) at Mixtral's dims (M 4096, H 14336, E 8, top-2,
// SwiGLU) in `dtype`, on one layer (with `packed`, one that packs its expert weights ahead:
// MoeLayerConfig::pack_expert_weights): every expert sees a handful of rows, so the time is bounded by
// reading the weights once, or, as the tokens grow, by the GEMMs' arithmetic at the roofline's
// peak (`floor_ms` is the larger; `vs_floor` our time over it, `vs_read_once` over the reads alone).
// The reads are timed just before each forward: this VM's memory bandwidth drifts by 2x between
// minutes, and a ratio of figures from different minutes measured the drift.
nlohmann::json small_batch_cases(DType dtype, bool packed, const std::vector<int64_t>& token_counts) {
  Context& context = Context::global();
  MoeLayerConfig config;
  config.model_dim = 4096;
  config.hidden_size = 14336;
  config.num_experts = 8;
  config.expert_type = ExpertType::kSwiglu;
  config.has_fc1_bias = config.has_fc2_bias = false;
  config.dtype = dtype;
  config.pack_expert_weights = packed;
  const int64_t top_k = 2;
  const auto construct_start = Clock::now();
  auto owned = std::make_unique<MoeLayer>(context, context.cpu(), config);  // draws every weight (init_random)
  MoeLayer& layer = *owned;
  const double construct_s = std::chrono::duration<double>(Clock::now() - construct_start).count();
  const size_t weight_bytes = 3 * dtype_size(dtype) * config.num_experts * config.model_dim * config.hidden_size;
  const unsigned threads = context.cpu().parallelism();
  const Roofline roofline = roofline_for(dtype, bench::fma_peak_gflops(threads), bench::bf16_dot_peak_gflops(threads),
                                         bench::amx_bf16_peak_gflops(threads));
  nlohmann::json cases = nlohmann::json::array();
  for (const int64_t s : token_counts) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    std::vector<double> x(s * config.model_dim);
    for (auto& v : x) v = normal(rng);
    std::string bytes = encode_host_values(x, dtype);
    Tensor tx(bytes.data(), dtype, {s, config.model_dim});
    ForwardOptions options;
    options.top_k = top_k;
    const double floor_s = read_weights_seconds(context, layer);
    const double gbps = static_cast<double>(weight_bytes) / floor_s / 1e9;
    const double forward = best_seconds(3, [&] { layer.forward(tx, options); });
    // Three GEMMs of M x H per routed row (SwiGLU), two flops a product.
    const double gflop = 2.0 * 3 * static_cast<double>(s * top_k * config.model_dim * config.hidden_size) / 1e9;
    const double compute_s = gflop / roofline.gflops;
    cases.push_back({{"name", std::string("mixtral small batch (") + dtype_name(dtype) + " SwiGLU" +
                                  (packed ? ", packed weights)" : ")")},
                     {"pack_expert_weights", packed},
                     {"tokens", s},
                     {"weight_gb", weight_bytes / 1e9},
                     {"read_gbps", gbps},
                     {"read_weights_once_ms", floor_s * 1e3},
                     {"gflop", gflop},
                     {"roofline", roofline.name},
                     {"roofline_gflops", roofline.gflops},
                     {"compute_at_peak_ms", compute_s * 1e3},
                     {"floor_ms", std::max(floor_s, compute_s) * 1e3},
                     {"forward_ms", forward * 1e3},
                     {"vs_read_once", forward / floor_s},
                     {"vs_floor", forward / std::max(floor_s, compute_s)}});
  }
  // Start-up from a checkpoint: MoeLayer::open streams the file into the parameters (the file was
  // just written, so it is read from the page cache: the figure excludes the disk).
  const std::string path =
      (std::filesystem::temp_directory_path() / ("switchyard-moe-bench-" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  layer.save(path);
  owned.reset();  // its memory serves the opened layer (float32 with packed weights: 11 GB a layer)
  const auto open_start = Clock::now();
  const std::unique_ptr<MoeLayer> opened = MoeLayer::open(context, context.cpu(), path);
  const double open_s = std::chrono::duration<double>(Clock::now() - open_start).count();
  std::filesystem::remove(path);
  for (auto& c : cases) {
    c["construct_ms"] = construct_s * 1e3;
    c["open_from_file_ms"] = open_s * 1e3;
  }
  return cases;
}

}  // namespace

// What to run: sections (gemm, layer, small_batch; none: all of them) and, with `--only TEXT`,
// only the GEMM cases whose "name dtype pass" contains TEXT and the small-batch cases whose dtype
// does (a kernel engineer's loop on one case).
struct Selection {
  std::vector<std::string> sections;
  std::string only;

  bool wants(const std::string& section) const {
    return sections.empty() || std::find(sections.begin(), sections.end(), section) != sections.end();
  }
  bool wants(const GemmShape& shape) const {
    const std::string label = std::string(shape.name) + " " + dtype_name(shape.dtype) + " " + pass_name(shape.pass);
    return label.find(only) != std::string::npos;
  }
  bool wants(DType small_batch_dtype) const {
    return std::string(dtype_name(small_batch_dtype)).find(only) != std::string::npos;
  }
};

// nullopt (after saying why) where an argument is not a section or `--only` lacks its text.
std::optional<Selection> parse_selection(int argc, char** argv) {
  Selection selection;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--only" && i + 1 < argc) {
      selection.only = argv[++i];
    } else if (arg == "gemm" || arg == "layer" || arg == "small_batch") {
      selection.sections.push_back(arg);
    } else {
      std::cerr << "moe_bench: unknown argument '" << arg
                << "'; expected sections gemm, layer or small_batch (none: all) and --only TEXT (GEMM cases whose "
                   "\"name dtype pass\" contains TEXT, small-batch cases whose dtype does)\n";
      return std::nullopt;
    }
  }
  return selection;
}

// OpenBLAS picks its kernels by CPU model when it loads, and a build older than the CPU falls back
// to its oldest x86-64 kernels (Debian's 0.3.21 chose SSE3 "Prescott" kernels on Sapphire Rapids,
// a baseline 5x too slow). Unless the caller chose (OPENBLAS_CORETYPE), run again with the kernels
// of the widest vectors this host has (if the exec fails, the run goes on as it is).
void rerun_with_openblas_kernels_for_host(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                       : nullptr;
  if (core == nullptr) return;
  const std::string chosen = openblas_get_corename();
  // Cooperlake and Sapphire Rapids are SkylakeX's sgemm kernels with bfloat16 extras.
  const bool avx512_kernels = chosen == "SkylakeX" || chosen == "Cooperlake" || chosen == "SapphireRapids";
  if (chosen == core || (avx512_kernels && std::string(core) == "SkylakeX")) return;
  ::setenv("OPENBLAS_CORETYPE", core, 1);
  std::cerr << "moe_bench: OpenBLAS chose its " << openblas_get_corename()
            << " kernels for this CPU; running again with " << core << "'s (OPENBLAS_CORETYPE)\n";
  ::execv("/proc/self/exe", argv);
}

namespace {

int run(int argc, char** argv) {
  rerun_with_openblas_kernels_for_host(argv);
  const std::optional<Selection> selection = parse_selection(argc, argv);
  if (!selection) return 2;
  unsigned threads = Context::global().cpu().parallelism();
  openblas_set_num_threads(static_cast<int>(threads));
#if SY_BENCH_ONEDNN
  omp_set_num_threads(static_cast<int>(threads));
#endif
  nlohmann::json out;
  out["threads"] = threads;
  out["openblas"] = openblas_get_config();
#if SY_BENCH_ONEDNN
  const dnnl_version_t* dnnl = dnnl_version();
  out["onednn"] = "oneDNN " + std::to_string(dnnl->major) + "." + std::to_string(dnnl->minor) + "." +
                  std::to_string(dnnl->patch) + " (OpenMP)";
#else
  out["onednn"] = "not built (libdnnl-dev or OpenMP missing)";
#endif
  // tiny.json: M=64, H=128, E=4, k=2, S=2048 -> C = 2 * 512; mid: M=1024, H=4096, E=8, k=2, S=4096.
  const std::vector<GemmShape> shapes = {
      GemmShape{"tiny fc1", Pass::kForward, 4, 1024, 64, 128},
      GemmShape{"tiny fc2", Pass::kForward, 4, 1024, 128, 64},
      GemmShape{"mid fc1", Pass::kForward, 8, 1024, 1024, 4096},
      GemmShape{"mid fc2", Pass::kForward, 8, 1024, 4096, 1024},
      GemmShape{"mid fc1", Pass::kData, 8, 1024, 1024, 4096},
      GemmShape{"mid fc2", Pass::kData, 8, 1024, 4096, 1024},
      GemmShape{"mid fc1", Pass::kWeight, 8, 1024, 1024, 4096},
      GemmShape{"mid fc2", Pass::kWeight, 8, 1024, 4096, 1024},
      GemmShape{"mid fc1", Pass::kForward, 8, 1024, 1024, 4096, DType::kBFloat16},
      GemmShape{"mid fc2", Pass::kForward, 8, 1024, 4096, 1024, DType::kBFloat16},
      GemmShape{"mid fc1", Pass::kData, 8, 1024, 1024, 4096, DType::kBFloat16},
      GemmShape{"mid fc1", Pass::kWeight, 8, 1024, 1024, 4096, DType::kBFloat16},
      // A small batch's experts at Mixtral's dims: reading the weights is the work.
      GemmShape{"mixtral small fc1", Pass::kForward, 8, 16, 4096, 14336, DType::kBFloat16},
      GemmShape{"mixtral small fc2", Pass::kForward, 8, 16, 14336, 4096, DType::kBFloat16},
      GemmShape{"mixtral small fc1", Pass::kForward, 8, 16, 4096, 14336},
      GemmShape{"mixtral small fc2", Pass::kForward, 8, 16, 14336, 4096},
  };
  out["gemm"] = nlohmann::json::array();
  if (selection->wants("gemm")) {
    // The peaks before and after the GEMMs, keeping the higher: the VM's speed drifts, and a peak
    // taken in a slow minute would flatter every fraction.
    const double peak_before = bench::fma_peak_gflops(threads);
    const double bf16_dot_peak_before = bench::bf16_dot_peak_gflops(threads);
    const double amx_peak_before = bench::amx_bf16_peak_gflops(threads);
    for (const GemmShape& shape : shapes)
      if (selection->wants(shape)) out["gemm"].push_back(gemm_case(shape));
    const double peak = std::max(peak_before, bench::fma_peak_gflops(threads));
    const double bf16_dot_peak = std::max(bf16_dot_peak_before, bench::bf16_dot_peak_gflops(threads));
    const double amx_peak = std::max(amx_peak_before, bench::amx_bf16_peak_gflops(threads));
    out["fma_peak_gflops"] = peak;
    out["fma_peak_vector_bits"] = bench::fma_peak_vector_bits();
    out["bf16_dot_peak_gflops"] = bf16_dot_peak;
    out["amx_bf16_peak_gflops"] = amx_peak;
    add_peak_fractions(out["gemm"], peak, bf16_dot_peak, amx_peak);
  }
  out["peak_exceeded"] = figures_above_peak(out["gemm"]);
  if (selection->wants("layer"))
    out["layer"] = {layer_case("tiny", 2048, 64, 128, 4, 2, true), layer_case("mid", 4096, 1024, 4096, 8, 2, false)};
  if (selection->wants("small_batch")) {
    out["small_batch"] = nlohmann::json::array();
    for (DType dtype : {DType::kFloat32, DType::kBFloat16})
      for (bool packed : {false, true})
        if (selection->wants(dtype))
          for (auto& c : small_batch_cases(dtype, packed, {16, 32, 64})) out["small_batch"].push_back(c);
  }
  std::cout << out.dump(2) << "\n";
  if (!out["peak_exceeded"].empty()) {
    std::cerr << "moe_bench: figures above the measured peak (" << out["fma_peak_gflops"].get<double>()
              << " GFLOP/s float32 FMA, " << out["bf16_dot_peak_gflops"].get<double>() << " bfloat16 dot products, "
              << out.value("amx_bf16_peak_gflops", 0.0) << " AMX tiles): " << out["peak_exceeded"].dump() << "\n";
    return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "moe_bench: " << e.what() << "\n";
    return 1;
  }
}
