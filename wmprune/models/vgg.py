"""VGG16 with BatchNorm for 32×32 CIFAR images.

Simonyan & Zisserman (2015, "Very deep convolutional networks for large-scale image recognition",
arXiv 1409.1556), configuration D (13 convolutions), with BatchNorm after each convolution (Ioffe &
Szegedy 2015, arXiv 1502.03167). The CIFAR variant replaces the three 4096-unit fully connected
layers by one linear layer on the 1×1×512 map that five max-pools leave from a 32×32 input, as in
the VGG used for CIFAR pruning by Liu et al. (2017, "Learning efficient convolutional networks
through network slimming", arXiv 1708.06519).
"""

import torch
from torch import nn

from wmprune.models.common import init_weights, scaled

# Output channels of each 3×3 convolution; "M" is a 2×2 max-pool.
VGG16_CONFIG: list[int | str] = [
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
]  # fmt: skip


class VGG(nn.Module):
    """VGG-BN feature stack from `config` plus one linear classifier; input N×in_channels×32×32."""

    def __init__(self, config: list[int | str], num_classes: int, width: float, in_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            cout = scaled(int(item), width)
            # No conv bias: the BatchNorm shift that follows makes it redundant.
            layers += [
                nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_vgg16(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """CIFAR VGG16-BN (Simonyan & Zisserman 2015, arXiv 1409.1556), channels scaled by `width`."""
    return VGG(VGG16_CONFIG, num_classes, width, in_channels)
