"""Invariants of every pruning method, driven the way the trainer drives them, on a tiny conv net."""

import io
import math

import pytest
import torch
from torch import nn

from tests.pruning_helpers import make_pruner, train_steps
from wmprune.config import PruneConfig
from wmprune.pruning.pruner import prune_config
from wmprune.pruning.methods import METHODS

PRUNING_METHODS = sorted(set(METHODS) - {"none"})
NO_REGROWTH = sorted(set(PRUNING_METHODS) - {"sparse_momentum", "rigl"})
STEPS_PER_EPOCH = 6
EPOCHS = 4


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def prune_cfg(method: str, target: float = 0.9, **overrides) -> PruneConfig:
    base = {"method": method, "target_sparsity": target, "magnitude": {"epoch": 1},
            "imp": {"levels": 2, "rewind_epoch": 1}, "rigl": {"update_every": 2},
            "schedule": {"start_epoch": 0, "end_epoch": 2, "every_steps": 3}}
    return prune_config({**base, **overrides})


def run_epochs(pruner, after_step=None, after_epoch=None):
    """The trainer's calls: step() after each optimizer step, epoch_end() after each epoch."""
    step = 0
    for epoch in range(1, pruner.total_epochs + 1):
        for _ in range(STEPS_PER_EPOCH):
            step += 1
            train_steps(pruner, 1, first_step=step)
            if after_step:
                after_step(pruner)
        pruner.epoch_end(epoch)
        if after_epoch:
            after_epoch(pruner)


def tensor_sparsity(pruner) -> float:
    zeros = sum(int((w == 0).sum()) for w in pruner.masks.weights)
    return zeros / pruner.masks.total_prunable()


def assert_pruned_weights_zero(pruner):
    for weight, mask in zip(pruner.masks.weights, pruner.masks.masks):
        assert (weight.detach()[mask == 0] == 0).all(), "a pruned weight is non-zero after the step"


@pytest.mark.parametrize("method", PRUNING_METHODS)
def test_method_hits_target_and_keeps_pruned_weights_zero(method):
    pruner = make_pruner(tiny_net(), prune_cfg(method), STEPS_PER_EPOCH, EPOCHS)
    run_epochs(pruner, after_step=assert_pruned_weights_zero)
    assert abs(tensor_sparsity(pruner) - 0.9) < 0.002
    assert int(pruner.masks.active_counts().sum()) == pruner.masks.total_prunable() - round(
        0.9 * pruner.masks.total_prunable())


@pytest.mark.parametrize("method", NO_REGROWTH)
def test_masks_only_shrink_without_regrowth(method):
    pruner = make_pruner(tiny_net(), prune_cfg(method), STEPS_PER_EPOCH, EPOCHS)
    previous = [torch.ones_like(m, dtype=torch.bool) for m in pruner.masks.masks]

    def check(p):
        kept = [m != 0 for m in p.masks.masks]
        assert all((~now | before).all() for now, before in zip(kept, previous)), "a pruned weight came back"
        previous[:] = kept

    run_epochs(pruner, after_step=check, after_epoch=check)


def test_sparse_momentum_keeps_density_while_masks_change():
    pruner = make_pruner(tiny_net(), prune_cfg("sparse_momentum"), STEPS_PER_EPOCH, EPOCHS)
    active = int(pruner.masks.active_counts().sum())
    assert active == pruner.masks.total_prunable() - round(0.9 * pruner.masks.total_prunable())
    changed = 0
    for epoch in range(1, EPOCHS + 1):
        train_steps(pruner, STEPS_PER_EPOCH, first_step=1 + (epoch - 1) * STEPS_PER_EPOCH)
        before = [m.clone() for m in pruner.masks.masks]
        pruner.epoch_end(epoch)
        assert int(pruner.masks.active_counts().sum()) == active
        changed += sum(int((a != b).sum()) for a, b in zip(before, pruner.masks.masks))
        assert_pruned_weights_zero(pruner)
    assert changed > 0, "sparse momentum never moved a weight"


def test_sparse_momentum_regrows_where_momentum_is_largest():
    pruner = make_pruner(tiny_net(), prune_cfg("sparse_momentum"), STEPS_PER_EPOCH, EPOCHS)
    train_steps(pruner, STEPS_PER_EPOCH)
    before = [m.clone() for m in pruner.masks.masks]
    momentum = pruner.method.momentum.scores()
    pruner.epoch_end(1)
    for old, new, m, w in zip(before, pruner.masks.masks, momentum, pruner.masks.weights):
        grown = (old == 0) & (new == 1)
        if grown.any():
            assert (w.detach()[grown] == 0).all(), "regrown weights must start at zero"
            assert m[grown].min() >= m[(old == 0) & (new == 0)].max()


