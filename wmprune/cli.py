"""`wmprune` command line: parse, load the config, call one function per command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import Abort, TyperException

from wmprune.errors import TrainingDiverged, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Gradual momentum-based weight pruning (WeightMom) and its baselines.")


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML run config")],
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="override a key: a.b=value")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (default: output.root/<name>-<hash>)")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in the directory from its checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="delete the run already in the directory first")] = False,
) -> None:
    """Train one run and write its directory (config, metrics, layers, summary, checkpoint, log).

    Under `torchrun --nproc_per_node N -m wmprune train ...` the N processes train one run together (DDP).
    """
    from wmprune.commands.train import train_command

    train_command(config, overrides or [], out, resume, overwrite)


@app.command("eval")
def evaluate_run(
    run: Annotated[Path, typer.Option("--run", help="run directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object (summary.csv field names)")] = False,
    weights: Annotated[Optional[Path], typer.Option(help="evaluate this `wmprune export` file instead")] = None,
) -> None:
    """Re-measure test accuracy, loss and sparsity from a run's checkpoint (or an exported weights file)."""
    from wmprune import results
    from wmprune.catalog import build_config
    from wmprune.commands.evaluate import measure_run
    from wmprune.config import read_yaml
    from wmprune.runtime.console import results_table

    if not (run / results.CONFIG).is_file():
        raise UserError(f"{run} is not a run directory (no {results.CONFIG}); pass the directory train wrote")
    cfg = build_config(read_yaml(run / results.CONFIG))
    row = measure_run(cfg, run, weights)
    if as_json:
        print(json.dumps(row))
    else:
        Console().print(results_table(f"eval {run}", row))


@app.command()
def sweep(
    grid: Annotated[Path, typer.Option("--grid", help="grid YAML (configs/grids/)")],
    out: Annotated[Path, typer.Option(help="parent of the run directories")] = Path("results/runs"),
    workers: Annotated[Optional[int], typer.Option(min=1, help="runs at a time (default: one per GPU, else 1)")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="GPU ids to share out, e.g. 0,1,2,3 (default: all visible)")] = None,
    executor: Annotated[str, typer.Option(help="local (worker processes here) or slurm (submitit job array)")] = "local",
    dry_run: Annotated[bool, typer.Option(help="list the runs and their state; train nothing")] = False,
    seeds: Annotated[Optional[str], typer.Option(help="only these seeds' main runs, e.g. 1,2 or 1-4 (tuning "
                                                      "always runs); a study grows seed by seed")] = None,
) -> None:
    """Train every point of a grid that has not finished: skip finished runs, resume partial ones. Tuning runs
    first, then the main runs seed by seed, so an interrupted sweep leaves whole seeds."""
    from wmprune.commands.sweep import parse_seeds, run_sweep

    devices = [g.strip() for g in gpus.split(",") if g.strip()] if gpus is not None else None
    outcomes = run_sweep(grid, out, workers, devices, executor, dry_run,
                         seeds=parse_seeds(seeds) if seeds is not None else None)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        print(f"error: {len(failed)} of {len(outcomes)} runs failed ({failed[0].run}: {failed[0].error}); "
              f"see {out / 'sweep.csv'}", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def report(
    runs: Annotated[Path, typer.Argument(help="directory holding run directories (searched at any depth)")],
    out: Annotated[Path, typer.Option(help="where the CSV and markdown tables go")] = Path("results/tables"),
    reference: Annotated[str, typer.Option(help="the variant that is WeightMom, which paired intervals are "
                                                "against (an ablation's momentum-weightmom)")] = "weightmom",
    margin: Annotated[float, typer.Option(help="points of top-1 within which a declared comparison is level "
                                               "(two one-sided tests)")] = 1.0,
    pool_classes: Annotated[bool, typer.Option(help="one table across machine classes (device/precision), "
                                                     "every pooled cell marked; default: a table per class")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace files in --out that are not tables of an earlier "
                                                 "report")] = False,
) -> None:
    """Aggregate every summary.csv under RUNS into accuracy, verdict and equal-accuracy-drop tables per
    dataset × model × machine class."""
    from wmprune.commands.report import write_report

    written, warnings = write_report(runs, out, reference, margin, pool_classes, overwrite)
    for path in written:
        print(path.read_text())
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"tables written to {out}")


