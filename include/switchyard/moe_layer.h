// MoeLayer: one Mixture-of-Experts layer with Tutel's parameter names and layouts
// (tutel-semantics 4.2, 6.1, 6.2), a forward whose options switch on every call, and
// safetensors load/save. With a communicator, experts spread over its ranks (moe_parallel.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <switchyard/common/activation.h>
#include <switchyard/context.h>
#include <switchyard/custom.h>
#include <switchyard/export.h>
#include <switchyard/sgd_options.h>
#include <switchyard/tensor.h>

namespace switchyard {

// Internal to the library: the layer only holds them by pointer.
namespace comm {
class Communicator;
class PendingOp;
class HierarchicalAllToAll;
}  // namespace comm
struct ModelConfig;
class LayerPlan;
class SafetensorsReader;

enum class ExpertType { kFfn, kSwiglu };
/// Tutel's gate types: "top" (Linear(M, E) without bias, `gates.0.wg.weight`) and "cosine_top"
/// (Swin-MoE's router: logits = normalize(rows of x Wp^T + bp) . normalize(columns of sim_matrix)
/// * exp(min(temperature, log 100)); `gates.0.cosine_projector.{weight,bias}`,
/// `gates.0.sim_matrix` [proj_dim, E], `gates.0.temperature` [1]).
/// kCustom: a user's CustomGate (GateConfig::custom), with no parameters of the layer's.
enum class GateType { kTop, kCosineTop, kCustom };
/// "top" or "cosine_top"; UserError naming anything else.
SWITCHYARD_API GateType parse_gate_type(const std::string& text);
SWITCHYARD_API const char* gate_type_name(GateType type);

/// One gate of a layer (Tutel's gate dict): its type and, for cosine_top, its shape.
struct SWITCHYARD_API GateConfig {
  GateType type = GateType::kTop;
  int64_t proj_dim = 256;                // cosine_top: the projector's width
  double init_t = 0.5;                   // cosine_top: the temperature starts at log(1 / init_t)
  std::shared_ptr<CustomGate> custom{};  // kCustom: the user's gate
  bool operator==(const GateConfig&) const = default;
};

struct SWITCHYARD_API MoeLayerConfig {
  int64_t model_dim = 0;    // M
  int64_t hidden_size = 0;  // H per expert
  int64_t num_experts = 0;  // E
  DType dtype = DType::kFloat32;
  ExpertType expert_type = ExpertType::kFfn;
  kernels::GemmActivation activation = kernels::kActRelu;  // ffn only
  bool has_fc1_bias = true;
  bool has_fc2_bias = true;
  bool fp32_gate = false;   // gate weight, gate input and routing in float32 whatever the dtype
  bool allow_tf32 = false;  // float32 expert GEMMs on CUDA may use TF32 tensor cores (--use_tensorcore)
  /// A CPU layer in float32, or in bfloat16 whose GEMMs use AVX512_BF16's dot products (not AMX),
  /// keeps its expert weights a second time, packed as its forward GEMMs read them, so that they do
  /// not pack them at every call: small batches (inference) run faster, for the experts' memory
  /// twice. The copy is repacked whenever the layer's weights change (init, load, sgd_step,
  /// parameters_updated). Elsewhere (float16, bfloat16 on AMX or converted to float, CUDA, experts
  /// sharded across ranks) nothing is kept.
  bool pack_expert_weights = false;
  /// Tutel's list of gate types: gate i's parameters are `gates.i.*`, and each call routes with
  /// the gate ForwardOptions::gate_index names (switching compiles nothing after warm).
  std::vector<GateConfig> gates{GateConfig{}};
  /// A user's expert function in place of expert_type's built-in experts (the layer then has no
  /// expert parameters); not with experts sharded across ranks or adaptive_r = 0.
  std::shared_ptr<CustomExperts> custom_experts{};
  /// Throws UserError naming the first bad field.
  void validate() const;
};

/// The config of the layer a safetensors file holds (Tutel's names, as MoeLayer::save writes
/// them): E, H, M from the expert weights' shapes, the expert type from their names, the biases
/// present, the dtype of the experts and fp32_gate when the gate is float32 beside them. What the
/// tensors do not show (activation, allow_tf32, pack_expert_weights) comes from the metadata
/// MoeLayer::save writes beside them; a file without it (a Tutel checkpoint) leaves the defaults
/// (relu, false, false). UserError naming what is missing or a metadata value that is not valid.
SWITCHYARD_API MoeLayerConfig layer_config_from_safetensors(const std::string& path);

/// Ranks sharing one expert when `experts` experts spread over `ranks` ranks (tutel-semantics
/// 4.4): 1 when E is a multiple of W (whole experts per rank), W / E when E divides W (each
/// expert's hidden units sliced over W / E ranks). UserError naming both otherwise.
SWITCHYARD_API int64_t expert_shards(int64_t experts, int64_t ranks);

/// Per-call options (Tutel's forward arguments). Unlike Tutel, 0 and -0.0 mean what they say.
struct SWITCHYARD_API ForwardOptions {
  int64_t top_k = 2;
  double capacity_factor = 1.0;   // > 0 capacity, 0 dropless padded to the largest count, < 0 bounded
  bool dropless_grouped = false;  // compute only each expert's real tokens (no padding work)
  bool is_postscore = true;
  bool normalize_gate = true;
  bool batch_prioritized_routing = false;
  int64_t megablocks_size = 0;     // alignment unit of the capacity (Tutel's megablocks_size)
  bool check_finite = true;        // reject NaN/Inf in the input with a UserError
  bool is_gshard_loss = true;      // false: Tutel's load_importance_loss (needs gate_noise > 0)
  double gate_noise = 0.0;         // sigma of the load estimate (no noise is added outside training)
  bool save_for_backward = false;  // keep what backward() needs (training); replaces any earlier save
  int64_t gate_index = 0;          // which of the config's gates routes this call (Tutel's gate_index)
  // Expert parallelism (a layer with a communicator of W > 1 ranks; tutel-semantics 4.4, 4.5):
  int adaptive_r = 1;      // 0: all-gather the experts' weights, no all-to-all; 1: all-to-all the tokens
  int overlap_degree = 1;  // a2a_ffn_overlap_degree d (1-32): the capacity is aligned to a multiple of d
  bool use_2dh = false;    // all-to-all in two stages, across then within nodes (LOCAL_SIZE ranks per node)
};

/// A layer config and forward options from JSON objects with Tutel's field names (what the C API
/// and the Python module take): {"model_dim": 1024, "hidden_size": 4096, "num_experts": 8,
/// "dtype": "bfloat16", "expert_type": "ffn", "activation": "gelu", ...} and {"top_k": 2,
/// "capacity_factor": 1.25, "a2a_ffn_overlap_degree": 2, ...}. Strict: text that is not a JSON
/// object, an unknown field or a value of the wrong type is a UserError naming it.
SWITCHYARD_API MoeLayerConfig layer_config_from_json(const std::string& json);
SWITCHYARD_API ForwardOptions forward_options_from_json(const std::string& json);

/// What a backward computes besides every parameter's gradient.
struct SWITCHYARD_API BackwardOptions {
  double l_aux_weight = 0.0;   // L += l_aux_weight * l_aux
  bool input_gradient = true;  // false where x needs no gradient (torch's requires_grad=False, as in
                               // Tutel's helloworld): no dL/dx, and no data gradient of the experts'
                               // input where nothing else reads it (is_postscore), a sixth of the FLOPs
};

struct SWITCHYARD_API BackwardResult {
  std::unique_ptr<Buffer> storage;
  Tensor grad_input;  // [S, M]: dL/dx of the saved forward; empty with input_gradient = false
};

/// What a forward returns. Its routing statistics stay on the layer's device: reading them on
/// the host (l_aux(), expert_counts()) waits for the device, so a hot loop that does not print
/// them never synchronizes.
struct SWITCHYARD_API ForwardResult {
  std::unique_ptr<Buffer> storage;
  Tensor output;  // [S, M] on the layer's device
  int64_t capacity = 0;
  Tensor counts;  // int32 [E] on the layer's device: (token, choice) pairs per expert, before drops

