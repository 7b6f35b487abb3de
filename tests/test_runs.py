"""`wmprune runs`: every run under a directory with its state, read from the run files without torch."""

import csv
import io
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_config
from wmprune import results
from wmprune.commands.runs import list_runs


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _fake_run(directory, status, pid, epoch=1, epochs=4, test_top1=None):
    """The files a run on this host leaves after `epoch` epochs, its state.json written as `pid` would."""
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text("name: fake\n")
    state = {"status": status, "pid": pid, "host": socket.gethostname(), "epoch": epoch, "epochs": epochs,
             "method": "gmp", "target_sparsity": 0.9, "updated": "2026-01-01T00:00:00+00:00", "error": ""}
    (directory / "state.json").write_text(json.dumps(state))
    rows = [{"epoch": e, "step": 10 * e, "sparsity": 0.1 * e, "test_top1": test_top1 if test_top1 is not None else e}
            for e in range(1, epoch + 1)]
    results.write_csv(directory / "metrics.csv", ["epoch", "step", "sparsity", "test_top1"], rows)


@pytest.fixture
def sweep_dir(tmp_path, cli, monkeypatch):
    """finished and failed by real runs, interrupted (a dead pid), running (this process) and new faked."""
    runs = tmp_path / "runs"
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05})
    assert cli("train", "--config", config, "--out", runs / "done")[0] == 0

    import wmprune.runtime.run as run_module

    real_cross_entropy = run_module.F.cross_entropy
    monkeypatch.setattr(run_module.F, "cross_entropy", lambda *a, **k: real_cross_entropy(*a, **k) * float("nan"))
    dense = write_config(tmp_path / "dense.yaml", train={"epochs": 1, "lr": 0.05}, prune={"method": "none"})
    assert cli("train", "--config", dense, "--out", runs / "diverged")[0] == 1
    monkeypatch.undo()

    _fake_run(runs / "killed", "running", _dead_pid(), epoch=2, test_top1=55.0)
    _fake_run(runs / "going", "running", os.getpid(), epoch=3, test_top1=40.0)
    (runs / "queued").mkdir()  # a sweep writes every point's config.yaml before its turn comes
    (runs / "queued" / "config.yaml").write_text("name: queued\n")
    return runs


@pytest.mark.slow
def test_each_state_is_told_apart(sweep_dir, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")  # a terminal wide enough for the whole run names
    code, out, err = cli("runs", sweep_dir, "--csv")
    assert code == 0, err
    rows = {row["run"]: row for row in csv.DictReader(io.StringIO(out))}
    assert {name: row["status"] for name, row in rows.items()} == {
        "done": "finished", "diverged": "failed", "killed": "interrupted", "going": "running", "queued": "new"}
    assert rows["done"]["epoch"] == rows["done"]["epochs"] == "1"
    assert rows["done"]["method"] == "weightmom" and float(rows["done"]["sparsity"]) == pytest.approx(0.9, abs=1e-3)
    assert rows["diverged"]["error"].startswith("TrainingDiverged: training loss became nan in epoch 1")
    assert (rows["killed"]["epoch"], rows["killed"]["epochs"], rows["killed"]["test_top1"]) == ("2", "4", "55.0")

    code, out, _ = cli("runs", sweep_dir)
    assert code == 0
    for name, status in [("done", "finished"), ("diverged", "failed"), ("killed", "interrupted"),
                         ("going", "running")]:
        assert any(name in line and status in line for line in out.splitlines()), (name, out)
    assert "diverged: TrainingDiverged" in out


def test_sort_by_a_column(tmp_path, cli):
    _fake_run(tmp_path / "b", "running", os.getpid(), epoch=3, test_top1=40.0)
    _fake_run(tmp_path / "a", "running", _dead_pid(), epoch=2, test_top1=55.0)
    _fake_run(tmp_path / "c", "running", _dead_pid(), epoch=0)  # killed in its first epoch: no top-1 yet

    def order(*args):
        code, out, err = cli("runs", tmp_path, "--csv", *args)
        assert code == 0, err
        return [row["run"] for row in csv.DictReader(io.StringIO(out))]

    assert order() == ["a", "b", "c"]
    assert order("--sort", "epoch") == ["c", "a", "b"]
    assert order("--sort", "status") == ["a", "c", "b"]  # interrupted before running
    # Numbers sort as numbers; a run without the value goes last either way.
    assert order("--sort", "test_top1") == ["b", "a", "c"]
    assert order("--sort", "test_top1", "--reverse") == ["a", "b", "c"]


def test_a_bad_sort_column_is_one_line_and_exit_2(tmp_path, cli):
    code, out, err = cli("runs", tmp_path, "--sort", "accuracy")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cannot sort by 'accuracy'" in err and "test_top1" in err


def test_a_missing_directory_is_one_line_and_exit_2(tmp_path, cli):
    code, _, err = cli("runs", tmp_path / "nowhere")
    assert code == 2 and err.count("\n") == 1 and "nowhere" in err


@pytest.mark.slow
def test_runs_imports_neither_torch_nor_pandas_and_opens_only_the_small_run_files(tmp_path):
    """What keeps `wmprune runs` instant on a sweep of hundreds of runs, counted rather than timed: no heavy
    import, and per run at most state.json, summary.csv and metrics.csv opened (never the checkpoint)."""
    for index in range(100):
        _fake_run(tmp_path / f"run-{index:03d}", "running", _dead_pid() if index == 0 else 0, epoch=160, epochs=160)
        (tmp_path / f"run-{index:03d}" / "checkpoint.pt").write_bytes(b"weights")
    code = ("import sys\nfrom pathlib import Path\nfrom wmprune.cli import main\n"
            "root, opened = sys.argv[1], []\n"
            "sys.addaudithook(lambda event, args: opened.append(Path(args[0])) if event == 'open' "
            "and str(args[0]).startswith(root) else None)\n"
            "sys.argv = ['wmprune', 'runs', root]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "loaded = sorted(name for name in ('torch', 'pandas') if name in sys.modules)\n"
            "assert not loaded, loaded\n"
            "print(sorted({path.name for path in opened}), len(opened))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "100 runs under" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "['metrics.csv', 'state.json'] 200"
