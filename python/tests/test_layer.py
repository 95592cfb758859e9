"""The Python module against an independent float64 torch implementation of the same layer.

With top_k = E and a capacity that drops nothing, Tutel's layer is y = sum_e softmax(x Wg^T)_e
(relu(x W1_e^T + b1_e) W2_e + b2_e): autograd of that expression is the oracle for forward,
dL/dx and every parameter's gradient.
"""
import json
import math
import os
import struct
import subprocess
import tempfile
import unittest

import torch

import switchyard


def gate_logits(x, p):
    """Tutel's gates: LinearTopKGate (gates.0.wg.weight) or CosineTopKGate (Swin-MoE's router)."""
    if "gates.0.wg.weight" in p:
        return x @ p["gates.0.wg.weight"].t()
    proj = torch.nn.functional.linear(x, p["gates.0.cosine_projector.weight"], p["gates.0.cosine_projector.bias"])
    sim = p["gates.0.sim_matrix"]
    scale = torch.clamp(p["gates.0.temperature"], max=math.log(100.0)).exp()
    return torch.nn.functional.normalize(proj, dim=1) @ torch.nn.functional.normalize(sim, dim=0) * scale


def dense_reference(x, p):
    """The layer in float64 torch from parameters `p` (Tutel's names), every token to every expert."""
    scores = torch.softmax(gate_logits(x, p), dim=1)  # [S, E]
    hidden = torch.relu(torch.einsum("sm,ehm->esh", x, p["experts.batched_fc1_w"]) + p["experts.batched_fc1_bias"][:, None, :])
    out = torch.einsum("esh,ehm->esm", hidden, p["experts.batched_fc2_w"]) + p["experts.batched_fc2_bias"][:, None, :]
    return torch.einsum("se,esm->sm", scores, out)


def make_layer(dtype="float64", experts=2):
    return switchyard.MoeLayer(switchyard.Config(model_dim=16, hidden_size=24, num_experts=experts, dtype=dtype), seed=3)


