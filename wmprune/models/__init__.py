"""CIFAR model variants (AlexNet, VGG16-BN, ResNet50) with a channel-width multiplier."""

from wmprune.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
