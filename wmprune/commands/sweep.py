"""`wmprune sweep`: train every point of a grid file (commands/grid.py) that has not finished, in worker
processes; a tuning stage first when the grid has one, then the chosen settings everywhere.

Every point is one `wmprune train --config <run>/config.yaml --out <run> --resume` in its own process, so a
crash or bad data in one run cannot take down the others, and a killed sweep resumes each run from its last
checkpoint. Outcomes go to `<out>/sweep.csv`, each child's console to `<out>/logs/<run>.log`.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from wmprune import results
from wmprune.commands.grid import (COMPARISONS_SUFFIX, TUNING_SUFFIX, Grid, Point, load_grid, write_comparisons,
                                  write_tuning)
from wmprune.config import dump_yaml, shown
from wmprune.errors import UserError

SWEEP_CSV, LOGS = "sweep.csv", "logs"
OUTCOME_FIELDS = ["run", "status", "seconds", "error"]


@dataclass
class Outcome:
    run: str
    status: str  # skipped (finished before) | finished | failed | running | pending
    seconds: float | None = None
    error: str = ""


def visible_gpus() -> list[str]:
    """Devices the workers share out: CUDA_VISIBLE_DEVICES' entries when it is set, else every GPU torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [device.strip() for device in listed.split(",") if device.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def _error_line(log: Path, code: int) -> str:
    """The child's one-line `error:` message, else the last line it printed (a traceback's exception); a
    child killed by a signal (out of memory, kill -9) says so, since its last line is only progress."""
    if code < 0:
        return f"killed by signal {-code} (out of memory? kill?); rerun the sweep to resume it from its checkpoint"
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

    def __init__(self, out: Path, console: Console):
        self.path = out / SWEEP_CSV
        self.rows: dict[str, Outcome] = {}
        self.lock = threading.Lock()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console)
        self.task = self.progress.add_task("", total=0)

    def add(self, points: list[Point]) -> None:
        """Points of the next stage (the main runs, once tuning has chosen)."""
        new = [p for p in points if p.directory.name not in self.rows]
        for p in new:
            self.rows[p.directory.name] = Outcome(p.directory.name, "skipped" if p.finished else "pending")
        self.progress.update(self.task, total=self.count("pending") + self.progress.tasks[0].completed)
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
    table = Table(title=Text(f"{grid.path}: {len(grid.points)} runs"))
    table.add_column("run", overflow="fold")
    table.add_column("state")
    table.add_column("settings")
    for point in grid.points:
        state = ("finished" if point.finished else
                 "resume" if (point.directory / results.CHECKPOINT).exists() else "new")
        table.add_row(Text(point.directory.name), state, Text(" ".join(f"{k}={v}" for k, v in point.settings.items())))
    if grid.waiting:
        table.caption = f"then the runs of {', '.join(grid.waiting)} with the settings their tuning chooses"
    return table


MAX_SEEDS = 10_000  # far more than any study trains; a range past it is a typo, not a plan


def parse_seeds(text: str) -> list[int]:
    """"1,2,5-7" → [1, 2, 5, 6, 7] (`--seeds`)."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise UserError(f"--seeds {shown(text)}: give seeds and ranges such as 1,2 or 1-4") from None
        if high < low:
            raise UserError(f"--seeds {shown(text)}: a range runs from low to high, e.g. 1-4")
        if high >= 2**32 or len(seeds) + high - low >= MAX_SEEDS:
            raise UserError(f"--seeds {shown(text)}: name at most {MAX_SEEDS:,} seeds, each below 2^32 (a run's "
                            "seed range)")
        seeds.extend(range(low, high + 1))
    return seeds


def in_order(grid: Grid, seeds: list[int] | None) -> Grid:
    """The grid's points in training order: tuning runs first, then the main runs seed by seed (so an
    interrupted sweep leaves whole seeds); with `seeds`, only the main runs of those seeds."""
    tuning = grid.tuning_directories
    main = [p for p in grid.points if p.directory not in tuning and (seeds is None or p.config.seed in seeds)]
    ordered = [p for p in grid.points if p.directory in tuning] + sorted(main, key=lambda p: p.config.seed)
    return replace(grid, points=ordered)


def check_sweep_files(out: Path, grid_path: Path) -> None:
    """Refuse, before training anything, an `out` that is a file or that holds a user's file where the sweep
    keeps its records (sweep.csv, the grid's tuning and comparison records): a sweep replaces only its own,
    recognised by their header."""
    results.check_output_directory(out, "--out")
    heads = {out / SWEEP_CSV: "run,status", out / f"{grid_path.stem}{TUNING_SUFFIX}": "variant,setting",
             out / f"{grid_path.stem}{COMPARISONS_SUFFIX}": "dataset,model,reference,baseline"}
    for path, head in heads.items():
        if path.is_dir() or (path.exists() and not results.first_line(path).startswith(head)):
            raise UserError(f"{path} is not a record a sweep wrote, and the sweep writes there; move it away or "
                            "sweep into another --out")


def run_sweep(grid_path: Path, out: Path, workers: int | None = None, gpus: list[str] | None = None,
              executor: str = "local", dry_run: bool = False, console: Console | None = None,
              submitit_cluster: str = "slurm", seeds: list[int] | None = None) -> list[Outcome]:
    """Train every unfinished point of the grid into `out` (tuning first, then seed by seed; with `seeds`,
    only those seeds' main runs); returns one outcome per point (also in sweep.csv)."""
    if executor not in ("local", "slurm"):
        raise UserError(f"--executor must be local or slurm (got {executor!r})")
    console = console or Console()
    grid = in_order(load_grid(grid_path, out), seeds)
    if dry_run:
        console.print(plan_table(grid))
        return []
    check_sweep_files(out, grid.path)
    gpus = visible_gpus() if gpus is None else gpus
    workers = workers or max(1, len(gpus))
    tally = Tally(out, console)
    with tally.progress:
        # Stage by stage: tuning runs first; once a variant's tuning has finished, reloading the grid adds
        # its main runs with the chosen settings. Stops when a stage brings no new point to train.
        while True:
            tally.add(grid.points)
            pending = [p for p in grid.points if tally.rows[p.directory.name].status == "pending"]
            write_tuning(grid, out)
            write_comparisons(grid, out)
            if not pending:
                break
            for point in pending:
                if not (point.directory / results.CONFIG).exists():
                    results.atomic_write_text(point.directory / results.CONFIG, dump_yaml(point.config))
            if executor == "slurm":
                _run_submitit(pending, workers, grid, out, submitit_cluster, tally)
            else:
                _run_local(pending, workers, gpus, tally)
            grid = in_order(load_grid(grid_path, out), seeds)
    rows = list(tally.rows.values())
    waiting = f"; waiting for tuning: {', '.join(grid.waiting)}" if grid.waiting else ""
    console.print(f"{grid.path}: {tally.count('finished')} trained, {tally.count('skipped')} already finished, "
                  f"{tally.count('failed')} failed{waiting} → {tally.path}", markup=False)
    return rows
