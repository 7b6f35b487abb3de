"""Sparse CPU inference of a WeightMom-pruned VGG16 against its fair dense baseline (issue 13's acceptance check).

Trains VGG16 (width 1, 10 classes, 3×32×32 input) for 2 epochs on the `synthetic` data with WeightMom, the cubic
schedule reaching --sparsity at the end of epoch 1 (accuracy is not the point: latency depends only on the shapes
and the non-zeros), then runs `wmprune bench` on the run: per-layer plan, end-to-end dense vs sparse latency,
outputs compared. The last line is the end-to-end speedup at the first --batch and --threads, e.g. `speedup=2.31`.

    python scripts/bench_inference.py [--width 1.0] [--sparsity 0.98] [--batch 1,32] [--threads 1,2]
                                      [--repeats 30] [--samples 256] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from wmprune.commands.bench import NETWORK, BenchOptions, bench_run, parse_counts
from wmprune.catalog import build_config
from wmprune.runtime.trainer import train


def train_run(directory: Path, width: float, sparsity: float) -> None:
    cfg = build_config({
        "name": f"bench-vgg16-{sparsity}", "seed": 0, "device": "cpu",
        "model": {"name": "vgg16", "width": width},
        "data": {"name": "synthetic", "batch_size": 64},
        "train": {"epochs": 2, "lr": 0.05},
        "prune": {"method": "weightmom", "target_sparsity": sparsity,
                  "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 1}},
    })
    train(cfg, directory, False, Console(quiet=True, record=True))  # record: train writes log.txt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--sparsity", type=float, default=0.98)
    parser.add_argument("--batch", default="1")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--out", type=Path, help="keep the run here (default: a temporary directory)")
    args = parser.parse_args()
    options = BenchOptions(parse_counts(args.batch, "--batch"), parse_counts(args.threads, "--threads"),
                           repeats=args.repeats, samples=args.samples)
    with tempfile.TemporaryDirectory() as scratch:
        run = args.out or Path(scratch) / "run"
        if not (run / "summary.csv").is_file():
            train_run(run, args.width, args.sparsity)
        rows = [row for row in bench_run(run, options, Console()) if row["layer"] == NETWORK]
    for row in rows:
        print(f"batch {row['batch']}, {row['threads']} thread(s): dense {row['dense_ms']:.3f} ms, sparse plan "
              f"{row['sparse_ms']:.3f} ms ({row['sparse_layers']} layers sparse), speedup {row['speedup']:.2f}, "
              f"max |Δ| {row['max_abs_diff']:.1e}, top-1 agreement {row['top1_agreement']:.3f}")
    print(f"speedup={rows[0]['speedup']:.2f}")


if __name__ == "__main__":
    main()
