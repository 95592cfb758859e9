// The activations of the expert GEMMs' epilogues: shared by the kernels and the public layer
// config (installed with the public headers as switchyard/common/activation.h).
#pragma once

namespace switchyard {
namespace kernels {

// The epilogue applied to each element after the bias.
enum GemmActivation : int {
  kActNone = 0,
  kActRelu = 1,
  kActGelu = 2,    // exact (erf) GELU, as torch.nn.functional.gelu
  kActSilu = 3,    // x * sigmoid(x)
  kActSwiglu = 4,  // silu(aux[m, n]) * x: the gated product of a SwiGLU expert
  // Backward epilogues: x * act'(aux[m, n]), aux holding the forward pre-activation.
  kActReluGrad = 5,
  kActGeluGrad = 6,
  kActSiluGrad = 7,
};

}  // namespace kernels
}  // namespace switchyard
