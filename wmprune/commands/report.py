"""Tables from many runs: every summary.csv under a directory, aggregated over seeds (pandas).

One table per dataset × model × machine class (device and precision, e.g. `cpu/fp32`): no cell and no paired
interval mixes classes, unless `pool_classes` asks for it, and then every pooled cell says so. A directory of
one class per dataset × model gets `<dataset>-<model>.*`; several classes get `<dataset>-<model>.<class>.*`.
Per table: `.accuracy.csv` (one row per variant × target sparsity: test top-1 mean ± std over seeds, Δ to
dense, multiply-add reduction beside compression, the descriptive paired 95 % interval of the per-seed
difference to WeightMom, runs off their sparsity target, collapse rate), `.verdicts.csv` (the grid's declared
comparisons: Bonferroni-adjusted paired intervals and a verdict each, wmprune/verdicts.py), `.equal-drop.csv`
(the highest compression ratio each variant reaches within an accuracy drop of 0.5, 1 and 2 points from dense,
and WeightMom's gain over the best other) and, for a tuned sweep, `.tuning.csv` (what each variant tried and
chose on validation); all in `.md`. Tuning runs are never in a test table. Column meanings:
docs/experiments.md. WeightMom's rows are those labelled `weightmom`, or the label passed as `reference` where
a grid names its variants (an ablation's `momentum-weightmom`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
from scipy import stats

from wmprune import results, verdicts
from wmprune.commands.grid import COMPARISONS_SUFFIX, TUNING_SUFFIX
from wmprune.config import plain, shown
from wmprune.data import NUM_CLASSES
from wmprune.errors import UserError

ACCURACY_SUFFIX, EQUAL_DROP_SUFFIX, VERDICTS_SUFFIX = ".accuracy.csv", ".equal-drop.csv", ".verdicts.csv"
DROPS = (0.5, 1.0, 2.0)
GROUP = ["dataset", "model", "method", "allocation", "variant", "target_sparsity"]
DENSE = "none"
WEIGHTMOM = "weightmom"  # the label of our reading of the paper (method and allocation weightmom); all else is a baseline
NOT_REACHED = "not reached"
UNRECORDED = "unrecorded"  # the machine class of runs written before summary.csv had `device`
ON_TARGET = 0.005  # a run's non-zero count may differ from its target's by this fraction of it


# The summary.csv columns a report reads, and those of them that are numbers.
_SUMMARY_TEXT = ["dataset", "model", "method"]
_SUMMARY_NUMBERS = ["seed", "target_sparsity", "sparsity", "params_prunable", "params_nonzero", "compression_ratio",
                    "weights_kept_pct", "test_top1"]


def load_summaries(runs: Path, skipped: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per finished test run under `runs` at any depth, the tuning records found there).

    Tuning runs are left out of the first, the chosen ones too: they answer "which setting", and a run that
    chose a setting would carry its selection's luck into the test table. A damaged summary.csv or tuning
    record is left out and said so in `skipped` (one line each).
    """
    skipped = [] if skipped is None else skipped
    if not runs.is_dir():
        raise UserError(f"{runs} is not a directory; pass the directory that holds the run directories")
    paths = sorted(runs.rglob(results.SUMMARY))
    if not paths:
        raise UserError(f"no {results.SUMMARY} under {runs}; train or sweep runs into it first")
    rows = _read_records(paths, _summary_row, skipped, "run")
    if not rows:
        raise UserError(f"no readable {results.SUMMARY} under {runs} ({len(paths)} damaged); retrain the runs")
    frame = pd.concat(rows, ignore_index=True)
    for column in ("variant", "macs_reduction", "device", "precision", "git_sha", "cpu_capability"):
        if column not in frame:
            frame[column] = math.nan  # runs written before the column existed
    frame["device"] = [UNRECORDED if pd.isna(device) else str(device) for device in frame["device"]]
    frame["machine_class"] = machine_class(frame)
    frame["variant"] = ["" if pd.isna(v) else str(v) for v in frame["variant"]]
    frame["allocation"] = frame["allocation"].where(frame["method"] != DENSE, "")  # dense has no allocation
    provenance = frame[["run", "dataset", "model", "machine_class", "device", "cpu_capability", "git_sha"]]
    tuning = _tuning_records(runs, skipped).merge(provenance, on="run", how="inner")
    frame = frame[~frame["run"].isin(set(tuning["run"]))].reset_index(drop=True)
    if frame.empty:  # mid-study: tuning has run, the main runs have not
        records = ", ".join(str(p.relative_to(runs)) for p in sorted(runs.rglob(f"*{TUNING_SUFFIX}")))
        raise UserError(f"{runs} holds only tuning runs ({len(rows)}) so far, their choices in {records}; the "
                        f"tables need the main runs: `wmprune sweep --grid GRID --out {runs}` trains them")
    clash = frame[frame.duplicated(GROUP + ["machine_class", "seed"], keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        raise UserError(f"{runs} holds {len(clash)} runs of {first.dataset}/{first.model}/{first.method} at sparsity "
                        f"{first.target_sparsity} with the same seed {first.seed}: they differ in a key summary.csv "
                        "does not record (width, epochs, beta, ...); give them grid variants or report them from "
                        "separate directories")
    return frame, tuning


def _summary_row(path: Path) -> pd.DataFrame:
    """A run's summary.csv, checked to hold one row with the columns a report reads; else ValueError."""
    row = pd.read_csv(path, dtype={"git_sha": str})  # a short sha such as 3e5123456789 is not a number
    missing = [column for column in _SUMMARY_TEXT + _SUMMARY_NUMBERS if column not in row]
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    if len(row) != 1:
        raise ValueError(f"{len(row)} rows where a run has one")
    for column in _SUMMARY_NUMBERS:
        value = pd.to_numeric(row[column], errors="coerce").iloc[0]
        if pd.isna(value) or (column != "compression_ratio" and not math.isfinite(value)):
            raise ValueError(f"{column} is not a number ({shown(row[column].iloc[0])})")
    if not 0 <= float(row["target_sparsity"].iloc[0]) < 1:
        raise ValueError(f"target_sparsity {row['target_sparsity'].iloc[0]} is not a fraction")
    return row.assign(run=path.parent.name)


def _read_records(paths: list[Path], read, skipped: list[str], what: str) -> list[pd.DataFrame]:
    """`read(path)` of every path; one that fails is left out, with its reason appended to `skipped`."""
    frames = []
    for path in paths:
        try:
            frames.append(read(path))
        except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, KeyError) as exc:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            skipped.append(f"skipped {what} {path.parent.name if what == 'run' else path}: {path.name} is damaged "
                           f"({reason})")
    return frames


def machine_class(frame: pd.DataFrame) -> pd.Series:
    """Each run's machine class: the device's name without its bracketed details, `/`, the precision
    (`cpu/fp32`, `NVIDIA H100 80GB HBM3/bf16`); `unrecorded` without a device. Runs written before the
    `precision` column read it from the bracket ("bf16 autocast" → bf16). Thread count and torch version
    are not part of it."""
    device = frame["device"].astype(str)
    name = device.str.split(" (", n=1, regex=False).str[0]
    precision = frame["precision"].where(frame["precision"].notna(), device.str.extract(r"\((\w+)", expand=False))
    return (name + "/" + precision.fillna("fp32")).where(frame["device"] != UNRECORDED, UNRECORDED)


def _tuning_records(runs: Path, skipped: list[str]) -> pd.DataFrame:
    frames = _read_records(sorted(runs.rglob(f"*{TUNING_SUFFIX}")), _tuning_record, skipped, "tuning record")
    if not frames:
        return pd.DataFrame(columns=["variant", "setting", "extension", "run", "val_top1", "setting_val_top1",
                                     "chosen"])
    tuning = pd.concat(frames, ignore_index=True)
    tuning["chosen"] = tuning["chosen"].astype(str) == "True"
    if "extension" not in tuning:  # records written before tuning could extend or take several seeds
        tuning["extension"] = "0"
    if "setting_val_top1" not in tuning:
        tuning["setting_val_top1"] = tuning["val_top1"]
    return tuning


def _tuning_record(path: Path) -> pd.DataFrame:
    record = pd.read_csv(path, keep_default_na=False, dtype=str)
    missing = [column for column in ("variant", "setting", "run", "val_top1", "chosen") if column not in record]
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    return record


def _comparison_record(path: Path) -> pd.DataFrame:
    record = pd.read_csv(path, keep_default_na=False, dtype={"seeds": str})
    missing = [column for column in ("dataset", "model", "reference", "baseline", "target_sparsity", "seeds")
               if column not in record]
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    if not all(_is_fraction(value) for value in record["target_sparsity"]):
        raise ValueError("target_sparsity is not a fraction")
    return record


def _is_fraction(value) -> bool:
    try:
        return 0 <= float(value) < 1
    except (TypeError, ValueError):
        return False


def _comparison_records(runs: Path, skipped: list[str]) -> pd.DataFrame:
    """The comparisons grids declared (their `<grid>.comparisons.csv` beside the runs)."""
    frames = _read_records(sorted(runs.rglob(f"*{COMPARISONS_SUFFIX}")), _comparison_record, skipped,
                           "declared comparisons")
    if not frames:
        return pd.DataFrame(columns=["dataset", "model", "reference", "baseline", "target_sparsity", "seeds"])
    records = pd.concat(frames, ignore_index=True)
    return records.drop_duplicates(["dataset", "model", "reference", "baseline", "target_sparsity"])


def variant_labels(table: pd.DataFrame) -> pd.Series:
    """The grid's variant name where there is one; else `method`, or `method/allocation` where one table holds
    a method with several allocations."""
    allocations = table.groupby("method")["allocation"].transform("nunique")
    by_method = table["method"].where(allocations <= 1, table["method"] + "/" + table["allocation"])
    by_method = by_method.where(table["method"] != DENSE, "dense")
    return table["variant"].where(table["variant"] != "", by_method)


def dense_reference(runs: pd.DataFrame) -> float:
    """The one dense top-1 every table compares with: the mean over all dense runs (NaN without any)."""
    return runs.loc[runs["method"] == DENSE, "test_top1"].mean()


def accuracy_table(runs: pd.DataFrame, reference: str = WEIGHTMOM) -> pd.DataFrame:
    """Means over seeds per variant × target sparsity of one dataset/model, dense first; paired intervals
    against the rows labelled `reference` (WeightMom), runs off their target and collapsed runs counted."""
    dense = dense_reference(runs)
    runs = runs.assign(label=variant_labels(runs), off_target=off_target(runs), collapsed=is_collapsed(runs, dense))
    table = runs.groupby(GROUP, as_index=False).agg(
        label=("label", "first"), sparsity=("sparsity", "mean"), compression_ratio=("compression_ratio", "mean"),
        weights_kept_pct=("weights_kept_pct", "mean"), macs_reduction=("macs_reduction", "mean"),
        top1_mean=("test_top1", "mean"), top1_std=("test_top1", "std"), n_seeds=("seed", "nunique"),
        off_target=("off_target", "sum"), n_collapsed=("collapsed", "sum"),
        machine_class=("machine_class", lambda c: " + ".join(sorted(set(c)))))
    table["delta_dense"] = table["top1_mean"] - dense
    paired = [_paired_to_weightmom(runs, row.label, row.target_sparsity, reference) for row in table.itertuples()]
    columns = ["vs_weightmom", "ci95", "n_paired", "n_cross_machine"]
    for column, values in zip(columns, zip(*paired) if paired else [()] * len(columns)):
        table[column] = values
    table["collapse_rate"] = [f"{c}/{n}" if 0 < c < n else "" for c, n in zip(table["n_collapsed"], table["n_seeds"])]
    table = table.rename(columns={"label": "variant_label"}).drop(columns="n_collapsed")
    table = table.assign(_dense_last=table["method"] != DENSE)
    return table.sort_values(["_dense_last", "variant_label", "target_sparsity"]).drop(columns="_dense_last")


def off_target(runs: pd.DataFrame) -> pd.Series:
    """Runs whose counted non-zero weights differ from their target's count by more than ON_TARGET of it
    (relative, so 100× and 104.8× at 0.99 differ)."""
    wanted = ((1 - runs["target_sparsity"]) * runs["params_prunable"]).round()
    return (runs["params_nonzero"] - wanted).abs() > ON_TARGET * wanted


def is_collapsed(runs: pd.DataFrame, dense_top1: float) -> pd.Series:
    """Runs closer to chance than to dense (verdicts.collapse_threshold); without a dense run, closer to chance than to
    the best cell of the table."""
    healthy = dense_top1 if not math.isnan(dense_top1) else runs.groupby(GROUP)["test_top1"].mean().max()
    chance = runs["dataset"].map(lambda name: 100.0 / NUM_CLASSES.get(name, 10))
    return runs["test_top1"] < verdicts.collapse_threshold(chance, healthy)


def _paired_to_weightmom(runs: pd.DataFrame, label: str, target: float,
                         reference: str) -> tuple[float, float, int, int]:
    """(mean, 95 % t-interval half-width, seeds, seeds whose two runs are not known to share a machine class)
    of top-1(label) − top-1(WeightMom) over the seeds both have at `target`: a paired comparison, since a seed
    fixes the initialisation and the data order for both. Descriptive (not adjusted for the table's many
    comparisons); no interval where either cell splits into collapsed and healthy runs."""
    if label == reference or label == "dense":
        return math.nan, math.nan, 0, 0
    at = runs[runs["target_sparsity"] == target]
    ours, theirs = at[at["label"] == reference], at[at["label"] == label]
    ours_by_seed, theirs_by_seed = _by_seed(ours), _by_seed(theirs)
    differences = (theirs_by_seed["test_top1"] - ours_by_seed["test_top1"]).dropna()
    n = len(differences)
    if n == 0:
        return math.nan, math.nan, 0, 0
    theirs_on, ours_on = (side.loc[differences.index, "machine_class"] for side in (theirs_by_seed, ours_by_seed))
    cross = int((~((theirs_on == ours_on) & (ours_on != UNRECORDED))).sum())
    if n == 1 or _split(ours) or _split(theirs):
        return float(differences.mean()), math.nan, n, cross
    half = stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n)
    return float(differences.mean()), float(half), n, cross


