// The C API (switchyard/switchyard_c.h): every call runs its C++ body inside `guarded`, which turns
// each exception into a status and the thread's last-error message.
#include <switchyard/cache.h>
#include <switchyard/switchyard_c.h>

#include <memory>
#include <new>
#include <sstream>
#include <string>

#include "core/error.h"
#include "runtime/context.h"
#include "runtime/moe_layer.h"

struct sy_layer {
  std::unique_ptr<switchyard::MoeLayer> layer;
};

namespace switchyard {
namespace {

thread_local std::string last_error;

template <typename Body>
sy_status guarded(Body&& body) {
  try {
    body();
    return SY_OK;
  } catch (const UserError& e) {
    last_error = e.what();
    return SY_ERROR_USER;
  } catch (const CompileError& e) {
    last_error = e.what();
    return SY_ERROR_COMPILE;
  } catch (const CommError& e) {
    last_error = e.what();
    return SY_ERROR_COMM;
  } catch (const BackendError& e) {
    last_error = e.what();
    return SY_ERROR_BACKEND;
  } catch (const std::bad_alloc&) {
    last_error = "out of host memory";
    return SY_ERROR_BACKEND;
  } catch (const std::exception& e) {
    last_error = e.what();
    return SY_ERROR_INTERNAL;
  } catch (...) {
    last_error = "an unknown exception";
    return SY_ERROR_INTERNAL;
  }
}

template <typename T>
T& required(T* pointer, const char* what) {
  SY_CHECK(pointer != nullptr) << what << " is NULL";
  return *pointer;
}

const char* text_arg(const char* text, const char* what) {
  SY_CHECK(text != nullptr) << what << " is NULL";
  return text;
}

MoeLayer& layer_of(sy_layer* handle) {
  return *required(handle, "the layer").layer;
}

const MoeLayer& layer_of(const sy_layer* handle) {
  return *required(handle, "the layer").layer;
}

std::vector<std::string> split_targets(const char* targets) {
  std::vector<std::string> list;
  if (targets == nullptr) return list;
  std::stringstream in(targets);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) list.push_back(item);
  return list;
}

}  // namespace
}  // namespace switchyard

using namespace switchyard;

extern "C" {

int sy_version(void) {
  return SWITCHYARD_VERSION;
}

const char* sy_version_string(void) {
  return SWITCHYARD_VERSION_STRING;
}

const char* sy_last_error(void) {
  return last_error.c_str();
}

sy_status sy_layer_create(const char* device, const char* config_json, sy_layer** layer) {
  return guarded([&] {
    sy_layer*& out = required(layer, "the layer pointer");
    out = nullptr;
    const MoeLayerConfig config = layer_config_from_json(text_arg(config_json, "the layer config"));
    auto handle = std::make_unique<sy_layer>();
    handle->layer = std::make_unique<MoeLayer>(Context::global(), Context::global().device(device ? device : "cpu"),
                                               config);  // seed 1
    out = handle.release();
  });
}

sy_status sy_layer_open(const char* device, const char* safetensors_path, sy_layer** layer) {
  return guarded([&] {
    sy_layer*& out = required(layer, "the layer pointer");
    out = nullptr;
    const std::string path = text_arg(safetensors_path, "the safetensors path");
    auto handle = std::make_unique<sy_layer>();
    handle->layer = MoeLayer::open(Context::global(), Context::global().device(device ? device : "cpu"), path);
    out = handle.release();
  });
}

void sy_layer_destroy(sy_layer* layer) {
  delete layer;
}

sy_status sy_layer_init(sy_layer* layer, uint64_t seed) {
  return guarded([&] { layer_of(layer).init_parameters(seed); });
}

sy_status sy_layer_load(sy_layer* layer, const char* safetensors_path) {
  return guarded([&] { layer_of(layer).load(text_arg(safetensors_path, "the safetensors path")); });
}

sy_status sy_layer_save(const sy_layer* layer, const char* safetensors_path) {
  return guarded([&] { layer_of(layer).save(text_arg(safetensors_path, "the safetensors path")); });
}

sy_status sy_layer_forward(sy_layer* layer, const DLTensor* x, const char* options_json, DLManagedTensor** output,
                           double* l_aux) {
  return guarded([&] {
    DLManagedTensor*& out = required(output, "the output pointer");
    out = nullptr;
    const ForwardOptions options = options_json == nullptr ? ForwardOptions{} : forward_options_from_json(options_json);
    ForwardResult result = layer_of(layer).forward(Tensor::from_dlpack(required(x, "the input")), options);
    if (l_aux != nullptr) *l_aux = result.l_aux();
    out = to_dlpack_owning(std::move(result.storage), result.output);
  });
}

sy_status sy_layer_backward(sy_layer* layer, const DLTensor* grad_output, double l_aux_weight,
                            DLManagedTensor** grad_input) {
  return guarded([&] {
    if (grad_input != nullptr) *grad_input = nullptr;
    BackwardOptions options;
    options.l_aux_weight = l_aux_weight;
    options.input_gradient = grad_input != nullptr;
    BackwardResult result =
        layer_of(layer).backward(Tensor::from_dlpack(required(grad_output, "the output gradient")), options);
    if (grad_input != nullptr) *grad_input = to_dlpack_owning(std::move(result.storage), result.grad_input);
  });
}

sy_status sy_layer_sgd_step(sy_layer* layer, double lr, double momentum, double weight_decay) {
  return guarded([&] { layer_of(layer).sgd_step(SgdOptions{lr, momentum, weight_decay}); });
}

sy_status sy_layer_use_stream(sy_layer* layer, void* stream, void** previous) {
  return guarded([&] {
    void* replaced = layer_of(layer).device().use_stream(stream);
    if (previous != nullptr) *previous = replaced;
  });
}

sy_status sy_warm(const char* model_config_path, const char* targets, int training, int64_t* kernels) {
  return guarded([&] {
    WarmOptions options;
    options.targets = split_targets(targets);
    options.training = training != 0;
    const WarmReport report = warm(text_arg(model_config_path, "the model config path"), options);
    if (kernels != nullptr) *kernels = static_cast<int64_t>(report.kernels);
  });
}

sy_status sy_cache_export(const char* bundle_path, int64_t* entries) {
  return guarded([&] {
    const size_t n = export_cache(text_arg(bundle_path, "the bundle path"));
    if (entries != nullptr) *entries = static_cast<int64_t>(n);
  });
}

sy_status sy_cache_import(const char* bundle_path, int64_t* entries) {
  return guarded([&] {
    const size_t n = import_cache(text_arg(bundle_path, "the bundle path"));
    if (entries != nullptr) *entries = static_cast<int64_t>(n);
  });
}

}  // extern "C"