  /// gshard_loss, or load_importance_loss when !is_gshard_loss. Waits for the device.
  double l_aux() const;
  /// `counts` copied to the host. Waits for the device.
  std::vector<int> expert_counts() const;

 private:
  friend class MoeLayer;
  // What owns `counts`, and where l_aux comes from: the gshard loss's per-expert terms on the
  // device, or a value the host already computed.
  std::shared_ptr<Buffer> routing_;
  Tensor loss_terms_;
  double host_l_aux_ = 0;
};

class SWITCHYARD_API MoeLayer {
 public:
  /// With `group` (W ranks), config.num_experts is the global E and this rank holds experts
  /// [rank * E / W, (rank + 1) * E / W) (E a multiple of W), or a slice of expert rank / (W / E)
  /// (W a multiple of E). Collective over the group: every rank must pass the same config (a
  /// UserError on every rank names the difference). A CUDA layer exchanges GPU memory directly
  /// through a device-memory group (NCCL) and stages a host-memory group (MPI) through the host;
  /// a CPU layer needs a host-memory group. The group must outlive the layer.
  MoeLayer(Context& context, Device& device, MoeLayerConfig config, comm::Communicator* group = nullptr);
  /// A layer whose config and parameters come from a safetensors file in Tutel's names (the
  /// config as layer_config_from_safetensors reads it; a group as for the constructor, the file
  /// holding this rank's parameters). Nothing is drawn and the weights stream from the file
  /// straight into the parameters, so start-up costs one read of the file (the constructor and
  /// load would draw every weight, then read the file into fresh memory and copy it in). Throws
  /// UserError naming what the file lacks; no layer is returned then.
  static std::unique_ptr<MoeLayer> open(Context& context, Device& device, const std::string& path,
                                        comm::Communicator* group = nullptr);
  ~MoeLayer();
  MoeLayer(const MoeLayer&) = delete;
  MoeLayer& operator=(const MoeLayer&) = delete;

