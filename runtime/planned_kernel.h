// A kernel chosen ahead of the calls that launch it (a layer's plan, runtime/layer_plan.h): the
// spec its family's rule picked, which the launch rule reads, and the kernel loaded from it. An op
// given one launches it without building, hashing or looking up a spec.
#pragma once

#include <utility>

#include "core/error.h"
#include "jit/kernel_spec.h"
#include "jit/kernels/gemm.h"
#include "runtime/context.h"

namespace switchyard {

struct PlannedKernel {
  KernelSpec spec;                       // an empty family: the plan has no such kernel
  const LoadedKernel* loaded = nullptr;  // set when the plan is loaded onto its device

  bool in_plan() const { return !spec.family.empty(); }
};

/// A GEMM of a plan: the shape its rule chose from (batched_gemm uses the plan's kernel only for a
/// call of exactly that shape, alignment included) and the kernel; null when not in the plan.
struct PlannedGemm {
  kernels::GemmShape shape;
  const PlannedKernel* kernel = nullptr;
  // The transpose of its operands where the GEMM reads them transposed (the TF32 weight gradient
  // on Hopper: kernels::gemm_reads_transposed_operands), else null.
  const PlannedKernel* transpose = nullptr;
};

// The spec and kernel of one call: the plan's where one is given, else `make()`'s, looked up in
// the context. Debug builds (the sanitizer runs) check that the plan holds what make() picks, so
// a plan that drifted from its ops fails there instead of launching the wrong kernel.
class ChosenKernel {
 public:
  template <typename MakeSpec>
  ChosenKernel(Context& context, Device& device, const PlannedKernel* planned, MakeSpec&& make) {
    if (planned != nullptr && planned->loaded != nullptr) {
#ifndef NDEBUG
      const KernelSpec wanted = make();
      SY_INTERNAL_CHECK(planned->spec == wanted)
          << "the layer's plan holds " << planned->spec.to_string() << " where the call picks " << wanted.to_string();
#endif
      spec_ = &planned->spec;
      loaded_ = planned->loaded;
      return;
    }
    made_ = std::forward<MakeSpec>(make)();
    spec_ = &made_;
    loaded_ = &context.kernel(device, made_);
  }
  ChosenKernel(const ChosenKernel&) = delete;
  ChosenKernel& operator=(const ChosenKernel&) = delete;

  const KernelSpec& spec() const {
    return *spec_;
  }
  const LoadedKernel& loaded() const {
    return *loaded_;
  }

 private:
  KernelSpec made_;
  const KernelSpec* spec_ = nullptr;
  const LoadedKernel* loaded_ = nullptr;
};

}  // namespace switchyard
