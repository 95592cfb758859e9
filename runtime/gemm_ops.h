// Batched GEMM with a fused bias + activation epilogue, for the experts and the gate:
// c[b] = act(a[b] @ op(w[b]) + bias[b]); op(w) = w ([B, K, N]) or w^T (trans_b, w is [B, N, K]).
#pragma once

#include <switchyard/common/gemm_args.h>

#include "runtime/context.h"
#include "runtime/planned_kernel.h"
#include "runtime/tensor.h"

namespace switchyard {

struct GemmOptions {
  bool trans_a = false;  // weight gradient: c [B, K, N] = a^T w, a [B, R, K], w [B, R, N]
  bool trans_b = false;
  kernels::GemmActivation activation = kernels::kActNone;
  const Tensor* bias = nullptr;          // [B, N]
  const Tensor* aux = nullptr;           // [B, R, N]: the gate input of kActSwiglu, the pre-activation of *Grad
  const Tensor* row_counts = nullptr;    // int32 [B], host or device: rows used per batch, clamped to R
  bool allow_tf32 = false;               // float32 on CUDA may use TF32 tensor cores
  const PlannedGemm* planned = nullptr;  // a plan's kernel, launched when the call has its shape
  const Tensor* b_panels = nullptr;      // w's panels from pack_gemm_b for this shape: read instead of packing w
};

/// a [B, R, K], w [B, K, N] (or [B, N, K] with trans_b), c [B, R, N]; all contiguous, one dtype,
/// one device. With row_counts, batch b computes only its first min(row_counts[b], R) rows (the
/// rest of c is left untouched); with trans_a they bound the reduction instead (c is whole).
/// Throws UserError naming the offending tensor.
void batched_gemm(Context& context, const Tensor& a, const Tensor& w, const Tensor& c, const GemmOptions& options = {});

/// The int32 words of w's panels for the GEMM of `shape` on `target` (w has `batch` batches), packed
/// ahead by pack_gemm_b so that its calls read them in place of packing w: 0 where that GEMM does
/// not read packed panels (kernels::gemm_reads_packed_b: CPU float32 FMAs or bfloat16 dot products,
/// without AMX).
int64_t gemm_panels_words(const kernels::GemmShape& shape, int64_t batch, const Target& target);

/// Packs w ([B, K, N], or [B, N, K] with shape.trans_b) into `panels` (contiguous int32 of
/// gemm_panels_words elements, on w's device), which a batched_gemm of `shape` then takes as
/// GemmOptions::b_panels. The panels hold w's values at this call: packing again after w changes
/// is the caller's part. Throws UserError where the GEMM reads no panels or a tensor is wrong.
void pack_gemm_b(Context& context, const Tensor& w, const kernels::GemmShape& shape, const Tensor& panels);

}  // namespace switchyard
