"""The library face: `from wmprune import Pruner` in a training loop that is not ours."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from wmprune import Pruner
from wmprune.errors import UserError

EPOCHS, STEPS_PER_EPOCH, TARGET = 4, 10, 0.8


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))


def user_loop(model, optimizer, pruner, seed=0, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH):
    """A plain user loop (random regression-ish data, MSE loss): only the two pruner calls are ours."""
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            x = torch.randn(16, 20, generator=generator)
            loss = nn.functional.mse_loss(model(x), x[:, :3])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            pruner.step()
            for weight, mask in zip(pruner.masks.weights, pruner.masks.masks):
                assert (weight.detach()[mask == 0] == 0).all(), "a pruned weight came back after a step"
        pruner.epoch_end(epoch)


@pytest.mark.parametrize("method", ["weightmom", "gmp", "random"])
def test_pruner_in_a_foreign_loop_reaches_the_exact_target(method):
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pruner = Pruner(model, optimizer, {"method": method, "target_sparsity": TARGET,
                                       "schedule": {"start_epoch": 0, "end_epoch": 2, "every_steps": 5}},
                    steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    user_loop(model, optimizer, pruner)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == round(TARGET * total)  # counted from the tensors, exactly
    assert pruner.sparsity() == zeros / total


def test_pruner_state_dict_resumes_a_foreign_loop():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    config = {"method": "weightmom", "target_sparsity": TARGET}
    pruner = Pruner(model, optimizer, config, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    user_loop(model, optimizer, pruner, epochs=2)
    state = pruner.state_dict()
    resumed = Pruner(model, optimizer, config, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS, state=state)
    assert resumed.steps == pruner.steps == 2 * STEPS_PER_EPOCH
    for a, b in zip(pruner.method.score.scores(), resumed.method.score.scores()):
        assert torch.equal(a, b)


def test_rigl_at_its_defaults_moves_connections_in_a_one_epoch_run_of_100_steps():
    """T_end is 75 steps, shorter than the default ΔT of 100: ΔT becomes 18, four updates before T_end."""
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    changed_at = []
    pruner = Pruner(model, optimizer, {"method": "rigl", "target_sparsity": TARGET}, steps_per_epoch=100, epochs=1,
                    on_mask_change=lambda event: changed_at.append(event.step))
    user_loop(model, optimizer, pruner, epochs=1, steps_per_epoch=100)
    assert changed_at == [0, 18, 36, 54, 72]  # the random start, then the updates
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    assert sum(int((w == 0).sum()) for w in weights) == round(TARGET * sum(w.numel() for w in weights))


def test_rigl_refuses_an_update_every_of_its_own_that_leaves_no_update_and_says_the_most_that_would_not():
    model = mlp()
    with pytest.raises(UserError, match=r"update_every \(80\).*before step 75.*at most 74"):
        Pruner(model, torch.optim.SGD(model.parameters(), lr=0.1), {"method": "rigl", "rigl": {"update_every": 80}},
               steps_per_epoch=100, epochs=1)


def test_bad_prune_config_is_one_user_error_naming_the_key():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UserError, match="prune|method"):
        Pruner(model, optimizer, {"method": "nope"}, steps_per_epoch=1, epochs=1)
    with pytest.raises(UserError, match="target_sparsity"):
        Pruner(model, optimizer, {"target_sparsity": 1.5}, steps_per_epoch=1, epochs=1)


def test_snip_without_batches_says_what_to_pass():
    model = mlp()
    with pytest.raises(UserError, match="batches="):
        Pruner(model, torch.optim.SGD(model.parameters(), lr=0.1), {"method": "snip"}, steps_per_epoch=1, epochs=1)


def test_importing_wmprune_does_not_load_torch():
    code = "import sys, wmprune, wmprune.cli; assert 'torch' not in sys.modules, 'torch loaded'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
