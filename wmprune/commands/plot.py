"""PNG figures: top-1 vs compression ratio per method and the declared comparisons' verdicts (from `wmprune
report` tables), per-layer sparsity of a run.

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
from wmprune.commands.report import ACCURACY_SUFFIX, DENSE, VERDICTS_SUFFIX

# The columns the figures read (a damaged file is one line); all but the text ones are numbers.
ACCURACY_COLUMNS = ["dataset", "model", "method", "variant_label", "compression_ratio", "top1_mean", "top1_std"]
VERDICT_COLUMNS = ["reference", "baseline", "target_sparsity", "n_paired", "difference", "low", "high", "level",
                   "margin", "family_size", "verdict"]
_TEXT_COLUMNS = {"dataset", "model", "method", "variant_label", "layer", "reference", "baseline", "verdict"}


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


def verdicts_figure(table: pd.DataFrame, title: str) -> Figure:
    """The declared comparisons as a forest plot: per comparison the mean paired difference reference − baseline
    with its Bonferroni-adjusted interval (the one the verdict reads, wmprune/verdicts.py), zero and the ±margin of
    equivalence marked, the verdict and the number of paired seeds beside it. A comparison without an interval (a
    mixed-collapse cell, fewer than two paired seeds) shows its mean as a cross, or nothing without one."""
    rows = table.sort_values("target_sparsity", kind="stable").reset_index(drop=True)
    figure = Figure(figsize=(6.4, 1.6 + 0.32 * len(rows)), layout="constrained")
    axes = figure.subplots()
    margin = float(rows["margin"].iloc[0])
    axes.axvspan(-margin, margin, color="tab:green", alpha=0.12, linewidth=0, label=f"±{margin:g}-point margin (level)")
    axes.axvline(0, color="black", linewidth=1)
    interval = rows["low"].notna() & rows["high"].notna()
    with_interval, without = rows[interval], rows[~interval & rows["difference"].notna()]
    axes.errorbar(with_interval["difference"], with_interval.index,
                  xerr=[with_interval["difference"] - with_interval["low"],
                        with_interval["high"] - with_interval["difference"]],
                  fmt="o", color="tab:blue", capsize=3, label=f"{rows['level'].iloc[0]:.2%} interval")
    axes.plot(without["difference"], without.index, "x", color="tab:red", linestyle="none", label="mean, no interval")
    for position, row in rows.iterrows():
        axes.annotate(f"{row['verdict']} (n={int(row['n_paired'])})", xy=(1.02, position),
                      xycoords=("axes fraction", "data"), va="center", fontsize=8)
    axes.set_yticks(rows.index, [f"{row.baseline} @ {row.target_sparsity:g}" for row in rows.itertuples()])
    axes.set_ylim(len(rows) - 0.5, -0.5)
    axes.set_xlabel(f"{rows['reference'].iloc[0]} − baseline, test top-1 (points); intervals Bonferroni-adjusted "
                    f"for {int(rows['family_size'].iloc[0])} comparisons")
    axes.set_title(title)
    axes.grid(True, axis="x", alpha=0.3)
    figure.legend(loc="outside lower center", ncol=3, fontsize=7, frameon=False)
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


def draw_figures(tables: Path | None, run: Path | None, out: Path, overwrite: bool = False) -> list[Path]:
    """The figures of `tables` (`plot_tables`) and of `run` (`plot_layers`) written into `out`; nothing is written
    unless every figure can be: a file there that is not a figure Matplotlib drew is replaced only with
    `overwrite`."""
    figures = (plot_tables(tables, out) if tables is not None else []) + ([plot_layers(run, out)] if run else [])
    results.check_output_directory(out, "--out")
    for path, _ in figures:
        results.check_output_file(path, "--out", overwrite, drawn_by_matplotlib)
    return [_save(figure, path) for path, figure in figures]


def drawn_by_matplotlib(path: Path) -> bool:
    """Whether `path` is a PNG file Matplotlib wrote (its `Software` text chunk, before the image data)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return False
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"tEXtSoftware\x00Matplotlib" in head


def plot_tables(tables: Path, out: Path) -> list[tuple[Path, Figure]]:
    """One `<table>.png` per accuracy table in `tables`, and `<table>.verdicts.png` beside it where the report
    wrote verdicts on declared comparisons."""
    if not Path(tables).is_dir():
        raise UserError(f"{tables} is not a directory; pass the --out directory of `wmprune report`")
    paths = sorted(Path(tables).glob(f"*{ACCURACY_SUFFIX}"))
    if not paths:
        raise UserError(f"no *{ACCURACY_SUFFIX} tables in {tables}; run `wmprune report RUNS --out {tables}` first")
    figures = []
    for path in paths:
        pair = path.name.removesuffix(ACCURACY_SUFFIX)
        table = _read_table(path, ACCURACY_COLUMNS, "regenerate it with `wmprune report`")
        title = f"{table['dataset'].iloc[0]} / {table['model'].iloc[0]}"  # names may hold '-' (fashion-mnist)
        figures.append((out / f"{pair}.png", accuracy_figure(table, title)))
        declared = path.with_name(f"{pair}{VERDICTS_SUFFIX}")
        if declared.is_file():
            verdict_table = _read_table(declared, VERDICT_COLUMNS, "regenerate it with `wmprune report`")
            figures.append((out / f"{pair}.verdicts.png", verdicts_figure(verdict_table, f"{title}: verdicts")))
    return figures


def plot_layers(run: Path, out: Path) -> tuple[Path, Figure]:
    """`<run name>.layers.png`: per-layer sparsity from the run's layers.csv."""
    path = Path(run) / results.LAYERS
    if not path.is_file():
        raise UserError(f"no {results.LAYERS} in {run}; pass a finished run directory")
    layers = _read_table(path, ["layer", "sparsity"], "pass a finished run directory or retrain the run")
    return out / f"{Path(run).name}.layers.png", layers_figure(layers, f"{Path(run).name}: per-layer sparsity")


def _read_table(path: Path, columns: list[str], fix: str) -> pd.DataFrame:
    """A CSV file wmprune wrote, with `columns` (all but the text ones numeric) and at least one row; anything
    else is a one-line UserError ending in `fix`."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path} ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); "
                        f"{fix}") from None
    missing = [column for column in columns if column not in table]
    if missing or table.empty:
        raise UserError(f"{path} is damaged ({'no ' + ', '.join(missing) + ' column' if missing else 'no rows'}); "
                        f"{fix}")
    for column in set(columns) - _TEXT_COLUMNS:
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise UserError(f"{path} is damaged (column {column} is not numeric); {fix}")
    return table

