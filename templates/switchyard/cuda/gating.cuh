// Gating on CUDA (tutel-semantics 1.2, 1.3, 3). gate_topk: one thread per token, softmax and
// top-k in fp32 whatever the logits' storage type. route_locations: one block per expert scans
// the tokens choice by choice, with block-wide prefix sums giving each match its slot.
#pragma once

#include <switchyard/common/gating_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <typename T, int kExperts, int kTopK, bool kNormalize>
__global__ void __launch_bounds__(128) gate_topk(kernels::GateTopkArgs args) {
  static_assert(kExperts >= 1 && kTopK >= 1 && kTopK <= kExperts, "gate_topk: need 1 <= top_k <= experts");
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= args.tokens) return;
  const T* row = static_cast<const T*>(args.logits) + static_cast<long>(s) * kExperts;
  float* out = static_cast<float*>(args.scores) + static_cast<long>(s) * kExperts;
  float max = to_float(row[0]);
  for (int e = 1; e < kExperts; ++e) max = fmaxf(max, to_float(row[e]));
  float sum = 0.0f;
  for (int e = 0; e < kExperts; ++e) {
    float v = __expf(to_float(row[e]) - max);
    out[e] = v;
    sum += v;
  }
  const float inv = 1.0f / sum;
  for (int e = 0; e < kExperts; ++e) out[e] *= inv;
  float* gates = static_cast<float*>(args.gates);
  unsigned long long taken[(kExperts + 63) / 64] = {};
  float total = 0.0f;
  for (int j = 0; j < kTopK; ++j) {
    int best = -1;
    float best_score = 0.0f;
    for (int e = 0; e < kExperts; ++e) {
      if (taken[e / 64] >> (e % 64) & 1ull) continue;
      const float v = out[e];
      if (best < 0 || v > best_score) {  // strictly greater: ties go to the lower expert
        best = e;
        best_score = v;
      }
    }
    taken[best / 64] |= 1ull << (best % 64);
    args.indices[j * args.tokens + s] = best;
    gates[j * args.tokens + s] = best_score;
    total += best_score;
    if (j == 0) static_cast<float*>(args.top_score)[s] = best_score;
  }
  if (kNormalize && kTopK > 1) {
    const float denom = fmaxf(total, 1.1920928955078125e-07f);
    for (int j = 0; j < kTopK; ++j) gates[j * args.tokens + s] /= denom;
  }
}

// Backward of gate_topk (+ the gshard_loss term), one thread per token, in fp32; the formulas
// of the CPU template (cpu/gating.hpp). Scores are fp32; the output has the logits' type T.
template <typename T, int kExperts, int kTopK, bool kNormalize>
__global__ void __launch_bounds__(128) gate_backward(kernels::GateBackwardArgs args) {
  static_assert(kExperts >= 1 && kTopK >= 1 && kTopK <= kExperts, "gate_backward: need 1 <= top_k <= experts");
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= args.tokens) return;
  const float* p = static_cast<const float*>(args.scores) + static_cast<long>(s) * kExperts;
  const int* top1 = args.top1_counts;  // the aux term, as the host would narrow it: float(scale * top1)
  const float* dg = static_cast<const float*>(args.grad_gates);
  T* out = static_cast<T*>(args.grad_logits) + static_cast<long>(s) * kExperts;
  const long n = args.tokens;
  float total = 0.0f, weighted = 0.0f;
  for (int j = 0; j < kTopK; ++j) total += p[args.indices[j * n + s]];
  const bool normalized = kNormalize && kTopK > 1;
  const float eps = 1.1920928955078125e-07f;
  const float denom = normalized ? fmaxf(total, eps) : 1.0f;
  for (int j = 0; j < kTopK; ++j) weighted += dg[j * n + s] * p[args.indices[j * n + s]] / denom;
  const float shift = normalized && total > eps ? weighted : 0.0f;
  float dot = 0.0f;
  if (top1)
    for (int e = 0; e < kExperts; ++e) dot += p[e] * static_cast<float>(args.aux_scale * top1[e]);
  for (int j = 0; j < kTopK; ++j) {
    const int e = args.indices[j * n + s];
    dot += p[e] * (dg[j * n + s] - shift) / denom;
  }
  // Chosen experts get their gate term in the same pass (k is small next to E).
  for (int e = 0; e < kExperts; ++e) {
    float d = top1 ? static_cast<float>(args.aux_scale * top1[e]) : 0.0f;
    for (int j = 0; j < kTopK; ++j)
      if (args.indices[j * n + s] == e) d += (dg[j * n + s] - shift) / denom;
    out[e] = from_float<T>(p[e] * (d - dot));
  }
}

