// The Python module switchyard._switchyard: MoeLayer over the public C++ API, tensors in and out
// as DLPack capsules (the "dltensor" protocol of torch.utils.dlpack), so no data is copied.
// python/switchyard/__init__.py wraps it for PyTorch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <switchyard/switchyard.h>

#include <cstdint>
#include <memory>
#include <string>

namespace py = pybind11;

namespace switchyard::python {
namespace {

constexpr const char* kCapsuleName = "dltensor";

// A capsule a consumer did not take (renamed "used_dltensor" when taken) still owns its tensor.
void delete_unused_capsule(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, kCapsuleName)) return;
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
}

py::capsule to_capsule(DLManagedTensor* managed) {
  return py::capsule(managed, kCapsuleName, &delete_unused_capsule);
}

// A view of the tensor a producer's capsule holds; the caller keeps the capsule alive.
Tensor view_of(const py::capsule& capsule) {
  if (std::string(capsule.name() ? capsule.name() : "") != kCapsuleName)
    throw UserError(std::string("expected a DLPack capsule named 'dltensor', got '") +
                    (capsule.name() ? capsule.name() : "") + "' (a capsule can be consumed once)");
  return Tensor::from_dlpack(static_cast<DLManagedTensor*>(capsule.get_pointer())->dl_tensor);
}

kernels::GemmActivation activation_named(const std::string& name) {
  if (name == "relu") return kernels::kActRelu;
  if (name == "gelu") return kernels::kActGelu;
  if (name == "silu" || name == "swish") return kernels::kActSilu;
  throw UserError("activation '" + name + "' is not one of relu, gelu, silu");
}

ExpertType expert_type_named(const std::string& name) {
  if (name == "ffn") return ExpertType::kFfn;
  if (name == "swiglu") return ExpertType::kSwiglu;
  throw UserError("expert_type '" + name + "' is not one of ffn, swiglu");
}

// The keyword arguments of forward, by Tutel's names; an unknown one is an error, not ignored.
ForwardOptions forward_options(const py::dict& kwargs) {
  ForwardOptions o;
  for (const auto& [key, value] : kwargs) {
    const std::string name = py::str(key);
    if (name == "top_k")
      o.top_k = value.cast<int64_t>();
    else if (name == "capacity_factor")
      o.capacity_factor = value.cast<double>();
    else if (name == "dropless_grouped")
      o.dropless_grouped = value.cast<bool>();
    else if (name == "is_postscore")
      o.is_postscore = value.cast<bool>();
    else if (name == "normalize_gate")
      o.normalize_gate = value.cast<bool>();
    else if (name == "batch_prioritized_routing")
      o.batch_prioritized_routing = value.cast<bool>();
    else if (name == "megablocks_size")
      o.megablocks_size = value.cast<int64_t>();
    else if (name == "check_finite")
      o.check_finite = value.cast<bool>();
    else if (name == "is_gshard_loss")
      o.is_gshard_loss = value.cast<bool>();
    else if (name == "gate_noise")
      o.gate_noise = value.cast<double>();
    else if (name == "save_for_backward")
      o.save_for_backward = value.cast<bool>();
    else
      throw UserError("unknown forward option '" + name +
                      "'; expected top_k, capacity_factor, dropless_grouped, is_postscore, normalize_gate, "
                      "batch_prioritized_routing, megablocks_size, check_finite, is_gshard_loss, gate_noise or "
                      "save_for_backward");
  }
  return o;
}

// What a forward returned besides its output (which went to the caller as a capsule).
struct LayerRouting {
  ForwardResult result;
  uintptr_t output_pointer = 0;
};

class Layer {
 public:
  Layer(const MoeLayerConfig& config, const std::string& device, uint64_t seed)
      : device_(device_named(device)), layer_(Context::global(), device_, config) {
    layer_.init_parameters(seed);
  }

  py::tuple forward(const py::capsule& x, const py::dict& kwargs) {
    ForwardOptions options = forward_options(kwargs);
    auto routing = std::make_shared<LayerRouting>();
    routing->result = layer_.forward(view_of(x), options);
    ForwardResult& r = routing->result;
    routing->output_pointer = reinterpret_cast<uintptr_t>(r.output.data());
    py::capsule y = to_capsule(to_dlpack_owning(std::move(r.storage), r.output));
    return py::make_tuple(y, routing);
  }

  py::capsule backward(const py::capsule& grad_output, double l_aux_weight) {
    BackwardResult r = layer_.backward(view_of(grad_output), l_aux_weight);
    return to_capsule(to_dlpack_owning(std::move(r.storage), r.grad_input));
  }

