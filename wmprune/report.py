"""Tables from many runs: every summary.csv under a directory, aggregated over seeds (pandas).

Per dataset × model, `<dataset>-<model>.accuracy.csv` (one row per method × allocation × target sparsity)
and `<dataset>-<model>.equal-drop.csv` (the highest compression ratio each method reaches within an
accuracy drop of 0.5, 1 and 2 points from the dense baseline, and WeightMom's gain over the best other
method), both also in `<dataset>-<model>.md`. Column meanings: docs/experiments.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from wmprune import results
from wmprune.errors import UserError

ACCURACY_SUFFIX, EQUAL_DROP_SUFFIX = ".accuracy.csv", ".equal-drop.csv"
DROPS = (0.5, 1.0, 2.0)
GROUP = ["dataset", "model", "method", "allocation", "target_sparsity"]
DENSE = "none"
WEIGHTMOM = ("weightmom", "weightmom")  # (method, allocation): our reading of the paper; all else is a baseline


def load_summaries(runs: Path) -> pd.DataFrame:
    """One row per finished run under `runs` (any depth)."""
    if not runs.is_dir():
        raise UserError(f"{runs} is not a directory; pass the directory that holds the run directories")
    paths = sorted(runs.rglob(results.SUMMARY))
    if not paths:
        raise UserError(f"no {results.SUMMARY} under {runs}; train or sweep runs into it first")
    frame = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    frame["allocation"] = frame["allocation"].where(frame["method"] != DENSE, "")  # dense has no allocation
    clash = frame[frame.duplicated(GROUP + ["seed"], keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        raise UserError(f"{runs} holds {len(clash)} runs of {first.dataset}/{first.model}/{first.method} at sparsity "
                        f"{first.target_sparsity} with the same seed {first.seed}: they differ in a key summary.csv "
                        "does not record (width, epochs, beta, ...); report them from separate directories")
    return frame


def variant_labels(table: pd.DataFrame) -> pd.Series:
    """`method`, or `method/allocation` where one table holds a method with several allocations."""
    allocations = table.groupby("method")["allocation"].transform("nunique")
    return table["method"].where(allocations <= 1, table["method"] + "/" + table["allocation"])


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per method × allocation × target sparsity of one dataset/model, dense first."""
    table = runs.groupby(GROUP, as_index=False).agg(
        sparsity=("sparsity", "mean"), compression_ratio=("compression_ratio", "mean"),
        weights_kept_pct=("weights_kept_pct", "mean"), top1_mean=("test_top1", "mean"),
        top1_std=("test_top1", "std"), n_seeds=("seed", "nunique"))
    dense = runs.loc[runs["method"] == DENSE, "test_top1"].mean()
    table["delta_dense"] = table["top1_mean"] - dense
    table.insert(2, "variant", variant_labels(table))
    table = table.assign(_dense_last=table["method"] != DENSE)
    return table.sort_values(["_dense_last", "method", "allocation", "target_sparsity"]).drop(columns="_dense_last")


def equal_drop_table(accuracy: pd.DataFrame) -> pd.DataFrame | None:
    """Rows: allowed drop of top-1 from dense (points). Columns: highest mean compression ratio per variant whose
    mean top-1 stays within it, the best baseline, and WeightMom's gain over it in % (None without dense runs)."""
    dense = accuracy[accuracy["method"] == DENSE]
    if dense.empty:
        return None
    pruned = accuracy[accuracy["method"] != DENSE]
    dense_top1 = dense["top1_mean"].mean()
    is_weightmom = (pruned["method"] == WEIGHTMOM[0]) & (pruned["allocation"] == WEIGHTMOM[1])
    weightmom_label = pruned.loc[is_weightmom, "variant"].iloc[0] if is_weightmom.any() else None
    rows = []
    for drop in DROPS:
        within = pruned[dense_top1 - pruned["top1_mean"] <= drop]
        best = within.groupby("variant")["compression_ratio"].max().reindex(pruned["variant"].unique())
        baselines = best.drop(weightmom_label, errors="ignore").dropna()
        ours = best.get(weightmom_label, math.nan) if weightmom_label else math.nan
        best_baseline = baselines.idxmax() if not baselines.empty else ""
        gain = 100.0 * (ours / baselines.max() - 1.0) if best_baseline else math.nan
        rows.append({"max_drop": drop, "dense_top1": dense_top1, **best.to_dict(), "best_baseline": best_baseline,
                     "weightmom_gain_pct": gain})
    return pd.DataFrame(rows)