def _by_seed(cell: pd.DataFrame) -> pd.DataFrame:
    """A cell's runs by seed. Only a pooled table holds a seed twice (once per machine class): its top-1 is then
    their mean and its class their classes joined, so the pair counts as crossing machines."""
    return cell.groupby("seed").agg(test_top1=("test_top1", "mean"),
                                    machine_class=("machine_class", lambda c: " + ".join(sorted(set(c)))))


def _split(cell: pd.DataFrame) -> bool:
    """Whether a cell's seeds split into collapsed and healthy runs."""
    return 0 < int(cell["collapsed"].sum()) < len(cell)


def verdicts_table(runs: pd.DataFrame, declared: pd.DataFrame, margin: float, alpha: float = 0.05) -> pd.DataFrame:
    """One row per declared comparison of this table: the paired differences reference − baseline over the
    seeds both ran, their Bonferroni-adjusted interval (family: the table's declared comparisons), TOST p
    against ±margin and the verdict (wmprune/verdicts.py)."""
    runs = runs.assign(label=variant_labels(runs), collapsed=is_collapsed(runs, dense_reference(runs)))
    family = len(declared)
    rows = []
    for row in declared.itertuples():
        at = runs[runs["target_sparsity"] == float(row.target_sparsity)]
        ours, theirs = at[at["label"] == row.reference], at[at["label"] == row.baseline]
        differences = (_by_seed(ours)["test_top1"] - _by_seed(theirs)["test_top1"]).dropna()
        verdict = verdicts.decide(list(differences), margin, family, alpha)
        mixed = _split(ours) or _split(theirs)
        rows.append({
            "reference": row.reference, "baseline": row.baseline, "target_sparsity": float(row.target_sparsity),
            "seeds_planned": len(str(row.seeds).split()), "n_paired": verdict.n,
            "reference_top1": ours["test_top1"].mean(), "baseline_top1": theirs["test_top1"].mean(),
            "difference": verdict.difference, "low": math.nan if mixed else verdict.low,
            "high": math.nan if mixed else verdict.high, "level": verdict.level, "margin": margin,
            "tost_p": verdict.tost_p, "family_size": family,
            "collapsed": f"{int(ours['collapsed'].sum())}/{len(ours)} vs {int(theirs['collapsed'].sum())}/{len(theirs)}",
            "verdict": verdicts.MIXED_COLLAPSE if mixed else verdict.verdict})
    return pd.DataFrame(rows)


