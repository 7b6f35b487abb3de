"""Every script in scripts/ runs here, with tiny arguments, and ends with its figure or its summary line — so
none can rot unnoticed (bench_inference.py's smoke test lives with the inference tests; gpu_python.sh is
sourced by gpu_check.sh and gpu_sweep.sh)."""

import os
import subprocess
import sys
import tarfile
import time

import pytest

from tests.conftest import ROOT, write_config

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _last_line(command: list[str], **env: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env={**ENV, **env}, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("script, args, figure", [
    ("bench_loader.py", ["--images", "256", "--batch", "64", "--repeats", "1"], "ratio="),
    ("bench_pruning_overhead.py", ["--width", "0.0625", "--batch", "8", "--steps", "1", "--repeats", "1",
                                   "--event-width", "0.0625", "--threads", "1"], "overhead="),
    ("bench_train.py", ["--width", "0.0625", "--batch", "32", "--images", "128", "--epochs", "1",
                        "--every-steps", "2", "--threads", "1"], "ratio="),
])
def test_benchmark_script_smoke(script, args, figure):
    last = _last_line([sys.executable, str(ROOT / "scripts" / script), *args])
    assert last.startswith(figure) and float(last.removeprefix(figure)) > -1


def test_gpu_check_dry_run_on_cpu(tmp_path):
    """scripts/gpu_check.sh's own path on this machine: every step at toy sizes on the CPU."""
    last = _last_line(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out"), "--dry-run"],
                      PYTHON=sys.executable)
    assert last.startswith("gpu_check: wrote")
    assert (tmp_path / "out" / "gpu_check.md").is_file()


def test_rerun_cells_reproduces_a_run_bit_for_bit_on_this_machine(tmp_path):
    """scripts/rerun_cells.py re-trains a finished run from its config.yaml: same machine, same thread count,
    so every metric but the wall clock is identical and the test top-1 differs by exactly 0."""
    config = write_config(tmp_path / "tiny.yaml", train={"epochs": 1, "lr": 0.05},
                          data={"name": "synthetic", "batch_size": 32, "val_size": 32})
    subprocess.run([sys.executable, "-m", "wmprune", "train", "--config", str(config), "--out", str(tmp_path / "run")],
                   check=True, capture_output=True, env=ENV, cwd=ROOT, timeout=300)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "rerun_cells.py"), str(tmp_path / "run"),
                           "--out", str(tmp_path / "again")], capture_output=True, text=True, env=ENV, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-2:] == ["metrics.csv identical but for seconds: 1 of 1",
                                                     "max_abs_diff=0.00"]
    assert (tmp_path / "again" / "run" / "summary.csv").is_file()


def _tiny_grid(directory, seeds, epochs=1):
    write_config(directory / "base.yaml", train={"epochs": epochs, "lr": 0.05},
                 data={"name": "synthetic", "batch_size": 32, "val_size": 32})
    grid = directory / "grid.yaml"
    grid.write_text(f"base: base.yaml\nsweep:\n  seed: {seeds}\n")
    return grid


def _gpu_sweep(grid, runs, out, seconds):
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_sweep.sh"), str(grid), str(runs), str(out),
                           str(seconds), "2"], capture_output=True, text=True, env={**ENV, "PYTHON": sys.executable},
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_gpu_sweep_packs_the_small_files_of_the_runs_it_finished(tmp_path):
    """scripts/gpu_sweep.sh on this machine: both runs finish inside the limit and come back as a study
    commits them; a second call finds nothing to train and packs nothing."""
    grid, runs = _tiny_grid(tmp_path, [0, 1]), tmp_path / "runs"
    assert _gpu_sweep(grid, runs, tmp_path / "out", 240).startswith("gpu_sweep: 2 runs finished, the sweep finished")
    with tarfile.open(tmp_path / "out" / "runs.tgz") as archive:
        names = archive.getnames()
    assert sorted(n for n in names if n.endswith("/summary.csv")) == sorted(
        str(p).lstrip("/") for p in runs.glob("*/summary.csv")) and len(names) > 2
    # The checkpoints stay behind: a study commits none.
    assert not any(n.endswith("checkpoint.pt") for n in names) and len(list(runs.glob("*/checkpoint.pt"))) == 2
    assert _gpu_sweep(grid, runs, tmp_path / "again", 240).startswith("gpu_sweep: 0 runs finished")


def test_gpu_sweep_stops_its_training_children_when_time_is_up(tmp_path):
    # Runs far longer than the limit (a tiny epoch takes about a second), so none can finish in time.
    grid, runs = _tiny_grid(tmp_path, [0, 1, 2, 3], epochs=500), tmp_path / "runs"
    assert _gpu_sweep(grid, runs, tmp_path / "out", 8) == (
        f"gpu_sweep: 0 runs finished, time was up after 8 s → {tmp_path / 'out'}/runs.tgz")
    time.sleep(1)
    survivors = subprocess.run(["pgrep", "-f", str(runs)], capture_output=True, text=True).stdout
    assert survivors == "" and not list(runs.glob("*/summary.csv"))
