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


def unpack(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, torch.Tensor]:
    """The model state dict back from the bitmask format's tensors."""
    shapes = json.loads(metadata["shapes"])
    packed = {name + suffix for name in shapes for suffix in (MASK, VALUES)}
    state = {name: tensor for name, tensor in tensors.items() if name not in packed}
    for name, shape in shapes.items():
        numel = int(np.prod(shape))
        bits = np.unpackbits(tensors[name + MASK].numpy(), count=numel, bitorder=metadata["bitorder"])
        weight = torch.zeros(numel, dtype=torch.float32)
        weight[torch.from_numpy(bits.astype(bool))] = tensors[name + VALUES]
        state[name] = weight.reshape(shape)
    return state


def bitmask_bound(state: dict[str, torch.Tensor], prunable: list[str]) -> int:
    """Bytes of the ideal bitmask file: no header, no alignment, every prunable weight packed."""
    return sum(_packed_bytes(t) if name in prunable else t.numel() * t.element_size() for name, t in state.items())


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A model state dict from a file `export_run` wrote (either format)."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except FileNotFoundError:
        raise UserError(f"weights file not found: {path}; write one with `wmprune export --run DIR`") from None
    except Exception as exc:  # safetensors raises its own types for damaged files
        raise UserError(f"cannot read {path} as safetensors ({str(exc).splitlines()[0][:160]})") from None
    if metadata.get("format") == "wmprune-bitmask":
        return unpack(tensors, metadata)
    return tensors
