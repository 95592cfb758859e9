// A layer's plan: every kernel its forward (and, for a training plan, its backward and SGD step)
// launches for one set of the options that select kernels, chosen by the same family rules the ops
// use (kernels::*_spec) and, once loaded, handed to the ops so the hot path neither builds nor
// looks up a spec. `kernel_set` (what `switchyard warm` compiles) is the union of these plans over
// a model config's option ranges, so a warm cache and a real run cannot drift apart.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "jit/kernels/gemm.h"
#include "runtime/model_config.h"
#include "runtime/planned_kernel.h"

namespace switchyard {

/// The options that select kernels (the rest of ForwardOptions only changes launch sizes).
struct LayerPlanOptions {
  DType dtype = DType::kFloat32;
  size_t gate = 0;  // index into ModelConfig::gates
  int64_t top_k = 1;
  bool normalize_gate = true;
  bool is_postscore = true;
  bool dropless_grouped = false;  // the GEMMs bound their rows by the experts' counts
  bool training = false;          // the forward keeps what backward needs; backward and SGD planned too
};

/// A weight of the built-in experts' forward and the shape of the GEMM that reads it as B
/// (trans_b: B [N, K]), from which its packing follows (MoeLayerConfig::pack_expert_weights,
/// kernels::gemm_pack_b_spec), and the transposed copy that GEMM reads instead of the weight as
/// stored, if any (a CUDA layer keeps it: MoeLayer::refresh_packed).
struct ForwardExpertWeight {
  const char* name;
  kernels::GemmShape shape;
  const char* copy = nullptr;
};

class LayerPlan {
 public:
  LayerPlan() = default;
  LayerPlan(const LayerPlan&) = delete;  // members point into kernels_
  LayerPlan& operator=(const LayerPlan&) = delete;

  // Forward. The gate: the input's copy in the gate's dtype (fp32_gate), the top gate's GEMM, or
  // cosine_top's projector, normalization, similarity GEMM and temperature; then routing.
  const PlannedKernel* gate_input_cast = nullptr;
  PlannedGemm gate_gemm;  // top: x Wg^T; cosine_top: the projector x Wp^T + bp
  const PlannedKernel* cosine_normalize = nullptr;
  PlannedGemm cosine_similarity;
  const PlannedKernel* cosine_scale = nullptr;
  const PlannedKernel* topk = nullptr;
  const PlannedKernel* priority = nullptr;  // batch_prioritized_routing
  const PlannedKernel* locations = nullptr;
  const PlannedKernel* widen_gates = nullptr;  // the fp32 gate's gates to a float64 layer's
  const PlannedKernel* encode = nullptr;
  const PlannedKernel* decode = nullptr;
  // Experts: ffn fc1 (activation fused, or kept apart in training), fc2; swiglu W1, W2 (the swiglu
  // epilogue fused, or apart in training), W3.
  PlannedGemm expert_in;     // fc1 or W1
  PlannedGemm expert_gated;  // swiglu's W2
  PlannedGemm expert_out;    // fc2 or W3
  // What those GEMMs read as B, in order (ffn: fc1, fc2; swiglu: W1, W2, W3): the weight or its copy.
  std::vector<ForwardExpertWeight> expert_weights;
  const PlannedKernel* activate = nullptr;  // training ffn: act(pre); swiglu: silu(x W1) * (x W2)

