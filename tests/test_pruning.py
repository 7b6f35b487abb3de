import pytest
import torch
from torch import nn

from wmprune.config import PruneConfig
from wmprune.pruning.pruner import prune_config
from wmprune.models import build_model
from wmprune.pruning.methods.weightmom import MomentumScore
from tests.pruning_helpers import make_pruner, train_steps


def _prune_cfg(**overrides) -> PruneConfig:
    base = {"target_sparsity": 0.9, "schedule": {"start_epoch": 0, "end_epoch": 2, "every_steps": 5}}
    return prune_config({**base, **overrides})


def _zeros(pruner):
    return [w.detach() == 0 for w in pruner.masks.weights]


@pytest.mark.parametrize("allocation", ["weightmom", "global", "uniform"])
def test_weightmom_hits_target_exactly_and_masks_only_shrink(allocation):
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125)
    pruner = make_pruner(model, _prune_cfg(allocation=allocation), steps_per_epoch=10)
    total = pruner.masks.total_prunable()
    previous = [torch.zeros_like(m, dtype=torch.bool) for m in pruner.masks.masks]
    for chunk in range(6):
        train_steps(pruner, 5, first_step=1 + 5 * chunk)
        pruned_now = [m == 0 for m in pruner.masks.masks]
        assert all((now | ~before).all() for now, before in zip(pruned_now, previous)), "a mask grew back"
        previous = pruned_now
    zeros = sum(int(z.sum()) for z in _zeros(pruner))
    assert zeros == round(0.9 * total)
    assert abs(pruner.sparsity() - 0.9) < 0.002


def test_pruned_weights_stay_exactly_zero_under_momentum_and_weight_decay():
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125)
    pruner = make_pruner(model, _prune_cfg(schedule={"kind": "oneshot", "start_epoch": 0, "end_epoch": 1}),
                         steps_per_epoch=10, lr=0.1)
    pruned = [m == 0 for m in pruner.masks.masks]
    assert sum(int(p.sum()) for p in pruned) == round(0.9 * pruner.masks.total_prunable())
    optimizer = train_steps(pruner, 40)
    # The SGD momentum buffers of pruned weights are non-zero, so without the mask they would move.
    buffers = [optimizer.state[w]["momentum_buffer"] for w in pruner.masks.weights]
    assert any((b[p] != 0).any() for b, p in zip(buffers, pruned))
    for weight, p in zip(pruner.masks.weights, pruned):
        assert (weight.detach()[p] == 0).all()


def test_momentum_score_is_the_ema_of_abs_weights():
    layer = nn.Linear(4, 3, bias=False)
    pruner = make_pruner(nn.Sequential(layer), _prune_cfg(beta=0.8), steps_per_epoch=100)
    score = pruner.method.score
    assert isinstance(score, MomentumScore)
    expected = layer.weight.detach().abs().clone()
    for _ in range(3):
        with torch.no_grad():
            layer.weight.add_(torch.randn_like(layer.weight))
        score.update()
        expected = 0.8 * expected + 0.2 * layer.weight.detach().abs()
    torch.testing.assert_close(score.scores()[0], expected, rtol=0, atol=1e-6)
    pruner.masks.masks[0][0, 0] = 0
    pruner.masks.apply()
    score.update()
    assert score.scores()[0][0, 0] == 0


def test_state_dict_round_trip_restores_masks_and_scores():
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125)
    pruner = make_pruner(model, _prune_cfg(), steps_per_epoch=10)
    train_steps(pruner, 12)
    state = pruner.state_dict()
    twin_model = build_model("vgg16", 10, 0.125)
    twin_model.load_state_dict(model.state_dict())
    twin = make_pruner(twin_model, _prune_cfg(), steps_per_epoch=10)
    twin.load_state_dict(state)
    for a, b in zip(pruner.masks.masks, twin.masks.masks):
        assert torch.equal(a, b)
    for a, b in zip(pruner.method.score.scores(), twin.method.score.scores()):
        assert torch.equal(a, b)
    assert twin.sparsity() == pruner.sparsity() > 0


def test_dense_method_prunes_nothing():
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125)
    pruner = make_pruner(model, _prune_cfg(method="none"), steps_per_epoch=10)
    train_steps(pruner, 25)
    assert pruner.sparsity() == 0.0