class ForwardBackward(unittest.TestCase):
    def test_forward_and_gradients_match_the_dense_reference(self):
        layer = make_layer()
        torch.manual_seed(0)
        x = torch.randn(40, 16, dtype=torch.float64)
        y, routing = layer.forward(x, top_k=2, capacity_factor=1.0, save_for_backward=True)
        self.assertEqual(routing.capacity, 40)
        params = {name: layer.parameter(name).requires_grad_() for name in layer.parameter_names()}
        xr = x.clone().requires_grad_()
        want = dense_reference(xr, params)
        torch.testing.assert_close(y, want.detach(), rtol=1e-12, atol=1e-12)
        grad = torch.randn_like(y)
        want.backward(grad)
        dx = layer.backward(grad)
        torch.testing.assert_close(dx, xr.grad, rtol=1e-10, atol=1e-12)
        for name, p in params.items():
            torch.testing.assert_close(layer.gradient(name), p.grad, rtol=1e-10, atol=1e-12, msg=name)

    def test_without_the_input_gradient_the_parameter_gradients_are_the_same(self):
        layer = make_layer()
        torch.manual_seed(4)
        x = torch.randn(40, 16, dtype=torch.float64)
        layer.forward(x, top_k=2, capacity_factor=1.0, save_for_backward=True)
        params = {name: layer.parameter(name).requires_grad_() for name in layer.parameter_names()}
        want = dense_reference(x, params)
        grad = torch.randn_like(want)
        want.backward(grad)
        self.assertIsNone(layer.backward(grad, input_gradient=False))
        for name, p in params.items():
            torch.testing.assert_close(layer.gradient(name), p.grad, rtol=1e-10, atol=1e-12, msg=name)
        # In a model whose input needs no gradient, autograd asks for none and the parameters still train.
        module = switchyard.MoeModule(layer, top_k=2, capacity_factor=1.0)
        (module(x) * grad).sum().backward()
        for name, p in module.named_parameters():
            torch.testing.assert_close(p.grad, params[name].grad, rtol=1e-10, atol=1e-12, msg=name)

    def test_cosine_gate_forward_and_gradients_match_torch(self):
        config = switchyard.Config(model_dim=16, hidden_size=24, num_experts=2, dtype="float64",
                                   gate_type="cosine_top", proj_dim=8, init_t=0.25)
        layer = switchyard.MoeLayer(config, seed=5)
        torch.manual_seed(2)
        x = torch.randn(30, 16, dtype=torch.float64)
        y, _ = layer.forward(x, top_k=2, capacity_factor=1.0, save_for_backward=True)
        params = {name: layer.parameter(name).requires_grad_() for name in layer.parameter_names()}
        self.assertAlmostEqual(params["gates.0.temperature"].item(), math.log(4.0), places=12)
        xr = x.clone().requires_grad_()
        want = dense_reference(xr, params)
        torch.testing.assert_close(y, want.detach(), rtol=1e-12, atol=1e-12)
        grad = torch.randn_like(y)
        want.backward(grad)
        torch.testing.assert_close(layer.backward(grad), xr.grad, rtol=1e-10, atol=1e-12)
        for name, p in params.items():
            torch.testing.assert_close(layer.gradient(name), p.grad, rtol=1e-10, atol=1e-12, msg=name)

    def test_gate_index_picks_one_of_several_gates(self):
        config = switchyard.Config(model_dim=16, hidden_size=24, num_experts=2, dtype="float64",
                                   gates=[{"type": "top"}, {"type": "cosine_top", "proj_dim": 8}])
        layer = switchyard.MoeLayer(config, seed=6)
        self.assertIn("gates.1.sim_matrix", layer.parameter_names())
        x = torch.randn(10, 16, dtype=torch.float64)
        params = {name: layer.parameter(name) for name in layer.parameter_names()}
        for index in (0, 1):
            y, _ = layer.forward(x, top_k=2, capacity_factor=1.0, gate_index=index)
            prefix = "gates.%d." % index
            chosen = {("gates.0." + k[len(prefix):] if k.startswith(prefix) else k): v
                      for k, v in params.items() if not k.startswith("gates.") or k.startswith(prefix)}
            torch.testing.assert_close(y, dense_reference(x, chosen), rtol=1e-12, atol=1e-12)
        with self.assertRaisesRegex(switchyard.UserError, "gate_index = 2"):
            layer.forward(x, gate_index=2)

    def test_autograd_function_drops_into_a_model(self):
        layer = make_layer()
        module = switchyard.MoeModule(layer, top_k=2, capacity_factor=1.0)
        params = {name: layer.parameter(name) for name in layer.parameter_names()}
        torch.manual_seed(1)
        x = torch.randn(12, 16, dtype=torch.float64, requires_grad=True)
        loss = (module(x * 2.0) ** 2).sum()
        loss.backward()
        xr = x.detach().clone().requires_grad_()
        (dense_reference(xr * 2.0, params) ** 2).sum().backward()
        torch.testing.assert_close(x.grad, xr.grad, rtol=1e-10, atol=1e-12)

    def test_sgd_step_moves_the_parameters_by_lr_times_gradient(self):
        layer = make_layer()
        x = torch.randn(8, 16, dtype=torch.float64)
        y, _ = layer.forward(x, save_for_backward=True)
        layer.backward(torch.ones_like(y))
        before = layer.parameter("experts.batched_fc2_w")
        grad = layer.gradient("experts.batched_fc2_w")
        layer.sgd_step(lr=0.5)
        torch.testing.assert_close(layer.parameter("experts.batched_fc2_w"), before - 0.5 * grad)

    def test_training_a_tiny_model_lowers_its_loss(self):
        layer = make_layer("float32", experts=4)
        torch.manual_seed(2)
        x = torch.randn(64, 16)
        target = torch.randn(64, 16)
        module = switchyard.MoeModule(layer, top_k=2, capacity_factor=2.0)
        losses = []
        for _ in range(20):
            loss = ((module(x) - target) ** 2).mean()
            loss.backward()
            layer.sgd_step(lr=0.5)
            losses.append(loss.item())
        # Routing switches make the loss only piecewise smooth, so not every step lowers it; 20 do.
        self.assertLess(losses[-1], 0.95 * losses[0], losses)


