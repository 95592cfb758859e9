// A C++ application built against the installed package: only <switchyard/switchyard.h>. One
// expert, top-1, weights written through parameter(): the forward must equal the FFN computed
// here, and a bad input must raise switchyard::UserError across the library boundary.
#include <switchyard/switchyard.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  using namespace switchyard;
  MoeLayerConfig config;
  config.model_dim = 4;
  config.hidden_size = 8;
  config.num_experts = 1;
  Context& context = Context::global();
  MoeLayer layer(context, context.cpu(), config);
  auto fill = [&](const char* name, float scale) {
    Tensor p = layer.parameter(name);
    float* v = p.data_as<float>();
    for (int64_t i = 0; i < p.numel(); ++i) v[i] = scale * static_cast<float>((i * 7) % 5 - 2);
    return v;
  };
  fill("gates.0.wg.weight", 0.1f);
  const float* w1 = fill("experts.batched_fc1_w", 0.25f);  // [1, H, M]
  const float* w2 = fill("experts.batched_fc2_w", 0.5f);   // [1, H, M]
  const float* b1 = fill("experts.batched_fc1_bias", 0.1f);
  const float* b2 = fill("experts.batched_fc2_bias", 0.2f);
  const int64_t s = 3, m = config.model_dim, h = config.hidden_size;
  std::vector<float> x(s * m);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.3f * static_cast<float>(i % 4) - 0.4f;
  ForwardOptions options;
  options.top_k = 1;
  ForwardResult r = layer.forward(Tensor(x.data(), DType::kFloat32, {s, m}), options);
  int failures = 0;
  for (int64_t t = 0; t < s; ++t)
    for (int64_t j = 0; j < m; ++j) {
      double want = b2[j];
      for (int64_t k = 0; k < h; ++k) {
        double z = b1[k];
        for (int64_t q = 0; q < m; ++q) z += x[t * m + q] * w1[k * m + q];
        want += (z > 0 ? z : 0) * w2[k * m + j];
      }
      const float got = r.output.data_as<float>()[t * m + j];
      if (std::fabs(got - want) > 1e-5) {
        std::printf("y[%ld][%ld] = %f, expected %f\n", static_cast<long>(t), static_cast<long>(j), got, want);
        ++failures;
      }
    }
  try {
    layer.forward(Tensor(x.data(), DType::kFloat32, {s, m - 1}), options);
    std::printf("a [3, 3] input was accepted\n");
    ++failures;
  } catch (const UserError& e) {
    std::printf("bad input: %s\n", e.what());
  }
  std::printf("switchyard %s (headers %s): %s\n", sy_version_string(), SWITCHYARD_VERSION_STRING,
              failures == 0 ? "consumer passed" : "consumer FAILED");
  return failures == 0 ? 0 : 1;
}
