// The settings a layer file's tensors do not show (activation, allow_tf32, pack_expert_weights)
// travel in the metadata MoeLayer::save writes: open() restores them and computes the saved
// layer's bits, a file without them (a Tutel checkpoint, another format) keeps the defaults, and
// a value that is not valid, or metadata that is not strings, is an error naming it.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/runtime/layer_dtype_checks.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

MoeLayerConfig gelu_config() {
  MoeLayerConfig c = testing::layer_config(16, 96, 4, DType::kFloat32);
  c.activation = kernels::kActGelu;
  c.allow_tf32 = true;
  c.pack_expert_weights = true;
  return c;
}

std::string output(MoeLayer& layer, const Buffer& x) {
  ForwardOptions options;
  options.top_k = 2;
  return testing::host_bytes(layer.device(), layer.forward(x.view(DType::kFloat32, {24, 16}), options).output);
}

TEST(LayerFileSettings, OpenRestoresWhatTheTensorsDoNotShow) {
  testing::TempDir dir;
  Context& context = Context::global();
  MoeLayer saved(context, context.cpu(), gelu_config());
  saved.save(dir / "layer.safetensors");
  const std::unique_ptr<MoeLayer> opened = MoeLayer::open(context, context.cpu(), dir / "layer.safetensors");
  EXPECT_EQ(opened->config().activation, kernels::kActGelu);
  EXPECT_TRUE(opened->config().allow_tf32);
  EXPECT_TRUE(opened->config().pack_expert_weights);
  const Buffer x = testing::normal_input(context.cpu(), DType::kFloat32, 24, 16, 7);
  EXPECT_EQ(output(*opened, x), output(saved, x));

  // The same tensors without the metadata, or under another format's: the defaults, and relu's
  // output, which differs from gelu's.
  const TensorFile tensors = read_safetensors(dir / "layer.safetensors");
  write_safetensors(dir / "tutel.safetensors", tensors);
  write_safetensors(dir / "other.safetensors", tensors, {{"format", "pt"}, {"activation", "gelu"}});
  for (const char* name : {"tutel.safetensors", "other.safetensors"}) {
    SCOPED_TRACE(name);
    const std::unique_ptr<MoeLayer> plain = MoeLayer::open(context, context.cpu(), dir / name);
    EXPECT_EQ(plain->config().activation, kernels::kActRelu);
    EXPECT_FALSE(plain->config().allow_tf32);
    EXPECT_FALSE(plain->config().pack_expert_weights);
    EXPECT_NE(output(*plain, x), output(saved, x));
  }
}

TEST(LayerFileSettings, BadSettingsAreNamed) {
  testing::TempDir dir;
  Context& context = Context::global();
  MoeLayer saved(context, context.cpu(), gelu_config());
  saved.save(dir / "layer.safetensors");
  const TensorFile tensors = read_safetensors(dir / "layer.safetensors");
  const std::pair<std::map<std::string, std::string>, std::string> cases[] = {
      {{{"format", "switchyard-moe"}, {"activation", "tanh"}}, "metadata activation: unknown activation 'tanh'"},
      {{{"format", "switchyard-moe"}, {"pack_expert_weights", "yes"}}, "metadata pack_expert_weights is 'yes'"},
      {{{"format", "switchyard-moe"}, {"allow_tf32", "1"}}, "metadata allow_tf32 is '1'"}};
  for (const auto& [metadata, message] : cases) {
    write_safetensors(dir / "bad.safetensors", tensors, metadata);
    testing::expect_user_error([&] { layer_config_from_safetensors(dir / "bad.safetensors"); }, message);
    testing::expect_user_error([&] { MoeLayer::open(context, context.cpu(), dir / "bad.safetensors"); }, message);
  }
  // The format maps strings to strings: a number there is named.
  const std::string header = R"({"__metadata__":{"format":1},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  fs::write_file(dir / "number.safetensors", file + header + std::string(4, '\0'));
  testing::expect_user_error([&] { SafetensorsReader reader(dir / "number.safetensors"); },
                             "__metadata__ entry 'format' is 1");
}

}  // namespace
}  // namespace switchyard
