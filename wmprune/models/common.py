"""What the three CIFAR models share: channel scaling and weight initialisation."""

from torch import nn


def scaled(channels: int, width: float) -> int:
    """A channel or hidden-unit count times the `model.width` multiplier, at least 1."""
    return max(1, round(channels * width))


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (fan-out, ReLU; He et al. 2015, arXiv 1502.01852), BatchNorm at identity,
    linear N(0, 0.01) with zero bias (as torchvision's VGG)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
