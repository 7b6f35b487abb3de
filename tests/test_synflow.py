"""SynFlow (Tanaka et al. 2020, arXiv 2006.05467): the exponential schedule of rounds, the exact target, and a
network that still conducts — the layer collapse that one-shot saliency shows at high sparsity does not happen.

The invariants every method shares (target exact, pruned weights zero, state round trip) are in
tests/test_methods.py; every method's CLI run is in tests/test_methods_cli.py.
"""

import pytest
import torch
from torch import nn

from tests.pruning_helpers import make_pruner, synthetic_batches
from wmprune.errors import UserError
from wmprune.models import build_model
from wmprune.pruning.methods.synflow import linearised, path_sum
from wmprune.pruning.pruner import Pruner, prune_config


def _vgg16_pruner(method: str, target: float, **knobs):
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125, 3)
    return make_pruner(model, prune_config({"method": method, "target_sparsity": target, **knobs}), 10), model


def test_rounds_follow_the_exponential_schedule_and_land_on_the_target():
    events = []
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    pruner = Pruner(model, optimizer, {"method": "synflow", "target_sparsity": 0.99, "synflow": {"rounds": 5}},
                    steps_per_epoch=10, epochs=2, batches=lambda: iter(synthetic_batches()),
                    loss=nn.functional.cross_entropy, on_mask_change=events.append)
    total = pruner.masks.total_prunable()
    expected = [round((1 - 0.01 ** (k / 5)) * total) for k in range(1, 5)] + [round(0.99 * total)]
    assert [round(event.sparsity * total) for event in events] == expected
    nonzero = sum(int((w != 0).sum()) for w in pruner.masks.weights)
    assert nonzero == total - round(0.99 * total)


def test_at_99_percent_synflow_keeps_a_path_from_input_to_output():
    pruner, model = _vgg16_pruner("synflow", 0.99, synflow={"rounds": 20})
    with torch.no_grad():
        assert float(path_sum(linearised(model), (3, 32, 32))) > 0
    layers = [int(mask.sum()) for mask in pruner.masks.masks]
    assert min(layers) >= 1 and sum(layers) == pruner.masks.total_prunable() - round(0.99 * pruner.masks.total_prunable())


def test_defaults_are_the_papers():
    assert prune_config({"method": "synflow"}).synflow.rounds == 100
    assert prune_config({"method": "synflow"}).allocation == "global"


@pytest.mark.parametrize("rounds", [0, -1])
def test_rounds_must_be_positive(rounds):
    with pytest.raises(UserError, match="synflow.rounds"):
        prune_config({"method": "synflow", "synflow": {"rounds": rounds}})
