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

// Custom gates and experts written in Python: the package's adapters (switchyard/__init__.py) run
// a torch module on DLPack views of the layer's tensors. The layer calls them from the thread
// that called forward or backward, which holds the GIL; a Python exception propagates through the
// layer to the caller.
class PythonObject {
 public:
  explicit PythonObject(py::object object) : object_(std::move(object)) {}
  PythonObject(const PythonObject&) = delete;
  PythonObject& operator=(const PythonObject&) = delete;
  ~PythonObject() {
    py::gil_scoped_acquire gil;  // a layer kept alive by a view may be freed by any thread
    object_ = py::object();
    kept_ = py::object();
  }

 protected:
  py::object object_;
  py::object kept_;  // what a gate's logits view points into, until the next call
};

class PythonExperts final : public CustomExperts, private PythonObject {
 public:
  using PythonObject::PythonObject;
  void forward(const Tensor& in, const Tensor& out) override {
    py::gil_scoped_acquire gil;
    object_.attr("forward")(to_capsule(in.to_dlpack()), to_capsule(out.to_dlpack()));
  }
  void backward(const Tensor& in, const Tensor& d_out, const Tensor& d_in) override {
    py::gil_scoped_acquire gil;
    object_.attr("backward")(to_capsule(in.to_dlpack()), to_capsule(d_out.to_dlpack()), to_capsule(d_in.to_dlpack()));
  }
};

class PythonGate final : public CustomGate, private PythonObject {
 public:
  using PythonObject::PythonObject;
  Tensor forward(const Tensor& x) override {
    py::gil_scoped_acquire gil;
    py::object logits = object_.attr("forward")(to_capsule(x.to_dlpack()));
    if (!py::isinstance<py::capsule>(logits))
      throw UserError("a Python custom gate's forward returned a " + std::string(py::str(logits.get_type())) +
                      "; expected a DLPack capsule");
    kept_ = logits;
    return view_of(logits.cast<py::capsule>());
  }
  void backward(const Tensor& x, const Tensor& d_logits, const Tensor& dx) override {
    py::gil_scoped_acquire gil;
    object_.attr("backward")(to_capsule(x.to_dlpack()), to_capsule(d_logits.to_dlpack()), to_capsule(dx.to_dlpack()));
  }
};

// What a forward returned besides its output (which went to the caller as a capsule).
struct LayerRouting {
  ForwardResult result;
  uintptr_t output_pointer = 0;
};

class Layer {
 public:
  Layer(const MoeLayerConfig& config, const std::string& device, uint64_t seed)
      : layer_(std::make_unique<MoeLayer>(Context::global(), Context::global().device(device), config)) {
    if (seed != 1) layer_->init_parameters(seed);  // the constructor draws seed 1
  }
  explicit Layer(std::unique_ptr<MoeLayer> layer) : layer_(std::move(layer)) {}
  static Layer open(const std::string& path, const std::string& device) {
    return Layer(MoeLayer::open(Context::global(), Context::global().device(device), path));
  }

  // Device::use_stream for the layer's device, with streams as the integers torch shows them.
  uintptr_t use_stream(uintptr_t stream) {
    return reinterpret_cast<uintptr_t>(layer_->device().use_stream(reinterpret_cast<void*>(stream)));
  }

  py::tuple forward(const py::capsule& x, const ForwardOptions& options) {
    auto routing = std::make_shared<LayerRouting>();
    routing->result = layer_->forward(view_of(x), options);
    ForwardResult& r = routing->result;
    routing->output_pointer = reinterpret_cast<uintptr_t>(r.output.data());
    py::capsule y = to_capsule(to_dlpack_owning(std::move(r.storage), r.output));
    return py::make_tuple(y, routing);
  }

  // None without input_gradient.
  py::object backward(const py::capsule& grad_output, double l_aux_weight, bool input_gradient) {
    BackwardOptions options;
    options.l_aux_weight = l_aux_weight;
    options.input_gradient = input_gradient;
    BackwardResult r = layer_->backward(view_of(grad_output), options);
    if (!input_gradient) return py::none();
    return to_capsule(to_dlpack_owning(std::move(r.storage), r.grad_input));
  }

  // The layer's own parameter and gradient memory (which backward, sgd_step and load write in
  // place); each view keeps the layer alive, so a torch tensor over it outlives the Python object.
  py::capsule gradient(const std::string& name) const { return keeping_layer(layer_->gradient(name)); }
  py::capsule parameter(const std::string& name) const { return keeping_layer(layer_->parameter(name)); }

  MoeLayer& layer() { return *layer_; }

