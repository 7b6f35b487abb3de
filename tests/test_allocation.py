import math

import pytest
import torch

from wmprune.models import build_model
from wmprune.pruning.budget import LayerStats, distribute, min_kept
from wmprune.pruning.methods import ALLOCATIONS
from wmprune.pruning.pruner import Pruner, prune_config


def _stats(numels, pruned, seed=0, target_sparsity=0.9, min_layer_density=0.1):
    generator = torch.Generator().manual_seed(seed)
    scores, masks = [], []
    for n, p in zip(numels, pruned):
        mask = torch.ones(n)
        mask[:p] = 0
        scores.append(torch.rand(n, generator=generator) * mask)
        masks.append(mask)
    sizes = torch.tensor(numels)
    floors = min_kept(sizes, torch.zeros(len(numels), dtype=torch.bool), target_sparsity, min_layer_density)
    return LayerStats(sizes, torch.tensor(pruned), scores, masks, [(n,) for n in numels], floors,
                      prune_config({"gamma": 1.0}))


def test_distribute_is_exact_and_capped():
    counts = distribute(1000, torch.tensor([1.0, 1.0, 8.0]), torch.tensor([500, 500, 300]))
    assert counts.sum() == 1000
    assert counts.tolist() == [350, 350, 300]


def test_distribute_refuses_impossible_totals():
    with pytest.raises(ValueError):
        distribute(10, torch.tensor([1.0, 1.0]), torch.tensor([3, 4]))


@pytest.mark.parametrize("name", sorted(ALLOCATIONS))
@pytest.mark.parametrize("target", [1, 777, 2900, 3950])
def test_budgets_sum_exactly_and_never_undo_pruning(name, target):
    target = max(target, 250)
    stats = _stats([100, 1000, 3000], [0, 50, 200], target_sparsity=target / 4100)
    per_layer = ALLOCATIONS[name](stats, target)
    assert int(per_layer.sum()) == target
    assert (per_layer >= stats.pruned).all()
    assert (stats.numels - per_layer >= stats.min_kept).all()


def test_uniform_gives_every_layer_the_target():
    stats = _stats([100, 1000, 3000], [0, 0, 0])
    per_layer = ALLOCATIONS["uniform"](stats, round(0.9 * 4100))
    assert (per_layer.double() / stats.numels - 0.9).abs().max() <= 1 / 100


def test_global_takes_the_lowest_scores_network_wide():
    stats = _stats([10, 10], [0, 0])
    stats.scores = [torch.arange(10.0) + 1, torch.arange(10.0) + 100]
    assert ALLOCATIONS["global"](stats, 6).tolist() == [6, 0]


def test_weightmom_spares_sparser_layers_and_larger_momentum():
    # Same size, one layer already sparser → it must lose fewer weights.
    stats = _stats([1000, 1000], [500, 0])
    stats.scores = [torch.ones(1000) * stats.masks[0], torch.ones(1000)]
    gained = ALLOCATIONS["weightmom"](stats, 900) - stats.pruned
    assert gained[0] < gained[1]
    # Same sparsity, layer 1 carries twice the momentum → it loses fewer.
    stats = _stats([1000, 1000], [0, 0])
    stats.scores = [torch.ones(1000), 2 * torch.ones(1000)]
    gained = ALLOCATIONS["weightmom"](stats, 600)
    assert gained.tolist() == [400, 200]


def test_erk_density_follows_sum_over_product_of_dims_and_caps_dense():
    shapes = [(4, 3, 3, 3), (64, 64, 3, 3), (10, 64)]
    numels = [4 * 27, 64 * 64 * 9, 640]
    stats = _stats(numels, [0, 0, 0])
    stats.shapes = shapes
    target = round(0.95 * sum(numels))
    per_layer = ALLOCATIONS["erk"](stats, target)
    assert int(per_layer.sum()) == target
    density = 1 - per_layer.double() / torch.tensor(numels)
    assert density[0] == 1.0  # the small first layer would need density > 1: kept dense
    ratio = torch.tensor([sum(s) / (s[0] * s[1] * (s[2] * s[3] if len(s) == 4 else 1)) for s in shapes[1:]])
    assert float(density[1] / density[2]) == pytest.approx(float(ratio[0] / ratio[1]), rel=0.01)


@pytest.mark.slow
def test_allocation_module_imports_on_its_own():
    import subprocess
    import sys

    code = "import wmprune.pruning.allocation"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


MODELS_AT_EIGHTH_WIDTH = ["alexnet", "vgg16", "resnet50"]


@pytest.mark.parametrize("allocation", sorted(ALLOCATIONS))
@pytest.mark.parametrize("target", [0.99, 0.995, 0.999])
@pytest.mark.parametrize("model_name", MODELS_AT_EIGHTH_WIDTH)
def test_every_layer_keeps_its_floor_and_the_network_lands_on_target(model_name, target, allocation):
    """Counted from the masks after one pruning event to `target` with |w| of the built model as scores."""
    masks = _prune_once(model_name, target, allocation)
    kept = [int(m.sum()) for m in masks]
    numels = [m.numel() for m in masks]
    assert sum(numels) - sum(kept) == round(target * sum(numels))
    for n, k in zip(numels, kept):
        assert k >= max(1, math.ceil(0.1 * (1 - target) * n))


@pytest.mark.parametrize("model_name", MODELS_AT_EIGHTH_WIDTH)
def test_weightmom_allocation_is_not_uniform_at_99_percent(model_name):
    # Under the old absolute cap of 0.99 every layer ended at exactly 0.99; uniform spreads by rounding only.
    sparsities = [1 - float(m.mean()) for m in _prune_once(model_name, 0.99, "weightmom")]
    assert max(sparsities) - min(sparsities) > 0.1


def test_floor_that_leaves_no_room_is_a_user_error():
    from wmprune.errors import UserError

    with pytest.raises(UserError, match="prune.min_layer_density"):
        _prune_once("resnet50", 0.9999, "uniform")


def _prune_once(model_name: str, target: float, allocation: str) -> list[torch.Tensor]:
    """A WeightMom pruner on a freshly built model, pruned in one event (a one-shot schedule at step 0)."""
    torch.manual_seed(0)
    model = build_model(model_name, 10, 0.125)
    cfg = prune_config({"target_sparsity": target, "allocation": allocation,
                        "schedule": {"kind": "oneshot", "start_epoch": 0, "end_epoch": 0}})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Pruner(model, optimizer, cfg, steps_per_epoch=1, epochs=1).masks.masks
