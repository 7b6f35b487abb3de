"""Grid sweeps: expand a grid file into run configs, skip finished runs, train the rest in worker processes.

A grid file (docs/experiments.md):

    base: ../cifar10/vgg16/weightmom.yaml    # the config every point starts from, relative to this file
    dense_baseline: true                     # + one dense run per combination of the non-prune axes
    sweep:                                   # axes over dotted config keys; every combination is a run
      prune.method: [weightmom, gmp]
      prune.target_sparsity: [0.9, 0.95]
      seed: [0, 1]
    slurm: {timeout_min: 720, gpus_per_node: 1}   # optional: submitit parameters for --executor slurm

Every point is one `wmprune train --config <run>/config.yaml --out <run> --resume` in its own process, so a
crash or bad data in one run cannot take down the others, and a killed sweep resumes each run from its last
checkpoint. Outcomes go to `<out>/sweep.csv`, each child's console to `<out>/logs/<run>.log`.
"""

from __future__ import annotations

import copy
import itertools
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from wmprune import results
from wmprune.catalog import build_config
from wmprune.config import RunConfig, dump_yaml, read_yaml, set_dotted
from wmprune.errors import UserError

GRID_KEYS = ("base", "sweep", "dense_baseline", "slurm")
SWEEP_CSV, LOGS = "sweep.csv", "logs"
OUTCOME_FIELDS = ["run", "status", "seconds", "error"]
# Axes whose value already names the run as `<dataset>-<model>-<method>`; other axes append `<label><value>`.
_NAMED_BY_VALUE = ("data.name", "model.name", "prune.method")
_LABELS = {"prune.target_sparsity": "s"}


@dataclass(frozen=True)
class Point:
    """One run of the grid: its resolved config, its directory and the axis values that made it."""

    config: RunConfig
    directory: Path
    settings: dict[str, Any]

    @property
    def finished(self) -> bool:
        return (self.directory / results.SUMMARY).exists()


@dataclass
class Grid:
    path: Path
    points: list[Point]
    slurm: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    run: str
    status: str  # skipped (finished before) | finished | failed | running | pending
    seconds: float | None = None
    error: str = ""


def _run_name(cfg: RunConfig, settings: dict[str, Any]) -> str:
    """A readable name from the dataset, model, method and the other axis values, e.g. digits-vgg16-weightmom-s0.9-seed1."""
    dense = cfg.prune.method == "none"
    parts = [cfg.data.name, cfg.model.name, "dense" if dense else cfg.prune.method]
    for key, value in settings.items():
        if key in _NAMED_BY_VALUE or (dense and key.startswith("prune.")):
            continue
        parts.append(str(value) if isinstance(value, str) else f"{_LABELS.get(key, key.split('.')[-1])}{value}")
    return "-".join(parts).replace("/", "_").replace(" ", "_")


def _point(base: dict, settings: dict[str, Any], grid_path: Path, out: Path) -> Point:
    raw = copy.deepcopy(base)
    for key, value in settings.items():
        set_dotted(raw, key.split("."), value, f"{grid_path}: axis '{key}'")
    try:
        cfg = build_config(raw)
        cfg.name = _run_name(cfg, settings)
    except UserError as exc:
        raise UserError(f"{grid_path}: {exc}") from None
    return Point(cfg, out / f"{cfg.name}-{cfg.short_hash()}", settings)