def equal_drop_table(accuracy: pd.DataFrame, dense_top1: float, reference: str = WEIGHTMOM) -> pd.DataFrame | None:
    """Rows: allowed drop of top-1 from `dense_top1` (points). Columns: highest mean compression ratio per
    variant whose mean top-1 stays within it, the best baseline, and WeightMom's (`reference`) gain over it in %."""
    if math.isnan(dense_top1):
        return None
    pruned = accuracy[accuracy["method"] != DENSE]
    labels = list(dict.fromkeys(pruned["variant_label"]))
    rows = []
    for drop in DROPS:
        within = pruned[dense_top1 - pruned["top1_mean"] <= drop]
        best = within.groupby("variant_label")["compression_ratio"].max().reindex(labels)
        baselines = best.drop(reference, errors="ignore").dropna()
        ours = best.get(reference, math.nan)
        best_baseline = baselines.idxmax() if not baselines.empty else ""
        gain = 100.0 * (ours / baselines.max() - 1.0) if best_baseline and not math.isnan(ours) else math.nan
        rows.append({"max_drop": drop, "dense_top1": dense_top1, **best.to_dict(), "best_baseline": best_baseline,
                     "weightmom_gain_pct": gain})
    return pd.DataFrame(rows)


def add_inference_speedups(accuracy: pd.DataFrame, frame: pd.DataFrame, runs: Path,
                           skipped: list[str] | None = None) -> pd.DataFrame:
    """`accuracy` with, right after compression_ratio, one `speedup_b<batch>_t<threads>` column per setting that
    `wmprune bench` measured (its inference.csv beside a run's summary.csv): the end-to-end dense / sparse latency
    ratio, mean over the group's benchmarked runs (docs/inference.md). Unchanged when no run was benchmarked.
    A damaged inference.csv is left out and said so in `skipped`."""
    def speedups_of(path: Path) -> pd.DataFrame:
        network = pd.read_csv(path).query("layer == 'network'")
        if not pd.api.types.is_numeric_dtype(network["speedup"]):
            raise ValueError("speedup is not a number")
        columns = "speedup_b" + network["batch"].astype(str) + "_t" + network["threads"].astype(str)
        speedups = pd.DataFrame([network["speedup"].to_numpy()], columns=columns.to_numpy())
        return frame[frame["run"] == path.parent.name][GROUP].reset_index(drop=True).join(speedups)

    benchmarked = [path for path in sorted(runs.rglob(results.INFERENCE)) if path.parent.name in set(frame["run"])]
    frames = _read_records(benchmarked, speedups_of, [] if skipped is None else skipped, "benchmark")
    if not frames:
        return accuracy
    means = pd.concat(frames, ignore_index=True).groupby(GROUP, as_index=False).mean()
    merged = accuracy.merge(means, on=GROUP, how="left")
    added = [c for c in means.columns if c not in GROUP]
    at = list(accuracy.columns).index("compression_ratio") + 1
    return merged[list(accuracy.columns[:at]) + added + list(accuracy.columns[at:])]


