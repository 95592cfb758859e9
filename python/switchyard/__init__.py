"""Switchyard's Mixture-of-Experts layer for PyTorch.

Tensors pass through DLPack without copies: forward's input and output and backward's gradient
share memory with the torch tensors. The layer owns its parameters and their gradients; after a
backward, ``sgd_step`` updates them, or ``MoeModule`` shows them to torch as ``nn.Parameter``s
over the layer's own memory, so that any torch optimizer updates them in place.
"""
import contextlib
import json

import torch
from torch.utils import dlpack as _dlpack

from . import _switchyard as _core

Error = _core.Error
UserError = _core.UserError
__version__ = _core.__version__

_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def Config(custom_experts=None, custom_gate=None, **fields):
    """A layer config from Tutel's field names: model_dim, hidden_size, num_experts, dtype
    ("float32", "float64", "float16", "bfloat16"), expert_type ("ffn", "swiglu"), activation
    ("relu", "gelu", "silu"), has_fc1_bias, has_fc2_bias, fp32_gate, allow_tf32, gate_type,
    proj_dim, init_t, gates, and ours: pack_expert_weights.

    custom_experts: a torch module mapping the dispatched block [E, C, M] to [E, C, M] in place
    of the built-in experts (the layer then has no expert parameters; the module keeps its own,
    and backward leaves their gradients in its parameters' .grad). custom_gate: a torch module
    mapping the gate input [S, M] to logits [S, E] in place of gate 0 (the gate's dtype: float32
    with fp32_gate, else the layer's)."""
    config = _core.Config.from_json(json.dumps(fields))
    if custom_experts is not None:
        config.set_custom_experts(_CustomExperts(custom_experts))
    if custom_gate is not None:
        config.set_custom_gate(0, _CustomGate(custom_gate))
    config.custom_modules = {"experts": custom_experts, "gate": custom_gate}
    return config


class _TorchModule:
    """Runs a torch module inside the layer on views of the layer's tensors. It keeps the autograd
    graph of the last forward for the backward that follows (the layer differentiates the last
    saved forward); torch accumulates the module's parameter gradients in their .grad."""

    def __init__(self, module, what):
        self.module = module
        self.what = what
        self._graph = None

    def _run(self, input_capsule):
        with torch.enable_grad():  # an autograd.Function's forward runs without grad
            x = _dlpack.from_dlpack(input_capsule).detach().clone().requires_grad_()
            y = self.module(x)
        if not isinstance(y, torch.Tensor):
            raise UserError(f"{self.what} returned {type(y).__name__}; expected a torch.Tensor")
        self._graph = (x, y)
        return y

    def backward(self, input_capsule, d_output_capsule, d_input_capsule):
        if self._graph is None:
            raise UserError(f"{self.what}: backward without a forward")
        x, y = self._graph
        self._graph = None
        with torch.enable_grad():
            torch.autograd.backward(y, _dlpack.from_dlpack(d_output_capsule))
        with torch.no_grad():
            d_input = _dlpack.from_dlpack(d_input_capsule)
            if x.grad is None:  # the module's output did not depend on its input
                d_input.zero_()
            else:
                d_input.copy_(x.grad)


class _CustomExperts(_TorchModule):
    def __init__(self, module):
        super().__init__(module, "custom experts")

    def forward(self, in_capsule, out_capsule):
        y = self._run(in_capsule)
        out = _dlpack.from_dlpack(out_capsule)
        if y.shape != out.shape or y.dtype != out.dtype:
            raise UserError(f"custom experts' output is {y.dtype}{tuple(y.shape)}; "
                            f"expected {out.dtype}{tuple(out.shape)}")
        with torch.no_grad():
            out.copy_(y)


class _CustomGate(_TorchModule):
    def __init__(self, module):
        super().__init__(module, "custom gate")

    def forward(self, x_capsule):  # logits [S, E]; the layer checks their shape and dtype
        return _dlpack.to_dlpack(self._run(x_capsule).detach().contiguous())


