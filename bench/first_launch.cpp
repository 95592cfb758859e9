// Helper of jit_bench: starts, runs one dispatch encode on the CPU with whatever cache is
// configured, and prints the CLOCK_REALTIME nanoseconds at which the launch finished.
#include <ctime>
#include <iostream>
#include <vector>

#include "runtime/dispatch_ops.h"

int main() {
  using namespace switchyard;
  const int64_t s = 8, m = 64, e = 4, c = 4;
  std::vector<float> x(s * m, 1.0f), out(e * c * m), gates(s, 1.0f);
  std::vector<int> idx(s), loc(s);
  for (int i = 0; i < s; ++i) {
    idx[i] = i % e;
    loc[i] = i / e;
  }
  Routing r{Tensor(idx.data(), DType::kInt32, {1, s}), Tensor(loc.data(), DType::kInt32, {1, s}),
            Tensor(gates.data(), DType::kFloat32, {1, s}), c, e};
  dispatch_encode(Context::global(), Tensor(x.data(), DType::kFloat32, {s, m}), r, true,
                  Tensor(out.data(), DType::kFloat32, {e, c, m}));
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  std::cout << now.tv_sec * 1000000000LL + now.tv_nsec << " " << Context::global().counters().store.compiles << "\n";
  return out[0] == 1.0f ? 0 : 1;
}