def _epoch_end_that_regrows_what_it_prunes(reselected: str):
    """One trained epoch, then momentum made largest at the active weights, so the regrowth takes back the
    weights the epoch end prunes; returns the weights and masks before the epoch end, and the pruner."""
    cfg = prune_cfg("sparse_momentum", sparse_momentum={"reselected": reselected})
    pruner = make_pruner(tiny_net(), cfg, STEPS_PER_EPOCH, EPOCHS)
    optimizer = train_steps(pruner, STEPS_PER_EPOCH)
    for weight, mask in zip(pruner.masks.weights, pruner.masks.masks):
        buffer = optimizer.state[weight]["momentum_buffer"]
        buffer.copy_(torch.where(mask != 0, 1.0, buffer.clamp(-1e-3, 1e-3)))
    weights = [w.detach().clone() for w in pruner.masks.weights]
    masks = [m.clone() for m in pruner.masks.masks]
    pruner.epoch_end(1)
    return weights, masks, pruner


def test_sparse_momentum_a_weight_pruned_and_regrown_at_once_restarts_at_zero_or_keeps_its_value():
    before, old_masks, restarted = _epoch_end_that_regrows_what_it_prunes("restart")
    _, _, kept = _epoch_end_that_regrows_what_it_prunes("keep")
    assert all(torch.equal(a, b) for a, b in zip(restarted.masks.masks, kept.masks.masks)), "same choice of weights"
    reselected = 0
    for w0, old, new, w_restart, w_keep in zip(before, old_masks, kept.masks.masks, restarted.masks.weights,
                                                kept.masks.weights):
        stayed = (old != 0) & (new != 0)
        assert torch.equal(w_keep.detach()[stayed], w0[stayed])  # keep: as the authors' code, values survive
        zeroed = stayed & (w_restart.detach() == 0) & (w0 != 0)
        assert torch.equal(w_restart.detach()[stayed & ~zeroed], w0[stayed & ~zeroed])
        # restart: exactly the weights pruned (the smallest |w| of the layer) and taken back are 0
        if zeroed.any():
            assert w0[zeroed].abs().max() <= w0[stayed & ~zeroed].abs().min()
        reselected += int(zeroed.sum())
    assert reselected > 0, "no weight was pruned and regrown at the same epoch end"