  /// Deterministic initialisation like torch.nn.Linear (uniform in +-1/sqrt(fan_in)).
  void init_parameters(uint64_t seed);
  /// Replaces every parameter from a safetensors file; on any error the layer is unchanged.
  void load(const std::string& path);
  void save(const std::string& path) const;

  /// x: [S, M] of the layer's dtype on its device. Throws UserError for bad options or shapes.
  ForwardResult forward(const Tensor& x, const ForwardOptions& options);

  /// Gradients of the forward saved by forward(x, {.save_for_backward = true}) for
  /// dL/doutput = grad_output [S, M] and L += l_aux_weight * l_aux: returns dL/dx and stores the
  /// gradient of every parameter (gradient(name)). The saved state is released, so a second
  /// backward needs a new forward. Throws UserError when nothing is saved or shapes differ.
  BackwardResult backward(const Tensor& grad_output, double l_aux_weight = 0.0);
  BackwardResult backward(const Tensor& grad_output, const BackwardOptions& options);
  /// dL/d(parameter `name`) of the last backward, same shape and dtype as the parameter.
  Tensor gradient(const std::string& name) const;
  /// Bytes forward keeps for backward, per token, for the last saved forward (0 when none).
  double saved_bytes_per_token() const;
  /// One SGD step on every parameter from the last backward's gradients (momentum buffers are
  /// created on first use); the kernels' packed weight copies are refreshed.
  void sgd_step(const SgdOptions& options);

  /// Loads every kernel that forward with `options` can request (the plan of that option set),
  /// once per distinct set; forward prepares on its own, a server calls it before its first
  /// request so that request loads nothing. Returns the number of kernels in the plan.
  size_t prepare(const ForwardOptions& options);
  /// The layer as a model config with exactly the option values of `options`.
  ModelConfig model_config(const ForwardOptions& options) const;

  const MoeLayerConfig& config() const { return config_; }
  /// The name of gate `index`'s parameter `leaf`: gate_param(1, "wg.weight") is "gates.1.wg.weight".
  static std::string gate_param(size_t index, const char* leaf);
  /// Parameter names in Tutel's spelling, e.g. "gates.0.wg.weight", "experts.batched_fc1_w".
  std::vector<std::string> parameter_names() const;
  /// The device the layer lives on (Device::use_stream for a caller's stream).
  Device& device() const { return device_; }
  /// The parameter itself (a view of the layer's memory, valid while the layer lives): an
  /// optimizer outside the layer may write it in place, then calls parameters_updated().
  Tensor parameter(const std::string& name) const;
  /// After parameters were written in place through parameter() views: the layer refreshes the
  /// copies its GEMMs read (a float32 TF32 layer's transposed expert weights on Hopper, a CPU
  /// layer's packed expert weights with pack_expert_weights; every other layer reads the
  /// parameters themselves).
  void parameters_updated() { refresh_packed(); }
  int64_t expert_parameter_count() const;
  /// Experts held by this rank (num_experts without a group).
  int64_t local_experts() const { return local_experts_; }
  /// The communicator the layer was given.
  comm::Communicator* group() const { return user_group_; }
  /// What the layer's exchanges go through, taking the layer device's memory: the group, or for a
  /// CUDA layer given a host group, that group staged through the host.
  comm::Communicator* exchange_group() const { return group_; }
  int64_t gate_parameter_count() const;