def add_inference_speedups(accuracy: pd.DataFrame, runs: Path) -> pd.DataFrame:
    """`accuracy` with, right after compression_ratio, one `speedup_b<batch>_t<threads>` column per setting that
    `wmprune bench` measured (its inference.csv beside a run's summary.csv): the end-to-end dense / sparse latency
    ratio, mean over the group's benchmarked runs (docs/inference.md). Unchanged when no run was benchmarked."""
    frames = []
    for path in sorted(runs.rglob("inference.csv")):
        if (path.parent / results.SUMMARY).is_file():
            network = pd.read_csv(path).query("layer == 'network'")
            columns = "speedup_b" + network["batch"].astype(str) + "_t" + network["threads"].astype(str)
            speedups = pd.DataFrame([network["speedup"].to_numpy()], columns=columns.to_numpy())
            frames.append(pd.read_csv(path.parent / results.SUMMARY)[GROUP].join(speedups))
    if not frames:
        return accuracy
    speedups = pd.concat(frames, ignore_index=True)
    speedups["allocation"] = speedups["allocation"].fillna("").where(speedups["method"] != DENSE, "")
    means = speedups.groupby(GROUP, as_index=False).mean()
    merged = accuracy.merge(means, on=GROUP, how="left")
    added = [c for c in means.columns if c not in GROUP]
    at = list(accuracy.columns).index("compression_ratio") + 1
    return merged[list(accuracy.columns[:at]) + added + list(accuracy.columns[at:])]


_FORMATS = {"target_sparsity": "{:g}", "sparsity": "{:.4f}", "top1_std": "{:.2f}", "delta_dense": "{:+.2f}",
            "max_drop": "{:.1f}", "weightmom_gain_pct": "{:+.1f}"}


def _cell(column: str, value) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else _FORMATS.get(column, "{:.2f}").format(value)
    return str(value) if value != "" else "—"


def markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' to_markdown needs the extra `tabulate` package)."""
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(c, v) for c, v in zip(table.columns, row)) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_report(runs: Path, out: Path) -> list[Path]:
    """Write the tables of every dataset × model under `runs` into `out`; returns the markdown files."""
    frame = load_summaries(runs)
    written = []
    for (dataset, model), pair in frame.groupby(["dataset", "model"]):
        stem = out / f"{dataset}-{model}"
        accuracy = add_inference_speedups(accuracy_table(pair), runs)
        results.atomic_write_text(stem.with_name(stem.name + ACCURACY_SUFFIX), accuracy.to_csv(index=False))
        text = (f"# {dataset} / {model}: {len(pair)} runs\n\nTest top-1 (%) mean and std over seeds; Δ to the "
                f"dense mean.\n\n{markdown(accuracy.drop(columns=['dataset', 'model', 'variant']))}")
        equal_drop = equal_drop_table(accuracy)
        if equal_drop is None:
            text += "\nNo dense run (prune.method none): no Δ and no equal-accuracy-drop table.\n"
        else:
            results.atomic_write_text(stem.with_name(stem.name + EQUAL_DROP_SUFFIX), equal_drop.to_csv(index=False))
            text += ("\n## Highest compression ratio within an accuracy drop (points of top-1 from dense)\n\n"
                     f"{markdown(equal_drop)}")
        results.atomic_write_text(stem.with_suffix(".md"), text)
        written.append(stem.with_suffix(".md"))
    return written
