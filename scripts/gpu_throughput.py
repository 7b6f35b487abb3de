"""Training throughput on a GPU (images/s): wmprune's WeightMom run, eager and compiled, against the usual
PyTorch recipe (scripts/bench_train.py has both sides), bf16 autocast, for VGG16 and ResNet50 at width 1 on
CIFAR-shaped random images, and on a Fashion-MNIST subset when its files are in `--data-root` (or where
Debian's package puts them). Part of scripts/gpu_check.sh, which records the card and runs the CUDA tests.

Each row: a warm-up epoch per side (compilation included), then `--epochs` epochs of each side in turn;
images/s from the median epoch. Rows go to OUT/gpu_throughput.csv and OUT/gpu_throughput.md as they finish,
so a run cut short keeps what it measured. `--dry-run`: the same code on the CPU at toy sizes, no compile.

    python scripts/gpu_throughput.py --out DIR [--batch 512] [--images 16384] [--epochs 2] [--dry-run]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_train import Ours, Recipe, median_epochs
from wmprune.errors import UserError
from wmprune.runtime.loaders import load_splits
from wmprune.catalog import build_config

FIELDS = ["data", "model", "width", "batch", "side", "images_per_epoch", "seconds_per_epoch", "images_per_s",
          "device"]


def data_sections(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """(label, data config) of each dataset to measure: CIFAR-shaped random images always, a subset of
    Fashion-MNIST (the training split cut to `--images` by the validation hold-out) when its files exist."""
    sections = [("cifar-shaped random", {"name": "synthetic", "val_size": 0})]
    fashion = {"name": "fashion-mnist", "root": str(args.data_root), "val_size": 60_000 - args.images}
    try:
        load_splits(build_config({"data": fashion}))
    except UserError as missing:
        print(f"Fashion-MNIST skipped: {missing}")
    else:
        sections.append((f"fashion-mnist ({args.images} images)", fashion))
    return sections


def measure(args: argparse.Namespace, label: str, data: dict, model: str, scratch: Path, writer) -> None:
    run_args = argparse.Namespace(model=model, width=args.width, batch=args.batch, images=args.images,
                                  epochs=args.epochs, every_steps=args.every_steps)
    synthetic = data["name"] == "synthetic"
    images = labels = None
    if synthetic:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (args.images,), generator=generator)
    common = dict(device=args.device, amp="bf16")
    sides: dict[str, Ours | Recipe] = {"wmprune eager": Ours(run_args, scratch / "eager", data, images, labels,
                                                             **common)}
    if args.compile and synthetic:  # compilation is the slow part: once per model
        sides["wmprune compile"] = Ours(run_args, scratch / "compiled", data, images, labels, compile=True, **common)
    own = sides["wmprune eager"].run.train_loader
    sides["pytorch recipe eager"] = Recipe(run_args, own.images.cpu(), own.labels.cpu(), **common)
    started = time.perf_counter()
    medians = median_epochs(sides, args.epochs, torch.device(args.device))
    for side, seconds in medians.items():
        count = sides[side].images_per_epoch
        row = {"data": label, "model": model, "width": args.width, "batch": args.batch, "side": side,
               "images_per_epoch": count, "seconds_per_epoch": round(seconds, 4),
               "images_per_s": round(count / seconds, 1), "device": args.device_name}
        writer(row)
    print(f"{label} {model}: {time.perf_counter() - started:.0f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--images", type=int, default=16_384)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--every-steps", type=int, default=10)
    parser.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--dry-run", action="store_true", help="CPU, toy sizes, no compile: the script's own check")
    args = parser.parse_args()
    if args.dry_run:
        args.batch, args.images, args.epochs, args.width, args.every_steps = 16, 64, 1, 0.0625, 2
        args.device, args.compile, args.device_name = "cpu", False, "cpu (dry run)"
    elif not torch.cuda.is_available():
        sys.exit("gpu_throughput: no CUDA device here; use --dry-run for the CPU check")
    else:
        args.device, args.compile, args.device_name = "cuda", True, torch.cuda.get_device_name()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def write(row: dict) -> None:
        rows.append(row)
        with open(args.out / "gpu_throughput.csv", "w", newline="") as handle:
            table = csv.DictWriter(handle, FIELDS)
            table.writeheader()
            table.writerows(rows)
        lines = ["| data | model | side | images/s | s/epoch |", "|---|---|---|---:|---:|"]
        lines += [f"| {r['data']} | {r['model']}×{r['width']} | {r['side']} | {r['images_per_s']:.0f} | "
                  f"{r['seconds_per_epoch']:.3f} |" for r in rows]
        (args.out / "gpu_throughput.md").write_text("\n".join(lines) + "\n")

    with tempfile.TemporaryDirectory() as scratch:
        for label, data in data_sections(args):
            for model in ("vgg16", "resnet50"):
                measure(args, label, data, model, Path(scratch) / f"{data['name']}-{model}", write)
    print((args.out / "gpu_throughput.md").read_text())


if __name__ == "__main__":
    main()