@pytest.mark.parametrize("method", PRUNING_METHODS)
def test_state_survives_a_weights_only_checkpoint(method):
    pruner = make_pruner(tiny_net(), prune_cfg(method), STEPS_PER_EPOCH, EPOCHS)
    for epoch in (1, 2):
        train_steps(pruner, STEPS_PER_EPOCH, first_step=1 + (epoch - 1) * STEPS_PER_EPOCH)
        pruner.epoch_end(epoch)
    buffer = io.BytesIO()
    torch.save(pruner.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    twin = make_pruner(tiny_net(), prune_cfg(method), STEPS_PER_EPOCH, EPOCHS)
    twin.load_state_dict(state)
    _assert_same(pruner.state_dict(), twin.state_dict())
    assert pruner.sparsity() > 0


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("budget, first_level, total", [("full", 5, 17), ("equal", 2, 5)])
def test_imp_levels_budget_and_lr_restart(budget, first_level, total):
    cfg = prune_cfg("imp", imp={"levels": 3, "rewind_epoch": 1, "budget": budget})
    pruner = make_pruner(tiny_net(), cfg, STEPS_PER_EPOCH, epochs=5)
    assert (pruner.method.training_plan.first_level_epochs, pruner.total_epochs) == (first_level, total)
    level_steps = first_level * STEPS_PER_EPOCH
    assert pruner.lr_clock(level_steps - 1) == (level_steps - 1, level_steps)
    assert pruner.lr_clock(level_steps) == (STEPS_PER_EPOCH, level_steps)  # restarts at the rewind point


def test_imp_rewinds_surviving_weights_and_resets_the_optimizer():
    pruner = make_pruner(tiny_net(), prune_cfg("imp"), STEPS_PER_EPOCH, EPOCHS)
    model, optimizer = pruner.method.context.model, pruner.method.context.optimizer
    train_steps(pruner, STEPS_PER_EPOCH)
    pruner.epoch_end(1)
    rewind = {k: v.clone() for k, v in model.state_dict().items()}
    for epoch in range(2, pruner.method.training_plan.first_level_epochs + 1):
        train_steps(pruner, STEPS_PER_EPOCH, first_step=1 + (epoch - 1) * STEPS_PER_EPOCH)
        pruner.epoch_end(epoch)
    assert abs(pruner.sparsity() - (1 - 0.1 ** 0.5)) < 0.002  # level 1 of 2
    assert not optimizer.state
    for name, weight in zip(pruner.masks.names, pruner.masks.weights):
        kept = pruner.masks.masks[pruner.masks.names.index(name)] != 0
        assert torch.equal(weight.detach()[kept], rewind[name][kept])


@pytest.mark.parametrize("allocation", ["weightmom", "global", "uniform", "erk"])
@pytest.mark.parametrize("method", ["weightmom", "random"])
def test_dense_first_and_last_layers_stay_dense_and_target_holds(method, allocation):
    cfg = prune_cfg(method, allocation=allocation, dense_first_layer=True, dense_last_layer=True)
    pruner = make_pruner(tiny_net(), cfg, STEPS_PER_EPOCH, EPOCHS)
    run_epochs(pruner)
    assert (pruner.masks.masks[0] == 1).all() and (pruner.masks.masks[-1] == 1).all()
    assert abs(tensor_sparsity(pruner) - 0.9) < 0.002


def test_uniform_with_dense_layers_prunes_the_others_equally():
    cfg = prune_cfg("random", allocation="uniform", dense_first_layer=True)
    pruner = make_pruner(tiny_net(), cfg, STEPS_PER_EPOCH, EPOCHS)
    sparsities = [1 - float(m.mean()) for m in pruner.masks.masks[1:]]
    assert max(sparsities) - min(sparsities) < 0.01 and min(sparsities) > 0.9


def test_dense_layers_that_leave_no_room_are_a_user_error():
    from wmprune.errors import UserError

    with pytest.raises(UserError, match="dense_first_layer"):
        make_pruner(tiny_net(), prune_cfg("weightmom", target=0.99, dense_last_layer=True, dense_first_layer=True),
                    STEPS_PER_EPOCH, EPOCHS)


def test_left_out_allocation_is_the_methods_own():
    assert {m: prune_cfg(m).allocation for m in PRUNING_METHODS} == {
        "weightmom": "weightmom", "gmp": "uniform", "magnitude": "global", "imp": "global",
        "sparse_momentum": "erk", "rigl": "erk", "random": "uniform", "snip": "global",
        "synflow": "global"}
    assert prune_cfg("gmp", allocation="erk").allocation == "erk"


@pytest.mark.parametrize("overrides, needle", [
    ({"prune": {"method": "imp", "imp": {"rewind_epoch": 3}}}, "prune.imp.rewind_epoch"),
    ({"prune": {"method": "magnitude", "magnitude": {"epoch": 9}}}, "prune.magnitude.epoch"),
    ({"prune": {"method": "sparse_momentum"}, "train": {"epochs": 3, "momentum": 0.0}}, "train.momentum"),
    ({"prune": {"imp": {"levels": 0}}}, "prune.imp.levels"),
    ({"prune": {"imp": {"budget": "half"}}}, "prune.imp.budget"),
    ({"prune": {"rigl": {"update_every": 0}}}, "prune.rigl.update_every"),
    ({"prune": {"rigl": {"end_fraction": 1.5}}}, "prune.rigl.end_fraction"),
    ({"prune": {"rigl": {"alpha": 0}}}, "prune.rigl.alpha"),
])
def test_method_knobs_are_validated_with_the_key_named(overrides, needle):
    from wmprune.catalog import build_config
    from wmprune.errors import UserError

    raw = {"train": {"epochs": 3}, **overrides}
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        build_config(raw)
    build_config({"train": {"epochs": 1}, "prune": {"method": "none"}})  # knobs of unused methods don't matter


def test_sparse_momentum_redistribution_keeps_every_layer_above_its_floor():
    # Floors at 0.9 of the network's density; the largest layer's momentum is zeroed before each
    # redistribution, so it would regrow nothing and lose half its weights every epoch without the floor.
    cfg = prune_cfg("sparse_momentum", target=0.99, min_layer_density=0.9)
    pruner = make_pruner(tiny_net(), cfg, STEPS_PER_EPOCH, EPOCHS)
    floors = pruner.method.min_kept
    assert floors.tolist() == [max(1, math.ceil(0.9 * 0.01 * n)) for n in pruner.masks.numels().tolist()]
    optimizer = pruner.method.context.optimizer
    for epoch in range(1, EPOCHS + 1):
        train_steps(pruner, STEPS_PER_EPOCH, first_step=1 + (epoch - 1) * STEPS_PER_EPOCH)
        optimizer.state[pruner.masks.weights[2]]["momentum_buffer"].zero_()
        pruner.epoch_end(epoch)
        assert (pruner.masks.active_counts() >= floors).all()
    assert int(pruner.masks.active_counts()[2]) == int(floors[2])


@pytest.mark.parametrize("method", PRUNING_METHODS)
@pytest.mark.parametrize(("overrides", "needle"), [
    ({"dense_first_layer": True, "dense_last_layer": True}, "keep 856 weights dense, more than"),
    ({"min_layer_density": 1.0}, "fewer than the 116 the layer floors need"),
])
def test_a_target_the_dense_layers_or_floors_cannot_meet_is_refused_before_anything_changes(method, overrides,
                                                                                            needle):
    from wmprune.errors import UserError

    model = tiny_net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(UserError, match=needle):
        make_pruner(model, prune_cfg(method, target=0.99, **overrides), STEPS_PER_EPOCH, EPOCHS)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    make_pruner(tiny_net(), prune_cfg("none", target=0.99, **overrides), STEPS_PER_EPOCH, EPOCHS)
