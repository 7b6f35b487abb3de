"""PNG figures: top-1 vs compression ratio per method (from `wmprune report` tables), per-layer sparsity of a run.

Figures are built on `matplotlib.figure.Figure` directly (Agg canvas, no pyplot global state) and written
atomically like every other output.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from wmprune import results
from wmprune.errors import UserError
from wmprune.commands.report import ACCURACY_SUFFIX, DENSE


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    results.atomic_write_bytes(path, buffer.getvalue())
    return path


def accuracy_figure(table: pd.DataFrame, title: str) -> Figure:
    """Mean top-1 vs mean compression ratio (log x), one line per method with a ±1 std band, dense as a line."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    dense = table[table["method"] == DENSE]
    if not dense.empty:
        top1, std = dense["top1_mean"].mean(), dense["top1_std"].fillna(0).mean()
        axes.axhline(top1, color="black", linestyle="--", linewidth=1, label=f"dense ({top1:.2f})")
        axes.axhspan(top1 - std, top1 + std, color="black", alpha=0.08, linewidth=0)
    for variant, rows in table[table["method"] != DENSE].groupby("variant_label"):
        rows = rows.sort_values("compression_ratio")
        x, mean, std = rows["compression_ratio"], rows["top1_mean"], rows["top1_std"].fillna(0)
        (line,) = axes.plot(x, mean, marker="o", label=variant)
        axes.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}×"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel("compression ratio (prunable / non-zero weights, log scale)")
    axes.set_ylabel("test top-1 (%), mean ± std over seeds")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    return figure


def layers_figure(layers: pd.DataFrame, title: str) -> Figure:
    """Horizontal bars: sparsity of every prunable tensor, in network order (first layer on top)."""
    figure = Figure(figsize=(6.4, 1.0 + 0.22 * len(layers)))
    axes = figure.subplots()
    axes.barh(range(len(layers)), layers["sparsity"], color="tab:blue")
    axes.set_yticks(range(len(layers)), layers["layer"], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("sparsity (fraction of weights that are zero)")
    axes.set_title(title)
    axes.grid(True, axis="x", alpha=0.3)
    return figure


def plot_tables(tables: Path, out: Path) -> list[Path]:
    """One `<dataset>-<model>.png` per accuracy table in `tables`."""
    paths = sorted(Path(tables).glob(f"*{ACCURACY_SUFFIX}"))
    if not paths:
        raise UserError(f"no *{ACCURACY_SUFFIX} tables in {tables}; run `wmprune report RUNS --out {tables}` first")
    written = []
    for path in paths:
        pair = path.name.removesuffix(ACCURACY_SUFFIX)
        table = pd.read_csv(path)
        title = f"{table['dataset'].iloc[0]} / {table['model'].iloc[0]}"  # names may hold '-' (fashion-mnist)
        written.append(_save(accuracy_figure(table, title), out / f"{pair}.png"))
    return written


def plot_layers(run: Path, out: Path) -> Path:
    """`<run name>.layers.png`: per-layer sparsity from the run's layers.csv."""
    path = Path(run) / results.LAYERS
    if not path.is_file():
        raise UserError(f"no {results.LAYERS} in {run}; pass a finished run directory")
    return _save(layers_figure(pd.read_csv(path), f"{Path(run).name}: per-layer sparsity"),
                 out / f"{Path(run).name}.layers.png")
