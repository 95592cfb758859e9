// An expert function written as plain loops, plugged into the layer through the public
// CustomExperts interface: y = W2^T act(W1 x + b1) + b2 per expert, float64 on the CPU, with the
// built-in FFN's weight layout (W1, W2 [E, H, M]) and its own gradients. Used by
// examples/custom_expert.cpp and the tests.
#pragma once

#include <switchyard/switchyard.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace switchyard::examples {

inline std::vector<double> values_of(const Tensor& t) {
  return std::vector<double>(t.data_as<const double>(), t.data_as<const double>() + t.numel());
}

class LoopFfnExperts : public CustomExperts {
 public:
  struct Activation {
    std::function<double(double)> value, derivative;
  };
  static Activation relu() {
    return {[](double z) { return z > 0 ? z : 0.0; }, [](double z) { return z > 0 ? 1.0 : 0.0; }};
  }

  /// The experts of `like` (a float64 FFN layer): its weights, copied, with activation `act`.
  LoopFfnExperts(const MoeLayer& like, Activation act)
      : act_(std::move(act.value)), act_grad_(std::move(act.derivative)) {
    for (const char* name :
         {"experts.batched_fc1_w", "experts.batched_fc1_bias", "experts.batched_fc2_w", "experts.batched_fc2_bias"}) {
      weights_[name] = values_of(like.parameter(name));
      grads_[name] = std::vector<double>(weights_[name].size());
    }
    e_ = like.parameter("experts.batched_fc1_w").dim(0);
    h_ = like.parameter("experts.batched_fc1_w").dim(1);
    m_ = like.parameter("experts.batched_fc1_w").dim(2);
  }

  void forward(const Tensor& in, const Tensor& out) override {
    const int64_t c = in.dim(1);
    for (int64_t e = 0; e < e_; ++e)
      for (int64_t r = 0; r < c; ++r) {
        const double* x = in.data_as<const double>() + (e * c + r) * m_;
        double* y = out.data_as<double>() + (e * c + r) * m_;
        for (int64_t j = 0; j < m_; ++j) y[j] = w("experts.batched_fc2_bias")[e * m_ + j];
        for (int64_t k = 0; k < h_; ++k) {
          const double hidden = act_(pre(e, k, x));
          for (int64_t j = 0; j < m_; ++j) y[j] += hidden * w("experts.batched_fc2_w")[(e * h_ + k) * m_ + j];
        }
      }
  }

  void backward(const Tensor& in, const Tensor& d_out, const Tensor& d_in) override {
    const int64_t c = in.dim(1);
    for (int64_t e = 0; e < e_; ++e)
      for (int64_t r = 0; r < c; ++r) {
        const double* x = in.data_as<const double>() + (e * c + r) * m_;
        const double* dy = d_out.data_as<const double>() + (e * c + r) * m_;
        double* dx = d_in.data_as<double>() + (e * c + r) * m_;
        for (int64_t j = 0; j < m_; ++j) {
          dx[j] = 0;
          grads_["experts.batched_fc2_bias"][e * m_ + j] += dy[j];
        }
        for (int64_t k = 0; k < h_; ++k) {
          const double z = pre(e, k, x);
          double d_hidden = 0;
          for (int64_t j = 0; j < m_; ++j) {
            d_hidden += dy[j] * w("experts.batched_fc2_w")[(e * h_ + k) * m_ + j];
            grads_["experts.batched_fc2_w"][(e * h_ + k) * m_ + j] += act_(z) * dy[j];
          }
          const double dz = d_hidden * act_grad_(z);
          grads_["experts.batched_fc1_bias"][e * h_ + k] += dz;
          for (int64_t j = 0; j < m_; ++j) {
            dx[j] += dz * w("experts.batched_fc1_w")[(e * h_ + k) * m_ + j];
            grads_["experts.batched_fc1_w"][(e * h_ + k) * m_ + j] += dz * x[j];
          }
        }
      }
  }

  const std::vector<double>& gradient(const std::string& name) const { return grads_.at(name); }
  void reset_gradients() {
    for (auto& [name, g] : grads_) g.assign(g.size(), 0.0);
  }

 private:
  const std::vector<double>& w(const char* name) const { return weights_.at(name); }
  double pre(int64_t e, int64_t k, const double* x) const {
    double z = w("experts.batched_fc1_bias")[e * h_ + k];
    for (int64_t j = 0; j < m_; ++j) z += w("experts.batched_fc1_w")[(e * h_ + k) * m_ + j] * x[j];
    return z;
  }

  std::function<double(double)> act_, act_grad_;
  std::map<std::string, std::vector<double>> weights_, grads_;
  int64_t e_ = 0, h_ = 0, m_ = 0;
};

}  // namespace switchyard::examples
