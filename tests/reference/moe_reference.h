// The oracle for the MoE layer: every op as plain loops in double, written from
// tutel-semantics.md sections 1-4 and 6 (without the bugs of section 12).
#pragma once

#include <cstdint>
#include <vector>

namespace switchyard::reference {

enum class Act { kNone, kRelu, kGelu, kSilu };
double activate(Act act, double x);

/// c[b] = act(a[b] @ op(w[b]) + bias[b]); a [B,R,K], w [B,K,N] or [B,N,K] when trans_b.
std::vector<double> gemm(const std::vector<double>& a, const std::vector<double>& w, const std::vector<double>* bias,
                         int64_t batch, int64_t rows, int64_t k, int64_t n, bool trans_b, Act act);

struct Routing {
  std::vector<double> scores;  // [S, E] softmax of the logits
  std::vector<int> indices;    // [k, S]
  std::vector<int> locations;  // [k, S]
  std::vector<double> gates;   // [k, S] (normalized when k > 1 and normalize_gate)
  std::vector<int> counts;     // [E] true number of (token, choice) pairs per expert
  int64_t capacity = 0;
  double l_aux = 0;
};

/// Softmax, top-k (ties to the lower index), locations (choice j offset by earlier choices'
/// counts; with batch-prioritized routing, tokens ordered by descending max score), counts,
/// capacity (section 1.3) and gshard_loss.
Routing route(const std::vector<double>& logits, int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor,
              bool normalize_gate, bool batch_prioritized, int64_t alignment);

/// Capacity by tutel-semantics 1.3 from the token count and the largest expert count.
int64_t capacity(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor, int64_t max_count,
                 int64_t alignment);

/// tutel-semantics 3 load_importance_loss, from clean probabilities and (noise-free) logits.
double load_importance_loss(const std::vector<double>& probs, const std::vector<double>& logits, int64_t tokens,
                            int64_t experts, int64_t top_k, double noise);

}  // namespace switchyard::reference
