/* The C API from plain C: a one-expert layer whose weights this test writes itself (a
 * safetensors file), a forward checked against the FFN computed by hand, a training step, the
 * bad inputs, and the version queries. Exit status 0 when everything holds.
 * Usage: c_api_test SCRATCH_DIR */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/switchyard_c.h>

enum { M = 2, H = 3, S = 4 };
/* The expert's weights (the test's own copy follows the SGD step the layer takes). */
static float kW1[H][M] = {{0.5f, -1.0f}, {1.5f, 0.25f}, {-0.75f, 2.0f}}; /* [H, M] */
static float kB1[H] = {0.1f, -0.2f, 0.3f};
static float kW2[H][M] = {{1.0f, -0.5f}, {0.25f, 0.75f}, {-1.25f, 0.5f}}; /* [H, M] */
static float kB2[M] = {0.05f, -0.05f};
static const float kGate[M] = {0.3f, -0.7f}; /* [E = 1, M] */

static int failures = 0;
#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                          \
      fprintf(stderr, "\n");                                 \
      ++failures;                                            \
    }                                                        \
  } while (0)

/* One tensor entry of a safetensors header; offsets are filled in order. */
static size_t put_entry(char* header, size_t at, const char* name, const char* shape, size_t begin, size_t bytes) {
  return at + (size_t)sprintf(header + at, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                              at > 1 ? "," : "", name, shape, begin, begin + bytes);
}

static int write_weights(const char* path) {
  char header[1024] = "{";
  size_t at = 1, offset = 0;
  at = put_entry(header, at, "gates.0.wg.weight", "[1,2]", offset, sizeof kGate), offset += sizeof kGate;
  at = put_entry(header, at, "experts.batched_fc1_w", "[1,3,2]", offset, sizeof kW1), offset += sizeof kW1;
  at = put_entry(header, at, "experts.batched_fc2_w", "[1,3,2]", offset, sizeof kW2), offset += sizeof kW2;
  at = put_entry(header, at, "experts.batched_fc1_bias", "[1,3]", offset, sizeof kB1), offset += sizeof kB1;
  at = put_entry(header, at, "experts.batched_fc2_bias", "[1,2]", offset, sizeof kB2);
  header[at++] = '}';
  while (at % 8 != 0) header[at++] = ' ';
  FILE* f = fopen(path, "wb");
  if (f == NULL) return 0;
  uint64_t length = at; /* little-endian on every host this runs on */
  fwrite(&length, 8, 1, f);
  fwrite(header, 1, at, f);
  fwrite(kGate, sizeof kGate, 1, f);
  fwrite(kW1, sizeof kW1, 1, f);
  fwrite(kW2, sizeof kW2, 1, f);
  fwrite(kB1, sizeof kB1, 1, f);
  fwrite(kB2, sizeof kB2, 1, f);
  return fclose(f) == 0;
}

/* One expert, top-1: every token goes to it with gate 1, so y = relu(x W1^T + b1) W2 + b2. */
static double expected(const float* x, int m) {
  double y = kB2[m];
  for (int h = 0; h < H; ++h) {
    double z = kB1[h];
    for (int k = 0; k < M; ++k) z += (double)x[k] * kW1[h][k];
    y += (z > 0 ? z : 0) * kW2[h][m];
  }
  return y;
}

/* SGD with rate lr on the weights above for L = sum(y) over the tokens x (the gate gets no
 * gradient: the softmax over one expert is 1 whatever its logit). */
