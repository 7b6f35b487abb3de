import pytest
import torch
from torch import nn

from wmprune.config import PruneConfig
from wmprune.pruning.pruner import prune_config
from wmprune.models import build_model
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.weightmom import MomentumScore
from tests.pruning_helpers import make_pruner, train_steps


def _prune_cfg(**overrides) -> PruneConfig:
    base = {"target_sparsity": 0.9, "schedule": {"start_epoch": 0, "end_epoch": 2, "every_steps": 5}}
    return prune_config({**base, **overrides})


def _zeros(pruner):
    return [w.detach() == 0 for w in pruner.masks.weights]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.parametrize("knobs, beta", [({}, 1 - 1 / 5), ({"momentum_horizon": 5}, 0.8), ({"beta": 0.8}, 0.8),
                                         ({"momentum_horizon": 1}, 0.0)])
def test_momentum_score_is_the_ema_of_abs_weights(knobs, beta):
    """β defaults to 1 − 1/every_steps (5 here); prune.momentum_horizon N gives 1 − 1/N; prune.beta is used as is."""
    layer = nn.Linear(4, 3, bias=False)
    pruner = make_pruner(nn.Sequential(layer), _prune_cfg(**knobs), steps_per_epoch=100)
    score = pruner.method.score
    assert isinstance(score, MomentumScore) and score.beta == pytest.approx(beta)
    expected = layer.weight.detach().abs().clone()
    for _ in range(3):
        with torch.no_grad():
            layer.weight.add_(torch.randn_like(layer.weight))
        score.update()
        expected = beta * expected + (1 - beta) * layer.weight.detach().abs()
    torch.testing.assert_close(score.scores()[0], expected, rtol=0, atol=1e-6)
    pruner.masks.masks[0][0, 0] = 0
    pruner.masks.apply()
    score.masks_changed()  # what every pruning event calls; the EMA is not re-masked on other steps
    for _ in range(2):
        score.update()
        assert score.scores()[0][0, 0] == 0


def test_active_counts_are_exact_above_two_to_the_24():
    """A float32 sum stops counting at 2**24 (16,777,216 + 1 == 16,777,216 in float32)."""
    weight = torch.empty(2**24 + 3)
    masks = MaskSet({"big": weight})
    masks.masks[0][:2] = 0
    assert masks.active_counts().tolist() == [2**24 + 1]
    assert masks.active_counts().dtype == torch.int64


def test_masks_and_scores_keep_the_channels_last_format_and_prune_in_logical_order():
    model = build_model("vgg16", 10, 0.125).to(memory_format=torch.channels_last)
    initial = [w.detach().abs().clone() for w in model.parameters()]
    pruner = make_pruner(model, _prune_cfg(schedule={"kind": "oneshot", "start_epoch": 0, "end_epoch": 1}),
                         steps_per_epoch=10)  # pruned at construction, by the momentum of the initial |w|
    convs = [i for i, w in enumerate(pruner.masks.weights) if w.dim() == 4]
    for i in convs:
        assert pruner.masks.masks[i].is_contiguous(memory_format=torch.channels_last)
        assert pruner.method.score.momentum[i].is_contiguous(memory_format=torch.channels_last)
    by_id = {id(p): a for p, a in zip(model.parameters(), initial)}
    for weight, mask in zip(pruner.masks.weights, pruner.masks.masks):
        magnitude = by_id[id(weight)]
        assert magnitude[mask == 0].max() <= magnitude[mask != 0].min()
    train_steps(pruner, 3)
    for mask, momentum in zip(pruner.masks.masks, pruner.method.score.momentum):
        assert (momentum[mask == 0] == 0).all()
    masks = MaskSet({"conv": torch.empty(2, 3, 2, 2).to(memory_format=torch.channels_last)})
    masks.set_at(0, torch.tensor([1, 23]), 0)  # row-major positions (0, 0, 0, 1) and (1, 2, 1, 1)
    assert masks.masks[0].is_contiguous(memory_format=torch.channels_last)
    assert masks.masks[0][0, 0, 0, 1] == 0 and masks.masks[0][1, 2, 1, 1] == 0 and masks.active_counts()[0] == 22


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


@pytest.mark.slow
def test_dense_method_prunes_nothing():
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125)
    pruner = make_pruner(model, _prune_cfg(method="none"), steps_per_epoch=10)
    train_steps(pruner, 25)
    assert pruner.sparsity() == 0.0


