"""Broken runs, hostile files and the catalogue of user mistakes: one line, exit 2, nothing touched."""

import csv
import os
import pickle

import pytest
import torch

from tests.cifar_files import write_cifar10, write_pickle
from tests.conftest import write_config


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, cli, monkeypatch):
    import wmprune.runtime.run as train_module

    calls = {"n": 0}
    real_cross_entropy = train_module.F.cross_entropy

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real_cross_entropy(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 16 else loss  # epoch 1 has 16 steps

    monkeypatch.setattr(train_module.F, "cross_entropy", poisoned)
    config = write_config(tmp_path / "c.yaml", train={"epochs": 3, "lr": 0.05})
    run_dir = tmp_path / "run"
    code, _, err = cli("train", "--config", config, "--out", run_dir)
    assert code == 1
    assert "nan" in _one_line(err) and "checkpoint" in err
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert len(list(csv.DictReader(open(run_dir / "metrics.csv")))) == 1
    assert not (run_dir / "summary.csv").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _finished_run(tmp_path, cli):
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05})
    run_dir = tmp_path / "run"
    assert cli("train", "--config", config, "--out", run_dir)[0] == 0
    return config, run_dir


@pytest.mark.slow
def test_hostile_checkpoint_is_refused_without_running_code(tmp_path, cli):
    _, run_dir = _finished_run(tmp_path, cli)
    marker = tmp_path / "pwned"
    with open(run_dir / "checkpoint.pt", "wb") as handle:
        pickle.dump({"model": _Payload(marker)}, handle)
    code, _, err = cli("eval", "--run", run_dir)
    assert code == 2 and "checkpoint" in _one_line(err)
    assert not marker.exists()


@pytest.mark.slow
def test_truncated_checkpoint_is_refused(tmp_path, cli):
    _, run_dir = _finished_run(tmp_path, cli)
    blob = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])
    code, _, err = cli("eval", "--run", run_dir)
    assert code == 2 and "damaged" in _one_line(err)


@pytest.mark.slow
def test_resume_with_a_different_config_is_refused(tmp_path, cli):
    config, run_dir = _finished_run(tmp_path, cli)
    (run_dir / "summary.csv").unlink()
    before = _files(run_dir)
    code, _, err = cli("train", "--config", config, "--out", run_dir, "--resume", "--set", "seed=3")
    assert code == 2 and "differs" in _one_line(err)
    assert _files(run_dir) == before


@pytest.mark.slow
def test_resume_ignores_output_keys(tmp_path, cli):
    """output.* never changes what a run computes: a run saved before output.tensorboard existed resumes."""
    config, run_dir = _finished_run(tmp_path, cli)
    (run_dir / "summary.csv").unlink()
    saved = run_dir / "config.yaml"
    saved.write_text(saved.read_text().replace("  tensorboard: true\n", ""))
    code, _, err = cli("train", "--config", config, "--out", run_dir, "--resume", "--set", "output.tensorboard=false")
    assert code == 0, err
    assert (run_dir / "summary.csv").exists()


@pytest.mark.slow
def test_overwrite_replaces_the_run(tmp_path, cli):
    config, run_dir = _finished_run(tmp_path, cli)
    (run_dir / "metrics.csv").write_text("garbage\n")
    assert cli("train", "--config", config, "--out", run_dir, "--overwrite")[0] == 0
    assert len(list(csv.DictReader(open(run_dir / "metrics.csv")))) == 1


@pytest.mark.slow
def test_overwrite_removes_every_file_wmprune_wrote_and_nothing_else(tmp_path, cli):
    config, run_dir = _finished_run(tmp_path, cli)
    assert cli("export", "--run", run_dir, "--format", "bitmask")[0] == 0
    assert cli("export", "--run", run_dir, "--format", "dense")[0] == 0
    (run_dir / "notes.md").write_text("mine\n")
    (run_dir / "weights.bitmask.safetensors").write_bytes(b"stale")  # would be mistaken for this run's export
    assert cli("train", "--config", config, "--out", run_dir, "--overwrite")[0] == 0
    assert not list(run_dir.glob("weights.*.safetensors"))
    assert (run_dir / "notes.md").read_text() == "mine\n"