static void sgd_on_sum(const float* x, double lr) {
  double d_w1[H][M] = {{0}}, d_b1[H] = {0}, d_w2[H][M] = {{0}}, d_b2[M] = {0};
  for (int s = 0; s < S; ++s) {
    for (int h = 0; h < H; ++h) {
      double z = kB1[h], da = 0;
      for (int k = 0; k < M; ++k) z += (double)x[s * M + k] * kW1[h][k];
      for (int m = 0; m < M; ++m) {
        d_w2[h][m] += z > 0 ? z : 0;
        da += kW2[h][m];
      }
      const double dz = z > 0 ? da : 0;
      d_b1[h] += dz;
      for (int k = 0; k < M; ++k) d_w1[h][k] += dz * x[s * M + k];
    }
    for (int m = 0; m < M; ++m) d_b2[m] += 1;
  }
  for (int h = 0; h < H; ++h) {
    kB1[h] -= (float)(lr * d_b1[h]);
    for (int k = 0; k < M; ++k) kW1[h][k] -= (float)(lr * d_w1[h][k]);
    for (int m = 0; m < M; ++m) kW2[h][m] -= (float)(lr * d_w2[h][m]);
  }
  for (int m = 0; m < M; ++m) kB2[m] -= (float)(lr * d_b2[m]);
}

