"""Every script in scripts/ runs here, with tiny arguments, and ends with its figure or its summary line — so
none can rot unnoticed (bench_inference.py's smoke test lives with the inference tests; gpu_python.sh is
sourced by gpu_check.sh and gpu_sweep.sh)."""

import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from tests.printed_numbers import assert_printed_quotient

# Every script runs in a child process, most of them training.
pytestmark = pytest.mark.slow

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _output(command: list[str], **env: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env={**ENV, **env}, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _last_line(command: list[str], **env: str) -> str:
    return _output(command, **env).strip().splitlines()[-1]


# With one repeat (one timed epoch) the median is the one measurement, so each script's last-line figure is the
# quotient of the two times it prints above it: pattern's groups numerator and denominator.
@pytest.mark.parametrize("script, args, figure, pattern, minus", [
    ("bench_loader.py", ["--images", "256", "--batch", "64", "--repeats", "1"], "ratio=",
     r"TensorLoader (?P<denominator>[\d.]+) s/epoch, PIL per image (?P<numerator>[\d.]+) s/epoch", 0.0),
    ("bench_pruning_overhead.py", ["--width", "0.0625", "--batch", "8", "--steps", "1", "--repeats", "1",
                                   "--event-width", "0.0625", "--threads", "1"], "overhead=",
     r"dense +(?P<denominator>[\d.]+) ms/step.*\n +wmprune +(?P<numerator>[\d.]+) ms/step", 1.0),
    ("bench_train.py", ["--width", "0.0625", "--batch", "32", "--images", "128", "--epochs", "1",
                        "--every-steps", "2", "--threads", "1"], "ratio=",
     r"wmprune (?P<denominator>[\d.]+) s/epoch, PyTorch recipe (?P<numerator>[\d.]+) s/epoch", 0.0),
], ids=["bench_loader", "bench_pruning_overhead", "bench_train"])
def test_benchmark_script_prints_the_quotient_of_its_two_times(script, args, figure, pattern, minus):
    lines = _output([sys.executable, str(ROOT / "scripts" / script), *args]).strip().splitlines()
    assert lines[-1].startswith(figure), lines[-1]
    times = re.search(pattern, "\n".join(lines[:-1]))
    assert times, lines
    assert_printed_quotient(lines[-1].removeprefix(figure), times["numerator"], times["denominator"], minus)


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
    assert done.stdout.strip().splitlines()[-3:] == ["metrics.csv identical but for seconds: 1 of 1",
                                                     "mean Δ test top-1 (now − then) +0.00 over 1 runs",
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


# Loaded by every Python process of the sweep below: a training child says it is running, and takes 2 s to
# stop on SIGTERM, as one finishing a write would.
SLOW_TO_STOP = """
import os, signal, sys, time
from pathlib import Path

if "train" in sys.argv:
    def _stop_slowly(signum, frame):
        time.sleep(2)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, _stop_slowly)
    (Path(__file__).parent / f"{os.getpid()}.training").touch()
"""


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_gpu_sweep_returns_only_when_its_training_children_have_stopped(tmp_path):
    """Time is up (timeout's timer signal, sent once both workers' children are running) while the children
    take 2 s to stop: the script returns only after they have, so none is left the moment it returns."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_TO_STOP)
    # 10,000 epochs: no run can finish before time is up.
    grid, runs, out = _tiny_grid(tmp_path, [0, 1, 2, 3], epochs=10_000), tmp_path / "runs", tmp_path / "out"
    script = subprocess.Popen(["bash", str(ROOT / "scripts" / "gpu_sweep.sh"), str(grid), str(runs), str(out), "600",
                               "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**ENV, "PYTHON": sys.executable, "PYTHONPATH": f"{hooks}:{ROOT}"})
    deadline = time.monotonic() + 240
    while len(list(hooks.glob("*.training"))) < 2 and script.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    timer = subprocess.run(["pgrep", "-P", str(script.pid), "-x", "timeout"], capture_output=True, text=True).stdout
    try:
        children = [int(marker.stem) for marker in hooks.glob("*.training")]
        assert len(children) == 2 and timer, f"the sweep's children did not start: {script.poll()=}"
        os.kill(int(timer), signal.SIGALRM)
        stdout, stderr = script.communicate(timeout=120)
    finally:
        if script.poll() is None:  # failed before time was up: stop the sweep (timeout's pid is its group's id)
            if timer:
                os.killpg(int(timer), signal.SIGKILL)
            script.kill()
    assert script.returncode == 0, stderr[-3000:]
    assert [pid for pid in children if _alive(pid)] == []
    assert stdout.strip().splitlines()[-1] == f"gpu_sweep: 0 runs finished, time was up after 600 s → {out}/runs.tgz"
    assert not list(runs.glob("*/summary.csv"))


def test_reuse_runs_copies_the_valid_runs_of_an_earlier_study_and_no_other(tmp_path):
    """scripts/reuse_runs.py: of an earlier study's finished runs at this grid's tuning points, only those of
    the wanted machine class and thread count, not of an excluded method, are copied (checkpoints left out)."""
    import yaml

    from wmprune import results
    from wmprune.commands.grid import load_grid

    write_config(tmp_path / "base.yaml", train={"epochs": 1, "lr": 0.05},
                 data={"name": "synthetic", "batch_size": 32, "val_size": 32})
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "base": "base.yaml", "variants": {"weightmom": {"prune.method": "weightmom"}, "rigl": {"prune.method": "rigl"}},
        "tune": {"at": {"prune.target_sparsity": 0.9}, "seeds": [0],
                 "settings": {"weightmom": {"train.lr": [0.05, 0.1]}, "rigl": {"train.lr": [0.05, 0.1]}}},
        "sweep": {"prune.target_sparsity": [0.9], "seed": [1]}}))
    old, new = tmp_path / "old", tmp_path / "new"
    devices = ["cpu (fp32, 1 threads)", "NVIDIA H100 80GB HBM3 (bf16 autocast)", "cpu (fp32, 2 threads)"]
    points = [p for trials in load_grid(grid, new).tuning.values() for trial in trials for p in trial.points]
    planted = list(zip(points, devices + devices[:1]))  # each tuning point once, one of them on the wanted class
    for point, device in planted:
        row = {"method": point.config.prune.method, "seed": point.config.seed, "device": device, "val_top1": 50.0}
        results.write_csv(old / point.directory.name / results.SUMMARY, list(row), [row])
        (old / point.directory.name / results.CHECKPOINT).write_bytes(b"large")
    out = _output([sys.executable, str(ROOT / "scripts" / "reuse_runs.py"), str(grid), str(old), str(new),
                   "--stage", "tuning", "--exclude-method", "rigl"])
    assert out.strip().splitlines()[-1] == "copied=1"
    valid = [p.directory.name for p, device in planted if p.config.prune.method != "rigl" and device == devices[0]]
    assert [p.name for p in new.iterdir()] == valid and len(valid) == 1
    assert not (new / valid[0] / results.CHECKPOINT).exists()