def tuning_table(tuning: pd.DataFrame) -> pd.DataFrame:
    """Per variant tuned (in one table): settings tried (extensions past the base list's edges included), the
    one chosen, its mean validation top-1 over the tuning seeds, and whether the choice still sits at the edge
    of what was tried (see `edge_of_range`)."""
    rows = []
    for variant, group in tuning.groupby("variant", sort=False):
        settings = group.drop_duplicates("setting")
        chosen = settings[settings["chosen"]]
        setting = chosen["setting"].iloc[0] if not chosen.empty else ""
        rows.append({"variant": variant, "settings_tried": len(settings),
                     "extensions": int(settings["extension"].astype(int).max()), "chosen": setting,
                     "chosen_val_top1": float(chosen["setting_val_top1"].iloc[0]) if not chosen.empty else math.nan,
                     "chosen_at_edge": edge_of_range(setting, list(settings["setting"])),
                     "tried": "; ".join(f"{s} ({float(v):.2f})" if v else f"{s} (not finished)"
                                        for s, v in zip(settings["setting"], settings["setting_val_top1"]))})
    return pd.DataFrame(rows)


def edge_of_range(chosen: str, tried: list[str]) -> str:
    """Each numeric key of the `chosen` setting whose value is the largest or smallest of two or more values
    tried ("train.lr largest tried"): the best value may lie outside the range, so that variant may be
    under-tuned against the others. The sweep extends such a range up to its cap, so a choice flagged here
    reached the cap (or had no ratio to step by). Empty when every choice lies inside its range."""
    tried_settings = [_parse_setting(text) for text in tried]
    notes = []
    for key, value in _parse_setting(chosen).items():
        try:
            values, here = sorted({float(s[key]) for s in tried_settings if key in s}), float(value)
        except ValueError:
            continue  # not a number: no range to be at the edge of
        if len(values) >= 2 and here in (values[0], values[-1]):
            notes.append(f"{key} {'largest' if here == values[-1] else 'smallest'} tried")
    return "; ".join(notes)