def train_with_adam(module, seed, steps, after_backward=None):
    """Losses of `steps` Adam steps of module(x) against a random target (64 tokens, M = 16)."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    torch.manual_seed(seed)
    x, target = torch.randn(64, 16), torch.randn(64, 16)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((module(x) - target) ** 2).mean()
        loss.backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


class TorchParameters(unittest.TestCase):
    """MoeModule's nn.Parameters are the layer's own memory: torch optimizers train the layer."""

    def test_module_parameters_are_the_layers_under_tutels_names(self):
        layer = make_layer()
        module = switchyard.MoeModule(layer)
        names = [name for name, _ in module.named_parameters()]
        self.assertEqual(sorted(names), sorted(layer.parameter_names()))
        fc1 = dict(module.named_parameters())["experts.batched_fc1_w"]
        view = layer.parameter_view("experts.batched_fc1_w")
        self.assertEqual(fc1.data_ptr(), view.data_ptr())
        with torch.no_grad():
            fc1[0, 0, 0] = 7.5
        self.assertEqual(layer.parameter("experts.batched_fc1_w")[0, 0, 0].item(), 7.5)
        self.assertEqual(set(module.state_dict().keys()), set(layer.parameter_names()))

    def test_torch_sgd_on_the_module_equals_the_layers_own_step(self):
        ours, theirs = make_layer(), make_layer()
        module = switchyard.MoeModule(theirs, top_k=2, capacity_factor=1.0)
        optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
        torch.manual_seed(5)
        x = torch.randn(24, 16, dtype=torch.float64)
        target = torch.randn(24, 16, dtype=torch.float64)
        for _ in range(3):
            y, _ = ours.forward(x, top_k=2, capacity_factor=1.0, save_for_backward=True)
            ours.backward(2 * (y - target) / y.numel())
            ours.sgd_step(lr=0.05)
            optimizer.zero_grad()
            loss = ((module(x) - target) ** 2).mean()
            loss.backward()
            optimizer.step()
        for name in ours.parameter_names():
            torch.testing.assert_close(theirs.parameter(name), ours.parameter(name), rtol=1e-12, atol=1e-14, msg=name)

    def test_adam_lowers_the_loss_and_unused_gates_get_no_gradient(self):
        config = switchyard.Config(model_dim=16, hidden_size=24, num_experts=4, dtype="float32",
                                   gates=[{"type": "top"}, {"type": "top"}])
        layer = switchyard.MoeLayer(config, seed=3)
        module = switchyard.MoeModule(layer, top_k=2, capacity_factor=2.0, gate_index=1)
        gate0 = layer.parameter("gates.0.wg.weight")

        def gates_after_backward():
            self.assertIsNone(module.gates["0"].wg.weight.grad)
            self.assertIsNotNone(module.gates["1"].wg.weight.grad)

        losses = train_with_adam(module, seed=6, steps=20, after_backward=gates_after_backward)
        self.assertLess(losses[-1], 0.9 * losses[0], losses)
        torch.testing.assert_close(layer.parameter("gates.0.wg.weight"), gate0, rtol=0, atol=0)

    def test_views_keep_the_layer_alive(self):
        layer = make_layer()
        view = layer.parameter_view("experts.batched_fc2_w")
        expected = view.clone()
        del layer
        import gc
        gc.collect()
        torch.testing.assert_close(view, expected, rtol=0, atol=0)


class TorchFfn(torch.nn.Module):
    """The built-in FFN experts written in torch: a custom expert module."""

    def __init__(self, layer):
        super().__init__()
        names = ("experts.batched_fc1_w", "experts.batched_fc1_bias", "experts.batched_fc2_w", "experts.batched_fc2_bias")
        self.w1, self.b1, self.w2, self.b2 = (torch.nn.Parameter(layer.parameter(n)) for n in names)

    def forward(self, block):  # [E, C, M]
        hidden = torch.relu(torch.einsum("ecm,ehm->ech", block, self.w1) + self.b1[:, None, :])
        return torch.einsum("ech,ehm->ecm", hidden, self.w2) + self.b2[:, None, :]


class CustomModules(unittest.TestCase):
    """Custom experts and gates written as torch modules run inside the layer."""

    def twin(self, builtin, **custom):
        layer = switchyard.MoeLayer(switchyard.Config(model_dim=16, hidden_size=24, num_experts=2, dtype="float64",
                                                      **custom), seed=3)
        for name in layer.parameter_names():  # the parameters both layers have
            layer.parameter_view(name).copy_(builtin.parameter(name))
        return layer

    def run_both(self, builtin, custom):
        torch.manual_seed(7)
        x = torch.randn(40, 16, dtype=torch.float64)
        grad = torch.randn(40, 16, dtype=torch.float64)
        outputs = []
        for layer in (builtin, custom):
            y, _ = layer.forward(x, top_k=2, capacity_factor=1.0, save_for_backward=True)
            outputs.append((y, layer.backward(grad)))
        torch.testing.assert_close(outputs[1][0], outputs[0][0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(outputs[1][1], outputs[0][1], rtol=1e-10, atol=1e-12)

    def test_torch_experts_equal_the_built_in_ffn(self):
        builtin = make_layer()
        experts = TorchFfn(builtin)
        custom = self.twin(builtin, custom_experts=experts)
        self.assertEqual(custom.parameter_names(), ["gates.0.wg.weight"])
        self.run_both(builtin, custom)
        for attr, name in (("w1", "experts.batched_fc1_w"), ("b1", "experts.batched_fc1_bias"),
                           ("w2", "experts.batched_fc2_w"), ("b2", "experts.batched_fc2_bias")):
            torch.testing.assert_close(getattr(experts, attr).grad, builtin.gradient(name), rtol=1e-10, atol=1e-12,
                                       msg=name)
        torch.testing.assert_close(custom.gradient("gates.0.wg.weight"), builtin.gradient("gates.0.wg.weight"),
                                   rtol=1e-10, atol=1e-12)

    def test_torch_gate_equals_the_built_in_gate(self):
        builtin = make_layer()
        gate = torch.nn.Linear(16, 2, bias=False, dtype=torch.float64)
        with torch.no_grad():
            gate.weight.copy_(builtin.parameter("gates.0.wg.weight"))
        custom = self.twin(builtin, custom_gate=gate)
        self.assertNotIn("gates.0.wg.weight", custom.parameter_names())
        self.run_both(builtin, custom)
        torch.testing.assert_close(gate.weight.grad, builtin.gradient("gates.0.wg.weight"), rtol=1e-10, atol=1e-12)

    def test_module_trains_custom_experts_with_a_torch_optimizer(self):
        builtin = make_layer("float32", experts=4)
        experts = TorchFfn(builtin)
        layer = switchyard.MoeLayer(switchyard.Config(model_dim=16, hidden_size=24, num_experts=4,
                                                      custom_experts=experts), seed=3)
        module = switchyard.MoeModule(layer, top_k=2, capacity_factor=2.0)
        self.assertIn("experts.w1", dict(module.named_parameters()))
        losses = train_with_adam(module, seed=8, steps=15)
        self.assertLess(losses[-1], 0.9 * losses[0], losses)

    def test_bad_custom_modules_are_clear_errors(self):
        builtin = make_layer()
        x = torch.randn(8, 16, dtype=torch.float64)
        wrong_gate = self.twin(builtin, custom_gate=torch.nn.Linear(16, 3, bias=False, dtype=torch.float64))
        with self.assertRaisesRegex(switchyard.UserError, "custom"):
            wrong_gate.forward(x)
        wrong_shape = self.twin(builtin, custom_experts=lambda block: block[:, :1])
        with self.assertRaisesRegex(switchyard.UserError, "custom experts' output"):
            wrong_shape.forward(x)

        def failing(block):
            raise ValueError("the user's own error")

        with self.assertRaisesRegex(ValueError, "the user's own error"):
            self.twin(builtin, custom_experts=failing).forward(x)


class SixteenBit(unittest.TestCase):
    def test_bfloat16_and_float16_layers_match_the_reference_to_their_rounding(self):
        for dtype, torch_dtype, tol in (("bfloat16", torch.bfloat16, 3e-2), ("float16", torch.float16, 4e-3)):
            layer = make_layer(dtype)
            torch.manual_seed(4)
            x = torch.randn(24, 16).to(torch_dtype)
            y, _ = layer.forward(x, top_k=2, capacity_factor=1.0)
            self.assertEqual(y.dtype, torch_dtype)
            self.assertEqual(y.data_ptr(), switchyard._core._data_pointer(torch.utils.dlpack.to_dlpack(y)))
            params = {name: layer.parameter(name).double() for name in layer.parameter_names()}
            want = dense_reference(x.double(), params)
            torch.testing.assert_close(y.double(), want, rtol=tol, atol=tol, msg=dtype)

    def test_packed_expert_weights_give_the_same_outputs_through_a_torch_optimizer(self):
        """pack_expert_weights (CPU float32, and bfloat16 where the GEMMs use dot products: the
        experts' weights packed once for the GEMMs) changes no bit, and a torch optimizer's writes
        reach the packed GEMMs (MoeModule tells the layer)."""
        for dtype in ("float32", "bfloat16"):
            modules = []
            for packed in (False, True):
                config = switchyard.Config(model_dim=96, hidden_size=200, num_experts=4, dtype=dtype,
                                           pack_expert_weights=packed)
                modules.append(switchyard.MoeModule(switchyard.MoeLayer(config, seed=3), top_k=2,
                                                    capacity_factor=1.0))
            torch.manual_seed(8)
            x = torch.randn(20, 96).to(getattr(torch, dtype))
            for step in range(2):
                plain, packed = (module(x) for module in modules)
                torch.testing.assert_close(packed, plain, rtol=0, atol=0, msg=f"{dtype} step {step}")
                for module in modules:
                    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
                    module(x).float().square().mean().backward()
                    optimizer.step()


class NoCopies(unittest.TestCase):
    def test_input_and_output_share_memory_with_torch(self):
        layer = make_layer("float32")
        x = torch.randn(10, 16)
        self.assertEqual(switchyard._core._data_pointer(torch.utils.dlpack.to_dlpack(x)), x.data_ptr())
        y, routing = layer.forward(x)
        self.assertEqual(y.data_ptr(), routing.output_pointer)
        self.assertEqual(y.dtype, torch.float32)
        self.assertEqual(tuple(y.shape), (10, 16))


class BadInputs(unittest.TestCase):
    def setUp(self):
        self.layer = make_layer("float32")

    def test_wrong_dtype_names_both(self):
        with self.assertRaisesRegex(switchyard.UserError, "float64.*float32|float32.*float64"):
            self.layer.forward(torch.randn(4, 16, dtype=torch.float64))

    def test_wrong_shape_names_the_model_dim(self):
        with self.assertRaisesRegex(switchyard.UserError, "16"):
            self.layer.forward(torch.randn(4, 15))

    def test_not_a_tensor(self):
        with self.assertRaisesRegex(switchyard.UserError, "torch.Tensor"):
            self.layer.forward([1.0, 2.0])

    def test_unknown_option_is_named(self):
        with self.assertRaisesRegex(switchyard.UserError, 'unknown field "topk"'):
            self.layer.forward(torch.randn(4, 16), topk=2)

    def test_non_finite_input(self):
        x = torch.randn(4, 16)
        x[1, 3] = float("nan")
        with self.assertRaises(switchyard.UserError):
            self.layer.forward(x)

    def test_backward_without_a_saved_forward(self):
        with self.assertRaisesRegex(switchyard.UserError, "save"):
            self.layer.backward(torch.randn(4, 16))

    def test_bad_config_and_errors_are_switchyard_errors(self):
        with self.assertRaises(switchyard.UserError):
            switchyard.Config(model_dim=0, hidden_size=4, num_experts=2)
        with self.assertRaisesRegex(switchyard.UserError, "activation 'tanh'"):
            switchyard.Config(model_dim=8, hidden_size=4, num_experts=2, activation="tanh")
        self.assertTrue(issubclass(switchyard.UserError, switchyard.Error))
        with self.assertRaisesRegex(switchyard.UserError, 'device "tpu"'):
            switchyard.MoeLayer(switchyard.Config(model_dim=8, hidden_size=4, num_experts=2), device="tpu")

    def test_a_cpu_layer_takes_no_stream(self):
        # A CPU layer never asks torch for a stream (this torch may have no CUDA); its device
        # takes none, and a stream is refused without being taken.
        self.assertEqual(self.layer._layer.use_stream(0), 0)
        with self.assertRaisesRegex(switchyard.UserError, "stream 0x1 for cpu: the CPU device has no streams"):
            self.layer._layer.use_stream(switchyard._core.LEGACY_DEFAULT_STREAM)
        self.assertEqual(self.layer._layer.use_stream(0), 0)
        y, _ = self.layer.forward(torch.randn(4, 16))
        self.assertEqual(tuple(y.shape), (4, 16))

    def test_cuda_tensor_on_a_cpu_layer(self):
        if not torch.cuda.is_available():
            self.skipTest("no CUDA device for torch here")
        with self.assertRaises(switchyard.UserError):
            self.layer.forward(torch.randn(4, 16, device="cuda"))


class Files(unittest.TestCase):
    def test_save_and_from_safetensors_round_trip(self):
        layer = make_layer("float32")
        x = torch.randn(6, 16)
        y, _ = layer.forward(x)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "layer.safetensors")
            layer.save(path)
            again = switchyard.MoeLayer.from_safetensors(path)
            self.assertEqual(again.config.num_experts, 2)
            y2, _ = again.forward(x)
            torch.testing.assert_close(y2, y, rtol=0, atol=0)
            with self.assertRaises(switchyard.UserError):
                switchyard.MoeLayer.from_safetensors(os.path.join(d, "missing.safetensors"))

    def test_a_saved_gelu_layer_opens_as_gelu(self):
        """The activation is not in the tensors: save keeps it in the file's metadata."""
        config = switchyard.Config(model_dim=16, hidden_size=24, num_experts=2, dtype="float32", activation="gelu")
        layer = switchyard.MoeLayer(config, seed=3)
        x = torch.randn(6, 16)
        y, _ = layer.forward(x)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "layer.safetensors")
            layer.save(path)
            y2, _ = switchyard.MoeLayer.from_safetensors(path).forward(x)
        torch.testing.assert_close(y2, y, rtol=0, atol=0)

    def test_warm_counts_kernels(self):
        self.assertGreater(make_layer("float32").warm(top_k=1), 0)



