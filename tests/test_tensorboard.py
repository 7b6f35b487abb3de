"""TensorBoard curves: the tags a run writes, sparsity whenever a mask changes, a resume without duplicate
steps, and a run without TensorBoard installed."""

import csv
import sys
import time

import pytest
import torch
from torch import nn

from tests.conftest import write_config
from tests.event_files import read_events, scalars
from wmprune import Pruner

WEIGHTMOM = {"method": "weightmom", "target_sparsity": 0.9,
             "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 4}}


def test_the_pruner_tells_of_mask_changes_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    events = []
    pruner = Pruner(model, optimizer, {**WEIGHTMOM, "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 5}},
                    steps_per_epoch=10, epochs=2, on_mask_change=events.append)
    for _ in range(20):
        model(torch.randn(8, 20)).square().mean().backward()
        optimizer.step()
        pruner.step()
    assert [event.step for event in events] == [5, 10]
    last = events[-1]
    assert (last.sparsity, last.layers) == pruner.mask_sparsity()
    assert last.sparsity == pytest.approx(0.9, abs=1e-3)
    # WeightMom ranked by its momentum, over the weights still active before the change.
    assert last.change.scores is pruner.method.score.momentum
    total = sum(m.numel() for m in pruner.masks.masks)
    assert sum(int(c.sum()) for c in last.change.candidates) == round((1 - events[0].sparsity) * total)


def _train(cli, tmp_path, prune, epochs=2, name="run"):
    config = write_config(tmp_path / f"{name}.yaml", train={"epochs": epochs, "lr": 0.05}, prune=prune)
    run_dir = tmp_path / name
    code, out, err = cli("train", "--config", config, "--out", run_dir)
    assert code == 0, err
    return run_dir, out


# method, its prune section, epochs, the steps at which its masks change (given the steps per epoch)
CHANGES = [
    ("weightmom", WEIGHTMOM, 2, lambda epoch: [*range(4, epoch, 4), epoch]),  # every 4 steps and the end
    ("imp", {"method": "imp", "target_sparsity": 0.75, "imp": {"levels": 2, "rewind_epoch": 1}}, 3,
     lambda epoch: [2 * epoch, 3 * epoch]),  # after each level
    ("sparse_momentum", {"method": "sparse_momentum", "target_sparsity": 0.8}, 2,
     lambda epoch: [0, epoch]),  # the random start, regrowth after epoch 1
    ("snip", {"method": "snip", "target_sparsity": 0.8}, 1, lambda epoch: [0]),
]


@pytest.mark.slow
@pytest.mark.parametrize("method, prune, epochs, changes", CHANGES, ids=[c[0] for c in CHANGES])
def test_a_run_writes_its_curves(tmp_path, cli, method, prune, epochs, changes):
    run_dir, out = _train(cli, tmp_path, prune, epochs)
    assert f"tensorboard --logdir {tmp_path}" in out
    events = read_events(run_dir)
    curves = scalars(run_dir)
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    layers = list(csv.DictReader(open(run_dir / "layers.csv")))
    epoch_ends = [int(row["step"]) for row in rows]
    changes = changes(epoch_ends[0])

    for tag in ("train/loss", "train/top1", "val/loss", "val/top1", "test/loss", "test/top1", "test/top5"):
        assert [step for step, _ in curves[tag]] == epoch_ends, tag
    assert curves["test/top1"][-1][1] == pytest.approx(float(rows[-1]["test_top1"]))
    assert [step for step, _ in curves["lr"]] == [0, *epoch_ends]
    assert curves["lr"][0][1] == pytest.approx(0.05)
    # The score histogram marks every change of the masks, and sparsity is written at each of them.
    assert [h.step for h in events.Histograms("scores/ranked")] == changes
    sparsity_steps = [step for step, _ in curves["sparsity/network"]]
    assert sparsity_steps == sorted(set([0, *changes, *epoch_ends]))
    assert {f"layer_sparsity/{row['layer']}" for row in layers} <= set(curves)
    for row in layers:
        assert curves[f"layer_sparsity/{row['layer']}"][-1][1] == pytest.approx(float(row["sparsity"]), abs=1e-6)
    assert curves["sparsity/network"][-1][1] == pytest.approx(float(rows[-1]["sparsity"]), abs=1e-6)
    for tag, points in curves.items():
        assert len({step for step, _ in points}) == len(points), f"duplicate steps in {tag}"


@pytest.mark.slow
def test_a_resumed_run_continues_its_curves_without_duplicate_steps(tmp_path, cli, monkeypatch):
    prune = {**WEIGHTMOM, "schedule": {"start_epoch": 0, "end_epoch": 2, "every_steps": 4}}
    reference, _ = _train(cli, tmp_path, prune, epochs=3, name="reference")

    import wmprune.pruning.pruner as pruner_module

    real_step = pruner_module.Pruner.step

    epoch = int(next(csv.DictReader(open(reference / "metrics.csv")))["step"])
    last_event = epoch + 8 - epoch % 4  # the second pruning event (every 4 steps) of epoch 2

    def interrupted_step(self):
        real_step(self)
        if self.steps == last_event + 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(pruner_module.Pruner, "step", interrupted_step)
    config = write_config(tmp_path / "run.yaml", train={"epochs": 3, "lr": 0.05}, prune=prune)
    run_dir = tmp_path / "run"
    assert cli("train", "--config", config, "--out", run_dir)[0] == 130
    monkeypatch.setattr(pruner_module.Pruner, "step", real_step)
    [killed_file] = run_dir.glob("events.out.tfevents.*")
    # The killed process wrote events past its last checkpoint (after epoch 1); the resumed one writes them again.
    assert max(step for step, _ in scalars(killed_file)["sparsity/network"]) == last_event

    # TensorBoard orders a run's event files by name, which starts with the second the file was opened.
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    code, _, err = cli("train", "--config", config, "--out", run_dir, "--resume")
    assert code == 0, err
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    assert scalars(run_dir) == scalars(reference)  # one curve per tag, as if never interrupted


@pytest.mark.slow
def test_without_tensorboard_a_run_says_so_in_one_line_and_goes_on(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the import fails, as when not installed
    run_dir, out = _train(cli, tmp_path, WEIGHTMOM, epochs=1)
    assert [line for line in out.splitlines() if "TensorBoard" in line] == [
        "TensorBoard is not installed, so this run writes no curves (pip install 'wmprune[tensorboard]', or set "
        "output.tensorboard=false to silence this)"]
    assert (run_dir / "summary.csv").exists()
    assert not list(run_dir.glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_output_tensorboard_false_writes_no_event_files(tmp_path, cli):
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05}, prune=WEIGHTMOM)
    code, out, err = cli("train", "--config", config, "--out", tmp_path / "run", "--set", "output.tensorboard=false")
    assert code == 0, err
    assert "curves:" not in out and "TensorBoard" not in out
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
