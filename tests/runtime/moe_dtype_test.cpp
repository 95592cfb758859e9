// The CPU layer in every dtype it stores (float32, and float16 / bfloat16 computed in float, as on
// CUDA): forward, backward and SGD against the float64 host reference, through the same checks
// the GPU suite runs (layer_dtype_checks.h).
#include <gtest/gtest.h>

#include <limits>

#include "core/error.h"
#include "runtime/moe_layer.h"
#include "tests/runtime/layer_dtype_checks.h"
#include "tests/support/dtype_values.h"

namespace switchyard {
namespace {

class CpuLayerDtypes : public ::testing::TestWithParam<DType> {};

TEST_P(CpuLayerDtypes, LayerMatchesReference) {
  testing::expect_layer_matches_reference(Context::global(), Context::global().cpu(), GetParam());
}

TEST_P(CpuLayerDtypes, TrainingStepMatchesTheReferenceBackward) {
  testing::expect_training_step_matches_reference(Context::global(), Context::global().cpu(), GetParam());
}

TEST_P(CpuLayerDtypes, ParameterWritesReachTheNextForward) {
  testing::expect_parameter_writes_reach_forward(Context::global(), Context::global().cpu(), GetParam());
}

TEST_P(CpuLayerDtypes, DlpackPassesTensorsWithoutCopies) {
  testing::expect_dlpack_passes_tensors_without_copies(Context::global().cpu(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuLayerDtypes, ::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// A 16-bit input holding Inf or NaN is refused before routing, as float32 and float64 inputs are.
TEST(CpuLayerDtypes, NonFiniteSixteenBitInputIsAnError) {
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    MoeLayerConfig config;
    config.model_dim = 8;
    config.hidden_size = 16;
    config.num_experts = 2;
    config.dtype = dt;
    MoeLayer layer(Context::global(), Context::global().cpu(), config);
    std::vector<double> x(4 * 8, 0.5);
    x[13] = std::numeric_limits<double>::infinity();
    std::string bytes = testing::encode_values(x, dt);
    Tensor t(bytes.data(), dt, {4, 8});
    try {
      layer.forward(t, ForwardOptions{});
      ADD_FAILURE() << dtype_name(dt) << ": no error for an Inf input";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("token 1, element 5"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace switchyard