def read_safetensors_tensor(path, name):
    """One tensor of a safetensors file: an 8-byte little-endian header length, a JSON header, the data."""
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    info = json.loads(data[8:8 + size])[name]
    start, end = info["data_offsets"]
    dtype = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}[info["dtype"]]
    return torch.frombuffer(bytearray(data[8 + size + start:8 + size + end]), dtype=dtype).reshape(info["shape"])


def example_loss(y, batch, tokens):
    """Tutel's ExampleModel loss as helloworld's example_loss kernel computes it: each token's sum
    over the model dimension in double, in index order; a softmax over a sample's tokens; the loss
    of label 0 averaged over the batch; and dL/dy, the same value across a token's elements."""
    rows = y.double().tolist()
    logits = []
    for row in rows:
        total = 0.0
        for v in row:
            total += v
        logits.append(total)
    loss, grad = 0.0, []
    for b in range(batch):
        sample = logits[b * tokens:(b + 1) * tokens]
        top = max(sample)
        norm = 0.0
        for v in sample:
            norm += math.exp(v - top)
        loss += -(sample[0] - top - math.log(norm))
        grad += [(math.exp(v - top) / norm - (1.0 if j == 0 else 0.0)) / batch for j, v in enumerate(sample)]
    per_token = torch.tensor(grad, dtype=torch.float64).to(y.dtype)
    return loss / batch, per_token[:, None].expand(y.shape).contiguous()


