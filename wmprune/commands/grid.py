"""Grid files: a base config, named variants, a tuning stage chosen on validation, and sweep axes.

    base: ../fashion-mnist/vgg16.yaml        # every point starts from it (relative to the grid file)
    dense_baseline: true                     # + one dense run per combination of the non-`prune.` axes
    variants:                                # optional: name → fixed settings; one row each in the report
      weightmom: {prune.method: weightmom}
      random-erk: {prune.method: random, prune.allocation: erk}
    tune:                                    # optional: the same number of settings for every variant,
      at: {seed: 0, prune.target_sparsity: 0.98}   # tried at one seed and sparsity,
      settings:                                    # the best last-epoch val_top1 runs everywhere
        weightmom: {train.lr: [0.02, 0.05, 0.1]}
        random-erk: {train.lr: [0.02, 0.05, 0.1]}
    sweep:                                   # axes over dotted keys; every combination is a run
      prune.target_sparsity: [0.95, 0.98, 0.99]
      seed: [0, 1, 2]

Without `variants:` a `prune.method` axis names them (one variant per method). Tuning follows the usual
protocol of the pruning literature (each method tuned once, then its chosen setting run at every sparsity
and seed; e.g. Blalock et al. 2020, arXiv 2003.03033, on comparing methods fairly): no number that
chooses a setting comes from the test split. The choice is recorded in
`<out>/<grid name>.tuning.csv`, one file per grid, so grids that share a study folder keep their own.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmprune import results
from wmprune.catalog import build_config
from wmprune.config import RunConfig, read_yaml, set_dotted
from wmprune.errors import UserError

GRID_KEYS = ("base", "sweep", "dense_baseline", "variants", "tune", "slurm")
TUNING_SUFFIX = ".tuning.csv"  # `<out>/<grid file stem>.tuning.csv`
TUNING_FIELDS = ["variant", "setting", "run", "val_top1", "chosen"]
DENSE = "dense"  # the variant name of the dense baselines (may be tuned like any other)
# Axes whose value already names the run as `<dataset>-<model>-<variant>`; other axes append `<label><value>`.
_NAMED_BY_VALUE = ("data.name", "model.name", "prune.method")
_LABELS = {"prune.target_sparsity": "s"}


@dataclass(frozen=True)
class Point:
    """One run of the grid: its resolved config, its directory and the settings that made it."""

    config: RunConfig
    directory: Path
    settings: dict[str, Any]

    @property
    def finished(self) -> bool:
        return (self.directory / results.SUMMARY).exists()

    @property
    def val_top1(self) -> float | None:
        """The finished run's last-epoch validation top-1 (what tuning chooses by)."""
        if not self.finished:
            return None
        value = results.read_csv(self.directory / results.SUMMARY)[0].get("val_top1", "")
        return float(value) if value != "" else None


@dataclass(frozen=True)
class Trial:
    """One tuning run: the tuned values it tries and its point."""

    tried: dict[str, Any]
    point: Point


@dataclass
class Grid:
    path: Path
    points: list[Point]  # every run known now: tuning runs, and main runs of variants already chosen
    tuning: dict[str, list[Trial]] = field(default_factory=dict)  # variant → its tuning runs
    waiting: list[str] = field(default_factory=list)  # variants whose tuning has not finished yet
    slurm: dict[str, Any] = field(default_factory=dict)


def _combinations(axes: dict[str, list]) -> list[dict[str, Any]]:
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def _run_name(cfg: RunConfig, variant: str, settings: dict[str, Any]) -> str:
    """A readable name, e.g. digits-vgg16-weightmom-s0.9-seed1 (variant in place of the method)."""
    dense = cfg.prune.method == "none"
    parts = [cfg.data.name, cfg.model.name, DENSE if dense else (variant or cfg.prune.method)]
    for key, value in settings.items():
        if key in _NAMED_BY_VALUE or key == "prune.allocation" or (dense and key.startswith("prune.")):
            continue
        parts.append(str(value) if isinstance(value, str) else f"{_LABELS.get(key, key.split('.')[-1])}{value}")
    return "-".join(parts).replace("/", "_").replace(" ", "_")


def _mapping(raw: Any, what: str, path: Path) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: '{what}' must be a mapping")
    return raw


def _axes(raw: Any, what: str, path: Path) -> dict[str, list]:
    axes = _mapping(raw, what, path)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{path}: {what} axis '{key}' needs a non-empty list of values, e.g. [0.9, 0.95]")
    return axes


class _Builder:
    """Resolves points of one grid file (every point validated before anything trains)."""

    def __init__(self, path: Path, base: dict, out: Path, labelled: bool):
        self.path, self.base, self.out, self.labelled = path, base, out, labelled

    def point(self, variant: str, settings: dict[str, Any]) -> Point:
        raw = copy.deepcopy(self.base)
        for key, value in settings.items():
            set_dotted(raw, key.split("."), value, f"{self.path}: axis '{key}'")
        try:
            cfg = build_config(raw)
            cfg.name = _run_name(cfg, variant, settings)
            if self.labelled and cfg.prune.method != "none":
                cfg.variant = variant
        except UserError as exc:
            raise UserError(f"{self.path}: {exc}") from None
        return Point(cfg, self.out / f"{cfg.name}-{cfg.short_hash()}", settings)


