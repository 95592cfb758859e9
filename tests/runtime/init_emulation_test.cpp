// The CUDA parameter initialization (templates/switchyard/cuda/init_random.cuh) run on the host
// through tests/support/cuda_emulation.h, with its family's launch (a grid-stride loop over fewer
// blocks than items): every element is the documented generator's double rounded once to the
// dtype, as the host rounds it (core/half.h), bit for bit, so that a GPU layer and a CPU layer
// drawn with one seed hold the same weights (the CPU side: init_random_test).
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <cstring>
#include <switchyard/cuda/init_random.cuh>

#include "core/half.h"
#include "jit/kernels/init_random.h"

namespace switchyard {
namespace {

// The bits the host rounds element i's value to in `dt`.
uint32_t host_bits(const kernels::InitArgs& args, long i, DType dt) {
  const double value = kernels::init_value(args, args.first + i);
  if (dt == DType::kFloat16) return double_to_half_bits(value);
  if (dt == DType::kBFloat16) return double_to_bf16_bits(value);
  const float f = static_cast<float>(value);
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

template <typename T>
void expect_host_bits(DType dt, int normal) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << (normal ? " normal" : " uniform"));
  const long count = 5000;
  std::vector<T> out(count);
  // A slice from element 1234 of a bigger tensor, as a rank draws its part.
  const kernels::InitArgs args{out.data(), 0x5eedull, 1234, count, normal ? 0.02 : 0.125, normal};
  const LaunchConfig launch =
      kernels::init_random_launch_config(kernels::init_random_spec(dt, Target::cuda(90)), count, 2);
  ASSERT_LT(static_cast<long>(launch.grid) * launch.block, count) << "the grid-stride loop is exercised";
  emulation::launch(launch, [&] { cuda::init_random<T>(args); });
  for (long i = 0; i < count; ++i) {
    uint32_t got = 0;
    std::memcpy(&got, &out[i], sizeof(T));
    ASSERT_EQ(got, host_bits(args, i, dt)) << "element " << i;
  }
}

TEST(InitRandomEmulation, CudaValuesAreTheHostsRoundingBitForBit) {
  for (int normal : {0, 1}) {
    expect_host_bits<float>(DType::kFloat32, normal);
    expect_host_bits<cuda::bf16_t>(DType::kBFloat16, normal);
    expect_host_bits<cuda::half_t>(DType::kFloat16, normal);
  }
}

}  // namespace
}  // namespace switchyard