def _parse_setting(text: str) -> dict[str, str]:
    """"train.lr=0.1 prune.gamma=2" → {"train.lr": "0.1", "prune.gamma": "2"} (a value may hold spaces)."""
    return dict(part.split("=", 1) for part in re.split(r" (?=[\w.]+=)", text) if part)


_FORMATS = {"target_sparsity": "{:g}", "sparsity": "{:.4f}", "top1_std": "{:.2f}", "delta_dense": "{:+.2f}",
            "vs_weightmom": "{:+.2f}", "ci95": "±{:.2f}", "max_drop": "{:.1f}", "weightmom_gain_pct": "{:+.1f}",
            "difference": "{:+.2f}", "low": "{:+.2f}", "high": "{:+.2f}", "level": "{:.5f}", "margin": "±{:g}",
            "tost_p": "{:.4f}"}


def _cell(column: str, value, missing: str = "—") -> str:
    if isinstance(value, float):
        return missing if math.isnan(value) else _FORMATS.get(column, "{:.2f}").format(value)
    return str(value) if value != "" else missing


def markdown(table: pd.DataFrame, missing: dict[str, str] | None = None) -> str:
    """A GitHub markdown table (pandas' to_markdown needs the extra `tabulate` package). `missing`: what an
    empty cell of a column means (default "—")."""
    missing = missing or {}
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(c, v, missing.get(c, "—")) for c, v in zip(table.columns, row)) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


