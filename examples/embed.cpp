// The smallest embedding of Switchyard, through the public API only (<switchyard/switchyard.h>):
// load a layer's weights and run forward on your buffer.
// Usage: embed WEIGHTS.safetensors [tokens]   (weights as written by helloworld --save-weights)
#include <switchyard/switchyard.h>

#include <algorithm>
#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  using namespace switchyard;
  if (argc < 2) {
    std::cerr << "usage: embed WEIGHTS.safetensors [tokens]\n";
    return 2;
  }
  try {
    // E, H, M, the expert type and the biases come from the file's tensors (Tutel's names).
    const MoeLayerConfig config = layer_config_from_safetensors(argv[1]);
    Context& context = Context::global();
    MoeLayer layer(context, context.cpu(), config);
    layer.load(argv[1]);

    const int64_t tokens = argc > 2 ? std::stoll(argv[2]) : 8;
    std::vector<float> x(tokens * config.model_dim);  // your activations, in your memory
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.1f - 0.3f;
    ForwardOptions options;
    options.top_k = std::min<int64_t>(2, config.num_experts);
    ForwardResult result = layer.forward(Tensor(x.data(), DType::kFloat32, {tokens, config.model_dim}), options);

    const float* y = result.output.data_as<const float>();
    std::cout << "output " << result.output.describe() << ", l_aux = " << result.l_aux()
              << ", capacity = " << result.capacity << ", y[0][0..3] = " << y[0] << " " << y[1] << " " << y[2] << " "
              << y[3] << "\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "embed: " << e.what() << "\n";
    return 1;
  }
}