def test_beta_and_horizon_together_are_one_error_naming_both():
    from wmprune.errors import UserError

    with pytest.raises(UserError, match=r"prune\.beta or prune\.momentum_horizon"):
        _prune_cfg(beta=0.9, momentum_horizon=10)


@pytest.mark.parametrize("score", ["momentum", "magnitude", "sgd_momentum"])
def test_each_score_is_what_the_event_prunes_by(score):
    """At a pruning event the score is the EMA, |w| or |SGD momentum buffer|, and the lowest go."""
    torch.manual_seed(0)
    pruner = make_pruner(build_model("vgg16", 10, 0.125), _prune_cfg(score=score), steps_per_epoch=10)
    method, optimizer = pruner.method, pruner.method.context.optimizer
    seen = []

    def spy(sparsity, prune_to=method.prune_to):
        seen.append(([s.clone() for s in method.score.scores()], [m.clone() for m in pruner.masks.masks]))
        if score == "magnitude":
            expected = [w.detach().abs() for w in pruner.masks.weights]
        elif score == "sgd_momentum":
            expected = [optimizer.state[w]["momentum_buffer"].abs() for w in pruner.masks.weights]
        else:  # the EMA's values: test_momentum_score_is_the_ema_of_abs_weights
            expected = method.score.momentum
        for got, want in zip(seen[-1][0], expected):
            assert torch.equal(got, want)
        prune_to(sparsity)

    method.prune_to = spy
    train_steps(pruner, 5)  # the event at step 5
    assert len(seen) == 1
    scores, before = seen[0]
    for score_l, old, new in zip(scores, before, pruner.masks.masks):
        pruned_now, kept = (old != 0) & (new == 0), new != 0
        if pruned_now.any():
            assert score_l[pruned_now].max() <= score_l[kept].min()


def test_sgd_momentum_score_without_momentum_is_one_error():
    from wmprune.catalog import build_config
    from wmprune.errors import UserError
    from wmprune.pruning.pruner import Pruner

    with pytest.raises(UserError, match="train.momentum"):
        build_config({"train": {"momentum": 0.0}, "prune": {"score": "sgd_momentum"}})
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(UserError, match="momentum > 0"):
        Pruner(model, torch.optim.SGD(model.parameters(), lr=0.1), _prune_cfg(score="sgd_momentum"),
               steps_per_epoch=10, epochs=10)


@pytest.mark.slow
@pytest.mark.parametrize("allocation", ["weightmom", "uniform"])
def test_shuffle_keeps_the_layer_counts_and_randomises_the_weights(allocation):
    """Driven by the same weights, the shuffle control prunes as many weights per layer as the method, but
    others; over the whole schedule it lands on the target and never revives a weight."""
    pruners = []
    for shuffle in (False, True):
        torch.manual_seed(0)
        pruners.append(make_pruner(build_model("vgg16", 10, 0.125), _prune_cfg(allocation=allocation, shuffle=shuffle),
                                   steps_per_epoch=10))
    for pruner in pruners:
        train_steps(pruner, 5)  # identical weights up to the first event, at step 5
    plain, shuffled = pruners
    assert torch.equal(plain.masks.active_counts(), shuffled.masks.active_counts())
    assert shuffled.sparsity() > 0
    assert any(not torch.equal(a, b) for a, b in zip(plain.masks.masks, shuffled.masks.masks))
    previous = [m.clone() for m in shuffled.masks.masks]
    for chunk in range(1, 5):
        train_steps(shuffled, 5, first_step=1 + 5 * chunk)
        assert all(((now == 0) | (before != 0)).all() for now, before in zip(shuffled.masks.masks, previous))
        previous = [m.clone() for m in shuffled.masks.masks]
    assert sum(int((w == 0).sum()) for w in shuffled.masks.weights) == round(0.9 * shuffled.masks.total_prunable())


def test_diverged_weights_at_a_pruning_event_stop_as_divergence_not_a_crash():
    from wmprune.errors import TrainingDiverged

    torch.manual_seed(0)
    model = build_model("vgg16", 10, 0.125)
    pruner = make_pruner(model, _prune_cfg(), steps_per_epoch=10)
    with torch.no_grad():
        pruner.masks.weights[3].fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="NaN or infinite"):
        train_steps(pruner, 12)
