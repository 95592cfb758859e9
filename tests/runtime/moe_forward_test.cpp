// Whole-layer forward against a reference composed from the reference ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/settings.h"
#include "runtime/cpu_device.h"
#include "runtime/cpu_scratch.h"
#include "runtime/model_config.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/reference/dispatch_reference.h"
#include "tests/reference/layer_reference.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

std::vector<double> read_all(const Tensor& t) {
  if (t.dtype() == DType::kFloat64) return std::vector<double>(t.data_as<double>(), t.data_as<double>() + t.numel());
  return std::vector<double>(t.data_as<float>(), t.data_as<float>() + t.numel());
}

template <typename T>
class MoeForwardTest : public ::testing::Test {};
using LayerTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(MoeForwardTest, LayerTypes);

TYPED_TEST(MoeForwardTest, RandomConfigsMatchReference) {
  using T = TypeParam;
  const DType dt = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
  // NOTE: float tolerance covers two chained GEMMs of K <= 48 plus routing; a token whose top
  // scores tie within rounding could route differently, which random normal inputs avoid.
  const double tol = std::is_same_v<T, double> ? 1e-10 : 2e-4;
  std::mt19937 rng(2024);
  const kernels::GemmActivation acts[] = {kernels::kActRelu, kernels::kActGelu, kernels::kActSilu};
  const double factors[] = {1.0, 0.0, -1.25, 0.5, 2.0};
  for (int trial = 0; trial < 16; ++trial) {
    MoeLayerConfig config;
    config.model_dim = 8 + 8 * (trial % 3);
    config.hidden_size = 16 + 16 * (trial % 2);
    config.num_experts = 2 + trial % 4;
    config.dtype = dt;
    config.expert_type = trial % 5 == 4 ? ExpertType::kSwiglu : ExpertType::kFfn;
    config.activation = acts[trial % 3];
    config.has_fc1_bias = trial % 4 != 1;
    config.has_fc2_bias = trial % 4 != 2;
    MoeLayer layer(Context::global(), Context::global().cpu(), config);
    layer.init_parameters(100 + trial);
    ForwardOptions o;
    o.top_k = 1 + trial % std::min<int64_t>(2, config.num_experts);
    o.capacity_factor = factors[trial % 5];
    o.dropless_grouped = trial % 2 == 1;
    o.is_postscore = trial % 3 != 1;
    o.batch_prioritized_routing = trial % 4 == 3;
    o.megablocks_size = trial % 6 == 5 ? 4 : 0;
    const int64_t s = 5 + trial * 3;
    auto x = testing::random_normal<T>(rng, s * config.model_dim);
    SCOPED_TRACE("trial " + std::to_string(trial) + " k=" + std::to_string(o.top_k) +
                 " cf=" + std::to_string(o.capacity_factor));
    ForwardResult got = layer.forward(Tensor(x.data(), dt, {s, config.model_dim}), o);
    double l_aux = 0;
    auto want = reference::layer_forward(config, reference::layer_params(layer),
                                         std::vector<double>(x.begin(), x.end()), s, o, &l_aux);
    auto out = read_all(got.output);
    ASSERT_EQ(out.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(out[i], want[i], tol * (1 + std::abs(want[i]))) << i;
    EXPECT_NEAR(got.l_aux(), l_aux, tol);
  }
}

MoeLayerConfig small_config() {
  MoeLayerConfig c;
  c.model_dim = 16;
  c.hidden_size = 32;
  c.num_experts = 4;
  return c;
}

// The routing statistics, the capacity, the BPR order, the grouped rows and the aux loss's
// gradient stay where the layer is: a steady-state training step with a positive capacity factor
// copies nothing between host and device (the same calls wait for a GPU). Reading the results
// and a dropless capacity are the documented copies.
TEST(MoeForward, SteadyStateStepCopiesNothingToOrFromTheHost) {
  Device& cpu = Context::global().cpu();
  MoeLayer layer(Context::global(), cpu, small_config());
  layer.init_parameters(3);
  std::mt19937 rng(8);
  auto x = testing::random_normal<float>(rng, 40 * 16), dy = testing::random_normal<float>(rng, 40 * 16);
  ForwardOptions o;
  o.save_for_backward = true;
  o.batch_prioritized_routing = true;
  o.dropless_grouped = true;
  o.capacity_factor = 1.5;
  auto step = [&] {
    ForwardResult r = layer.forward(Tensor(x.data(), DType::kFloat32, {40, 16}), o);
    layer.backward(Tensor(dy.data(), DType::kFloat32, {40, 16}), 0.01);
    layer.sgd_step(SgdOptions{});
    return r;
  };
  step();  // the first step prepares the plan
  const uint64_t before = cpu.host_waits();
  ForwardResult r = step();
  EXPECT_EQ(cpu.host_waits(), before) << "a steady-state step copied between host and device";
  const std::vector<int> counts = r.expert_counts();
  EXPECT_EQ(cpu.host_waits(), before + 1) << "reading the counts is one copy";
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), 2 * 40) << "every (token, choice) pair is counted";
  EXPECT_GT(r.l_aux(), 0.0);
  EXPECT_EQ(cpu.host_waits(), before + 2) << "reading l_aux is one copy";
  ForwardOptions dropless = o;
  dropless.capacity_factor = 0;
  dropless.save_for_backward = false;
  layer.forward(Tensor(x.data(), DType::kFloat32, {40, 16}), dropless);  // may prepare its plan
  const uint64_t padded = cpu.host_waits();
  const ForwardResult d = layer.forward(Tensor(x.data(), DType::kFloat32, {40, 16}), dropless);
  EXPECT_EQ(cpu.host_waits(), padded + 1) << "a dropless capacity reads the counts once";
  EXPECT_EQ(d.capacity, *std::max_element(counts.begin(), counts.end()));
}