  // Views valid until the next backward (gradients) or sgd_step/load (parameters): the Python
  // side clones them.
  py::capsule gradient(const std::string& name) const { return to_capsule(layer_.gradient(name).to_dlpack()); }
  py::capsule parameter(const std::string& name) const { return to_capsule(layer_.parameter(name).to_dlpack()); }

  MoeLayer& layer() { return layer_; }

 private:
  static Device& device_named(const std::string& name) {
    if (name == "cpu") return Context::global().cpu();
    if (name == "cuda") return Context::global().cuda();
    throw UserError("device '" + name + "' is not one of cpu, cuda");
  }

  Device& device_;
  MoeLayer layer_;
};

MoeLayerConfig make_config(int64_t model_dim, int64_t hidden_size, int64_t num_experts, const std::string& dtype,
                           const std::string& expert_type, const std::string& activation, bool has_fc1_bias,
                           bool has_fc2_bias, bool fp32_gate, bool allow_tf32) {
  MoeLayerConfig c;
  c.model_dim = model_dim;
  c.hidden_size = hidden_size;
  c.num_experts = num_experts;
  c.dtype = parse_dtype(dtype);
  c.expert_type = expert_type_named(expert_type);
  c.activation = activation_named(activation);
  c.has_fc1_bias = has_fc1_bias;
  c.has_fc2_bias = has_fc2_bias;
  c.fp32_gate = fp32_gate;
  c.allow_tf32 = allow_tf32;
  c.validate();
  return c;
}

}  // namespace
}  // namespace switchyard::python

PYBIND11_MODULE(_switchyard, m) {
  using switchyard::Error;
  using switchyard::MoeLayerConfig;
  using switchyard::UserError;
  using namespace switchyard::python;
  m.doc() = "Switchyard's MoE layer (use the switchyard package, which wraps this for PyTorch)";
  static py::exception<Error> error(m, "Error", PyExc_RuntimeError);
  static py::exception<UserError> user_error(m, "UserError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UserError& e) {
      user_error(e.what());
    } catch (const Error& e) {
      error(e.what());
    }
  });
  m.attr("__version__") = sy_version_string();

  py::class_<MoeLayerConfig>(m, "Config")
      .def(py::init(&make_config), py::arg("model_dim"), py::arg("hidden_size"), py::arg("num_experts"),
           py::arg("dtype") = "float32", py::arg("expert_type") = "ffn", py::arg("activation") = "relu",
           py::arg("has_fc1_bias") = true, py::arg("has_fc2_bias") = true, py::arg("fp32_gate") = false,
           py::arg("allow_tf32") = false)
      .def_static("from_safetensors", &switchyard::layer_config_from_safetensors, py::arg("path"))
      .def_readonly("model_dim", &MoeLayerConfig::model_dim)
      .def_readonly("hidden_size", &MoeLayerConfig::hidden_size)
      .def_readonly("num_experts", &MoeLayerConfig::num_experts)
      .def_property_readonly("dtype", [](const MoeLayerConfig& c) { return std::string(dtype_name(c.dtype)); });

  py::class_<LayerRouting, std::shared_ptr<LayerRouting>>(m, "Routing")
      .def_property_readonly("capacity", [](const LayerRouting& r) { return r.result.capacity; })
      .def("l_aux", [](const LayerRouting& r) { return r.result.l_aux(); })
      .def("expert_counts", [](const LayerRouting& r) { return r.result.expert_counts(); })
      .def_readonly("output_pointer", &LayerRouting::output_pointer);

  py::class_<Layer>(m, "Layer")
      .def(py::init<const MoeLayerConfig&, const std::string&, uint64_t>(), py::arg("config"),
           py::arg("device") = "cpu", py::arg("seed") = 1)
      .def("forward", &Layer::forward)
      .def("backward", &Layer::backward, py::arg("grad_output"), py::arg("l_aux_weight") = 0.0)
      .def("gradient", &Layer::gradient)
      .def("parameter", &Layer::parameter)
      .def("parameter_names", [](Layer& l) { return l.layer().parameter_names(); })
      .def("init_parameters", [](Layer& l, uint64_t seed) { l.layer().init_parameters(seed); })
      .def("load", [](Layer& l, const std::string& path) { l.layer().load(path); })
      .def("save", [](Layer& l, const std::string& path) { l.layer().save(path); })
      .def("sgd_step",
           [](Layer& l, double lr, double momentum, double weight_decay) {
             l.layer().sgd_step(switchyard::SgdOptions{lr, momentum, weight_decay});
           })
      .def("prepare", [](Layer& l, const py::dict& kwargs) { return l.layer().prepare(forward_options(kwargs)); });

  // The data pointer a capsule's tensor has as this library sees it (for no-copy checks).
  m.def("_data_pointer", [](const py::capsule& c) { return reinterpret_cast<uintptr_t>(view_of(c).data()); });
}
