// Scalar math for CPU templates without system headers: the C library's functions are
// resolved from the host process when the kernel is linked.
#pragma once

extern "C" {
float expf(float);
double exp(double);
float erff(float);
double erf(double);
}

namespace switchyard {
namespace cpu {

inline float math_exp(float x) {
  return expf(x);
}
inline double math_exp(double x) {
  return exp(x);
}
inline float math_erf(float x) {
  return erff(x);
}
inline double math_erf(double x) {
  return erf(x);
}

template <typename T>
inline T relu(T x) {
  return x > T(0) ? x : T(0);
}
template <typename T>
inline T gelu(T x) {
  return T(0.5) * x * (T(1) + math_erf(x * T(0.70710678118654752440)));
}
template <typename T>
inline T silu(T x) {
  return x / (T(1) + math_exp(-x));
}

// Derivatives at the pre-activation x, for the backward epilogues.
template <typename T>
inline T relu_grad(T x) {
  return x > T(0) ? T(1) : T(0);
}
template <typename T>
inline T gelu_grad(T x) {
  const T cdf = T(0.5) * (T(1) + math_erf(x * T(0.70710678118654752440)));
  return cdf + x * T(0.39894228040143267794) * math_exp(T(-0.5) * x * x);
}
template <typename T>
inline T silu_grad(T x) {
  const T s = T(1) / (T(1) + math_exp(-x));
  return s * (T(1) + x * (T(1) - s));
}

}  // namespace cpu
}  // namespace switchyard