 private:
  // The constructor without the initial draw (open() fills the parameters from a file).
  struct Undrawn {};
  MoeLayer(Context& context, Device& device, MoeLayerConfig config, comm::Communicator* group, Undrawn);
  // Throws unless the file holds every parameter with its dtype and shape (and this E).
  void check_file(SafetensorsReader& reader, const std::string& path) const;
  struct Param {
    DType dtype = DType::kFloat32;
    std::vector<int64_t> shape;
    std::unique_ptr<Buffer> buffer;
  };
  void add_param(const std::string& name, std::vector<int64_t> shape, DType dtype);
  DType gate_dtype() const { return config_.fp32_gate ? DType::kFloat32 : config_.dtype; }
  struct Saved;  // what forward keeps for backward (runtime/moe_saved.h)
  // What the layer derives from its expert weights, after they change: a CUDA layer's transposed
  // copies (expert_copies_), a CPU layer's packed panels.
  void refresh_packed();
  void pack_expert_panels();  // the CPU's part of refresh_packed (pack_expert_weights)
  // (weight, copy) of each transposed expert weight a CUDA layer keeps: fc1's, and the forward's
  // where only B [N, K] reaches the Hopper kernel (runtime/layer_plan.h, forward_expert_weights).
  // Fixed by the config and device: made once, as expert_copies_.
  std::vector<std::pair<std::string, std::string>> transposed_expert_copies() const;
  // A custom gate's logits, checked, copied into `logits` [1, S, E] (moe_forward.cpp).
  void custom_logits(size_t gate, const Tensor& input, const Tensor& logits);
  // The cosine_top gate (moe_cosine_gate.cpp): logits [1, S, E] from the gate's input [1, S, M];
  // with `kept`, what its backward reads. The backward stores the gate's parameter gradients and
  // writes the gate input's gradient dx [1, S, M] from d_logits [S, E].
  void cosine_logits(size_t gate, const Tensor& input, const Tensor& logits, std::unique_ptr<Buffer>* kept);
  void cosine_backward(size_t gate, const Tensor& d_logits, const Tensor& input, const Buffer& kept, const Tensor& dx);
  // Adds the gate's part of dL/dx into `grad_input` (none: the parameters' gradients alone).
  void backward_gate(const Tensor& grad_gates, double l_aux_weight, const Tensor* grad_input);
  // `cosine_kept` (null when nothing is saved) receives what a cosine gate's backward reads.
  Tensor gate_logits(const Tensor& x, int64_t gate_index, Buffer& workspace, std::unique_ptr<Buffer>& gate_input,
                     std::unique_ptr<Buffer>* cosine_kept);
  void check_options(const Tensor& x, const ForwardOptions& options) const;
  void check_gate_index(int64_t gate_index) const;
  // Expert tensors by name ("experts.*" and the transposed copies, expert_copies_): this rank's, or every rank's
  // gathered (adaptive_r = 0); `storage` owns gathered copies.
  using ExpertTensors = std::map<std::string, Tensor>;
  ExpertTensors expert_weights(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage);
  ExpertTensors expert_gradients(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage);
  // The layer's transposed expert copies (expert_copies_) of the gathered weights.
  void add_transposed_copies(ExpertTensors& weights, std::vector<std::unique_ptr<Buffer>>& storage);
  void scatter_expert_gradients(const ExpertTensors& full, int adaptive_r);
  void scatter_sharded_gradient(const std::string& name, const Tensor& full, const Tensor& mine, int adaptive_r);
  // Hidden units the expert tensors in `weights` cover (H, or a slice of it when sharded).
  int64_t hidden_of(const ExpertTensors& weights) const;
  // The consecutive blocks of `ranks` ranks of the group (teams, an expert's ranks), made once.
  comm::Communicator& block_group(int64_t ranks);
  // What experts_forward keeps for backward: the experts' input and pre-activations, in chunks.
  struct ExpertsSaved {
    // What the experts read, in `chunks` blocks of chunk_shape: [E, C, M] (one block; null until
    // forward moves the slots in), or after the all-to-all d chunks of [E_local, W * C / d, M]
    // (dropless grouped: d * W pieces of [E_local, C / d, M], one per chunk and source rank).
    std::unique_ptr<Buffer> input;
    std::unique_ptr<Buffer> pre;  // per block, FFN: fc1's pre-activation; SwiGLU: both projections
    std::vector<int64_t> chunk_shape;
    int64_t chunks = 1;
    std::unique_ptr<Buffer> piece_rows;  // dropless grouped in a group: each piece's rows (piece_rows_on_device)
    // The weights as the experts ran: views of the parameters, or of copies gathered from the
    // group (adaptive_r = 0, shared experts) that backward reuses instead of gathering again.
    ExpertTensors weights;
    std::vector<std::unique_ptr<Buffer>> gathered;
  };
  // slots [E, C, M] -> processed [E, C, M] through the experts. With adaptive_r = 1 and W > 1 the
  // slots go to their experts' ranks by all-to-all, the capacity axis cut into d chunks whose
  // exchanges run while the previous chunk's GEMMs do. `source_rows` ([W][E_local], dropless
  // grouped only): the slots holding tokens that each rank sends to each local expert; the GEMMs
  // then run per source rank on those rows alone.
  void experts_forward(const Tensor& slots, const Tensor& processed, const Tensor* rows, const ExpertTensors& weights,
                       const ForwardOptions& options, ExpertsSaved* saved, const std::vector<int>& source_rows);
  // Per source rank (pieces of `source_rows`): the rows each local expert computes in chunk
  // `chunk` of `chunks` of a capacity of `c` (rows [chunk * c / chunks, ...) of each source's slots),
  // int32 [pieces][E_local] on the layer's device: one copy per forward instead of one per GEMM
  // (a CUDA GEMM given host counts uploads them, and an upload waits for the device).
  std::unique_ptr<Buffer> piece_rows_on_device(const std::vector<int>& source_rows, int64_t chunks, int64_t c) const;
  // Piece `piece`'s rows in that buffer.
  Tensor piece_rows(const Buffer& rows, int64_t piece) const;
  // The transpose of experts_forward for the saved forward: d_processed -> d_slots, filling `grads`.
  // Without `input_grad`, d_slots may be left unwritten and empty where experts_backward_writes_input
  // says so.
  void experts_backward(const Tensor& d_processed, const Tensor& d_slots, const Tensor* rows,
                        const ExpertTensors& weights, const ExpertTensors& grads, bool input_grad = true);
  // Whether the saved forward's experts ran on this rank's slots alone: no exchange, no shards.
  bool experts_ran_locally() const;
  // Whether experts_backward writes d_slots when `input_grad` is false: custom experts always do
  // (their interface), and so does every exchange, which sends it back whole; only built-in
  // experts that ran locally skip it.
  bool experts_backward_writes_input(bool input_grad) const;
  std::unique_ptr<comm::PendingOp> start_exchange(const void* send, void* recv, size_t bytes_per_rank, bool use_2dh);
  // compute(chunk, input [E_x, R, M], output [E_x, R, M]) of one exchanged chunk.
  using ChunkCompute = std::function<void(int64_t, const Tensor&, const Tensor&)>;
  // The exchanged expert stage of forward and backward: chunk i of `from` [E, C, M] goes to its
  // experts' ranks (expert-major, into input_of(i)), compute runs while chunk i + 1 travels, and
  // its output comes back into `to` [E, C, M]. `by_source`: chunk i lands in input_of(i) as it
  // arrives, [W][E_local][C / chunks][M], and compute runs once per source rank q on piece
  // i * W + q, [E_local, C / chunks, M], writing straight into what goes back.
  void pipelined_exchange(const Tensor& from, const Tensor& to, int64_t chunks, bool use_2dh, bool by_source,
                          const std::function<char*(int64_t)>& input_of, const ChunkCompute& compute);
  // The same for experts shared by s ranks: r copies of the slots cut into s pieces (into
  // `input`), compute, and the r copies of the output added back into `to`.
  void sharded_exchange(const Tensor& from, const Tensor& to, int adaptive_r, bool use_2dh, char* input,
                        const ChunkCompute& compute);
  // Bytes of pre-activations per chunk of `rows` rows of `experts` experts.
  size_t pre_bytes(int64_t experts, int64_t rows, int64_t hidden) const;
  ExpertTensors sharded_weights(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage);
  // slots [E, C, M] -> processed for experts shared by s ranks (adaptive_r >= 1): r copies of
  // the slots cut into s pieces per expert, partial sums over the hidden slices added back.
  void sharded_forward(const Tensor& slots, const Tensor& processed, const ExpertTensors& weights,
                       const ForwardOptions& options, ExpertsSaved* saved);
  void sharded_backward(const Tensor& d_processed, const Tensor& d_slots, const ExpertTensors& weights,
                        const ExpertTensors& grads);
  // What a group agrees on in a forward: the largest token count and expert count, and every
  // rank's count per expert ([W][E], before capacity).
  struct GroupCounts {
    int64_t most_tokens = 0;
    int64_t most_count = 0;
    std::vector<int64_t> counts;
  };
  // Checks the group agrees on the options and gathers the counts of this call.
  GroupCounts agree_on_call(int64_t tokens, const std::vector<int>& counts, const ForwardOptions& options);
  void check_group_config();
  /// Saving: the pre-activations (FFN: fc1's, SwiGLU: both projections') go to `saved_pre`.
  void run_experts(const Tensor& dispatched, const Tensor& out, const Tensor* row_counts, const ExpertTensors& weights,
                   const Tensor* saved_pre = nullptr);
  void backward_experts(const Tensor& grad_slots, const Tensor& grad_dispatched, const Tensor* row_counts,
                        const ExpertTensors& weights, const ExpertTensors& grads, const Tensor& dispatched,
                        const Tensor& pre, bool input_grad = true);
  double importance_loss(const Tensor& logits, const Tensor& scores, int64_t top_k, double gate_noise);

