"""What a run shows on the terminal: the training progress bar and the final results table."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from rich.console import Console


def progress_bar(console: Console) -> Progress:
    """Steps done / total with the time remaining; cleared when the run ends."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True)


def results_table(title: str, row: dict) -> Table:
    """The final numbers of a run (or of `wmprune eval`), narrow enough for an 80-column terminal."""
    table = Table(title=Text(title))  # Text, not markup: a run name or path may hold brackets
    columns = {"top-1 %": f"{row['test_top1']:.2f}", "top-5 %": f"{row['test_top5']:.2f}",
               "sparsity": f"{row['sparsity']:.4f}", "compression": f"{row['compression_ratio']:.2f}×",
               "kept %": f"{row['weights_kept_pct']:.2f}",
               "non-zero": f"{row['params_nonzero']:,} / {row['params_prunable']:,}"}
    for name in columns:
        table.add_column(name, justify="right")
    table.add_row(*columns.values())
    return table