_SHOWN = ["variant_label", "target_sparsity", "sparsity", "compression_ratio", "weights_kept_pct", "macs_reduction",
          "top1_mean", "top1_std", "n_seeds", "delta_dense", "vs_weightmom", "ci95", "n_paired", "off_target",
          "collapse_rate"]
_VERDICT_SHOWN = ["baseline", "target_sparsity", "n_paired", "seeds_planned", "reference_top1", "baseline_top1",
                  "difference", "low", "high", "tost_p", "collapsed", "verdict"]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# How each file a report writes begins: a file in --out is replaced only when it begins so (or with --overwrite).
_HEADS = {ACCURACY_SUFFIX: "dataset,model,method,allocation,variant,target_sparsity,", EQUAL_DROP_SUFFIX:
          "max_drop,dense_top1,", VERDICTS_SUFFIX: "reference,baseline,target_sparsity,",
          TUNING_SUFFIX: "variant,settings_tried,"}
_PAGE_TITLE = re.compile(r"# .+ / .+: \d+ runs")


def written_by_report(path: Path) -> bool:
    """Whether `path` is a table `write_report` wrote, by the way it begins."""
    line = results.first_line(path)
    if path.suffix == ".md":
        return _PAGE_TITLE.fullmatch(line) is not None
    return any(path.name.endswith(suffix) and line.startswith(head) for suffix, head in _HEADS.items())


def write_report(runs: Path, out: Path, reference: str = WEIGHTMOM, margin: float = 1.0,
                 pool_classes: bool = False, overwrite: bool = False) -> tuple[list[Path], list[str]]:
    """Write the tables of every dataset × model × machine class under `runs` into `out` (one table per
    dataset × model across classes with `pool_classes`), paired intervals against the variant labelled
    `reference`, verdicts on the declared comparisons with `margin` points of equivalence; returns the
    markdown files and the warnings (runs skipped as damaged, runs off their target, tuning from another class).
    Nothing is written unless every file can be: a file in `out` that is not a table of an earlier report is
    replaced only with `overwrite`."""
    if not (margin > 0 and math.isfinite(margin)):
        raise UserError(f"--margin must be a positive number of points, got {margin}")
    skipped: list[str] = []
    frame, tuning = load_summaries(runs, skipped)
    declared = _comparison_records(runs, skipped)
    # labels exactly as each table will show them: a method's `method/allocation` split is per dataset × model
    labels = {label for _, pair in frame.groupby(["dataset", "model"]) for label in variant_labels(pair)}
    if reference != WEIGHTMOM and reference not in labels:
        raise UserError(f"--reference {plain(reference)}: no runs under {runs} carry that label; pick one of "
                        + ", ".join(sorted(labels)))
    keys = ["dataset", "model"] if pool_classes else ["dataset", "model", "machine_class"]
    classes_per_pair = frame.groupby(["dataset", "model"])["machine_class"].nunique()
    pages, files, warnings = [], {}, skipped
    for key, table_runs in frame.groupby(keys):
        dataset, model = key[0], key[1]
        one_class = pool_classes or classes_per_pair[(dataset, model)] == 1
        stem = out / (f"{dataset}-{model}" if one_class else f"{dataset}-{model}.{_slug(key[2])}")
        text, notes = _table_files(stem, table_runs, runs, reference, margin, pool_classes,
                                   _in_table(tuning, key, ["dataset", "model"]),
                                   _in_table(declared, key, ["dataset", "model"]), files)
        pages.append(stem.with_name(stem.name + ".md"))
        files[pages[-1]] = text
        warnings += notes
    results.check_output_directory(out, "--out")
    for path in files:
        results.check_output_file(path, "--out", overwrite, written_by_report)
    for path, text in files.items():
        results.atomic_write_text(path, text)
    return pages, warnings


