"""Model registry: architecture name -> builder `(num_classes, width, in_channels) -> nn.Module`."""

from collections.abc import Callable

from torch import nn

from wmprune.errors import UserError
from wmprune.models.alexnet import build_alexnet
from wmprune.models.resnet import build_resnet50
from wmprune.models.vgg import build_vgg16

MODELS: dict[str, Callable[[int, float, int], nn.Module]] = {
    "alexnet": build_alexnet,
    "vgg16": build_vgg16,
    "resnet50": build_resnet50,
}


def build_model(name: str, num_classes: int, width: float, in_channels: int = 3) -> nn.Module:
    """Build the registered CIFAR model `name` with `num_classes` outputs, channel multiplier `width` and
    `in_channels` input channels (the dataset's: 3 for colour, 1 for grey)."""
    if name not in MODELS:
        raise UserError(f"model.name: unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](num_classes, width, in_channels)