// Buffers come from the CPU device's block cache and the GEMM's packing space from each thread's
// scratch: once a step has run, the same step asks the C library for no memory (the CUDA device's
// pool does the same on a GPU) and hands every buffer back. One thread, so that which thread runs
// which GEMM block (and so which thread's scratch grows) is the same in every step.
TEST(MoeForward, SteadyStateStepAllocatesNothing) {
  Settings settings = Settings::from_environment();
  settings.num_threads = 1;
  Context context(settings);
  auto& cpu = static_cast<CpuDevice&>(context.cpu());
  MoeLayer layer(context, cpu, small_config());
  layer.init_parameters(3);
  std::mt19937 rng(8);
  auto x = testing::random_normal<float>(rng, 40 * 16), dy = testing::random_normal<float>(rng, 40 * 16);
  for (bool grouped : {false, true}) {
    ForwardOptions o;
    o.save_for_backward = true;
    o.dropless_grouped = grouped;
    o.capacity_factor = 1.5;
    auto step = [&] {
      layer.forward(Tensor(x.data(), DType::kFloat32, {40, 16}), o);
      layer.backward(Tensor(dy.data(), DType::kFloat32, {40, 16}), 0.01);
      layer.sgd_step(SgdOptions{});
    };
    step();
    const HostBlockCache::Stats before = cpu.memory_stats();
    const uint64_t scratch_before = cpu_scratch_allocations();
    step();
    step();
    const HostBlockCache::Stats after = cpu.memory_stats();
    EXPECT_EQ(after.system_allocations, before.system_allocations) << "grouped " << grouped;
    EXPECT_EQ(cpu_scratch_allocations(), scratch_before) << "grouped " << grouped;
    EXPECT_EQ(after.in_use, before.in_use) << "a step kept buffers it no longer needs";
    EXPECT_GT(after.high_water, after.in_use) << "a step's buffers come from the same cache";
  }
  cpu.trim_memory();
  EXPECT_EQ(cpu.memory_stats().cached, 0u);
  layer.forward(Tensor(x.data(), DType::kFloat32, {40, 16}), ForwardOptions{});  // works after a trim
}

TEST(MoeForward, DroplessGroupedEqualsPadded) {
  MoeLayer layer(Context::global(), Context::global().cpu(), small_config());
  std::mt19937 rng(5);
  auto x = testing::random_normal<float>(rng, 40 * 16);
  ForwardOptions padded;
  padded.capacity_factor = 0;
  ForwardOptions grouped = padded;
  grouped.dropless_grouped = true;
  Tensor tx(x.data(), DType::kFloat32, {40, 16});
  auto a = read_all(layer.forward(tx, padded).output), b = read_all(layer.forward(tx, grouped).output);
  EXPECT_EQ(a, b);
}