def _capsule(tensor, what):
    if not isinstance(tensor, torch.Tensor):
        raise UserError(f"{what} must be a torch.Tensor, got {type(tensor).__name__}")
    return _dlpack.to_dlpack(tensor.detach())


class MoeLayer:
    """One MoE layer (Tutel's moe_layer with a top-k gate and ffn or swiglu experts).

    ``MoeLayer(Config(model_dim=..., hidden_size=..., num_experts=...), device="cpu")`` draws its
    parameters from ``seed``; ``MoeLayer.from_safetensors(path)`` reads config and weights from a
    file in Tutel's names.
    """

    def __init__(self, config, device="cpu", seed=1, _layer=None):
        self.config = config
        self.device = device
        self._layer = _layer if _layer is not None else _core.Layer(config, device, seed)
        self._options = {}  # parsed ForwardOptions per distinct set of keyword arguments

    @classmethod
    def from_safetensors(cls, path, device="cpu"):
        # Nothing drawn: the weights stream from the file straight into the layer.
        return cls(_core.Config.from_safetensors(path), device, _layer=_core.Layer.open(path, device))

    @contextlib.contextmanager
    def _on_caller_stream(self):
        """A CUDA layer queues its work on torch's current stream of its device for the call (so
        its reads and writes of torch's tensors are ordered with torch's own work, and the
        buffers it hands out go back on that stream); a CPU layer has nothing to order."""
        if not str(self.device).startswith("cuda"):
            yield
            return
        # torch shows the legacy default stream as 0, which use_stream takes as the layer's own
        stream = torch.cuda.current_stream(torch.device(self.device)).cuda_stream or _core.LEGACY_DEFAULT_STREAM
        previous = self._layer.use_stream(stream)
        try:
            yield
        finally:
            self._layer.use_stream(previous)

    def _parsed(self, options):
        key = tuple(sorted(options.items()))
        parsed = self._options.get(key)
        if parsed is None:
            parsed = self._options[key] = _core.ForwardOptions.from_json(json.dumps(options))
        return parsed

    def forward(self, x, **options):
        """y [S, M] and the routing (capacity, l_aux(), expert_counts()) for x [S, M].

        Options are Tutel's forward arguments: top_k, capacity_factor, dropless_grouped,
        is_postscore, normalize_gate, batch_prioritized_routing, megablocks_size, check_finite,
        is_gshard_loss, gate_noise, save_for_backward.
        """
        with self._on_caller_stream():
            capsule, routing = self._layer.forward(_capsule(x, "x"), self._parsed(options))
        return _dlpack.from_dlpack(capsule), routing

    __call__ = forward

    def backward(self, grad_output, l_aux_weight=0.0, input_gradient=True):
        """dL/dx of the forward saved with save_for_backward=True; parameter gradients stay in the layer.
        input_gradient=False (x needs no gradient): returns None and skips the work only dL/dx needs."""
        with self._on_caller_stream():
            dx = self._layer.backward(_capsule(grad_output, "grad_output"), l_aux_weight, input_gradient)
            return None if dx is None else _dlpack.from_dlpack(dx)

    def gradient(self, name):
        """A copy of dL/d(parameter `name`) from the last backward."""
        return _dlpack.from_dlpack(self._layer.gradient(name)).clone()

    def parameter(self, name):
        """A copy of parameter `name` (Tutel's names, e.g. "experts.batched_fc1_w")."""
        return _dlpack.from_dlpack(self._layer.parameter(name)).clone()

    def parameter_view(self, name):
        """Parameter `name` itself: a torch tensor over the layer's memory (no copy; it keeps the
        layer alive). Writing into it changes the layer; call parameters_updated() after."""
        return _dlpack.from_dlpack(self._layer.parameter(name))

    def gradient_view(self, name):
        """dL/d(parameter `name`) in the layer's memory, rewritten by every backward (no copy)."""
        return _dlpack.from_dlpack(self._layer.gradient(name))

    def parameters_updated(self):
        """Call after writing parameters in place (a torch optimizer): the layer refreshes the copies
        its GEMMs read (a float32 TF32 layer's transposed expert weights on Hopper, a CPU layer's
        packed expert weights with pack_expert_weights). MoeModule calls it when torch changed them."""
        with self._on_caller_stream():
            self._layer.parameters_updated()

    def parameter_names(self):
        return self._layer.parameter_names()

    def sgd_step(self, lr=1e-5, momentum=0.0, weight_decay=0.0):
        with self._on_caller_stream():
            self._layer.sgd_step(lr, momentum, weight_decay)

    def init_parameters(self, seed):
        with self._on_caller_stream():
            self._layer.init_parameters(seed)

    def save(self, path):
        with self._on_caller_stream():
            self._layer.save(path)

    def load(self, path):
        with self._on_caller_stream():
            self._layer.load(path)

    def warm(self, **options):
        """Loads every kernel forward with these options can use; returns how many."""
        return self._layer.prepare(self._parsed(options))


