"""Grid files: a base config, named variants, a tuning stage chosen on validation, declared comparisons and
sweep axes.

    base: ../fashion-mnist/vgg16.yaml        # every point starts from it (relative to the grid file)
    dense_baseline: true                     # + one dense run per combination of the non-`prune.` axes
    variants:                                # optional: name → fixed settings; one row each in the report
      weightmom: {prune.method: weightmom}
      random-erk: {prune.method: random, prune.allocation: erk}
    tune:                                    # optional: the same settings budget for every variant,
      at: {prune.target_sparsity: 0.98}      # tried at one point of the other axes,
      seeds: [0]                             # at tuning seeds that are never evaluation seeds;
      extend: 2                              # a choice at an edge of its list extends it, at most twice
      settings:                              # the best mean last-epoch val_top1 runs everywhere
        weightmom: {train.lr: [0.05, 0.1, 0.2]}
        random-erk: {train.lr: [0.05, 0.1, 0.2]}
    compare:                                 # optional: the main comparisons, declared before the runs
      reference: weightmom
      baselines: [random-erk]
      at: {prune.target_sparsity: [0.98]}    # the cells they are made in,
      seeds: [1, 2, 3, 4, 5, 6]              # with these evaluation seeds there (the plan, in a comment)
    sweep:                                   # axes over dotted keys; every combination is a run
      prune.target_sparsity: [0.95, 0.98, 0.99]
      seed: [1, 2, 3]

Without `variants:` a `prune.method` axis names them (one variant per method). Tuning follows the usual
protocol of the pruning literature (each method tuned once, then its chosen setting run at every sparsity
and seed; e.g. Blalock et al. 2020, arXiv 2003.03033, on comparing methods fairly): no number that
chooses a setting comes from the test split, and no run that chose a setting is a test run (tuning seeds and
evaluation seeds are disjoint). When the chosen value of a numeric key is the largest or smallest its list
tried, the list is extended past that edge by the ratio of the two values there (0.1, 0.2 → 0.4; 0.05, 0.02 →
0.008) and the variant tuned again, up to `extend` values a side (default 2) — the same base list, step rule
and cap for every variant. The tuning runs are recorded in `<out>/<grid name>.tuning.csv` and the declared
comparisons in `<out>/<grid name>.comparisons.csv`, one file per grid, so grids that share a study folder keep
their own; `wmprune report` reads both.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmprune import results
from wmprune.catalog import build_config
from wmprune.config import RunConfig, read_yaml, safe_name, set_dotted
from wmprune.errors import UserError

GRID_KEYS = ("base", "sweep", "dense_baseline", "variants", "tune", "compare", "slurm")
TUNE_KEYS = ("at", "seeds", "settings", "extend")
COMPARE_KEYS = ("reference", "baselines", "at", "seeds")
TUNING_SUFFIX = ".tuning.csv"  # `<out>/<grid file stem>.tuning.csv`
COMPARISONS_SUFFIX = ".comparisons.csv"  # `<out>/<grid file stem>.comparisons.csv`
TUNING_FIELDS = ["variant", "setting", "extension", "seed", "run", "val_top1", "setting_val_top1", "chosen"]
COMPARISON_FIELDS = ["dataset", "model", "reference", "baseline", "target_sparsity", "seeds"]
DENSE = "dense"  # the variant name of the dense baselines (may be tuned like any other)
DEFAULT_EXTEND = 2
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
    """One tuned setting: the values it tries, how many values past its base list's edge it is (0: in the
    list), and its run at each tuning seed."""

    tried: dict[str, Any]
    extension: int
    points: list[Point]

    @property
    def finished(self) -> bool:
        return all(point.finished for point in self.points)

    @property
    def val_top1(self) -> float | None:
        """Mean validation top-1 over the tuning seeds; None until every seed has finished."""
        scores = [point.val_top1 for point in self.points]
        if not self.finished:
            return None
        if None in scores:
            raise UserError(f"tuning run {self.points[scores.index(None)].directory} has no val_top1; tuning "
                            "chooses on validation — set data.val_size > 0 in the base config")
        return sum(scores) / len(scores)


@dataclass
class Grid:
    path: Path
    points: list[Point]  # every run known now: tuning runs, and main runs of variants already chosen
    tuning: dict[str, list[Trial]] = field(default_factory=dict)  # variant → its tuning trials
    waiting: list[str] = field(default_factory=list)  # variants whose tuning has not finished yet
    slurm: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # COMPARISON_FIELDS rows

    @property
    def tuning_directories(self) -> set[Path]:
        return {point.directory for trials in self.tuning.values() for trial in trials for point in trial.points}


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
    return safe_name("-".join(parts)).replace(" ", "_")


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


def _seed_list(raw: Any, what: str, path: Path) -> list[int]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, int) and not isinstance(s, bool) for s in raw):
        raise UserError(f"{path}: {what} needs a non-empty list of integer seeds, e.g. [0]")
    if len(set(raw)) != len(raw):
        raise UserError(f"{path}: {what} lists a seed twice: {raw}")
    return raw


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
    base = read_yaml(path.parent / raw["base"])
    builder = _Builder(path, base, out, labelled)
    declared = _declared(_mapping(raw.get("compare"), "compare", path), variants, axes, path)
    evaluation_seeds = set(axes.get("seed", [base.get("seed", 0)])) | set(declared.get("seeds", []))
    tune = _mapping(raw.get("tune"), "tune", path)
    chosen, tuning, waiting = _tune(tune, variants, axes, dense_baseline, builder, evaluation_seeds, path)

    points: dict[Path, Point] = {}
    for trials in tuning.values():
        for trial in trials:
            for point in trial.points:
                points.setdefault(point.directory, point)
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
            in_comparison = _in_comparison(declared, name, combo)
            for seed in declared["seeds"] if in_comparison else [combo.get("seed")]:
                located = {**combo, "seed": seed} if in_comparison else combo
                point = builder.point(name, {**located, **fixed, **chosen.get(name, {})})
                points.setdefault(point.directory, point)  # an explicit `none` can coincide with a dense baseline
    return Grid(path, list(points.values()), tuning, waiting, slurm, _comparisons(declared, variants, axes, builder))


def _comparisons(declared: dict, variants: dict[str, dict], axes: dict[str, list],
                 builder: _Builder) -> list[dict[str, Any]]:
    """COMPARISON_FIELDS rows of every declared comparison, whether or not its variants have finished tuning:
    the family a verdict is adjusted for is fixed by the declaration (a cell's dataset, model and sparsity do
    not depend on the tuned settings, so a waiting variant's are read at its untuned settings)."""
    if not declared:
        return []
    cells = {key: values for key, values in axes.items() if key != "seed" or key in declared["at"]}  # a row is per cell
    rows = []
    for name in (name for name in variants if name in declared["baselines"] and name != declared["reference"]):
        for combo in _combinations(cells):
            if _in_comparison(declared, name, combo):
                cell = builder.point(name, {**combo, **variants[name]}).config
                rows.append({"dataset": cell.data.name, "model": cell.model.name, "reference": declared["reference"],
                             "baseline": name, "target_sparsity": cell.prune.target_sparsity,
                             "seeds": " ".join(map(str, declared["seeds"]))})
    return list({tuple(row.values()): row for row in rows}.values())


def _declared(compare: dict, variants: dict[str, dict], axes: dict[str, list], path: Path) -> dict:
    """The grid's declared comparisons: reference, baselines, the cells (`at`: axis → values) and their seeds."""
    if not compare:
        return {}
    unknown = sorted(set(compare) - set(COMPARE_KEYS))
    missing = [key for key in COMPARE_KEYS if key not in compare]
    if unknown or missing:
        raise UserError(f"{path}: compare: needs exactly {', '.join(COMPARE_KEYS)} (unknown: "
                        f"{', '.join(unknown) or '-'}; missing: {', '.join(missing) or '-'})")
    named = [compare["reference"], *(compare["baselines"] if isinstance(compare["baselines"], list) else [None])]
    strangers = [str(name) for name in named if name not in variants]
    if strangers:
        raise UserError(f"{path}: compare: names {', '.join(strangers)}, not a variant of this grid; pick from "
                        + ", ".join(variants))
    at = _axes(compare["at"], "compare: at", path)
    outside = [f"{key}={value}" for key, values in at.items() for value in values if value not in axes.get(key, [])]
    if outside:
        raise UserError(f"{path}: compare: at names {', '.join(outside)}, not a value of the sweep's axes")
    if "seed" not in axes:
        raise UserError(f"{path}: compare: needs a 'seed' sweep axis (the seeds of the cells outside the comparisons)")
    return {"reference": compare["reference"], "baselines": compare["baselines"], "at": at,
            "seeds": _seed_list(compare["seeds"], "compare: seeds", path)}


def _in_comparison(declared: dict, variant: str, combo: dict[str, Any]) -> bool:
    return bool(declared) and variant in (declared["reference"], *declared["baselines"]) \
        and all(combo.get(key) in values for key, values in declared["at"].items())


def _tune(tune: dict, variants: dict[str, dict], axes: dict[str, list], dense_baseline: bool, builder: _Builder,
          evaluation_seeds: set[int], path: Path) -> tuple[dict[str, dict], dict[str, list[Trial]], list[str]]:
    """(chosen settings per variant, tuning trials per variant, variants still waiting for their tuning)."""
    if not tune:
        return {}, {}, []
    unknown = sorted(set(tune) - set(TUNE_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown tune key(s) {', '.join(unknown)}; allowed: {', '.join(TUNE_KEYS)}")
    at = dict(_mapping(tune.get("at"), "tune: at", path))
    if "seed" in at and "seeds" in tune:
        raise UserError(f"{path}: tune: give the tuning seeds once, as 'seeds:' (not also as at: seed)")
    seeds = _seed_list(tune["seeds"] if "seeds" in tune else [at["seed"]] if "seed" in at else None,
                       "tune: seeds", path)
    at.pop("seed", None)
    shared = sorted(set(seeds) & evaluation_seeds)
    if shared:
        raise UserError(f"{path}: tuning seed(s) {', '.join(map(str, shared))} are also evaluation seeds; a run "
                        "that chose a setting must not be a test run — tune at other seeds (tune: seeds)")
    cap = tune.get("extend", DEFAULT_EXTEND)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 2:
        raise UserError(f"{path}: tune: extend must be an integer ≥ 2 (values added past an edge of a list), "
                        f"got {cap!r}")
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
    unplaced = [key for key, values in axes.items() if key not in at and key != "seed" and len(values) > 1]
    if unplaced:
        raise UserError(f"{path}: tune: at must fix every sweep axis with several values (missing: "
                        f"{', '.join(unplaced)}); tuning runs at one point")
    # The sweep axes in their order (so a tuning run is named like the runs beside it), then the rest of `at`.
    point = {key: at.get(key, values[0]) for key, values in axes.items()} | at
    chosen, tuning, waiting = {}, {}, []
    for name, tune_axes in settings.items():
        fixed = {"prune.method": "none", "prune.target_sparsity": 0.0} if name == DENSE else variants[name]
        located = {key: value for key, value in point.items() if not (name == DENSE and key.startswith("prune."))}

        def trial(tried: dict[str, Any], extension: int) -> Trial:
            return Trial(tried, extension, [builder.point(name, {**located, "seed": seed, **fixed, **tried})
                                            for seed in seeds])

        trials = [trial(combo, 0) for combo in _combinations(tune_axes)]
        while True:
            best = _best(trials)
            if best is None:
                waiting.append(name)
                break
            step = _extension(best, trials, tune_axes, cap)
            if step is None:
                chosen[name] = best.tried
                break
            key, value, extension = step
            trials.append(trial({**best.tried, key: value}, extension))
        tuning[name] = trials
    return chosen, tuning, waiting


def _best(trials: list[Trial]) -> Trial | None:
    """The trial with the highest mean validation top-1 (the first of equals, in grid order); None until all
    have finished. A run without a validation split cannot be chosen: data.val_size must be > 0."""
    if not all(trial.finished for trial in trials):
        return None
    scores = [trial.val_top1 for trial in trials]
    return trials[max(range(len(trials)), key=lambda i: scores[i])]


def _extension(best: Trial, trials: list[Trial], base: dict[str, list], cap: int) -> tuple[str, Any, int] | None:
    """(key, value, how many values past the base list it is) of the next value to try when the best trial
    sits at an edge of a numeric key's values; None when every choice lies inside its range or a side has
    reached the cap. The step is the ratio of the two values at that edge, applied once more."""
    for key, value in best.tried.items():
        values = base[key]
        if not _positive_numbers(values) or len(set(values)) < 2:
            continue  # no ratio to step by: the report marks a choice at its edge
        tried = sorted({trial.tried[key] for trial in trials})
        low, high = min(values), max(values)
        if value == tried[-1]:
            extension = sum(v > high for v in tried) + 1
            step = tried[-1] / tried[-2]
        elif value == tried[0]:
            extension = sum(v < low for v in tried) + 1
            step = tried[0] / tried[1]
        else:
            continue
        if extension > cap:
            continue
        new = float(f"{value * step:.10g}")
        return key, int(new) if all(isinstance(v, int) for v in values) and new.is_integer() else new, extension
    return None


def _positive_numbers(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
               for v in values)


def write_tuning(grid: Grid, out: Path) -> None:
    """`<out>/<grid>.tuning.csv`: every tuning run with its setting, seed and validation top-1, the setting's
    mean over the tuning seeds, and the chosen setting marked."""
    rows = []
    for name, trials in grid.tuning.items():
        best = _best(trials) if name not in grid.waiting else None
        for trial in trials:
            mean = trial.val_top1 if trial.finished else None
            for point in trial.points:
                score = point.val_top1
                rows.append({"variant": name, "setting": " ".join(f"{k}={v}" for k, v in trial.tried.items()),
                             "extension": trial.extension, "seed": point.config.seed, "run": point.directory.name,
                             "val_top1": "" if score is None else score,
                             "setting_val_top1": "" if mean is None else mean, "chosen": trial is best})
    if rows:
        results.write_csv(out / f"{grid.path.stem}{TUNING_SUFFIX}", TUNING_FIELDS, rows)


def write_comparisons(grid: Grid, out: Path) -> None:
    """`<out>/<grid>.comparisons.csv`: the comparisons the grid declares, one row per baseline and cell."""
    if grid.comparisons:
        results.write_csv(out / f"{grid.path.stem}{COMPARISONS_SUFFIX}", COMPARISON_FIELDS, grid.comparisons)