  // Backward (training plans): the dispatch transposes, the experts' data and weight gradients,
  // the gate's.
  const PlannedKernel* encode_transpose = nullptr;
  const PlannedKernel* decode_transpose = nullptr;
  const PlannedKernel* gate_grad = nullptr;
  PlannedGemm expert_out_data;       // dY W2^T (ffn, with act'(Z)) or dY W3^T
  PlannedGemm expert_weight_grad;    // A^T B over the rows, [H, M] (fc1, fc2, W3)
  PlannedGemm expert_weight_grad_t;  // A^T B over the rows, [M, H] (swiglu's W1, W2)
  PlannedGemm expert_in_data;        // d(hidden) W1^T: ffn fc1 [H, M] plain (its copy [M, H] where trans_b),
                                     // swiglu W1 [M, H] transposed
  const PlannedKernel* swiglu_backward = nullptr;
  const PlannedKernel* expert_sum_rows = nullptr;   // bias gradients
  const PlannedKernel* elementwise_add = nullptr;   // the swiglu and gate input gradients summed
  const PlannedKernel* gate_grad_narrow = nullptr;  // float64 gate gradients to the fp32 gate's scores
  const PlannedKernel* gate_backward = nullptr;
  PlannedGemm gate_weight_grad;                         // top: dL^T x; cosine_top: the projector's
  PlannedGemm gate_input_data;                          // top: dL Wg; cosine_top: d(proj) Wp
  const PlannedKernel* gate_input_grad_cast = nullptr;  // the fp32 gate's input gradient to the data's dtype
  // cosine_top's backward: the temperature, the similarity's two GEMMs, the normalizations, the
  // projector bias.
  const PlannedKernel* cosine_scale_backward = nullptr;
  PlannedGemm cosine_similarity_data;    // du sn^T
  PlannedGemm cosine_similarity_weight;  // pn^T du
  const PlannedKernel* cosine_normalize_backward = nullptr;
  const PlannedKernel* gate_sum_rows = nullptr;
  // The SGD step after this plan's backward: the data's parameters, the gate's (fp32_gate).
  const PlannedKernel* sgd = nullptr;
  const PlannedKernel* gate_sgd = nullptr;

  /// Every kernel of the plan, in the order planned (each kernel once per use; specs may repeat).
  const std::deque<PlannedKernel>& kernels() const { return kernels_; }
  /// Loads every kernel onto `device` (compiling or reading the disk cache as needed).
  void load(Context& context, Device& device);

  /// Adds `spec` to the plan; the returned pointer lives as long as the plan.
  const PlannedKernel* add(KernelSpec spec);
  PlannedGemm add_gemm(const kernels::GemmShape& shape, const Target& target);

 private:
  std::deque<PlannedKernel> kernels_;
};

/// The name of ffn's fc1 copy [E, M, H] among the expert tensors (a CUDA layer keeps it where its
/// input gradient reads it: ffn_input_gradient_reads_fc1_copy).
inline constexpr char kFc1Copy[] = "fc1_t";
/// ffn: fc1 (stored [E, H, M]: read as stored, B [N, K], by every family), fc2; swiglu: W1, W2, W3
/// (stored [E, K, N]: read as stored, or through a copy "fc2_t", "W_fc1_t", ... where only B
/// [N, K] reaches the Hopper kernel: reads_b_k_major_only).
std::vector<ForwardExpertWeight> forward_expert_weights(const std::string& expert_type, int64_t model_dim,
                                                        int64_t hidden, DType dtype, bool allow_tf32,
                                                        const Target& target);

/// Whether an expert GEMM of `shape` reaches the Hopper kernel only with B as [N, K] (trans_b):
/// float32 as TF32 on sm_90a, which reads both operands K-major. A layer then reads such a weight
/// through a transposed copy where it would otherwise read B as [K, N] (ffn: fc2's copy in its
/// forward, fc1's copy in the input's gradient; swiglu: all three in the forward).
bool reads_b_k_major_only(kernels::GemmShape shape, const Target& target);

/// Whether ffn's input gradient, d(hidden) [C, H] times fc1 [E, H, M] read as stored (B [K, N]),
/// reads fc1's copy kFc1Copy [E, M, H] as B [N, K] instead: where only that form reaches the
/// Hopper kernel (reads_b_k_major_only: TF32 on sm_90a).
bool ffn_input_gradient_reads_fc1_copy(int64_t model_dim, int64_t hidden, DType dtype, bool allow_tf32,
                                       const Target& target);

/// (weight, copy) of each transposed expert weight a layer on `target` keeps: ffn's fc1 where its
/// input gradient reads the copy, and each forward weight read through one (forward_expert_weights).
/// None but for float32 as TF32 on sm_90a; every other GEMM reads the weights as stored.
std::vector<std::pair<std::string, std::string>> transposed_expert_copies(const std::string& expert_type,
                                                                          int64_t model_dim, int64_t hidden,
                                                                          DType dtype, bool allow_tf32,
                                                                          const Target& target);

/// The plan of a layer described by `layer` (its shapes, experts, gates; option ranges ignored)
/// for `options` on `target`. Pure: builds specs, loads nothing.
void plan_layer(const ModelConfig& layer, const LayerPlanOptions& options, const Target& target, LayerPlan& plan);

}  // namespace switchyard