  Context& context_;
  Device& device_;
  MoeLayerConfig config_;
  comm::Communicator* group_ = nullptr;                // what the exchanges use: user_group_, or its staged wrapper
  comm::Communicator* user_group_ = nullptr;           // what the constructor was given
  std::unique_ptr<comm::Communicator> staged_group_;   // a host group seen from a CUDA layer's memory
  std::unique_ptr<comm::HierarchicalAllToAll> two_d_;  // created on the first use_2dh call
  int64_t local_experts_ = 0;
  int64_t shards_ = 1;  // ranks sharing one expert (s = W / E when E < W)
  size_t group_size() const;
  std::map<int64_t, std::unique_ptr<comm::Communicator>> block_groups_;
  std::map<std::string, Param> params_;
  std::map<std::string, Param> packed_;                             // layouts the kernels read (transposed copies)
  std::vector<std::pair<std::string, std::string>> expert_copies_;  // transposed_expert_copies()
  std::map<std::string, Param> grads_;                              // dL/dparam of the last backward, by parameter name
  std::map<std::string, Param> velocity_;                           // SGD momentum buffers
  std::unique_ptr<Saved> saved_;
  // Plans already loaded (runtime/layer_plan.h), by the options that select kernels (top_k,
  // normalize_gate, is_postscore, save_for_backward: a training plan also holds the backward's
  // kernels; gate_index; dropless_grouped).
  std::map<std::tuple<int64_t, bool, bool, bool, int64_t, bool>, std::shared_ptr<const LayerPlan>> plans_;
  const std::shared_ptr<const LayerPlan>& plan_for(const ForwardOptions& options);
  // The plan of the forward or backward running, set as each starts (plans_ keeps it alive);
  // current_plan() is an empty plan (every kernel looked up) before the first.
  const LayerPlan* plan_ = nullptr;
  const LayerPlan& current_plan() const;
  int64_t last_gate_ = 0;  // the gate the last backward differentiated (sgd_step updates only it)
};

}  // namespace switchyard