def load_grid(path: Path, out: Path) -> Grid:
    """Read and validate a grid file; resolve every point whose settings are known (tuning runs, and the
    main runs of every variant whose tuning has finished)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"grid file not found: {path}; pass one of configs/grids/*.yaml")
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(GRID_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown grid key(s) {', '.join(unknown)}; allowed: {', '.join(GRID_KEYS)}")
    if not isinstance(raw.get("base"), str):
        raise UserError(f"{path}: 'base:' must name the config the grid varies, relative to the grid file")
    axes = _axes(raw.get("sweep"), "sweep", path)
    dense_baseline = raw.get("dense_baseline", False)
    slurm = _mapping(raw.get("slurm"), "slurm", path)
    if not isinstance(dense_baseline, bool):
        raise UserError(f"{path}: 'dense_baseline:' must be true or false")
    variants = {name: _mapping(settings, f"variants: {name}", path)
                for name, settings in _mapping(raw.get("variants"), "variants", path).items()}
    labelled = bool(variants)
    if variants and "prune.method" in axes:
        raise UserError(f"{path}: give the methods either as 'variants:' or as a 'prune.method' axis, not both")
    methods = axes.pop("prune.method", None)
    if not variants:
        variants = {method: {"prune.method": method} for method in methods} if methods else {"": {}}
    builder = _Builder(path, read_yaml(path.parent / raw["base"]), out, labelled)
    tune = _mapping(raw.get("tune"), "tune", path)
    chosen, tuning, waiting = _tune(tune, variants, axes, dense_baseline, builder, path)

    points: dict[Path, Point] = {}
    for trials in tuning.values():
        for trial in trials:
            points.setdefault(trial.point.directory, trial.point)
    context = {key: values for key, values in axes.items() if not key.startswith("prune.")}
    if dense_baseline and DENSE not in waiting:
        for combo in _combinations(context):
            settings = {**combo, "prune.method": "none", "prune.target_sparsity": 0.0, **chosen.get(DENSE, {})}
            point = builder.point(DENSE, settings)
            points.setdefault(point.directory, point)
    for name, fixed in variants.items():
        if name in waiting:
            continue
        for combo in _combinations(axes):
            point = builder.point(name, {**combo, **fixed, **chosen.get(name, {})})
            points.setdefault(point.directory, point)  # an explicit `none` can coincide with a dense baseline
    return Grid(path, list(points.values()), tuning, waiting, slurm)


def _tune(tune: dict, variants: dict[str, dict], axes: dict[str, list], dense_baseline: bool, builder: _Builder,
          path: Path) -> tuple[dict[str, dict], dict[str, list[Trial]], list[str]]:
    """(chosen settings per variant, tuning runs per variant, variants still waiting for their tuning)."""
    if not tune:
        return {}, {}, []
    unknown = sorted(set(tune) - {"at", "settings"})
    if unknown:
        raise UserError(f"{path}: unknown tune key(s) {', '.join(unknown)}; allowed: at, settings")
    at = _mapping(tune.get("at"), "tune: at", path)
    settings = {name: _axes(axes_, f"tune: settings: {name}", path)
                for name, axes_ in _mapping(tune.get("settings"), "tune: settings", path).items()}
    expected = set(variants) | ({DENSE} if dense_baseline and DENSE in settings else set())
    if set(settings) != expected:
        missing, extra = sorted(expected - set(settings)), sorted(set(settings) - expected)
        raise UserError(f"{path}: tune: settings must name every variant once (missing: {', '.join(missing) or '-'}; "
                        f"not a variant: {', '.join(extra) or '-'}); every method gets the same tuning budget")
    budgets = {name: len(_combinations(a)) for name, a in settings.items()}
    if len(set(budgets.values())) > 1:
        raise UserError(f"{path}: tune: every variant needs the same number of settings, got "
                        + ", ".join(f"{name} {n}" for name, n in budgets.items()))
    # The tuning run at the `at` point must be the very run the sweep would train there: every sweep axis
    # placed (by `at`, or by its only value), in the same order.
    unplaced = [key for key, values in axes.items() if key not in at and len(values) > 1]
    if unplaced:
        raise UserError(f"{path}: tune: at must fix every sweep axis with several values (missing: "
                        f"{', '.join(unplaced)}); tuning runs at one point")
    point = {key: at.get(key, values[0]) for key, values in axes.items()} | at
    chosen, tuning, waiting = {}, {}, []
    for name, tune_axes in settings.items():
        fixed = {"prune.method": "none", "prune.target_sparsity": 0.0} if name == DENSE else variants[name]
        located = {key: value for key, value in point.items() if not (name == DENSE and key.startswith("prune."))}
        trials = [Trial(combo, builder.point(name, {**located, **fixed, **combo}))
                  for combo in _combinations(tune_axes)]
        tuning[name] = trials
        best = _best(trials)
        if best is None:
            waiting.append(name)
        else:
            chosen[name] = best.tried
    return chosen, tuning, waiting


def _best(trials: list[Trial]) -> Trial | None:
    """The trial with the highest validation top-1 (the first of equals, in grid order); None until all
    have finished. A run without a validation split cannot be chosen: data.val_size must be > 0."""
    scores = [trial.point.val_top1 for trial in trials]
    if any(not trial.point.finished for trial in trials):
        return None
    if None in scores:
        raise UserError(f"tuning run {trials[scores.index(None)].point.directory} has no val_top1; tuning chooses "
                        "on validation — set data.val_size > 0 in the base config")
    return trials[max(range(len(trials)), key=lambda i: scores[i])]


def write_tuning(grid: Grid, out: Path) -> None:
    """`<out>/<grid>.tuning.csv`: every tuning run with its setting and validation top-1, the chosen one marked."""
    rows = []
    for name, trials in grid.tuning.items():
        best = _best(trials)
        for trial in trials:
            score = trial.point.val_top1
            rows.append({"variant": name, "setting": " ".join(f"{k}={v}" for k, v in trial.tried.items()),
                         "run": trial.point.directory.name, "val_top1": "" if score is None else score,
                         "chosen": trial is best})
    if rows:
        results.write_csv(out / f"{grid.path.stem}{TUNING_SUFFIX}", TUNING_FIELDS, rows)
