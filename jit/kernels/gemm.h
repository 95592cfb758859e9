// The batched GEMM family (CPU): C = epilogue(A * B + bias), N and K fixed per model.
// Parameters: dtype, n, k, trans_a, trans_b, bias, activation, vec_bytes, row_tile, tile_vecs,
// group_rows, bf16_dot, amx.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/common/gemm_wgmma_args.h>

#include <functional>

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily gemm_family();        // CPU
KernelFamily gemm_simt_family();   // CUDA cores, any dtype and layout
KernelFamily gemm_mma_family();    // tensor cores, float16/bfloat16, n % 128 == 0, k % 32 == 0; every pass
KernelFamily gemm_tf32_family();   // tensor cores in TF32, float32 when allowed, n % 128 == 0, k % 16 == 0; every pass
KernelFamily gemm_wgmma_family();  // Hopper (sm_90a): TMA + wgmma, float16/bfloat16 or TF32, n % 128, 16-byte rows of K
KernelFamily gemm_pack_b_family();  // CPU: B's bfloat16 pairs packed ahead for gemm (GemmPackArgs)

struct GemmShape {
  DType dtype = DType::kFloat32;
  int64_t n = 0;
  int64_t k = 0;
  bool trans_b = false;
  bool bias = false;
  GemmActivation activation = kActNone;
  bool allow_tf32 = false;  // float32 on CUDA may run on tensor cores in TF32
  bool trans_a = false;     // the weight gradient C [K, N] = A^T B, reducing over the rows
  bool aligned_16 = true;   // A, B and C start on 16-byte boundaries (TMA and cp.async move 16 bytes)
  bool grouped = false;     // row counts bound the rows (the trans_a form's reduction)

  bool operator==(const GemmShape& other) const = default;
};

/// The spec for `shape` on `target`, by a deterministic rule: on CUDA the first candidate that
/// can implement it of gemm_wgmma (sm_90a), gemm_mma / gemm_tf32 (sm_80+), gemm_simt. CPU: vectors as wide as the
/// target CPU's widest (target.vector_bytes; the host's when 0: 64 bytes with AVX-512, 32 with AVX, else 16) and as
/// many rows as keep the accumulators in registers (6 with 32 vector registers, 4 with 16); bfloat16 with AVX512_BF16's
/// dot products where the target has them (target.bf16_dot; the host's when vector_bytes is 0), and with them on AMX's
/// tiles (16-row tiles of 4 x 16 columns) where the target has AMX-BF16. CUDA: the tensor-core
/// kernel where uses_tensor_cores() holds, else the SIMT kernel.
KernelSpec gemm_spec(const GemmShape& shape, const Target& target);

/// What one batched GEMM call covers, for its launch.
struct GemmProblem {
  int64_t batch = 1;
  int64_t rows = 0;      // rows of A (the reduction length of the trans_a form)
  int64_t max_rows = 0;  // the largest per-batch row count (rows when counts are not given)
  int64_t k = 0;
  int64_t n = 0;
  unsigned parallelism = 1;  // the device's: CPU threads, CUDA multiprocessors
};

/// The output tile one block of `spec` computes: rows x columns of C ([K, N] for trans_a).
struct GemmTileShape {
  int64_t m = 1;
  int64_t n = 1;
};
GemmTileShape gemm_tile_shape(const KernelSpec& spec);

/// The launch of `spec` (from gemm_spec) for `problem`, from its family's tile constants, which
/// its template reads too. CUDA: a block per output tile of each batch. CPU: the row tiles of
/// each batch split over about twice the threads.
LaunchConfig gemm_launch_config(const KernelSpec& spec, const GemmProblem& problem);

/// One operand of the Hopper kernel as a TMA map (cuTensorMapEncodeTiled's arguments for the
/// 128-byte swizzle): sizes and byte strides innermost first, the box that one load copies, and
/// the bytes of an element (2: float16/bfloat16; 4: float32).
struct TmaOperand {
  unsigned long long dims[3];
  unsigned long long strides[2];
  unsigned box[3];
  unsigned element_bytes;
};
/// Makes the TMA descriptor of the operand at `base` (the device's driver; an emulation in tests).
using TmaEncoder = std::function<TmaDescriptor(const void* base, const TmaOperand& operand)>;

