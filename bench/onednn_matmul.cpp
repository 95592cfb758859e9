#include "bench/onednn_matmul.h"

#include <oneapi/dnnl/dnnl.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace switchyard::bench {
namespace {

void check(dnnl_status_t status, const char* what) {
  if (status != dnnl_success)
    throw std::runtime_error(std::string("oneDNN ") + what + " failed: status " + std::to_string(status));
}

// A row-major [batch, rows, cols] matrix as the logical [batch, rows', cols'] the matmul reads,
// transposed (rows' = cols) where `transposed`.
dnnl_memory_desc_t matrix(int64_t batch, int64_t rows, int64_t cols, bool transposed) {
  dnnl_memory_desc_t desc;
  const dnnl_dims_t dims = {batch, transposed ? cols : rows, transposed ? rows : cols};
  const dnnl_dims_t strides = {rows * cols, transposed ? 1 : cols, transposed ? cols : 1};
  check(dnnl_memory_desc_init_by_strides(&desc, 3, dims, dnnl_bf16, strides), "memory_desc_init_by_strides");
  return desc;
}

}  // namespace

struct OnednnBf16Matmul::State {
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  dnnl_primitive_desc_t descriptor = nullptr;
  dnnl_primitive_t primitive = nullptr;
  dnnl_memory_desc_t a, b, c;
  dnnl_memory_t memory[3] = {};  // a, b, c: made once, pointed at each run's operands

  ~State() {
    for (dnnl_memory_t m : memory)
      if (m) dnnl_memory_destroy(m);
    if (primitive) dnnl_primitive_destroy(primitive);
    if (descriptor) dnnl_primitive_desc_destroy(descriptor);
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
  }
};

OnednnBf16Matmul::OnednnBf16Matmul(std::unique_ptr<State> state) : state_(std::move(state)) {}

std::unique_ptr<OnednnBf16Matmul> OnednnBf16Matmul::create(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                                                           bool trans_b) {
  auto state = std::make_unique<State>();
  State& s = *state;
  check(dnnl_engine_create(&s.engine, dnnl_cpu, 0), "engine_create");
  check(dnnl_stream_create(&s.stream, s.engine, dnnl_stream_default_flags), "stream_create");
  s.a = trans_a ? matrix(batch, k, m, true) : matrix(batch, m, k, false);
  s.b = trans_b ? matrix(batch, n, k, true) : matrix(batch, k, n, false);
  s.c = matrix(batch, m, n, false);
  dnnl_matmul_desc_t matmul;
  check(dnnl_matmul_desc_init(&matmul, &s.a, &s.b, nullptr, &s.c), "matmul_desc_init");
  const dnnl_status_t made = dnnl_primitive_desc_create(&s.descriptor, &matmul, nullptr, s.engine, nullptr);
  if (made == dnnl_unimplemented) return nullptr;
  check(made, "primitive_desc_create");
  check(dnnl_primitive_create(&s.primitive, s.descriptor), "primitive_create");
  const dnnl_memory_desc_t* descs[3] = {&s.a, &s.b, &s.c};
  for (int i = 0; i < 3; ++i)
    check(dnnl_memory_create(&s.memory[i], descs[i], s.engine, DNNL_MEMORY_NONE), "memory_create");
  return std::unique_ptr<OnednnBf16Matmul>(new OnednnBf16Matmul(std::move(state)));
}

OnednnBf16Matmul::~OnednnBf16Matmul() = default;

void OnednnBf16Matmul::run(const void* a, const void* b, void* c) const {
  State& s = *state_;
  void* data[3] = {const_cast<void*>(a), const_cast<void*>(b), c};
  for (int i = 0; i < 3; ++i) check(dnnl_memory_set_data_handle(s.memory[i], data[i]), "memory_set_data_handle");
  const dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, s.memory[0]}, {DNNL_ARG_WEIGHTS, s.memory[1]}, {DNNL_ARG_DST, s.memory[2]}};
  check(dnnl_primitive_execute(s.primitive, s.stream, 3, args), "primitive_execute");
  check(dnnl_stream_wait(s.stream), "stream_wait");
}

const char* OnednnBf16Matmul::implementation() const {
  const char* name = nullptr;
  check(dnnl_primitive_desc_query(state_->descriptor, dnnl_query_impl_info_str, 0, &name), "primitive_desc_query");
  return name;
}

}  // namespace switchyard::bench