 private:
  struct LayerView {
    DLManagedTensor* view;
    std::shared_ptr<MoeLayer> layer;
  };

  py::capsule keeping_layer(const Tensor& tensor) const {
    auto* managed = new DLManagedTensor{};
    auto owner = std::make_unique<LayerView>(LayerView{nullptr, layer_});
    owner->view = tensor.to_dlpack();  // owns the shape the dl_tensor above points at
    managed->dl_tensor = owner->view->dl_tensor;
    managed->manager_ctx = owner.release();
    managed->deleter = [](DLManagedTensor* self) {
      auto* owner = static_cast<LayerView*>(self->manager_ctx);
      if (owner->view->deleter != nullptr) owner->view->deleter(owner->view);
      delete owner;  // drops this view's share of the layer
      delete self;
    };
    return to_capsule(managed);
  }

  std::shared_ptr<MoeLayer> layer_;
};

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
  m.attr("LEGACY_DEFAULT_STREAM") = switchyard::kLegacyDefaultStream;

  // Configs and options come from JSON (the library's readers, which the C API uses too); the
  // package builds the text from keyword arguments and keeps parsed options per distinct set.
  py::class_<MoeLayerConfig>(m, "Config", py::dynamic_attr())  // the package keeps custom modules on it
      .def_static("from_json", &switchyard::layer_config_from_json, py::arg("json"))
      .def_static("from_safetensors", &switchyard::layer_config_from_safetensors, py::arg("path"))
      .def_readonly("model_dim", &MoeLayerConfig::model_dim)
      .def_readonly("hidden_size", &MoeLayerConfig::hidden_size)
      .def_readonly("num_experts", &MoeLayerConfig::num_experts)
      .def_property_readonly("dtype",
                             [](const MoeLayerConfig& c) { return std::string(switchyard::dtype_name(c.dtype)); })
      .def("set_custom_experts",
           [](MoeLayerConfig& c, py::object adapter) { c.custom_experts = std::make_shared<PythonExperts>(adapter); })
      .def("set_custom_gate", [](MoeLayerConfig& c, size_t index, py::object adapter) {
        if (index >= c.gates.size())
          throw UserError("custom gate " + std::to_string(index) + ": the config has " +
                          std::to_string(c.gates.size()) + " gates");
        c.gates[index].type = switchyard::GateType::kCustom;
        c.gates[index].custom = std::make_shared<PythonGate>(adapter);
      });
  py::class_<switchyard::ForwardOptions>(m, "ForwardOptions")
      .def_static("from_json", &switchyard::forward_options_from_json, py::arg("json"));

  py::class_<LayerRouting, std::shared_ptr<LayerRouting>>(m, "Routing")
      .def_property_readonly("capacity", [](const LayerRouting& r) { return r.result.capacity; })
      .def("l_aux", [](const LayerRouting& r) { return r.result.l_aux(); })
      .def("expert_counts", [](const LayerRouting& r) { return r.result.expert_counts(); })
      .def_readonly("output_pointer", &LayerRouting::output_pointer);

  py::class_<Layer>(m, "Layer")
      .def(py::init<const MoeLayerConfig&, const std::string&, uint64_t>(), py::arg("config"),
           py::arg("device") = "cpu", py::arg("seed") = 1)
      .def_static("open", &Layer::open, py::arg("path"), py::arg("device") = "cpu")
      .def("forward", &Layer::forward)
      .def("backward", &Layer::backward, py::arg("grad_output"), py::arg("l_aux_weight") = 0.0,
           py::arg("input_gradient") = true)
      .def("gradient", &Layer::gradient)
      .def("parameter", &Layer::parameter)
      .def("parameters_updated", [](Layer& l) { l.layer().parameters_updated(); })
      .def("parameter_names", [](Layer& l) { return l.layer().parameter_names(); })
      .def("init_parameters", [](Layer& l, uint64_t seed) { l.layer().init_parameters(seed); })
      .def("load", [](Layer& l, const std::string& path) { l.layer().load(path); })
      .def("save", [](Layer& l, const std::string& path) { l.layer().save(path); })
      .def("sgd_step",
           [](Layer& l, double lr, double momentum, double weight_decay) {
             l.layer().sgd_step(switchyard::SgdOptions{lr, momentum, weight_decay});
           })
      .def("prepare", [](Layer& l, const switchyard::ForwardOptions& options) { return l.layer().prepare(options); })
      .def("use_stream", &Layer::use_stream, py::arg("stream"));

  // The data pointer a capsule's tensor has as this library sees it (for no-copy checks).
  m.def("_data_pointer", [](const py::capsule& c) { return reinterpret_cast<uintptr_t>(view_of(c).data()); });
}
