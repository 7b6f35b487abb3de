import pytest
import torch

from wmprune.pruning.allocation import ALLOCATIONS
from wmprune.pruning.budget import LayerStats, distribute


def _stats(numels, pruned, seed=0, max_layer_sparsity=0.99):
    generator = torch.Generator().manual_seed(seed)
    scores, masks = [], []
    for n, p in zip(numels, pruned):
        mask = torch.ones(n)
        mask[:p] = 0
        scores.append(torch.rand(n, generator=generator) * mask)
        masks.append(mask)
    return LayerStats(torch.tensor(numels), torch.tensor(pruned), scores, masks, [(n,) for n in numels],
                      max_layer_sparsity, 1.0)


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
    stats = _stats([100, 1000, 3000], [0, 50, 200])
    target = max(target, int(stats.pruned.sum()))
    per_layer = ALLOCATIONS[name](stats, target)
    assert int(per_layer.sum()) == target
    assert (per_layer >= stats.pruned).all()
    ceiling = max(0.99, target / 4100)
    assert (per_layer <= torch.floor(stats.numels * ceiling)).all()


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


def test_allocation_module_imports_on_its_own():
    import subprocess
    import sys

    code = "import wmprune.pruning.allocation"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
