"""CIFAR model variants: output shapes at a tiny width, exact parameter counts at full width."""

import pytest
import torch
from torch import nn

from wmprune.errors import UserError
from wmprune.models import MODELS, build_model

# (model, classes) -> (total parameters, prunable parameters = conv + linear weights).
# The same numbers are in docs/models.md; a change here is an architecture change.
PARAM_COUNTS = {
    ("alexnet", 10): (23_273_418, 23_262_912),
    ("alexnet", 100): (23_642_148, 23_631_552),
    ("vgg16", 10): (14_724_042, 14_715_584),
    ("vgg16", 100): (14_770_212, 14_761_664),
    ("resnet50", 10): (23_520_842, 23_467_712),
    ("resnet50", 100): (23_705_252, 23_652_032),
}


def test_registry_names():
    assert set(MODELS) == {"alexnet", "vgg16", "resnet50"}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("num_classes", [10, 100])
def test_output_shape(name, num_classes):
    torch.manual_seed(0)
    model = build_model(name, num_classes, 0.125)
    model.train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "num_classes"), sorted(PARAM_COUNTS))
def test_parameter_counts(name, num_classes):
    model = build_model(name, num_classes, 1.0)
    total = sum(p.numel() for p in model.parameters())
    prunable = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    assert (total, prunable) == PARAM_COUNTS[(name, num_classes)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_convs_before_batchnorm_have_no_bias(name):
    model = build_model(name, 10, 0.125)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.bias is None for m in convs)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_input_channels_come_from_the_caller(name):
    model = build_model(name, 10, 0.125, in_channels=1)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 1
    model.eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert next(m for m in build_model(name, 10, 0.125).modules() if isinstance(m, nn.Conv2d)).in_channels == 3


def test_width_scales_channels_with_floor_of_one():
    tiny = build_model("vgg16", 10, 0.001)
    first = next(m for m in tiny.modules() if isinstance(m, nn.Conv2d))
    assert first.out_channels == 1
    half = build_model("resnet50", 10, 0.5)
    assert half.fc.in_features == round(512 * 0.5) * 4


def test_unknown_model_names_the_key():
    with pytest.raises(UserError, match="model.name"):
        build_model("lenet", 10, 1.0)


def test_output_positions_give_the_textbook_multiply_adds():
    from wmprune.models.cost import output_positions

    model = build_model("vgg16", 10, 1.0)
    positions = output_positions(model, (3, 32, 32))
    assert positions["features.0.weight"] == 32 * 32 and positions["classifier.weight"] == 1
    assert positions["features.40.weight"] == 2 * 2  # last block after four pools
    macs = sum(p.numel() * positions[name] for name, p in model.named_parameters() if name in positions)
    # Σ Cin·Cout·9·H·W over the 13 convs (32², 16², 8², 4², 2² maps) = 313,196,544, + 512·10 for the classifier
    assert macs == 313_196_544 + 5_120
    resnet = output_positions(build_model("resnet50", 10, 0.125, in_channels=1), (1, 32, 32))
    assert resnet["stem.0.weight"] == 1024 and resnet["fc.weight"] == 1
