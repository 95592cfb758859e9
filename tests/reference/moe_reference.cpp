#include "tests/reference/moe_reference.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace switchyard::reference {

double activate(Act act, double x) {
  switch (act) {
    case Act::kRelu:
      return x > 0 ? x : 0;
    case Act::kGelu:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Act::kSilu:
      return x / (1 + std::exp(-x));
    case Act::kNone:
      return x;
  }
  return x;
}

std::vector<double> gemm(const std::vector<double>& a, const std::vector<double>& w, const std::vector<double>* bias,
                         int64_t batch, int64_t rows, int64_t k, int64_t n, bool trans_b, Act act) {
  std::vector<double> c(batch * rows * n);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double sum = bias ? (*bias)[b * n + j] : 0.0;
        for (int64_t i = 0; i < k; ++i) {
          double wv = trans_b ? w[(b * n + j) * k + i] : w[(b * k + i) * n + j];
          sum += a[(b * rows + r) * k + i] * wv;
        }
        c[(b * rows + r) * n + j] = activate(act, sum);
      }
  return c;
}

int64_t capacity(int64_t tokens, int64_t experts, int64_t top_k, double cf, int64_t max_count, int64_t alignment) {
  int64_t spe = (tokens + experts - 1) / experts;
  int64_t c = 0;
  if (cf > 0)
    c = top_k * static_cast<int64_t>(std::floor(cf * static_cast<double>(spe)));
  else if (cf == 0)
    c = max_count;
  else
    c = std::min(max_count, top_k * static_cast<int64_t>(std::floor(-cf * static_cast<double>(spe))));
  if (alignment > 1 && c % alignment != 0) c = (c / alignment + 1) * alignment;
  return c;
}

Routing route(const std::vector<double>& logits, int64_t s, int64_t e, int64_t k, double cf, bool normalize, bool bpr,
              int64_t alignment) {
  Routing r;
  r.scores.resize(s * e);
  r.indices.assign(k * s, 0);
  r.gates.assign(k * s, 0);
  for (int64_t t = 0; t < s; ++t) {
    double mx = *std::max_element(logits.begin() + t * e, logits.begin() + (t + 1) * e);
    double sum = 0;
    for (int64_t x = 0; x < e; ++x) sum += std::exp(logits[t * e + x] - mx);
    for (int64_t x = 0; x < e; ++x) r.scores[t * e + x] = std::exp(logits[t * e + x] - mx) / sum;
    std::vector<int> order(e);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int p, int q) { return r.scores[t * e + p] > r.scores[t * e + q]; });
    double total = 0;
    for (int64_t j = 0; j < k; ++j) {
      r.indices[j * s + t] = order[j];
      r.gates[j * s + t] = r.scores[t * e + order[j]];
      total += r.gates[j * s + t];
    }
    if (k > 1 && normalize)
      for (int64_t j = 0; j < k; ++j) r.gates[j * s + t] /= std::max(total, 1.1920928955078125e-07);
  }
  // Token order for locations: natural, or by descending top score (stable) with BPR.
  std::vector<int64_t> token_order(s);
  std::iota(token_order.begin(), token_order.end(), 0);
  if (bpr) {
    std::stable_sort(token_order.begin(), token_order.end(), [&](int64_t p, int64_t q) {
      return *std::max_element(r.scores.begin() + p * e, r.scores.begin() + (p + 1) * e) >
             *std::max_element(r.scores.begin() + q * e, r.scores.begin() + (q + 1) * e);
    });
  }
  r.locations.assign(k * s, 0);
  r.counts.assign(e, 0);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t t : token_order) r.locations[j * s + t] = r.counts[r.indices[j * s + t]]++;
  int64_t max_count = *std::max_element(r.counts.begin(), r.counts.end());
  r.capacity = capacity(s, e, k, cf, max_count, alignment);
  // gshard_loss: E * sum_e (fraction of tokens whose first choice is e) * (mean score of e).
  double loss = 0;
  for (int64_t x = 0; x < e; ++x) {
    double frac = 0, mean = 0;
    for (int64_t t = 0; t < s; ++t) {
      frac += r.indices[t] == x;
      mean += r.scores[t * e + x];
    }
    loss += (frac / static_cast<double>(s)) * (mean / static_cast<double>(s));
  }
  r.l_aux = static_cast<double>(e) * loss;
  return r;
}

double load_importance_loss(const std::vector<double>& probs, const std::vector<double>& logits, int64_t s, int64_t e,
                            int64_t k, double noise) {
  auto cv2 = [](const std::vector<double>& v) {
    double sum = 0, sum_sq = 0, n = static_cast<double>(v.size());
    for (double x : v) {
      sum += x;
      sum_sq += x * x;
    }
    double mean = sum / n, unbiased = (sum_sq - n * mean * mean) / (n - 1);
    return unbiased / (mean * mean + 1e-10);
  };
  std::vector<double> importance(e, 0), load(e, 0);
  for (int64_t t = 0; t < s; ++t) {
    std::vector<double> sorted(logits.begin() + t * e, logits.begin() + (t + 1) * e);
    std::sort(sorted.rbegin(), sorted.rend());
    for (int64_t x = 0; x < e; ++x) {
      importance[x] += probs[t * e + x];
      double z = (probs[t * e + x] - sorted[k - 1]) / (noise / static_cast<double>(e));
      load[x] += 0.5 * (1 + std::erf(z / std::sqrt(2.0)));
    }
  }
  return (cv2(importance) + cv2(load)) / 2;
}

}  // namespace switchyard::reference
