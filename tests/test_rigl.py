"""RigL (Evci et al. 2020, arXiv 1911.11134): what it moves, when, and what a moved weight starts from.

The invariants every method shares (target exact, pruned weights zero, state round trip) are in
tests/test_methods.py, which runs RigL with `update_every: 2` over 4 epochs of 6 steps: T_end = 18.
"""

import io
import math

import pytest
import torch

from tests.pruning_helpers import make_pruner, train_steps
from tests.test_methods import EPOCHS, STEPS_PER_EPOCH, assert_pruned_weights_zero, prune_cfg, tiny_net
from wmprune.errors import UserError
from wmprune.pruning.methods.rigl import update_interval
from wmprune.pruning.pruner import prune_config


def rigl_pruner(**knobs):
    return make_pruner(tiny_net(), prune_cfg("rigl", rigl={"update_every": 2, **knobs}), STEPS_PER_EPOCH, EPOCHS)


def sgd_step(pruner, seed: int) -> None:
    """One optimizer step as the trainer takes it, without `pruner.step()`: the tests look in between."""
    context = pruner.method.context
    generator = torch.Generator().manual_seed(seed)
    images, labels = torch.randn(8, 3, 32, 32, generator=generator), torch.randint(0, 10, (8,), generator=generator)
    context.optimizer.zero_grad()
    context.loss(context.model(images), labels).backward()
    context.optimizer.step()


def test_defaults_are_the_papers():
    knobs = prune_config({"method": "rigl"}).rigl
    assert (knobs.update_every, knobs.end_fraction, knobs.alpha) == (100, 0.75, 0.3)


def test_update_fraction_follows_the_cosine_and_updates_stop_at_end_fraction():
    method = rigl_pruner(alpha=0.4, end_fraction=0.5).method
    assert method.end_step == 12  # half of 24 steps
    for step, expected in [(0, 0.4), (4, 0.2 * (1 + math.cos(math.pi / 3))), (6, 0.2), (12, 0.0)]:
        assert method.update_fraction(step) == pytest.approx(expected, abs=1e-12)
    assert [step for step in range(1, STEPS_PER_EPOCH * EPOCHS + 1) if method.is_update(step)] == [2, 4, 6, 8, 10]


def test_masks_move_only_at_update_steps_and_every_layer_keeps_its_count():
    pruner = rigl_pruner()
    counts = pruner.masks.active_counts()
    assert int(counts.sum()) == pruner.masks.total_prunable() - round(0.9 * pruner.masks.total_prunable())
    moved_at = []
    for step in range(1, STEPS_PER_EPOCH * EPOCHS + 1):
        before = [mask.clone() for mask in pruner.masks.masks]
        train_steps(pruner, 1, first_step=step)
        if any(not torch.equal(old, new) for old, new in zip(before, pruner.masks.masks)):
            moved_at.append(step)
        assert torch.equal(pruner.masks.active_counts(), counts), f"a layer's count changed at step {step}"
        assert_pruned_weights_zero(pruner)
    assert pruner.method.end_step == 18
    assert len(moved_at) >= 4 and set(moved_at) <= set(range(2, 18, 2)), moved_at  # none at or after T_end


def test_drops_smallest_weights_grows_largest_gradients_at_zero_with_zero_momentum():
    pruner = rigl_pruner()
    optimizer = train_steps(pruner, 1)  # step 1: no update
    sgd_step(pruner, seed=2)  # step 2 is an update; its gradients are replaced by constructed ones below
    masks, fraction = pruner.masks, pruner.method.update_fraction(2)
    generator = torch.Generator().manual_seed(0)
    expected, momentum_before, moved = [], [], 0
    for weight, mask in zip(masks.weights, masks.masks):
        active = mask.flatten() != 0
        count = int(int(active.sum()) * fraction) if not active.all() else 0
        # |gradient| below 1 everywhere except at `count` random inactive positions: exactly those grow.
        gradient = torch.rand(weight.numel(), generator=generator) * 2 - 1
        inactive = (~active).nonzero().flatten()
        chosen = inactive[torch.randperm(len(inactive), generator=generator)[:count]]
        gradient[chosen] = (2 + torch.rand(count, generator=generator)) * torch.sign(gradient[chosen])
        weight.grad.copy_(gradient.view_as(weight))
        dropped = weight.detach().abs().flatten().masked_fill(~active, math.inf).argsort()[:count]
        target = active.clone()
        target[dropped], target[chosen] = False, True
        expected.append(target.view_as(mask))
        momentum_before.append(optimizer.state[weight]["momentum_buffer"].clone())
        moved += count
    assert moved > 0
    old = [mask.clone() != 0 for mask in masks.masks]
    pruner.step()
    for weight, mask, target, was, buffer_before in zip(masks.weights, masks.masks, expected, old, momentum_before):
        assert torch.equal(mask != 0, target)
        grown = target & ~was
        assert (weight.detach()[grown] == 0).all(), "grown weights start at zero"
        assert (optimizer.state[weight]["momentum_buffer"][grown] == 0).all(), "grown weights start without momentum"
        assert (buffer_before[grown] != 0).any() or not grown.any()  # a pruned position had momentum to clear


