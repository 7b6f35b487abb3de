"""The inference plan: for each conv / linear layer, dense or which CSR kernel, chosen by measuring on this machine.

`make_plan` feeds a sample batch through the folded dense network, keeps every layer's input, times each layer's
candidate kernels on it (interleaved, medians) and keeps the cheapest; the plan is a small JSON file, so the same
module can be rebuilt later without measuring again (`build_module`). A layer with fewer than half its weights at
zero is not tried sparse: CSR stores a value and a column index per non-zero, so it moves more bytes than the
dense weight and does the same multiply-adds less regularly.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from wmprune import results
from wmprune.errors import UserError
from wmprune.inference.fold import replace_module
from wmprune.inference.kernels import IM2COL, SparseConv2d, SparseLinear, is_pointwise
from wmprune.inference.timing import Timing, interleaved

DENSE = "dense"
MIN_SPARSITY = 0.5
PLAN_VERSION = 1


@dataclass
class LayerPlan:
    """One layer's choice and the median cost (ms) of every kernel tried on it."""

    layer: str
    kind: str  # conv | linear
    shape: list[int]
    nonzero: int
    kernel: str  # dense, csr (linear), csr-<im2col> (conv)
    costs_ms: dict[str, float] = field(default_factory=dict)  # median per kernel tried
    quartiles_ms: dict[str, list[float]] = field(default_factory=dict)  # [q1, q3] per kernel tried

    @property
    def sparsity(self) -> float:
        numel = 1
        for size in self.shape:
            numel *= size
        return 1.0 - self.nonzero / numel


@dataclass
class Plan:
    """Kernels per layer for one batch size and thread count, and the dense baseline's faster memory format."""

    batch: int
    threads: int
    memory_format: str
    format_ms: dict[str, float]  # whole dense network per memory format
    layers: list[LayerPlan]
    torch_version: str
    cpu: str
    version: int = PLAN_VERSION

    def fingerprint(self) -> list[tuple[str, list[int], int]]:
        return [(p.layer, list(p.shape), p.nonzero) for p in self.layers]

    @property
    def sparse_layers(self) -> int:
        return sum(layer.kernel != DENSE for layer in self.layers)


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The conv and linear layers of a (folded) model by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def fingerprint(model: nn.Module) -> list[tuple[str, list[int], int]]:
    """(name, weight shape, non-zeros) per layer: what a plan must have been made for."""
    return [(name, list(m.weight.shape), int(torch.count_nonzero(m.weight)))
            for name, m in weight_layers(model).items()]


def candidate_kernels(module: nn.Module) -> list[str]:
    """Every kernel worth timing on this layer, dense first."""
    weight = module.weight
    if int(torch.count_nonzero(weight)) > (1.0 - MIN_SPARSITY) * weight.numel():
        return [DENSE]
    if isinstance(module, nn.Linear):
        return [DENSE, "csr"]
    if module.groups != 1 or module.dilation != (1, 1):
        return [DENSE]
    if is_pointwise(module):
        return [DENSE, "csr-pointwise"]
    return [DENSE] + [f"csr-{method}" for method in IM2COL]


def make_kernel(module: nn.Module, kernel: str) -> nn.Module:
    """The layer computed by `kernel`."""
    if kernel == DENSE:
        return module
    if isinstance(module, nn.Linear) and kernel == "csr":
        return SparseLinear(module)
    if isinstance(module, nn.Conv2d) and kernel.startswith("csr-"):
        return SparseConv2d(module, kernel.removeprefix("csr-"))
    raise ValueError(f"kernel {kernel!r} does not fit {module}")


def choose_kernel(costs_ms: dict[str, float]) -> str:
    """The cheapest kernel; dense wins a tie (it needs no conversion and is the better-trodden path)."""
    return min(costs_ms, key=lambda kernel: (costs_ms[kernel], kernel != DENSE))


def layer_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each conv / linear layer's input during one forward pass of `x`."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, args, name=name: captured.__setitem__(name, args[0]))
             for name, m in weight_layers(model).items()]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def measure_layers(model: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> dict[str, dict[str, Timing]]:
    """Every candidate kernel of every layer timed on that layer's real input (interleaved repeats)."""
    inputs = layer_inputs(model, x)
    timings = {}
    for name, module in weight_layers(model).items():
        kernels = {kernel: make_kernel(module, kernel) for kernel in candidate_kernels(module)}
        calls = {kernel: lambda k=k, i=inputs[name]: k(i) for kernel, k in kernels.items()}
        with torch.inference_mode():
            timings[name] = interleaved(calls, repeats, warmup)
    return timings


def make_plan(model: nn.Module, x: torch.Tensor, memory_format: str, format_ms: dict[str, float], threads: int,
              cpu: str, repeats: int, warmup: int) -> Plan:
    """Measure every layer of the folded `model` (weights and `x` already in `memory_format`) and keep the
    cheapest kernel for each; call under the thread count the plan is for."""
    timings = measure_layers(model, x, repeats, warmup)
    layers = []
    for (name, shape, nonzero), module in zip(fingerprint(model), weight_layers(model).values()):
        costs = {kernel: t.median_ms for kernel, t in timings[name].items()}
        quartiles = {kernel: [t.q1_ms, t.q3_ms] for kernel, t in timings[name].items()}
        kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
        layers.append(LayerPlan(name, kind, shape, nonzero, choose_kernel(costs), costs, quartiles))
    return Plan(x.shape[0], threads, memory_format, format_ms, layers, torch.__version__, cpu)


def build_module(model: nn.Module, plan: Plan) -> nn.Module:
    """The folded `model` with each layer replaced by its planned kernel (a new module; `model` is untouched)."""
    if plan.fingerprint() != fingerprint(model):
        raise UserError("the inference plan was made for other weights (layers, shapes or non-zeros differ); "
                        "measure a new one (wmprune bench --replan)")
    module = copy.deepcopy(model)
    layers = weight_layers(module)
    for layer in plan.layers:
        if layer.kernel != DENSE:
            replace_module(module, layer.layer, make_kernel(layers[layer.layer], layer.kernel))
    return module


def save_plan(path: Path, plan: Plan) -> None:
    results.atomic_write_text(path, json.dumps(asdict(plan), indent=1) + "\n")


def load_plan(path: Path) -> Plan:
    """A plan written by `save_plan`; a damaged or foreign file is a user error."""
    try:
        raw = json.loads(path.read_text())
        if raw.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {raw.get('version')!r}, expected {PLAN_VERSION}")
        layers = [LayerPlan(**layer) for layer in raw.pop("layers")]
        return Plan(layers=layers, **raw)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UserError(f"cannot read the inference plan {path} ({exc}); delete it or pass --replan") from None