class MoeFunction(torch.autograd.Function):
    """y = layer(x) inside autograd. The layer's parameters come in as tensors over its own memory
    (MoeModule's nn.Parameters, in parameter_names() order), so backward hands torch their
    gradients (None for the gates this call did not use, as torch leaves an unused module's)."""

    @staticmethod
    def forward(ctx, x, layer, options, *parameters):
        y, _ = layer.forward(x.contiguous(), save_for_backward=True, **options)
        ctx.layer = layer
        ctx.unused_gates = _unused_gate_prefixes(layer, options)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        layer = ctx.layer
        dx = layer.backward(grad_output.contiguous(), input_gradient=ctx.needs_input_grad[0])
        grads = []
        for name in layer.parameter_names():
            if any(name.startswith(prefix) for prefix in ctx.unused_gates):
                grads.append(None)
            else:  # a copy: the layer's buffer is rewritten by the next backward
                grads.append(layer.gradient_view(name).clone())
        return (dx, None, None, *grads)


def _unused_gate_prefixes(layer, options):
    used = options.get("gate_index", 0)
    gates = {name.split(".")[1] for name in layer.parameter_names() if name.startswith("gates.")}
    return tuple(f"gates.{g}." for g in gates if int(g) != used)


class MoeModule(torch.nn.Module):
    """An nn.Module around a MoeLayer: forward(x) runs MoeFunction with the module's options.

    The layer's parameters are the module's, under Tutel's names (``gates.0.wg.weight``,
    ``experts.batched_fc1_w``, ...): ``nn.Parameter``s over the layer's own memory, so
    ``torch.optim`` updates the layer in place and ``state_dict()`` has Tutel's keys."""

    def __init__(self, layer, **options):
        super().__init__()
        self.layer = layer
        self.options = options
        self._parameters_in_order = []
        for name in layer.parameter_names():
            owner = self
            *path, leaf = name.split(".")
            for part in path:
                if part not in owner._modules:
                    owner.add_module(part, torch.nn.ModuleDict())
                owner = owner._modules[part]
            parameter = torch.nn.Parameter(layer.parameter_view(name))
            owner.register_parameter(leaf, parameter)
            self._parameters_in_order.append(parameter)
        custom = getattr(layer.config, "custom_modules", None) or {}
        if isinstance(custom.get("experts"), torch.nn.Module):  # Tutel keeps a custom expert module as `experts`
            self.add_module("experts", custom["experts"])
        if isinstance(custom.get("gate"), torch.nn.Module):
            if "gates" not in self._modules:
                self.add_module("gates", torch.nn.ModuleDict())
            self._modules["gates"].add_module("0", custom["gate"])
        self._seen_versions = self._versions()

    def _versions(self):
        return sum(p._version for p in self._parameters_in_order)

    def forward(self, x):
        versions = self._versions()
        if versions != self._seen_versions:  # a torch optimizer wrote the parameters
            self.layer.parameters_updated()
            self._seen_versions = versions
        return MoeFunction.apply(x, self.layer, self.options, *self._parameters_in_order)