// Batch-prioritized routing's order: a thread per token counts the tokens visited before it
// (a higher top score, or an equal one earlier: a stable sort) and writes itself there. The keys
// stream through shared memory in tiles; O(S^2) comparisons, 67 M for S = 8192. NaN sorts as
// -inf, so the ranks stay a permutation whatever the scores hold.
template <typename G>
__global__ void __launch_bounds__(256) route_priority(kernels::PriorityArgs args) {
  static_assert(sizeof(G) == 4, "route_priority on CUDA takes float scores");
  __shared__ float tile[256];
  const int n = args.tokens;
  const int i = blockIdx.x * 256 + threadIdx.x;
  const float* score = static_cast<const float*>(args.top_score);
  auto key = [&](int token) { return score[token] == score[token] ? score[token] : -__int_as_float(0x7f800000); };
  const float mine = i < n ? key(i) : 0.0f;
  int rank = 0;
  for (int base = 0; base < n; base += 256) {
    if (base + static_cast<int>(threadIdx.x) < n) tile[threadIdx.x] = key(base + threadIdx.x);
    __syncthreads();
    const int count = min(256, n - base);
    for (int t = 0; t < count; ++t) rank += tile[t] > mine || (tile[t] == mine && base + t < i);
    __syncthreads();
  }
  if (i < n) args.order[rank] = i;
}

// Inclusive prefix sum of `value` over the block (blockDim.x == 256); `total` gets the sum.
__device__ __forceinline__ int block_inclusive_scan(int value, int* warp_sums, int& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int offset = 1; offset < 32; offset *= 2) {
    int other = __shfl_up_sync(0xffffffffu, value, offset);
    if (lane >= offset) value += other;
  }
  if (lane == 31) warp_sums[warp] = value;
  __syncthreads();
  if (warp == 0) {
    int w = lane < 8 ? warp_sums[lane] : 0;
#pragma unroll
    for (int offset = 1; offset < 8; offset *= 2) {
      int other = __shfl_up_sync(0xffffffffu, w, offset);
      if (lane >= offset) w += other;
    }
    if (lane < 8) warp_sums[lane] = w;
  }
  __syncthreads();
  if (warp > 0) value += warp_sums[warp - 1];
  total = warp_sums[7];
  __syncthreads();
  return value;
}

template <typename G, int kExperts, int kTopK>
__global__ void __launch_bounds__(256) route_locations(kernels::LocationsArgs args) {
  static_assert(sizeof(G) == 4, "route_locations on CUDA takes float scores");
  __shared__ int warp_sums[8];
  __shared__ float score_sums[8];
  const int e = blockIdx.x;
  const int tokens = args.tokens;
  int running = 0;
  for (int j = 0; j < kTopK; ++j) {
    for (int base = 0; base < tokens; base += 256) {
      const int i = base + threadIdx.x;
      const int s = i < tokens ? (args.order ? args.order[i] : i) : 0;
      const int match = i < tokens && args.indices[j * tokens + s] == e;
      int total = 0;
      const int inclusive = block_inclusive_scan(match, warp_sums, total);
      if (match) args.locations[j * tokens + s] = running + inclusive - 1;
      running += total;
    }
  }
  // gshard_loss term of this expert: (share of tokens whose first choice is e) * (mean score of e).
  int first = 0;
  float score = 0.0f;
  const float* scores = static_cast<const float*>(args.scores);
  for (int s = threadIdx.x; s < tokens; s += 256) {
    first += args.indices[s] == e;
    score += scores[static_cast<long>(s) * kExperts + e];
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    first += __shfl_down_sync(0xffffffffu, first, offset);
    score += __shfl_down_sync(0xffffffffu, score, offset);
  }
  if (threadIdx.x % 32 == 0) {
    warp_sums[threadIdx.x / 32] = first;
    score_sums[threadIdx.x / 32] = score;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int f = 0;
    float sc = 0.0f;
    for (int w = 0; w < 8; ++w) {
      f += warp_sums[w];
      sc += score_sums[w];
    }
    args.counts[e] = running;
    args.top1_counts[e] = f;
    static_cast<float*>(args.loss_terms)[e] = tokens > 0 ? (static_cast<float>(f) / tokens) * (sc / tokens) : 0.0f;
  }
}

}  // namespace cuda
}  // namespace switchyard