def test_hostile_data_file_is_refused_through_the_cli(tmp_path, cli):
    data = tmp_path / "data"
    write_cifar10(data)
    marker = tmp_path / "pwned"
    write_pickle(data / "cifar-10-batches-py" / "data_batch_3", {b"data": _Payload(marker)})
    config = write_config(tmp_path / "c.yaml", data={"name": "cifar10", "root": str(data)})
    code, _, err = cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2 and "data_batch_3" in _one_line(err)
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


def test_truncated_data_file_is_refused_through_the_cli(tmp_path, cli):
    data = tmp_path / "data"
    write_cifar10(data)
    batch = data / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:1000])
    config = write_config(tmp_path / "c.yaml", data={"name": "cifar10", "root": str(data)})
    code, _, err = cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2 and "test_batch" in _one_line(err)


CATALOGUE = [
    ("unknown top-level key", ["--set", "colour=red"], "unknown config key 'colour'"),
    ("unknown nested key", ["--set", "train.speed=9"], "unknown config key 'train.speed'"),
    ("wrong type", ["--set", "train.epochs=many"], "train.epochs"),
    ("zero lr", ["--set", "train.lr=0"], "train.lr"),
    ("negative lr", ["--set", "train.lr=-0.1"], "train.lr"),
    ("zero batch size", ["--set", "data.batch_size=0"], "data.batch_size"),
    ("negative width", ["--set", "model.width=-1"], "model.width"),
    ("zero epochs", ["--set", "train.epochs=0"], "train.epochs"),
    ("sparsity 1", ["--set", "prune.target_sparsity=1"], "prune.target_sparsity"),
    ("negative sparsity", ["--set", "prune.target_sparsity=-0.5"], "prune.target_sparsity"),
    ("unknown model", ["--set", "model.name=lenet"], "unknown model 'lenet'"),
    ("unknown dataset", ["--set", "data.name=mnist"], "unknown dataset 'mnist'"),
    ("unknown method", ["--set", "prune.method=magic"], "unknown method 'magic'"),
    ("unknown allocation", ["--set", "prune.allocation=magic"], "unknown allocation 'magic'"),
    ("unknown schedule", ["--set", "prune.schedule.kind=magic"], "unknown schedule 'magic'"),
    ("schedule end before start", ["--set", "prune.schedule.start_epoch=2", "--set", "prune.schedule.end_epoch=1"],
     "before start_epoch"),
    ("schedule end after last epoch", ["--set", "prune.schedule.end_epoch=9"], "after the last epoch"),
    ("cuda unavailable", ["--set", "device=cuda"], "cuda"),
    ("no such gpu", ["--set", "device=cuda:7"], "cuda:7"),
    ("bad device", ["--set", "device=gpu"], "device"),
    ("--set without =", ["--set", "train.lr"], "key=value"),
    ("--set empty key", ["--set", "=3"], "empty key"),
    ("--set into a value", ["--set", "seed.x=1"], "seed"),
    ("missing data", ["--set", "data.name=cifar100", "--set", "data.root=/nonexistent"], "data.download"),
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="device errors are checked on a machine without CUDA")
@pytest.mark.parametrize("what, args, needle", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_user_mistake_catalogue(tmp_path, cli, what, args, needle):
    config = write_config(tmp_path / "c.yaml")
    code, out, err = cli("train", "--config", config, "--out", tmp_path / "run", *args)
    assert code == 2
    assert needle in _one_line(err)
    assert not (tmp_path / "run").exists()


def test_yaml_syntax_error_via_cli_names_the_line(tmp_path, cli):
    config = tmp_path / "broken.yaml"
    config.write_text("name: x\ntrain:\n  epochs: [1, 2\n")
    code, _, err = cli("train", "--config", config)
    assert code == 2 and "line" in _one_line(err)


def test_missing_config_file(tmp_path, cli):
    code, _, err = cli("train", "--config", tmp_path / "nope.yaml")
    assert code == 2 and "config file not found" in _one_line(err)