TEST(MoeForward, SwitchingOptionsEqualsAFreshLayerAndCompilesNothing) {
  MoeLayer layer(Context::global(), Context::global().cpu(), small_config());
  layer.init_parameters(9);
  std::mt19937 rng(6);
  auto x = testing::random_normal<float>(rng, 24 * 16);
  Tensor tx(x.data(), DType::kFloat32, {24, 16});
  std::vector<ForwardOptions> sequence(4);
  sequence[1].top_k = 1;
  sequence[2].capacity_factor = -1.25;
  sequence[2].dropless_grouped = true;
  sequence[3].capacity_factor = 0;
  sequence[3].is_postscore = false;
  for (const auto& o : sequence) layer.forward(tx, o);  // warm every kernel of the sequence
  uint64_t compiles = Context::global().counters().store.compiles;
  uint64_t loads = Context::global().counters().loads;
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < sequence.size(); ++i) {
      MoeLayer fresh(Context::global(), Context::global().cpu(), small_config());
      fresh.init_parameters(9);
      EXPECT_EQ(read_all(layer.forward(tx, sequence[(i + round) % 4]).output),
                read_all(fresh.forward(tx, sequence[(i + round) % 4]).output));
    }
  }
  EXPECT_EQ(Context::global().counters().store.compiles, compiles) << "switching compiled a kernel";
  EXPECT_EQ(Context::global().counters().loads, loads) << "switching loaded a kernel";
}

TEST(MoeForward, AfterWarmingTheConfigAnySwitchCompilesNothing) {
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  settings.force_compile = false;
  ModelConfig model = ModelConfig::load(testing::source_dir() + "/examples/models/tiny.json");
  {
    Context warm(settings);  // what `switchyard warm` does
    for (const auto& spec : kernel_set(model, Target::cpu()).specs) warm.store().obtain(spec);
  }
  Context context(settings);  // a fresh process: nothing in memory
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    MoeLayerConfig config;
    config.model_dim = model.model_dim;
    config.hidden_size = model.hidden_size;
    config.num_experts = model.num_experts;
    config.dtype = dtype;
    MoeLayer layer(context, context.cpu(), config);
    std::mt19937 rng(3);
    std::vector<double> x(33 * model.model_dim);
    std::normal_distribution<double> normal;
    for (auto& v : x) v = normal(rng);
    std::vector<float> xf(x.begin(), x.end());
    Tensor tx = dtype == DType::kFloat64 ? Tensor(x.data(), dtype, {33, model.model_dim})
                                         : Tensor(xf.data(), dtype, {33, model.model_dim});
    for (int64_t k : model.top_k)
      for (double cf : model.capacity_factor)
        for (bool postscore : model.is_postscore)
          for (bool grouped : {false, true}) {
            ForwardOptions o;
            o.top_k = k;
            o.capacity_factor = cf;
            o.is_postscore = postscore;
            o.dropless_grouped = grouped;
            o.batch_prioritized_routing = grouped;
            layer.forward(tx, o);
          }
  }
  EXPECT_EQ(context.counters().store.compiles, 0u);
  EXPECT_GT(context.counters().store.disk_hits, 0u);
}

TEST(MoeForward, PrepareLoadsThePlanOnceAndForwardThenLoadsNothing) {
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  Context context(settings);
  MoeLayer layer(context, context.cpu(), small_config());
  ForwardOptions top1;
  top1.top_k = 1;
  const size_t planned = layer.prepare(top1);
  EXPECT_GE(planned, 7u);  // gate GEMM, top-k, locations, encode, fc1, fc2, decode
  EXPECT_EQ(context.counters().loads, planned);
  EXPECT_EQ(layer.prepare(top1), planned);
  std::vector<float> x(5 * small_config().model_dim, 0.25f);
  top1.capacity_factor = -2;  // capacity and dropless switch no kernel
  top1.dropless_grouped = true;
  layer.forward(Tensor(x.data(), DType::kFloat32, {5, small_config().model_dim}), top1);
  EXPECT_EQ(context.counters().loads, planned) << "forward loaded a kernel its plan did not hold";
  ForwardOptions bad;
  bad.top_k = 0;
  EXPECT_THROW(layer.prepare(bad), UserError);
}

