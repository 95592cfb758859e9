// A user's expert function inside the layer: a two-layer expert written as plain loops
// (examples/loop_ffn_experts.h) plugged in through CustomExperts. With relu it is the built-in FFN
// with the same weights, and the two layers agree; then the same expert with another activation
// (squared relu) runs in the same layer machinery. Public API only.
#include <switchyard/switchyard.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "examples/loop_ffn_experts.h"

using namespace switchyard;
using examples::LoopFfnExperts;

int main() {
  try {
    Context& context = Context::global();
    MoeLayerConfig config;
    config.model_dim = 32;
    config.hidden_size = 48;
    config.num_experts = 4;
    config.dtype = DType::kFloat64;
    // Both layers draw their gate with the constructor's seed 1: equal names get equal values.
    MoeLayer builtin(context, context.cpu(), config);

    std::mt19937 rng(1);
    std::normal_distribution<double> normal;
    std::vector<double> x(64 * config.model_dim);
    for (auto& v : x) v = normal(rng);
    const Tensor tx(x.data(), DType::kFloat64, {64, config.model_dim});

    MoeLayerConfig with_custom = config;
    with_custom.custom_experts = std::make_shared<LoopFfnExperts>(builtin, LoopFfnExperts::relu());
    MoeLayer custom(context, context.cpu(), with_custom);
    const auto want = examples::values_of(builtin.forward(tx, ForwardOptions{}).output);
    const auto got = examples::values_of(custom.forward(tx, ForwardOptions{}).output);
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
    std::printf("custom relu experts vs the built-in FFN: max |difference| = %.3g\n", worst);
    if (worst > 1e-9) {
      std::fprintf(stderr, "custom_expert: the custom experts do not match the built-in FFN\n");
      return 1;
    }

    MoeLayerConfig squared = config;
    squared.custom_experts = std::make_shared<LoopFfnExperts>(
        builtin, LoopFfnExperts::Activation{[](double z) { return z > 0 ? z * z : 0.0; },
                                            [](double z) { return z > 0 ? 2 * z : 0.0; }});
    MoeLayer other(context, context.cpu(), squared);
    const auto y = examples::values_of(other.forward(tx, ForwardOptions{}).output);
    double norm = 0;
    for (double v : y) norm += v * v;
    std::printf("custom squared-relu experts: output norm %.6f (relu: the built-in's)\n", std::sqrt(norm));
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "custom_expert: %s\n", e.what());
    return 1;
  }
}
