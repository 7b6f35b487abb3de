"""Tables from many runs: every summary.csv under a directory, aggregated over seeds (pandas).

Per dataset × model, `<dataset>-<model>.accuracy.csv` (one row per variant × target sparsity: test top-1
mean ± std over seeds, Δ to dense, multiply-add reduction beside compression, and the paired 95 % interval
of the per-seed difference to WeightMom), `<dataset>-<model>.equal-drop.csv` (the highest compression ratio
each variant reaches within an accuracy drop of 0.5, 1 and 2 points from dense, and WeightMom's gain over
the best other) and, for a tuned sweep, `<dataset>-<model>.tuning.csv` (what each variant tried and chose on
validation); all in `<dataset>-<model>.md`. Column meanings: docs/experiments.md. WeightMom's rows are those
labelled `weightmom`, or the label passed as `reference` where a grid names its variants (an ablation's
`momentum-weightmom`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
from scipy import stats

from wmprune import results
from wmprune.commands.grid import TUNING_SUFFIX
from wmprune.errors import UserError

ACCURACY_SUFFIX, EQUAL_DROP_SUFFIX = ".accuracy.csv", ".equal-drop.csv"  # and grid.TUNING_SUFFIX
DROPS = (0.5, 1.0, 2.0)
GROUP = ["dataset", "model", "method", "allocation", "variant", "target_sparsity"]
DENSE = "none"
WEIGHTMOM = "weightmom"  # the label of our reading of the paper (method and allocation weightmom); all else is a baseline
NOT_REACHED = "not reached"
UNRECORDED = "unrecorded"  # the device of runs written before summary.csv had the column


def load_summaries(runs: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per finished run under `runs` at any depth, the tuning records found there).

    Tuning runs that were not chosen are left out of the first: they answer "which setting", not "how good".
    """
    if not runs.is_dir():
        raise UserError(f"{runs} is not a directory; pass the directory that holds the run directories")
    paths = sorted(runs.rglob(results.SUMMARY))
    if not paths:
        raise UserError(f"no {results.SUMMARY} under {runs}; train or sweep runs into it first")
    frame = pd.concat([pd.read_csv(path).assign(run=path.parent.name) for path in paths], ignore_index=True)
    for column in ("variant", "macs_reduction", "device"):
        if column not in frame:
            frame[column] = math.nan  # runs written before the column existed
    frame["device"] = frame["device"].fillna(UNRECORDED)
    frame["variant"] = ["" if pd.isna(v) else str(v) for v in frame["variant"]]
    frame["allocation"] = frame["allocation"].where(frame["method"] != DENSE, "")  # dense has no allocation
    tuning = _tuning_records(runs).merge(frame[["run", "dataset", "model"]], on="run", how="inner")
    frame = frame[~frame["run"].isin(set(tuning.loc[~tuning["chosen"], "run"]))].reset_index(drop=True)
    clash = frame[frame.duplicated(GROUP + ["seed"], keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        raise UserError(f"{runs} holds {len(clash)} runs of {first.dataset}/{first.model}/{first.method} at sparsity "
                        f"{first.target_sparsity} with the same seed {first.seed}: they differ in a key summary.csv "
                        "does not record (width, epochs, beta, ...); give them grid variants or report them from "
                        "separate directories")
    return frame, tuning


def _tuning_records(runs: Path) -> pd.DataFrame:
    paths = sorted(runs.rglob(f"*{TUNING_SUFFIX}"))
    if not paths:
        return pd.DataFrame(columns=["variant", "setting", "run", "val_top1", "chosen"])
    tuning = pd.concat([pd.read_csv(path, keep_default_na=False, dtype=str) for path in paths], ignore_index=True)
    tuning["chosen"] = tuning["chosen"].astype(str) == "True"
    return tuning


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
    against the rows labelled `reference` (WeightMom)."""
    runs = runs.assign(label=variant_labels(runs))
    table = runs.groupby(GROUP, as_index=False).agg(
        label=("label", "first"), sparsity=("sparsity", "mean"), compression_ratio=("compression_ratio", "mean"),
        weights_kept_pct=("weights_kept_pct", "mean"), macs_reduction=("macs_reduction", "mean"),
        top1_mean=("test_top1", "mean"), top1_std=("test_top1", "std"), n_seeds=("seed", "nunique"))
    table["delta_dense"] = table["top1_mean"] - dense_reference(runs)
    paired = [_paired_to_weightmom(runs, row.label, row.target_sparsity, reference) for row in table.itertuples()]
    columns = ["vs_weightmom", "ci95", "n_paired", "n_cross_machine"]
    for column, values in zip(columns, zip(*paired) if paired else [()] * len(columns)):
        table[column] = values
    table = table.rename(columns={"label": "variant_label"})
    table = table.assign(_dense_last=table["method"] != DENSE)
    return table.sort_values(["_dense_last", "variant_label", "target_sparsity"]).drop(columns="_dense_last")


def _paired_to_weightmom(runs: pd.DataFrame, label: str, target: float,
                         reference: str) -> tuple[float, float, int, int]:
    """(mean, 95 % t-interval half-width, seeds, seeds not known to share a machine) of top-1(label) −
    top-1(WeightMom) over the seeds both have at `target`: a paired comparison, since a seed fixes the
    initialisation and the data order for both. A pair from two machines (bf16 GPU against fp32 CPU, say)
    also differs by the machine, so the last count says how many pairs that is."""
    if label == reference or label == "dense":
        return math.nan, math.nan, 0, 0
    at = runs[runs["target_sparsity"] == target].set_index("seed")
    ours, theirs = at[at["label"] == reference], at[at["label"] == label]
    differences = (theirs["test_top1"] - ours["test_top1"]).dropna()
    n = len(differences)
    if n == 0:
        return math.nan, math.nan, 0, 0
    theirs_on, ours_on = (machine(side.loc[differences.index, "device"]) for side in (theirs, ours))
    cross = int((~((theirs_on == ours_on) & (ours_on != UNRECORDED))).sum())
    if n == 1:
        return float(differences.iloc[0]), math.nan, 1, cross
    half = stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n)
    return float(differences.mean()), float(half), n, cross


def machine(devices: pd.Series) -> pd.Series:
    """The machine part of summary.csv's `device` ("cpu", "NVIDIA H100 80GB HBM3"): the text before its
    bracketed precision and threads."""
    return devices.str.split(" (", n=1, regex=False).str[0]


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


def add_inference_speedups(accuracy: pd.DataFrame, frame: pd.DataFrame, runs: Path) -> pd.DataFrame:
    """`accuracy` with, right after compression_ratio, one `speedup_b<batch>_t<threads>` column per setting that
    `wmprune bench` measured (its inference.csv beside a run's summary.csv): the end-to-end dense / sparse latency
    ratio, mean over the group's benchmarked runs (docs/inference.md). Unchanged when no run was benchmarked."""
    frames = []
    for path in sorted(runs.rglob(results.INFERENCE)):
        run = frame[frame["run"] == path.parent.name]
        if not run.empty:
            network = pd.read_csv(path).query("layer == 'network'")
            columns = "speedup_b" + network["batch"].astype(str) + "_t" + network["threads"].astype(str)
            speedups = pd.DataFrame([network["speedup"].to_numpy()], columns=columns.to_numpy())
            frames.append(run[GROUP].reset_index(drop=True).join(speedups))
    if not frames:
        return accuracy
    means = pd.concat(frames, ignore_index=True).groupby(GROUP, as_index=False).mean()
    merged = accuracy.merge(means, on=GROUP, how="left")
    added = [c for c in means.columns if c not in GROUP]
    at = list(accuracy.columns).index("compression_ratio") + 1
    return merged[list(accuracy.columns[:at]) + added + list(accuracy.columns[at:])]


def tuning_table(tuning: pd.DataFrame) -> pd.DataFrame:
    """Per variant tuned (in one dataset/model): settings tried, the one chosen, its validation top-1, and
    whether the choice sits at the edge of a range tried (see `edge_of_range`)."""
    rows = []
    for variant, group in tuning.groupby("variant", sort=False):
        chosen = group[group["chosen"]]
        setting = chosen["setting"].iloc[0] if not chosen.empty else ""
        rows.append({"variant": variant, "settings_tried": len(group), "chosen": setting,
                     "chosen_val_top1": float(chosen["val_top1"].iloc[0]) if not chosen.empty else math.nan,
                     "chosen_at_edge": edge_of_range(setting, list(group["setting"])),
                     "tried": "; ".join(f"{s} ({float(v):.2f})" if v else f"{s} (not finished)"
                                        for s, v in zip(group["setting"], group["val_top1"]))})
    return pd.DataFrame(rows)


def edge_of_range(chosen: str, tried: list[str]) -> str:
    """Each numeric key of the `chosen` setting whose value is the largest or smallest of three or more values
    tried ("train.lr largest tried"): the best value may lie outside the range, so that variant may be
    under-tuned against the others. Empty when every choice lies inside its range."""
    tried_settings = [_parse_setting(text) for text in tried]
    notes = []
    for key, value in _parse_setting(chosen).items():
        try:
            values, here = sorted({float(s[key]) for s in tried_settings if key in s}), float(value)
        except ValueError:
            continue  # not a number: no range to be at the edge of
        if len(values) >= 3 and here in (values[0], values[-1]):
            notes.append(f"{key} {'largest' if here == values[-1] else 'smallest'} tried")
    return "; ".join(notes)


def _parse_setting(text: str) -> dict[str, str]:
    """"train.lr=0.1 prune.gamma=2" → {"train.lr": "0.1", "prune.gamma": "2"} (a value may hold spaces)."""
    return dict(part.split("=", 1) for part in re.split(r" (?=[\w.]+=)", text) if part)


_FORMATS = {"target_sparsity": "{:g}", "sparsity": "{:.4f}", "top1_std": "{:.2f}", "delta_dense": "{:+.2f}",
            "vs_weightmom": "{:+.2f}", "ci95": "±{:.2f}", "max_drop": "{:.1f}", "weightmom_gain_pct": "{:+.1f}"}


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
          "top1_mean", "top1_std", "n_seeds", "delta_dense", "vs_weightmom", "ci95", "n_paired", "n_cross_machine"]


def write_report(runs: Path, out: Path, reference: str = WEIGHTMOM) -> list[Path]:
    """Write the tables of every dataset × model under `runs` into `out`, paired intervals against the
    variant labelled `reference`; returns the markdown files."""
    frame, tuning = load_summaries(runs)
    # labels exactly as each table will show them: a method's `method/allocation` split is per dataset × model
    labels = {label for _, pair in frame.groupby(["dataset", "model"]) for label in variant_labels(pair)}
    if reference != WEIGHTMOM and reference not in labels:
        raise UserError(f"--reference {reference}: no runs under {runs} carry that label; pick one of "
                        + ", ".join(sorted(labels)))
    written = []
    for (dataset, model), pair in frame.groupby(["dataset", "model"]):
        stem = out / f"{dataset}-{model}"
        accuracy = add_inference_speedups(accuracy_table(pair, reference), pair, runs)
        dense_top1 = dense_reference(pair)
        results.atomic_write_text(stem.with_name(stem.name + ACCURACY_SUFFIX), accuracy.to_csv(index=False))
        speedups = [c for c in accuracy.columns if c.startswith("speedup_")]
        shown = _SHOWN[:_SHOWN.index("compression_ratio") + 1] + speedups + _SHOWN[_SHOWN.index("compression_ratio") + 1:]
        machines = ", ".join(f"{device} × {count}" for device, count in pair["device"].value_counts().items())
        dense_text = "no dense run" if math.isnan(dense_top1) else f"{dense_top1:.2f}"
        named = "" if reference == WEIGHTMOM else f" (`{reference}`)"
        text = (f"# {dataset} / {model}: {len(pair)} runs\n\nTrained on: {machines}.\n\nTest top-1 (%) mean and std over seeds; Δ to the "
                f"dense mean ({dense_text}); `vs_weightmom`: mean per-seed difference to WeightMom{named} at the same "
                f"sparsity, `ci95` its paired 95 % t-interval, `n_cross_machine` how many of its `n_paired` seeds "
                f"pair runs not known to share a machine; `macs_reduction`: dense / pruned multiply-adds."
                f"\n\n{markdown(accuracy[shown].rename(columns={'variant_label': 'variant'}))}")
        equal_drop = equal_drop_table(accuracy, dense_top1, reference)
        if equal_drop is None:
            text += "\nNo dense run (prune.method none): no Δ and no equal-accuracy-drop table.\n"
        else:
            results.atomic_write_text(stem.with_name(stem.name + EQUAL_DROP_SUFFIX), equal_drop.to_csv(index=False))
            reached = {label: NOT_REACHED for label in equal_drop.columns[2:-2]} | {"best_baseline": "none reached"}
            text += ("\n## Highest compression ratio within an accuracy drop (points of top-1 from dense)\n\n"
                     f"{markdown(equal_drop, reached)}")
        tuned = tuning_table(tuning[(tuning["dataset"] == dataset) & (tuning["model"] == model)])
        if not tuned.empty:
            results.atomic_write_text(stem.with_name(stem.name + TUNING_SUFFIX), tuned.to_csv(index=False))
            text += ("\n## Settings chosen on validation (last-epoch val_top1; the test split chose nothing)\n\n"
                     f"{markdown(tuned, {'chosen_at_edge': ''})}")
            at_edge = tuned[tuned["chosen_at_edge"] != ""]
            if not at_edge.empty:
                text += ("\nChosen at the edge of the range tried: "
                         + ", ".join(f"{row.variant} ({row.chosen_at_edge})" for row in at_edge.itertuples())
                         + ". Their best setting may lie outside it; widen the range for every variant alike "
                           "to know.\n")
        results.atomic_write_text(stem.with_suffix(".md"), text)
        written.append(stem.with_suffix(".md"))
    return written