/// The arguments of `spec` (a gemm_wgmma spec) for the batched GEMM `gemm`: TMA descriptors of
/// A [B, R, K] (boxes of tile_k K x 128 rows, tile_k = 128 bytes: 64 16-bit values or 32 float32;
/// trans_a: 64 output rows x 64 rows of the reduction) and of B, [B, N, K] (trans_b: tile_k K x
/// tile_n), [B, K, N] or, for trans_a, [B, R, N] (64 columns x 64 of the reduction), of C [B, R, N]
/// (trans_a: [B, K, N]; boxes of tile_k columns x 64 rows, the epilogue's stores), and the work
/// items of the persistent grid (gemm_launch_config's tiles). A GEMM that reads its operands
/// transposed (gemm_reads_transposed_operands) takes `gemm` over them: a A^T [B, K, rows] and b
/// B^T [B, N, rows], rows in whole 16 bytes, boxed as the K-major forms' with the rows as K.
GemmWgmmaArgs gemm_wgmma_args(const KernelSpec& spec, const GemmArgs& gemm, const TmaEncoder& encode);

/// True when `shape` runs on the Hopper kernel (gemm_wgmma): sm_90a, n % 128 == 0, 16-byte aligned
/// operands, K of at least one k-block (128 bytes), and float16/bfloat16 in every form (grouped
/// weight gradients included) with k % 8 == 0, or float32 with allow_tf32 where both operands
/// reach it K-major (wgmma's TF32 has no transpose): B [N, K] (trans_b), or the weight gradient
/// (trans_a), whose operands the op transposes first (gemm_reads_transposed_operands), with k % 4
/// == 0 (rows of K in whole 16 bytes, as TMA strides need; the last k-block's columns past K read
/// as TMA's zeros); unless SWITCHYARD_GEMM says mma or simt.
bool uses_wgmma(const GemmShape& shape, const Target& target);

/// Whether `gemm` (a gemm_spec) reads its operands transposed ahead, the reduction innermost:
/// the TF32 weight gradient on Hopper (kernels::wgmma_pre_transposed). batched_gemm then
/// transposes A and B with gemm_operand_transpose_spec first, into buffers of their own.
bool gemm_reads_transposed_operands(const KernelSpec& gemm);
/// The transpose that such a GEMM's operands go through (the element-wise family's).
KernelSpec gemm_operand_transpose_spec(const KernelSpec& gemm);

/// True when `shape` runs on the mma.sync tensor-core kernels on `target`: sm_80+, 16-byte aligned
/// operands, n % 128 == 0, B as [K, N] or [N, K] (trans_b), and f16/bf16 with k % 32 == 0, or f32
/// with allow_tf32 and k % 16 == 0; the weight gradient (trans_a) with k % 128 == 0.
bool uses_tensor_cores(const GemmShape& shape, const Target& target);

/// Parses "relu", "gelu", "silu", "none"; throws UserError naming the text otherwise.
GemmActivation parse_activation(const std::string& text);
const char* activation_name(GemmActivation activation);
/// The backward epilogue of `activation` (relu -> relu_grad, ...); kActNone for none.
GemmActivation activation_derivative(GemmActivation activation);

/// Whether the CPU GEMM `gemm` (a gemm_spec) can read B from panels packed ahead
/// (GemmArgs::b_panels): bfloat16 dot products or float32 FMAs, without AMX (whose tiles read a
/// chunk's panel padded to whole tiles), not the weight-gradient form, and at least one whole
/// column tile. (float16, and bfloat16 without dot products, compute in floats: their panels
/// would be twice the weights' bytes, which is what a small batch is bound by.)
bool gemm_reads_packed_b(const KernelSpec& gemm);
/// Whether the panels of `gemm` (a gemm_spec or gemm_pack_b_spec) hold bfloat16 pairs, a word for
/// two reduction steps, rather than a float a step.
bool gemm_packs_pairs(const KernelSpec& gemm);
/// The packing of B's panels that `gemm` reads (gemm_reads_packed_b must hold): its dtype, N, K,
/// trans_b and column tile.
KernelSpec gemm_pack_b_spec(const KernelSpec& gemm);
/// The 32-bit words of one batch's panels for `pack` (a gemm_pack_b_spec).
int64_t gemm_panels_words(const KernelSpec& pack);
/// The launch of `pack` over `batch` batches' column tiles: blocks of at least 8 tiles, at most
/// `parallelism` of them.
LaunchConfig gemm_pack_b_launch_config(const KernelSpec& pack, int64_t batch, unsigned parallelism);

}  // namespace switchyard::kernels
