"""The weight files `wmprune export` writes (safetensors), and loading them back (`wmprune eval --weights`).

`bitmask` (metadata `format: wmprune-bitmask`, `bitorder: little`, `shapes`: JSON {name: shape}):
for each prunable weight `W` (the tensors in the run's layers.csv)

    <name>.mask    uint8[ceil(numel / 8)]  flattened (row-major) `W != 0`, 8 per byte, little bit order:
                                           element i is bit (i mod 8) of byte i // 8, as
                                           `numpy.packbits(bits, bitorder="little")`
    <name>.values  float32[nonzero]         the non-zero entries of W in row-major order

and every other tensor of the model's state dict as it is, under its own name. A prunable weight whose packed
form would not be smaller (a dense run's) is also stored as it is. `dense` (`format: wmprune-dense`) is the
state dict as it is: the reference size. Either file holds only named tensors and a JSON header, so loading
it cannot execute code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

from wmprune.errors import UserError

FORMATS = ("bitmask", "dense")
BITORDER = "little"
MASK, VALUES = ".mask", ".values"


def _packed_bytes(weight: torch.Tensor) -> int:
    return (weight.numel() + 7) // 8 + 4 * int(torch.count_nonzero(weight))


def pack(state: dict[str, torch.Tensor], prunable: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The bitmask format's tensors and metadata for a model state dict."""
    tensors, shapes = {}, {}
    for name, tensor in state.items():
        if name in prunable and _packed_bytes(tensor) < tensor.numel() * tensor.element_size():
            flat = tensor.flatten()
            bits = (flat != 0).numpy()
            tensors[name + MASK] = torch.from_numpy(np.packbits(bits, bitorder=BITORDER))
            tensors[name + VALUES] = flat[flat != 0].to(torch.float32)
            shapes[name] = list(tensor.shape)
        else:
            tensors[name] = tensor
    return tensors, {"format": "wmprune-bitmask", "bitorder": BITORDER, "shapes": json.dumps(shapes)}


class DamagedWeights(ValueError):
    """A bitmask file whose metadata or packed tensors do not fit together."""


def unpack(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, torch.Tensor]:
    """The model state dict back from the bitmask format's tensors; DamagedWeights names what does not fit."""
    try:
        shapes = json.loads(metadata.get("shapes", ""))
    except json.JSONDecodeError:
        raise DamagedWeights("its 'shapes' metadata is not JSON") from None
    if not isinstance(shapes, dict):
        raise DamagedWeights("its 'shapes' metadata is not a JSON object of name: shape")
    bitorder = metadata.get("bitorder")
    if bitorder not in ("little", "big"):
        raise DamagedWeights(f"its bit order {bitorder!r:.40} is neither 'little' nor 'big'")
    packed = {name + suffix for name in shapes for suffix in (MASK, VALUES)}
    state = {name: tensor for name, tensor in tensors.items() if name not in packed}
    for name, shape in shapes.items():
        mask, values = _packed_pair(tensors, name, shape)
        numel = math.prod(shape)
        bits = torch.from_numpy(np.unpackbits(mask.numpy(), count=numel, bitorder=bitorder).astype(bool))
        if int(bits.sum()) != values.numel():
            raise DamagedWeights(f"{name}: its mask has {int(bits.sum())} set bits for {values.numel()} values")
        weight = torch.zeros(numel, dtype=torch.float32)
        weight[bits] = values.to(torch.float32)
        state[name] = weight.reshape(shape)
    return state


def _packed_pair(tensors: dict[str, torch.Tensor], name: str, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask and values tensors of one packed weight, checked against its `shape` before anything is
    allocated for it."""
    if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise DamagedWeights(f"{name}: its shape {str(shape):.40} is not a list of sizes")
    mask, values = tensors.get(name + MASK), tensors.get(name + VALUES)
    if mask is None or values is None:
        raise DamagedWeights(f"{name}: its {MASK if mask is None else VALUES} tensor is missing")
    if mask.dtype != torch.uint8 or mask.dim() != 1 or values.dim() != 1 or not values.is_floating_point():
        raise DamagedWeights(f"{name}: its mask is not 1-D uint8 or its values not 1-D floats")
    if math.prod(shape) > 8 * mask.numel():  # the shape may claim more weights than any model holds
        raise DamagedWeights(f"{name}: its shape {shape} holds more weights than its mask has bits")
    return mask, values


def bitmask_bound(state: dict[str, torch.Tensor], prunable: list[str]) -> int:
    """Bytes of the ideal bitmask file: no header, no alignment, every prunable weight packed."""
    return sum(_packed_bytes(t) if name in prunable else t.numel() * t.element_size() for name, t in state.items())


def is_weights_file(path: Path) -> bool:
    """Whether `path` is a file `export_run` wrote: a safetensors header naming a wmprune format."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") in ("wmprune-bitmask", "wmprune-dense")
    except Exception:  # safetensors raises its own types for anything that is not its format
        return False


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A model state dict from a file `export_run` wrote (either format)."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except FileNotFoundError:
        raise UserError(f"weights file not found: {path}; write one with `wmprune export --run DIR`") from None
    except Exception as exc:  # safetensors raises its own types for damaged files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path} as safetensors ({reason}); pass a file `wmprune export` wrote") from None
    if metadata.get("format") == "wmprune-bitmask":
        try:
            return unpack(tensors, metadata)
        except DamagedWeights as exc:
            raise UserError(f"{path} is a damaged bitmask file ({exc}); export it again with `wmprune export`") \
                from None
    return tensors
