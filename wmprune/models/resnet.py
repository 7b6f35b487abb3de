"""ResNet50 for 32×32 CIFAR images.

He, Zhang, Ren & Sun (2016, "Deep residual learning for image recognition", arXiv 1512.03385):
bottleneck blocks (1×1, 3×3, 1×1 convolutions, expansion 4) in four stages of [3, 4, 6, 3] blocks
with 64, 128, 256, 512 bottleneck channels; projection shortcuts (1×1 convolution + BatchNorm)
where the shape changes (the paper's option B). The CIFAR stem is one 3×3 stride-1 convolution and no
max-pool, so the stages see 32, 16, 8 and 4 pixels; the ImageNet 7×7 stride-2 stem and max-pool
would shrink a 32×32 image to 8×8 before the first block. Stride sits on the 3×3 convolution of a
block (the torchvision "v1.5" placement) rather than on the first 1×1, which would skip
three quarters of the input.
"""

import torch
from torch import nn

from wmprune.models.common import init_weights, scaled

EXPANSION = 4
BLOCKS_PER_STAGE = (3, 4, 6, 3)
STAGE_CHANNELS = (64, 128, 256, 512)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carries the stride), 1×1 expand ×4, plus identity or projection shortcut."""

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        cout = planes * EXPANSION
        # No conv biases: each convolution is followed by BatchNorm, whose shift makes them redundant.
        self.conv1 = nn.Conv2d(cin, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Bottleneck ResNet with a CIFAR stem; `blocks` gives the number of blocks per stage."""

    def __init__(self, blocks: tuple[int, ...], num_classes: int, width: float, in_channels: int) -> None:
        super().__init__()
        stem = scaled(64, width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        cin = stem
        for i, (n, planes) in enumerate(zip(blocks, STAGE_CHANNELS)):
            planes = scaled(planes, width)
            stage = []
            for j in range(n):
                # The first block of every stage but the first halves the resolution.
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(Bottleneck(cin, planes, stride))
                cin = planes * EXPANSION
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(out, 1))


def build_resnet50(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """CIFAR ResNet50 (He et al. 2016, arXiv 1512.03385), channels scaled by `width`."""
    return ResNet(BLOCKS_PER_STAGE, num_classes, width, in_channels)