def test_dead_units_cap_the_move_so_counted_nonzero_weights_hit_the_target_exactly():
    net = tiny_net()
    with torch.no_grad():
        net[6].bias[1:] = -100.0  # 63 of 64 hidden units dead: their rows and the next layer's columns get gradient 0
    pruner = make_pruner(net, prune_cfg("rigl", rigl={"update_every": 2}), STEPS_PER_EPOCH, EPOCHS)
    masks, method = pruner.masks, pruner.method
    counts = masks.active_counts()
    capped, grown_at_zero = False, 0
    for step in range(1, STEPS_PER_EPOCH * EPOCHS + 1):
        before = [mask != 0 for mask in masks.masks]
        train_steps(pruner, 1, first_step=step)  # `.grad` still holds the gradients the update grew by
        for weight, mask, old, active in zip(masks.weights, masks.masks, before, counts.tolist()):
            grown_at_zero += int((weight.grad[(mask != 0) & ~old] == 0).sum())
            growable = int(((weight.grad != 0) & ~old).sum())
            capped |= method.is_update(step) and growable < math.floor(method.update_fraction(step) * active)
        assert torch.equal(masks.active_counts(), counts), f"a layer's count changed at step {step}"
    assert capped, "no update met fewer growable positions than it would move: the test plants nothing"
    total = masks.total_prunable()
    assert sum(layer.nonzero for layer in masks.measure()) == total - round(0.9 * total)
    assert grown_at_zero == 0


def test_resumed_run_makes_the_same_updates_as_the_uninterrupted_one():
    original = rigl_pruner()
    train_steps(original, 5)
    context = original.method.context
    buffer = io.BytesIO()
    torch.save({"model": context.model.state_dict(), "optimizer": context.optimizer.state_dict(),
                "pruner": original.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = rigl_pruner()
    resumed.method.context.model.load_state_dict(saved["model"])
    resumed.method.context.optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["pruner"])
    for pruner in (original, resumed):
        train_steps(pruner, 7, first_step=6)  # three updates: steps 6, 8, 10
    assert all(torch.equal(a, b) for a, b in zip(original.masks.masks, resumed.masks.masks))


def test_no_update_before_end_fraction_is_a_user_error():
    rigl_pruner(update_every=17)  # T_end = 18: one update at step 17
    with pytest.raises(UserError, match=r"prune\.rigl\.update_every \(18\)"):
        rigl_pruner(update_every=18)


@pytest.mark.parametrize("end_step, update_every", [(101, 100), (100, 24), (75, 18), (5, 1), (2, 1)])
def test_the_default_update_every_is_scaled_only_where_it_leaves_no_update(end_step, update_every):
    """Runs long enough for ΔT = 100 keep it (no committed run changes); shorter ones get 4 updates, or as
    many as steps allow."""
    knobs = prune_config({"method": "rigl"}).rigl
    assert update_interval(knobs, end_step) == update_every
    assert update_interval(knobs.model_copy(update={"update_every": 30}), end_step) == 30


def test_a_run_too_short_for_any_update_says_to_train_longer():
    with pytest.raises(UserError, match=r"update_every \(100\) leaves no mask update before step 1.*train for more"):
        make_pruner(tiny_net(), prune_cfg("rigl", rigl={"end_fraction": 0.05}), STEPS_PER_EPOCH, EPOCHS)


def test_missing_gradient_at_an_update_is_a_user_error():
    pruner = rigl_pruner()
    optimizer = train_steps(pruner, 1)
    optimizer.zero_grad(set_to_none=True)
    with pytest.raises(UserError, match="before the next zero_grad"):
        pruner.step()  # step 2: an update without this step's gradients