TEST(MoeForward, SafetensorsRoundTripAndBadFiles) {
  testing::TempDir dir;
  MoeLayer a(Context::global(), Context::global().cpu(), small_config());
  a.init_parameters(1);
  a.save(dir / "layer.safetensors");
  MoeLayer b(Context::global(), Context::global().cpu(), small_config());
  b.init_parameters(2);
  b.load(dir / "layer.safetensors");
  for (const auto& name : a.parameter_names())
    EXPECT_EQ(read_all(a.parameter(name)), read_all(b.parameter(name))) << name;

  auto before = read_all(b.parameter("experts.batched_fc1_w"));
  auto expect_rejected = [&](const std::string& file, const std::string& needle) {
    try {
      b.load(file);
      ADD_FAILURE() << "loading " << file << " should fail";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_all(b.parameter("experts.batched_fc1_w")), before) << "a failed load changed the layer";
  };
  TensorFile file = read_safetensors(dir / "layer.safetensors");
  TensorFile wrong_shape = file;
  wrong_shape["experts.batched_fc1_w"].shape = {4, 16, 32};
  write_safetensors(dir / "shape.safetensors", wrong_shape);
  expect_rejected(dir / "shape.safetensors", "has shape [4, 16, 32]; the layer expects [4, 32, 16]");
  TensorFile missing = file;
  missing.erase("experts.batched_fc2_bias");
  write_safetensors(dir / "missing.safetensors", missing);
  expect_rejected(dir / "missing.safetensors", "has no tensor 'experts.batched_fc2_bias'");
  TensorFile wrong_dtype = file;
  wrong_dtype["gates.0.wg.weight"].dtype = "I32";
  write_safetensors(dir / "dtype.safetensors", wrong_dtype);
  expect_rejected(dir / "dtype.safetensors", "is I32; the layer expects F32");
  TensorFile other = file;
  other["_num_global_experts"].bytes[0] = 8;
  write_safetensors(dir / "other.safetensors", other);
  expect_rejected(dir / "other.safetensors", "holds a layer with 8 experts");
  std::string bytes = fs::read_file(dir / "layer.safetensors");
  fs::write_file(dir / "truncated.safetensors", bytes.substr(0, bytes.size() - 100));
  expect_rejected(dir / "truncated.safetensors", "truncated or lying header");
  std::string lying = bytes;
  lying[0] = static_cast<char>(0xff);  // header length beyond the file
  lying[1] = static_cast<char>(0xff);
  fs::write_file(dir / "lying.safetensors", lying);
  expect_rejected(dir / "lying.safetensors", "does not fit");
  expect_rejected(dir / "absent.safetensors", "cannot read");
  // The index reads the header only; the reader then fetches any tensor's bytes.
  const TensorIndex index = read_safetensors_index(dir / "layer.safetensors");
  EXPECT_EQ(index.size(), file.size());
  SafetensorsReader reader(dir / "layer.safetensors");
  for (const auto& [name, slice] : index) {
    EXPECT_EQ(slice.shape, file.at(name).shape) << name;
    std::string got(slice.bytes, '\0');
    reader.read(slice, got.data());
    EXPECT_EQ(got, file.at(name).bytes) << name;
  }
  // A file cut short after its header was read: the read fails, saying so.
  fs::write_file(dir / "shrinking.safetensors", bytes);
  const TensorIndex before_cut = read_safetensors_index(dir / "shrinking.safetensors");
  SafetensorsReader cut(dir / "shrinking.safetensors");
  std::filesystem::resize_file(std::string(dir / "shrinking.safetensors"), bytes.size() / 2);  // the same inode
  const TensorSlice& last = std::max_element(before_cut.begin(), before_cut.end(), [](const auto& x, const auto& y) {
                              return x.second.offset < y.second.offset;
                            })->second;
  std::string sink(last.bytes, '\0');
  try {
    cut.read(last, sink.data());
    ADD_FAILURE() << "a read past the end of the file succeeded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("shorter than its header says"), std::string::npos) << e.what();
  }
}