def _combinations(axes: dict[str, list]) -> list[dict[str, Any]]:
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def load_grid(path: Path, out: Path) -> Grid:
    """Read and validate a grid file; every point is resolved (and so validated) before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"grid file not found: {path}; pass one of configs/grids/*.yaml")
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(GRID_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown grid key(s) {', '.join(unknown)}; allowed: {', '.join(GRID_KEYS)}")
    if not isinstance(raw.get("base"), str):
        raise UserError(f"{path}: 'base:' must name the config the grid varies, relative to the grid file")
    axes = raw.get("sweep") or {}
    if not isinstance(axes, dict):
        raise UserError(f"{path}: 'sweep:' must map dotted config keys to lists of values")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{path}: axis '{key}' needs a non-empty list of values, e.g. [0.9, 0.95]")
    dense_baseline = raw.get("dense_baseline", False)
    slurm = raw.get("slurm") or {}
    if not isinstance(dense_baseline, bool) or not isinstance(slurm, dict):
        raise UserError(f"{path}: 'dense_baseline:' must be true or false and 'slurm:' a mapping")
    base = read_yaml(path.parent / raw["base"])

    settings = []
    if dense_baseline:
        context = {key: values for key, values in axes.items() if not key.startswith("prune.")}
        settings += [{**combo, "prune.method": "none", "prune.target_sparsity": 0.0}
                     for combo in _combinations(context)]
    settings += _combinations(axes)
    points = {}
    for combo in settings:
        point = _point(base, combo, path, out)
        points.setdefault(point.directory, point)  # an explicit `none` point can coincide with a dense baseline
    return Grid(path, list(points.values()), slurm)


def visible_gpus() -> list[str]:
    """Devices the workers share out: CUDA_VISIBLE_DEVICES' entries when it is set, else every GPU torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [device.strip() for device in listed.split(",") if device.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def _error_line(log: Path, code: int) -> str:
    """The child's one-line `error:` message, else the last line it printed (a traceback's exception)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [f"exit code {code}"])[-1][:300]


def train_point(directory: Path, env: dict[str, str]) -> Outcome:
    """Train (or resume) one point in a child process; its console goes to `<sweep dir>/logs/<run>.log`.

    Module-level so submitit can pickle it for a SLURM array task.
    """
    log = directory.parent / LOGS / f"{directory.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "wmprune", "train", "--config", str(directory / results.CONFIG),
               "--out", str(directory), "--resume"]
    started = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **env}).returncode
    seconds = round(time.perf_counter() - started, 1)
    if code == 0:
        return Outcome(directory.name, "finished", seconds)
    return Outcome(directory.name, "failed", seconds, _error_line(log, code))


class Tally:
    """Rich progress view of a sweep (done / running / failed) that keeps `<out>/sweep.csv` current."""

    def __init__(self, out: Path, points: list[Point], console: Console):
        self.path = out / SWEEP_CSV
        self.rows = {p.directory.name: Outcome(p.directory.name, "skipped" if p.finished else "pending")
                     for p in points}
        self.lock = threading.Lock()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console)
        self.task = self.progress.add_task("", total=self.count("pending"))
        self._refresh()

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows.values())

    def _refresh(self) -> None:
        self.progress.update(self.task, description=f"sweep: {self.count('finished')} done · {self.count('running')} "
                             f"running · {self.count('failed')} failed · {self.count('skipped')} skipped")
        results.write_csv(self.path, OUTCOME_FIELDS, [asdict(row) for row in self.rows.values()])

    def started(self, run: str) -> None:
        with self.lock:
            self.rows[run] = Outcome(run, "running")
            self._refresh()

    def finished(self, outcome: Outcome) -> None:
        with self.lock:
            self.rows[outcome.run] = outcome
            self.progress.advance(self.task)
            self._refresh()


def _run_local(points: list[Point], workers: int, gpus: list[str], tally: Tally) -> None:
    """`workers` child processes at a time; worker slot k trains on GPU gpus[k mod len(gpus)]."""
    slots: queue.SimpleQueue[int] = queue.SimpleQueue()
    for slot in range(workers):
        slots.put(slot)
    # Without this every child starts one thread per core and the workers fight over them.
    threads = {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": str(max(1, os.cpu_count() // workers))}

    def work(point: Point) -> Outcome:
        slot = slots.get()
        try:
            env = {**threads, **({"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]} if gpus else {})}
            tally.started(point.directory.name)
            return train_point(point.directory, env)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(workers) as pool:
        for future in as_completed([pool.submit(work, point) for point in points]):
            tally.finished(future.result())


def _run_submitit(points: list[Point], workers: int, grid: Grid, out: Path, cluster: str, tally: Tally) -> None:
    """One job array through submitit (SLURM; `cluster="local"` runs it on this machine), waited for here."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs submitit: pip install 'wmprune[slurm]'") from None
    executor = submitit.AutoExecutor(folder=out / "slurm", cluster=cluster)
    try:
        executor.update_parameters(name=grid.path.stem, slurm_array_parallelism=workers, **grid.slurm)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{grid.path}: 'slurm:' parameters: {str(exc).splitlines()[0]}") from None
    directories = [point.directory for point in points]
    jobs = dict(zip(executor.map_array(train_point, directories, [{}] * len(directories)), directories))
    for directory in directories:
        tally.started(directory.name)
    while jobs:
        for job in [job for job in jobs if job.done()]:
            directory = jobs.pop(job)
            try:
                outcome = job.result()
            except Exception as exc:  # the job itself died (node failure, time limit): record it, go on
                outcome = Outcome(directory.name, "failed", error=(str(exc).strip().splitlines() or ["?"])[-1][:300])
            tally.finished(outcome)
        time.sleep(0.5)


def plan_table(grid: Grid) -> Table:
    table = Table(title=f"{grid.path}: {len(grid.points)} runs")
    table.add_column("run", overflow="fold")
    table.add_column("state")
    table.add_column("settings")
    for point in grid.points:
        state = ("finished" if point.finished else
                 "resume" if (point.directory / results.CHECKPOINT).exists() else "new")
        table.add_row(point.directory.name, state, " ".join(f"{k}={v}" for k, v in point.settings.items()))
    return table


def run_sweep(grid_path: Path, out: Path, workers: int | None = None, gpus: list[str] | None = None,
              executor: str = "local", dry_run: bool = False, console: Console | None = None,
              submitit_cluster: str = "slurm") -> list[Outcome]:
    """Train every unfinished point of the grid into `out`; returns one outcome per point (also in sweep.csv)."""
    if executor not in ("local", "slurm"):
        raise UserError(f"--executor must be local or slurm (got {executor!r})")
    console = console or Console()
    grid = load_grid(grid_path, out)
    if dry_run:
        console.print(plan_table(grid))
        return []
    gpus = visible_gpus() if gpus is None else gpus
    workers = workers or max(1, len(gpus))
    pending = [point for point in grid.points if not point.finished]
    for point in pending:
        if not (point.directory / results.CONFIG).exists():
            results.atomic_write_text(point.directory / results.CONFIG, dump_yaml(point.config))
    tally = Tally(out, grid.points, console)
    with tally.progress:
        if executor == "slurm":
            _run_submitit(pending, workers, grid, out, submitit_cluster, tally)
        else:
            _run_local(pending, workers, gpus, tally)
    rows = list(tally.rows.values())
    console.print(f"{grid.path}: {tally.count('finished')} trained, {tally.count('skipped')} already finished, "
                  f"{tally.count('failed')} failed → {tally.path}")
    return rows