@app.command()
def plot(
    tables: Annotated[Optional[Path], typer.Argument(help="directory of `wmprune report` tables")] = None,
    out: Annotated[Path, typer.Option(help="where the PNG files go")] = Path("results/figures"),
    run: Annotated[Optional[Path], typer.Option("--run", help="also plot this run's per-layer sparsity")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace files in --out that are not figures wmprune drew")] = False,
) -> None:
    """PNG figures: top-1 vs compression ratio per dataset × model, the declared comparisons' verdicts; per-layer
    sparsity of one run."""
    from wmprune.commands.plot import draw_figures

    if tables is None and run is None:
        raise UserError("plot needs TABLES (a `wmprune report` output directory), --run RUNDIR, or both")
    written = draw_figures(tables, run, out, overwrite)
    for path in written:
        print(path)


@app.command()
def runs(
    directory: Annotated[Path, typer.Argument(help="directory holding run directories (searched at any depth)")]
    = Path("results/runs"),
    sort: Annotated[str, typer.Option(help="column to sort by: run, status, method, target_sparsity, sparsity, "
                                           "epoch, epochs, val_top1, test_top1, updated")] = "run",
    reverse: Annotated[bool, typer.Option(help="sort in descending order")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV (every field, for scripts) instead of a table")]
    = False,
) -> None:
    """Every run under DIRECTORY: method, target, measured sparsity, epoch, val/test top-1, and whether it is
    finished, running, interrupted or failed."""
    from wmprune.commands.runs import list_runs, runs_csv, runs_table

    rows = list_runs(directory, sort, reverse)
    if as_csv:
        sys.stdout.write(runs_csv(rows))
    elif not rows:
        print(f"no runs under {directory}")
    else:
        console = Console()
        console.print(runs_table(f"{len(rows)} runs under {directory} (val, test: top-1 %)", rows))
        for row in rows:
            if row["error"]:
                console.print(Text.assemble((row["run"], "red"), f": {row['error']}"), highlight=False)


@app.command()
def export(
    run: Annotated[Path, typer.Option("--run", help="finished run directory")],
    fmt: Annotated[str, typer.Option("--format", help="bitmask (packed 1-bit masks + non-zeros) or dense")] = "bitmask",
    out: Annotated[Optional[Path], typer.Option(help="file to write (default: RUN/weights.FORMAT.safetensors)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a file at --out that is not a wmprune weights file")]
    = False,
) -> None:
    """Write the run's weights as a safetensors file; print its size and record it in the run's summary.csv."""
    from wmprune.commands.export import export_run

    done = export_run(run, fmt, out, overwrite)
    print(f"{done.path}: {done.bytes:,} bytes = {done.bytes / done.dense_bytes:.3f} × the dense file "
          f"({done.dense_bytes:,} bytes); bitmask bound {done.bound:,} bytes")


@app.command()
def bench(
    run: Annotated[Path, typer.Option("--run", help="finished run directory")],
    batch: Annotated[str, typer.Option(help="batch sizes, comma-separated")] = "1",
    threads: Annotated[str, typer.Option(help="intra-op thread counts, comma-separated")] = "1,2",
    repeats: Annotated[int, typer.Option(min=1, help="timed end-to-end repeats per module")] = 30,
    samples: Annotated[int, typer.Option(min=1, help="test images whose outputs are compared")] = 256,
    replan: Annotated[bool, typer.Option(help="measure new per-layer plans even where saved ones fit")] = False,
    weights: Annotated[Optional[Path], typer.Option(help="benchmark this `wmprune export` file instead")] = None,
) -> None:
    """Dense vs sparse CPU inference latency of a run, per layer and end to end; writes RUN/inference.csv."""
    from wmprune.commands.bench import BenchOptions, bench_run, check_threads, parse_counts

    options = BenchOptions(parse_counts(batch, "--batch"), check_threads(parse_counts(threads, "--threads")),
                           repeats=repeats, samples=samples, replan=replan, weights=weights)
    bench_run(run, options, Console())


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        sys.exit(app(standalone_mode=False) or 0)
    except UserError as exc:
        # Under torchrun every process meets the same mistake; the first of them says it.
        if os.environ.get("RANK", "0") == "0":
            print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except TyperException as exc:  # typer's (vendored click's) usage errors
        context = getattr(exc, "ctx", None)
        command = context.command_path if context else "wmprune"
        print(f"error: {exc.format_message()} (see '{command} --help')", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Abort:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