// open() builds a layer from a file alone: the same config and bit-identical weights as the layer
// that saved it, and no kernel runs (no initial draw to throw away); bad files are errors.
TEST(MoeForward, OpenTakesConfigAndWeightsFromTheFileWithoutDrawing) {
  testing::TempDir dir;
  Context& context = Context::global();
  MoeLayerConfig config = small_config();
  config.dtype = DType::kBFloat16;
  MoeLayer a(context, context.cpu(), config);
  a.init_parameters(9);
  a.save(dir / "layer.safetensors");
  const RuntimeCounters before = context.counters();
  std::unique_ptr<MoeLayer> b = MoeLayer::open(context, context.cpu(), dir / "layer.safetensors");
  const RuntimeCounters after = context.counters();
  EXPECT_EQ(after.memory_hits + after.loads, before.memory_hits + before.loads) << "open launched kernels";
  EXPECT_EQ(b->config().model_dim, config.model_dim);
  EXPECT_EQ(b->config().hidden_size, config.hidden_size);
  EXPECT_EQ(b->config().num_experts, config.num_experts);
  EXPECT_EQ(b->config().dtype, DType::kBFloat16);
  EXPECT_EQ(b->parameter_names(), a.parameter_names());
  auto bytes_of = [](const Tensor& t) { return std::string(t.data_as<const char>(), t.nbytes()); };
  for (const auto& name : a.parameter_names()) EXPECT_EQ(bytes_of(a.parameter(name)), bytes_of(b->parameter(name)));
  for (const auto& [file, needle] :
       std::vector<std::pair<std::string, std::string>>{{dir / "absent.safetensors", "cannot read"}}) {
    try {
      MoeLayer::open(context, context.cpu(), file);
      ADD_FAILURE() << "opening " << file << " should fail";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  const std::string bytes = fs::read_file(dir / "layer.safetensors");
  fs::write_file(dir / "truncated.safetensors", bytes.substr(0, bytes.size() - 100));
  EXPECT_THROW(MoeLayer::open(context, context.cpu(), dir / "truncated.safetensors"), UserError);
}

// A tensor of hundreds of MB is read by several threads, each a range: every byte lands where it
// belongs, and a file cut short fails the read in whichever range meets the end.
TEST(MoeForward, LargeSafetensorsTensorsReadInRanges) {
  testing::TempDir dir;
  const int64_t count = (int64_t{200} << 20) / 4 + 3;  // past three 64 MB shares, not a multiple
  StoredTensor big{"F32", {count}, std::string(static_cast<size_t>(count) * 4, '\0')};
  for (size_t i = 0; i < big.bytes.size(); ++i) big.bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::string path = dir / "big.safetensors";
  write_safetensors(path, {{"w", big}});
  SafetensorsReader reader(path);
  const TensorSlice slice = reader.index().at("w");
  std::string got(slice.bytes, '\0');
  reader.read(slice, got.data());
  EXPECT_TRUE(got == big.bytes) << "a range landed in the wrong place";
  SafetensorsReader staged(path, size_t{40} << 20);  // two readers a chunk, the last chunk partial
  Buffer on_device(Context::global().cpu(), slice.bytes);
  staged.read_staged(Context::global().cpu(), slice, on_device.data());
  EXPECT_TRUE(std::string(static_cast<const char*>(on_device.data()), slice.bytes) == big.bytes)
      << "a staged range landed in the wrong place";
  std::filesystem::resize_file(path, slice.offset + slice.bytes * 3 / 5);
  try {
    reader.read(slice, got.data());
    ADD_FAILURE() << "a read past the end of the file succeeded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("shorter than its header says"), std::string::npos) << e.what();
  }
}

// The staged path a GPU layer loads through (two host buffers, the next chunk read while the
// current one is copied), run on the CPU device: every chunking lands every byte in its place,
// and a file cut short fails with the reader's message (the read runs on another thread).
TEST(MoeForward, StagedSafetensorsReadsLandEveryChunkInPlace) {
  testing::TempDir dir;
  TensorFile file;
  for (int64_t count : {1, 5, 250, 4096 + 3}) {
    StoredTensor t{"F32", {count}, std::string(static_cast<size_t>(count) * 4, '\0')};
    for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<char>((i * 2654435761u + count) >> 11);
    file["t" + std::to_string(count)] = t;
  }
  const std::string path = dir / "staged.safetensors";
  write_safetensors(path, file);
  Device& cpu = Context::global().cpu();
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}, size_t{1} << 20}) {
    SafetensorsReader reader(path, chunk);
    for (const auto& [name, slice] : reader.index()) {
      Buffer on_device(cpu, slice.bytes);
      reader.read_staged(cpu, slice, on_device.data());
      EXPECT_TRUE(std::string(static_cast<const char*>(on_device.data()), slice.bytes) == file.at(name).bytes)
          << name << " in chunks of " << chunk;
    }
  }
  SafetensorsReader reader(path, 1000);
  const TensorSlice slice = reader.index().at("t4099");
  std::filesystem::resize_file(path, slice.offset + slice.bytes / 2);
  Buffer sink(cpu, slice.bytes);
  try {
    reader.read_staged(cpu, slice, sink.data());
    ADD_FAILURE() << "a staged read past the end of the file succeeded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("shorter than its header says"), std::string::npos) << e.what();
  }
}