class Helloworld(unittest.TestCase):
    @unittest.skipUnless(os.environ.get("SY_TEST_HELLOWORLD_BIN"), "SY_TEST_HELLOWORLD_BIN names the C++ helloworld")
    def test_training_loop_matches_the_cpp_helloworld_losses_exactly(self):
        batch, tokens, model_dim, hidden, steps, l_aux_wt = 2, 32, 16, 24, 4, 0.01
        with tempfile.TemporaryDirectory() as tmp:
            files = {name: os.path.join(tmp, name) for name in ("weights.safetensors", "input.safetensors", "losses.txt")}
            subprocess.run([os.environ["SY_TEST_HELLOWORLD_BIN"], "--device", "cpu", "--batch_size", str(batch),
                            "--num_tokens", str(tokens), "--model_dim", str(model_dim), "--hidden_size", str(hidden),
                            "--num_steps", str(steps), "--l_aux_wt", str(l_aux_wt),
                            "--save-weights", files["weights.safetensors"], "--save-input", files["input.safetensors"],
                            "--losses", files["losses.txt"]], check=True, capture_output=True)
            with open(files["losses.txt"]) as f:
                want = [float(line) for line in f.read().split()]
            x = read_safetensors_tensor(files["input.safetensors"], "input")
            layer = switchyard.MoeLayer.from_safetensors(files["weights.safetensors"])
        got = []
        for _ in range(steps):
            y, routing = layer.forward(x, top_k=2, capacity_factor=1.0, save_for_backward=True)
            loss, grad = example_loss(y, batch, tokens)
            got.append(loss + l_aux_wt * routing.l_aux())
            layer.backward(grad, l_aux_weight=l_aux_wt)
            layer.sgd_step(lr=1e-5)
        self.assertEqual(["%.17g" % v for v in got], ["%.17g" % v for v in want])


if __name__ == "__main__":
    unittest.main()