def _counts(values: pd.Series) -> str:
    """`value × count, …`, the most frequent first; a missing value is `unrecorded`."""
    counted = pd.Series([UNRECORDED if pd.isna(value) else str(value) for value in values]).value_counts()
    return ", ".join(f"{value} × {count}" for value, count in counted.items())


def _in_table(records: pd.DataFrame, key: tuple, keys: list[str]) -> pd.DataFrame:
    mask = pd.Series(True, index=records.index)
    for column, value in zip(keys, key):
        mask &= records[column].astype(str) == str(value)
    return records[mask]


def _table_files(stem: Path, runs_of_table: pd.DataFrame, runs: Path, reference: str, margin: float, pooled: bool,
                 tuning: pd.DataFrame, declared: pd.DataFrame, files: dict[Path, str]) -> tuple[str, list[str]]:
    """One table's CSV files, added to `files` (path → text); returns its markdown page and its warnings."""
    def path(suffix: str) -> Path:
        return stem.with_name(stem.name + suffix)

    pair = runs_of_table
    dataset, model = pair["dataset"].iloc[0], pair["model"].iloc[0]
    notes: list[str] = []
    accuracy = add_inference_speedups(accuracy_table(pair, reference), pair, runs, notes)
    dense_top1 = dense_reference(pair)
    files[path(ACCURACY_SUFFIX)] = accuracy.to_csv(index=False)
    speedups = [c for c in accuracy.columns if c.startswith("speedup_")]
    shown = _SHOWN[:_SHOWN.index("compression_ratio") + 1] + speedups + _SHOWN[_SHOWN.index("compression_ratio") + 1:]
    classes = sorted(set(pair["machine_class"]))
    if pooled and len(classes) > 1:
        shown += ["machine_class", "n_cross_machine"]
        accuracy = accuracy.assign(variant_label=[f"{label} (pooled)" if " + " in c else label for label, c in
                                                  zip(accuracy["variant_label"], accuracy["machine_class"])])
    cpu_runs = pair[pair["device"].str.startswith("cpu")]
    capabilities = (f" CPU capability of its CPU runs (kernels may round differently across it): "
                    f"{_counts(cpu_runs['cpu_capability'])}." if not cpu_runs.empty else "")
    dense_text = "no dense run" if math.isnan(dense_top1) else f"{dense_top1:.2f}"
    named = "" if reference == WEIGHTMOM else f" (`{reference}`)"
    class_text = (f"POOLED across machine classes ({', '.join(classes)}): a cell marked (pooled) mixes classes, "
                  "and so does any paired interval of it." if pooled and len(classes) > 1
                  else f"Machine class: {classes[0]}.")
    text = (f"# {dataset} / {model}: {len(pair)} runs\n\n{class_text} Trained on: {_counts(pair['device'])}."
            f"{capabilities} Code (git_sha): {_counts(pair['git_sha'])}.\n\nTest top-1 (%) mean "
            f"and std over seeds; Δ to the dense mean ({dense_text}); `vs_weightmom`: mean per-seed difference to "
            f"WeightMom{named} at the same sparsity, `ci95` its paired 95 % t-interval (descriptive: not adjusted "
            f"for the table's many comparisons; the verdicts below are); `off_target`: runs whose non-zero count "
            f"misses the target's by more than {ON_TARGET:.1%}; `collapse_rate`: runs closer to chance than to dense, "
            f"where a cell's seeds split (no interval then); `macs_reduction`: dense / pruned multiply-adds."
            f"\n\n{markdown(accuracy[shown].rename(columns={'variant_label': 'variant'}), {'collapse_rate': ''})}")
    off = pair[off_target(pair)]
    if not off.empty:
        notes.append(f"{dataset}/{model}: {len(off)} run(s) off their sparsity target by more than {ON_TARGET:.1%}: "
                     + ", ".join(off["run"]))
        text += f"\n**Off target** (non-zero count more than {ON_TARGET:.1%} from the target's): " \
                + ", ".join(f"`{run}`" for run in off["run"]) + ".\n"
    if not declared.empty:
        verdict_table = verdicts_table(pair, declared, margin)
        files[path(VERDICTS_SUFFIX)] = verdict_table.to_csv(index=False)
        text += (f"\n## Declared comparisons: verdicts\n\nDeclared in the grid before the main runs. `difference`: "
                 f"mean per-seed top-1 of {declared['reference'].iloc[0]} − baseline; `low`/`high`: its paired "
                 f"t-interval at {verdict_table['level'].iloc[0]:.2%}, Bonferroni-adjusted for the "
                 f"{len(verdict_table)} declared comparisons (simultaneous 95 %); `tost_p`: two one-sided tests "
                 f"against ±{margin:g} points. Verdict: ahead / behind when the interval excludes zero; level when "
                 f"TOST puts the difference inside ±{margin:g} at the same adjusted level; \"(within margin)\" when "
                 f"both hold; undecided otherwise; mixed collapse when a cell's seeds split into collapsed and "
                 f"healthy runs (no interval).\n\n{markdown(verdict_table[_VERDICT_SHOWN])}")
        short = verdict_table[verdict_table["n_paired"] < verdict_table["seeds_planned"]]
        if not short.empty:
            text += (f"\n{len(short)} of {len(verdict_table)} comparisons have fewer paired seeds than planned: "
                     "their verdicts are provisional.\n")
    equal_drop = equal_drop_table(accuracy, dense_top1, reference)
    if equal_drop is None:
        text += "\nNo dense run (prune.method none): no Δ and no equal-accuracy-drop table.\n"
    else:
        files[path(EQUAL_DROP_SUFFIX)] = equal_drop.to_csv(index=False)
        reached = {label: NOT_REACHED for label in equal_drop.columns[2:-2]} | {"best_baseline": "none reached"}
        text += ("\n## Highest compression ratio within an accuracy drop (points of top-1 from dense)\n\n"
                 f"{markdown(equal_drop, reached)}")
    tuning_in_class = tuning if pooled else tuning[tuning["machine_class"].isin(classes)]
    tuned = tuning_table(tuning_in_class)
    if not tuned.empty:
        files[path(TUNING_SUFFIX)] = tuned.to_csv(index=False)
        tuning_runs = tuning_in_class.drop_duplicates("run")
        text += ("\n## Settings chosen on validation (mean last-epoch val_top1 over the tuning seeds; the test split "
                 "chose nothing, and no tuning run is in the tables above)\n\n"
                 f"Tuning runs: {len(tuning_runs)}, trained on {_counts(tuning_runs['device'])}. CPU capability: "
                 f"{_counts(tuning_runs['cpu_capability'])}. Code (git_sha): {_counts(tuning_runs['git_sha'])}.\n\n"
                 f"{markdown(tuned, {'chosen_at_edge': ''})}")
        at_edge = tuned[tuned["chosen_at_edge"] != ""]
        if not at_edge.empty:
            text += ("\nStill at the edge of the range after its extensions (the cap reached): "
                     + ", ".join(f"{row.variant} ({row.chosen_at_edge})" for row in at_edge.itertuples())
                     + ". Their best setting may lie outside it.\n")
    # Every variant tuned somewhere for this dataset × model should have been tuned in this table's class.
    untuned = sorted(set(tuning["variant"]) & set(accuracy["variant_label"]) - set(tuned.get("variant", [])))
    if untuned:
        notes.append(f"{dataset}/{model} ({', '.join(classes)}): no tuning run in this class for "
                     + ", ".join(untuned))
        text += f"\nNo tuning run of this machine class for: {', '.join(untuned)}.\n"
    return text, notes