TEST(MoeForward, BadOptionsAndInputs) {
  MoeLayer layer(Context::global(), Context::global().cpu(), small_config());
  std::vector<float> x(8 * 16, 0.5f);
  Tensor tx(x.data(), DType::kFloat32, {8, 16});
  auto expect_error = [&](const Tensor& t, ForwardOptions o, const std::string& needle) {
    try {
      layer.forward(t, o);
      ADD_FAILURE() << "expected an error containing " << needle;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  ForwardOptions o;
  o.top_k = 0;
  expect_error(tx, o, "top_k = 0");
  o.top_k = 5;
  expect_error(tx, o, "top_k = 5; expected 1 to num_experts (4)");
  o = ForwardOptions();
  o.capacity_factor = std::nan("");
  expect_error(tx, o, "capacity_factor = nan");
  expect_error(Tensor(x.data(), DType::kFloat32, {16, 8}), ForwardOptions(), "expected contiguous [tokens, 16]");
  x[37] = std::nanf("");
  expect_error(tx, ForwardOptions(), "the input holds nan at token 2, element 5");
  // Past the first chunks of the scan, the first of several is named (Inf and NaN alike; the
  // largest finite value is finite).
  std::vector<float> big(700 * 16, 0.25f);
  big[5000] = std::numeric_limits<float>::max();
  big[9009] = -std::numeric_limits<float>::infinity();
  big[9500] = std::nanf("");
  expect_error(Tensor(big.data(), DType::kFloat32, {700, 16}), ForwardOptions(),
               "the input holds -inf at token 563, element 1");
  std::vector<double> wide(700 * 16, 0.25);
  wide[8200] = std::numeric_limits<double>::max();
  wide[8201] = std::nan("");
  MoeLayerConfig f64 = small_config();
  f64.dtype = DType::kFloat64;
  MoeLayer layer64(Context::global(), Context::global().cpu(), f64);
  EXPECT_THROW(
      {
        try {
          layer64.forward(Tensor(wide.data(), DType::kFloat64, {700, 16}), ForwardOptions());
        } catch (const UserError& e) {
          EXPECT_NE(std::string(e.what()).find("nan at token 512, element 9"), std::string::npos) << e.what();
          throw;
        }
      },
      UserError);
  MoeLayerConfig bad = small_config();
  bad.num_experts = 0;
  EXPECT_THROW(MoeLayer(Context::global(), Context::global().cpu(), bad), UserError);
}

TEST(MoeForward, LoadImportanceLossMatchesReference) {
  MoeLayer layer(Context::global(), Context::global().cpu(), small_config());
  layer.init_parameters(12);
  std::mt19937 rng(13);
  const int64_t s = 37;
  auto x = testing::random_normal<double>(rng, s * 16);
  std::vector<float> xf(x.begin(), x.end());
  std::vector<double> stored(xf.begin(), xf.end());
  for (int64_t k : {1, 2}) {
    ForwardOptions o;
    o.top_k = k;
    o.is_gshard_loss = false;
    o.gate_noise = 1.0;
    ForwardResult got = layer.forward(Tensor(xf.data(), DType::kFloat32, {s, 16}), o);
    auto logits = reference::gemm(stored, reference::layer_params(layer).at("gates.0.wg.weight"), nullptr, 1, s, 16, 4,
                                  true, reference::Act::kNone);
    auto routed = reference::route(logits, s, 4, k, 1.0, true, false, 1);
    EXPECT_NEAR(got.l_aux(), reference::load_importance_loss(routed.scores, logits, s, 4, k, 1.0), 1e-5);
  }
  ForwardOptions no_noise;
  no_noise.is_gshard_loss = false;
  EXPECT_THROW(layer.forward(Tensor(xf.data(), DType::kFloat32, {s, 16}), no_noise), UserError);
}

TEST(MoeForward, Fp32GateOnAFloat64Layer) {
  MoeLayerConfig config = small_config();
  config.dtype = DType::kFloat64;
  config.fp32_gate = true;
  MoeLayer layer(Context::global(), Context::global().cpu(), config);
  EXPECT_EQ(layer.parameter("gates.0.wg.weight").dtype(), DType::kFloat32);
  EXPECT_EQ(layer.parameter("experts.batched_fc1_w").dtype(), DType::kFloat64);
  std::mt19937 rng(21);
  const int64_t s = 29;
  auto x = testing::random_normal<double>(rng, s * 16);
  ForwardOptions o;
  ForwardResult got = layer.forward(Tensor(x.data(), DType::kFloat64, {s, 16}), o);
  // Reference: the gate sees the input rounded to float32 (and its float32 weight).
  std::vector<double> x32(x.size());
  for (size_t i = 0; i < x.size(); ++i) x32[i] = static_cast<float>(x[i]);
  auto params = reference::layer_params(layer);
  auto logits = reference::gemm(x32, params.at("gates.0.wg.weight"), nullptr, 1, s, 16, 4, true, reference::Act::kNone);
  auto routed = reference::route(logits, s, 4, o.top_k, o.capacity_factor, true, false, 1);
  EXPECT_EQ(got.expert_counts(), routed.counts);
  double l_aux = 0;
  auto want = reference::layer_forward(config, params, x, s, o, &l_aux);
  auto out = read_all(got.output);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << i;
  testing::TempDir dir;
  layer.save(dir / "fp32gate.safetensors");
  EXPECT_EQ(read_safetensors(dir / "fp32gate.safetensors").at("gates.0.wg.weight").dtype, "F32");
  MoeLayer again(Context::global(), Context::global().cpu(), config);
  again.load(dir / "fp32gate.safetensors");
  EXPECT_EQ(read_all(again.forward(Tensor(x.data(), DType::kFloat64, {s, 16}), o).output), out);
}

TEST(MoeForward, TopKUpToTheNumberOfExperts) {
  // Any k from 1 to E (Tutel's range), here well past the 64 of earlier templates.
  MoeLayerConfig config = small_config();
  config.num_experts = 80;
  MoeLayer layer(Context::global(), Context::global().cpu(), config);
  std::mt19937 rng(31);
  const int64_t s = 12;
  auto x = testing::random_normal<float>(rng, s * 16);
  for (int64_t k : {70, 80}) {
    ForwardOptions o;
    o.top_k = k;
    o.capacity_factor = 0;
    ForwardResult got = layer.forward(Tensor(x.data(), DType::kFloat32, {s, 16}), o);
    double l_aux = 0;
    auto want = reference::layer_forward(config, reference::layer_params(layer),
                                         std::vector<double>(x.begin(), x.end()), s, o, &l_aux);
    auto out = read_all(got.output);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(out[i], want[i], 2e-4 * (1 + std::abs(want[i]))) << k << " " << i;
  }
}

TEST(MoeForward, TinyCapacityDropsEverything) {
  MoeLayer layer(Context::global(), Context::global().cpu(), small_config());
  std::mt19937 rng(1);
  auto x = testing::random_normal<float>(rng, 10 * 16);
  ForwardOptions o;
  o.top_k = 1;
  o.capacity_factor = 0.3;  // spe = 3, floor(0.9) = 0 -> C = 0
  ForwardResult r = layer.forward(Tensor(x.data(), DType::kFloat32, {10, 16}), o);
  EXPECT_EQ(r.capacity, 0);
  for (double v : read_all(r.output)) EXPECT_EQ(v, 0.0);
}

}  // namespace
}  // namespace switchyard
