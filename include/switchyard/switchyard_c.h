/* Switchyard's C API: a Mixture-of-Experts layer and the kernel cache for any language with a C
 * FFI (Rust, Go, Python ctypes, ...). No exception crosses it: every call returns a status, and
 * sy_last_error() holds the message of the last failure on the calling thread. Tensors pass as
 * DLPack (dlpack/dlpack.h) without copies. Thread-safety: distinct layers may be used from
 * distinct threads; one layer from one thread at a time.
 *
 * Versioning: SWITCHYARD_VERSION (switchyard/version.h) is what you compiled against;
 * sy_version() is the library you run with. This API only grows within a major version (while
 * the major is 0, within a minor version). */
#ifndef SWITCHYARD_SWITCHYARD_C_H_
#define SWITCHYARD_SWITCHYARD_C_H_

#include <dlpack/dlpack.h>
#include <stdint.h>
#include <switchyard/export.h>
#include <switchyard/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sy_status {
  SY_OK = 0,
  SY_ERROR_USER = 1,    /* a bad argument, option, shape, file or config */
  SY_ERROR_BACKEND = 2, /* the CUDA driver, NVRTC, LLVM, MPI or the OS failed */
  SY_ERROR_COMPILE = 3, /* a kernel did not compile (the message holds the log) */
  SY_ERROR_COMM = 4,    /* a collective failed or timed out */
  SY_ERROR_INTERNAL = 5 /* a bug in Switchyard: please report the message */
} sy_status;

/* The library's version: SWITCHYARD_VERSION's number and its "major.minor.patch" string. */
SWITCHYARD_API int sy_version(void);
SWITCHYARD_API const char* sy_version_string(void);

/* The message of the last call that failed on this thread ("" when none has); valid until the
 * thread's next failing call. */
SWITCHYARD_API const char* sy_last_error(void);

/* ---- layers ---------------------------------------------------------------------------------- */

typedef struct sy_layer sy_layer;

/* A layer on `device` ("cpu", "cuda" or "cuda:N") from a JSON object with the fields of
 * MoeLayerConfig: model_dim, hidden_size, num_experts (required), dtype ("float32", "float64",
 * "float16", "bfloat16"), expert_type ("ffn", "swiglu"), activation ("relu", "gelu", "silu",
 * "none"), has_fc1_bias, has_fc2_bias, fp32_gate, allow_tf32, pack_expert_weights (a CPU float32
 * or bfloat16 layer packs its expert weights once for its GEMMs: docs/model-config.md). Weights
 * are drawn from seed 1, as the C++ MoeLayer constructor draws them (sy_layer_init draws others).
 * An unknown field is an error naming it. */
SWITCHYARD_API sy_status sy_layer_create(const char* device, const char* config_json, sy_layer** layer);
/* A layer whose shapes, expert type, biases and dtype come from a safetensors file (Tutel's
 * names, as sy_layer_save writes them), loaded from it. */
SWITCHYARD_API sy_status sy_layer_open(const char* device, const char* safetensors_path, sy_layer** layer);
/* Frees the layer (NULL is fine). */
SWITCHYARD_API void sy_layer_destroy(sy_layer* layer);

SWITCHYARD_API sy_status sy_layer_init(sy_layer* layer, uint64_t seed);
/* Replaces every parameter from a safetensors file; on an error the layer is unchanged. */
SWITCHYARD_API sy_status sy_layer_load(sy_layer* layer, const char* safetensors_path);
SWITCHYARD_API sy_status sy_layer_save(const sy_layer* layer, const char* safetensors_path);

/* y = layer(x). x: [tokens, model_dim], contiguous, the layer's dtype, on its device.
 * options_json: NULL (defaults) or an object of ForwardOptions fields with Tutel's names: top_k,
 * capacity_factor, dropless_grouped, is_postscore, normalize_gate, batch_prioritized_routing,
 * megablocks_size, check_finite, is_gshard_loss, gate_noise, save_for_backward (for
 * sy_layer_backward), adaptive_r, a2a_ffn_overlap_degree, use_2dh.
 * *output receives a new DLPack tensor that owns its memory: call its deleter. l_aux may be NULL;
 * when given, it receives the aux loss (which waits for a GPU). */
SWITCHYARD_API sy_status sy_layer_forward(sy_layer* layer, const DLTensor* x, const char* options_json,
                                          DLManagedTensor** output, double* l_aux);
/* dL/dx of the forward saved with "save_for_backward": true, for dL/dy = grad_output and
 * L += l_aux_weight * l_aux; every parameter's gradient is kept for sy_layer_sgd_step.
 * *grad_input owns its memory like sy_layer_forward's output. grad_input NULL: x needs no
 * gradient, and the work only dL/dx needs is skipped (BackwardOptions::input_gradient). */
SWITCHYARD_API sy_status sy_layer_backward(sy_layer* layer, const DLTensor* grad_output, double l_aux_weight,
                                           DLManagedTensor** grad_input);
/* One SGD step (torch.optim.SGD: lr, momentum, weight_decay) from the last backward's gradients. */
SWITCHYARD_API sy_status sy_layer_sgd_step(sy_layer* layer, double lr, double momentum, double weight_decay);
/* Queues the work of the layer's device on `stream` (a CUstream of the device's primary context,
 * (void*)1 for the legacy default stream) from now on, or on the device's own stream for NULL;
 * *previous (may be NULL) receives the stream it replaces (NULL: the device's own). Work queued
 * before on that stream comes first; outputs handed out meanwhile are freed on `stream`, which
 * must outlive them. The device is shared by every layer on it. The CPU takes NULL only. */
SWITCHYARD_API sy_status sy_layer_use_stream(sy_layer* layer, void* stream, void** previous);

/* ---- the kernel cache ------------------------------------------------------------------------- */

/* Compiles into the cache every kernel the model config (JSON file) can request: targets is NULL
 * (this machine's) or a comma-separated list ("cpu,sm_90a"); training adds the backward's
 * kernels. *kernels (may be NULL) receives how many kernels the config has there. */
SWITCHYARD_API sy_status sy_warm(const char* model_config_path, const char* targets, int training, int64_t* kernels);
/* Every cache entry into one bundle file, and back (checksums verified); *entries may be NULL. */
SWITCHYARD_API sy_status sy_cache_export(const char* bundle_path, int64_t* entries);
SWITCHYARD_API sy_status sy_cache_import(const char* bundle_path, int64_t* entries);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SWITCHYARD_SWITCHYARD_C_H_ */