static DLTensor cpu_tensor(float* data, int64_t* shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = 2;
  t.dtype.code = kDLFloat;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: c_api_test SCRATCH_DIR\n");
    return 2;
  }
  CHECK(sy_version() == SWITCHYARD_VERSION, "library %d, headers %d", sy_version(), SWITCHYARD_VERSION);
  CHECK(strcmp(sy_version_string(), SWITCHYARD_VERSION_STRING) == 0, "version %s", sy_version_string());

  char path[4096];
  snprintf(path, sizeof path, "%s/c_api_test.safetensors", argv[1]);
  if (!write_weights(path)) {
    fprintf(stderr, "cannot write %s\n", path);
    return 1;
  }
  sy_layer* layer = NULL;
  sy_status status = sy_layer_open("cpu", path, &layer);
  CHECK(status == SY_OK && layer != NULL, "sy_layer_open: %d %s", (int)status, sy_last_error());
  if (layer == NULL) return 1;

  float x[S * M] = {1.0f, 2.0f, -0.5f, 0.25f, 3.0f, -1.0f, 0.0f, 0.5f};
  int64_t shape[2] = {S, M};
  DLTensor input = cpu_tensor(x, shape);
  DLManagedTensor* y = NULL;
  double l_aux = -1;
  status = sy_layer_forward(layer, &input, "{\"top_k\": 1, \"save_for_backward\": true}", &y, &l_aux);
  CHECK(status == SY_OK && y != NULL, "sy_layer_forward: %d %s", (int)status, sy_last_error());
  if (y != NULL) {
    CHECK(y->dl_tensor.ndim == 2 && y->dl_tensor.shape[0] == S && y->dl_tensor.shape[1] == M, "output shape");
    const float* out = (const float*)y->dl_tensor.data;
    for (int s = 0; s < S; ++s)
      for (int m = 0; m < M; ++m)
        CHECK(fabs(out[s * M + m] - expected(x + s * M, m)) < 1e-5, "y[%d][%d] = %f, expected %f", s, m, out[s * M + m],
              expected(x + s * M, m));
    /* gshard_loss with one expert: E * (all tokens first-choose it) * (mean score 1) = 1. */
    CHECK(fabs(l_aux - 1.0) < 1e-6, "l_aux = %f, expected 1", l_aux);
    y->deleter(y);
  }

  /* A training step: backward of L = sum(y) (every output gradient 1), then SGD. */
  float ones[S * M];
  for (int i = 0; i < S * M; ++i) ones[i] = 1.0f;
  DLTensor grad = cpu_tensor(ones, shape);
  DLManagedTensor* dx = NULL;
  status = sy_layer_backward(layer, &grad, 0.0, &dx);
  CHECK(status == SY_OK && dx != NULL, "sy_layer_backward: %d %s", (int)status, sy_last_error());
  if (dx != NULL) dx->deleter(dx);
  CHECK(sy_layer_sgd_step(layer, 0.1, 0.0, 0.0) == SY_OK, "sgd: %s", sy_last_error());
  sgd_on_sum(x, 0.1);
  /* A second step without dL/dx (grad_input NULL): the parameters' gradients alone. */
  status = sy_layer_forward(layer, &input, "{\"top_k\": 1, \"save_for_backward\": true}", &y, NULL);
  CHECK(status == SY_OK, "second forward: %s", sy_last_error());
  if (y != NULL) y->deleter(y);
  status = sy_layer_backward(layer, &grad, 0.0, NULL);
  CHECK(status == SY_OK, "sy_layer_backward without dL/dx: %d %s", (int)status, sy_last_error());
  CHECK(sy_layer_sgd_step(layer, 0.1, 0.0, 0.0) == SY_OK, "sgd: %s", sy_last_error());
  sgd_on_sum(x, 0.1);
  status = sy_layer_forward(layer, &input, "{\"top_k\": 1}", &y, NULL);
  CHECK(status == SY_OK, "forward after sgd: %s", sy_last_error());
  if (status == SY_OK) {
    const float* out = (const float*)y->dl_tensor.data;
    for (int s = 0; s < S; ++s)
      for (int m = 0; m < M; ++m)
        CHECK(fabs(out[s * M + m] - expected(x + s * M, m)) < 1e-4, "after two sgd steps y[%d][%d] = %f, expected %f",
              s, m, out[s * M + m], expected(x + s * M, m));
    y->deleter(y);
  }

  /* Bad inputs: a status, a message naming the problem, and the layer still works. */
  int64_t bad_shape[2] = {S, M + 1};
  DLTensor bad = cpu_tensor(x, bad_shape);
  y = NULL;
  CHECK(sy_layer_forward(layer, &bad, NULL, &y, NULL) == SY_ERROR_USER && y == NULL, "a [4, 3] input was accepted");
  CHECK(strstr(sy_last_error(), "forward input") != NULL, "message: %s", sy_last_error());
  CHECK(sy_layer_forward(layer, &input, "{\"top_kk\": 1}", &y, NULL) == SY_ERROR_USER, "unknown option accepted");
  CHECK(strstr(sy_last_error(), "top_kk") != NULL, "message: %s", sy_last_error());
  CHECK(sy_layer_forward(layer, &input, "{\"top_k\": 1", &y, NULL) == SY_ERROR_USER, "broken JSON accepted");
  CHECK(sy_layer_forward(NULL, &input, NULL, &y, NULL) == SY_ERROR_USER, "a NULL layer accepted");
  void* previous = (void*)&previous;
  CHECK(sy_layer_use_stream(layer, NULL, &previous) == SY_OK && previous == NULL, "no stream: %s", sy_last_error());
  CHECK(sy_layer_use_stream(layer, (void*)1, &previous) == SY_ERROR_USER, "a stream accepted on the CPU");
  CHECK(strstr(sy_last_error(), "the CPU device has no streams") != NULL, "message: %s", sy_last_error());
  CHECK(sy_layer_use_stream(NULL, NULL, NULL) == SY_ERROR_USER, "a NULL layer accepted");
  CHECK(sy_layer_forward(layer, &input, "{\"top_k\": 1}", &y, NULL) == SY_OK, "the layer broke: %s", sy_last_error());
  if (y != NULL) y->deleter(y);
  sy_layer* other = NULL;
  CHECK(sy_layer_create("cpu", "{\"model_dim\": 8, \"hidden_size\": 4, \"num_experts\": 2, \"colour\": 1}", &other) ==
                SY_ERROR_USER &&
            other == NULL,
        "unknown config field accepted");
  CHECK(strstr(sy_last_error(), "colour") != NULL, "message: %s", sy_last_error());
  CHECK(sy_layer_create("tpu:0", "{\"model_dim\": 8, \"hidden_size\": 4, \"num_experts\": 2}", &other) == SY_ERROR_USER,
        "device tpu:0 accepted");
  CHECK(sy_layer_open("cpu", "/nonexistent/weights.safetensors", &other) == SY_ERROR_USER, "missing file opened");
  CHECK(sy_layer_create("cpu", "{\"model_dim\": 8, \"hidden_size\": 4, \"num_experts\": 2}", &other) == SY_OK,
        "create: %s", sy_last_error());
  sy_layer_destroy(other);
  sy_layer_destroy(layer);
  sy_layer_destroy(NULL);
  if (failures == 0) printf("c_api_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
