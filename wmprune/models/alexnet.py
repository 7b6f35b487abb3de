"""AlexNet adapted to 32×32 CIFAR images.

Architecture: the single-tower AlexNet of Krizhevsky (2014, "One weird trick for parallelizing
convolutional neural networks", arXiv 1404.5997) — five convolutions with 64, 192, 384, 256, 256
channels, three max-pools, and a classifier of two hidden 4096-unit layers with dropout — the variant
torchvision ships, derived from Krizhevsky, Sutskever & Hinton (2012, NeurIPS, "ImageNet
classification with deep convolutional neural networks").

There is no canonical CIFAR AlexNet; pruning papers use several. This one keeps all five
convolutions and both 4096-unit hidden layers (the large fully connected layers are where AlexNet's
redundancy lies, so a pruning study should keep them) and changes only what a 32×32 input forces:
every kernel is 3×3, and the first convolution has stride 2, so the three 2×2 max-pools leave a
2×2×256 map (1024 features) for the classifier. BatchNorm follows each convolution so AlexNet trains
at the same SGD learning rate (0.1) as the VGG and ResNet models here; without it the network
needs a ten times smaller rate.
"""

import torch
from torch import nn

from wmprune.models.common import init_weights, scaled


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    return [
        nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class AlexNet(nn.Module):
    """CIFAR AlexNet (Krizhevsky 2014, arXiv 1404.5997) with BatchNorm; input N×in_channels×32×32."""

    def __init__(self, num_classes: int, width: float, in_channels: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (scaled(c, width) for c in (64, 192, 384, 256, 256))
        hidden = scaled(4096, width)
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, c1, stride=2),  # 32 -> 16
            nn.MaxPool2d(2),  # -> 8
            *_conv_bn_relu(c1, c2),
            nn.MaxPool2d(2),  # -> 4
            *_conv_bn_relu(c2, c3),
            *_conv_bn_relu(c3, c4),
            *_conv_bn_relu(c4, c5),
            nn.MaxPool2d(2),  # -> 2
        )
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(c5 * 2 * 2, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_alexnet(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """CIFAR AlexNet with every channel and hidden-unit count scaled by `width`."""
    return AlexNet(num_classes, width, in_channels)
