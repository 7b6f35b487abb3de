"""Training epoch time: a wmprune WeightMom run against the usual PyTorch recipe for the same model and data.

Ours: `wmprune.runtime.run.build_run` and the trainer's own `train_one_epoch` — the split as one uint8
tensor, batched crop + flip on the device, channels_last, masks re-applied with foreach ops after each
step, WeightMom's momentum updated in place. The recipe (as in PyTorch's CIFAR tutorial and
`torch.nn.utils.prune`'s): a `Dataset` of decoded images with per-image torchvision transforms
(random crop with 4-pixel padding, flip, to-tensor, normalise) behind a `DataLoader` with 2 worker processes
(persistent, which spares it a start-up per epoch), eager, contiguous memory, the masks as
`torch.nn.utils.prune` forward pre-hooks (weight = weight_orig · mask in every forward), pruned by global
|w| (`prune.global_unstructured`) at the same steps as ours, and `loss.item()` per step for the running loss.

Same model (VGG16 ×1/8 by default), batch (64), images (4,096 random CIFAR-shaped uint8 images), thread
count for the training process (`--threads`, default 1; the recipe's two workers are extra processes) and
pruning interval. Each side first trains a warm-up epoch, then
the timed epochs alternate between the two, so machine noise hits both alike; the medians are compared.
The last line is `ratio=<recipe epoch time / ours>`.

    python scripts/bench_train.py [--model vgg16] [--width 0.125] [--batch 64] [--images 4096] [--epochs 2]
                                  [--threads 1] [--every-steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from wmprune.catalog import build_config
from wmprune.runtime.trainer import train_one_epoch
from wmprune.data.loader import TensorLoader, channel_stats
from wmprune.data.synthetic import random_images
from wmprune.models import build_model
from wmprune.runtime.console import progress_bar
from wmprune.runtime.devices import World
from wmprune.runtime.run import Run, build_run

SPARSITY = 0.9


class Ours:
    """A WeightMom run from wmprune's own run builder, on `data` (a config's data section); with `images`,
    on those instead of the data's training split (the data section must then be `synthetic`)."""

    def __init__(self, args: argparse.Namespace, directory: Path, data: dict, images: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None, *, device: str = "cpu", compile: bool = False,
                 amp: str = "off"):
        # Epochs counted in the run's own split (512 images for `synthetic`), so that the schedule spans the
        # steps this benchmark trains, with an event every_steps.
        own_images = 512 if images is not None else args.images
        epochs = -(-total_steps(args) // (own_images // args.batch))
        cfg = build_config({
            "name": "bench-train", "seed": 0, "device": device,
            "model": {"name": args.model, "width": args.width},
            "data": {**data, "batch_size": args.batch},
            "train": {"epochs": epochs, "lr": 0.05, "compile": compile, "amp": amp},
            "prune": {"method": "weightmom", "target_sparsity": SPARSITY,
                      "schedule": {"start_epoch": 0, "end_epoch": epochs, "every_steps": args.every_steps}},
        })
        run = build_run(cfg, directory, World())
        if images is not None:  # the run's own loader class and settings, over the benchmark's images
            mean, std = channel_stats(images)
            run = replace(run, train_loader=TensorLoader(images, labels, args.batch, device=run.device, mean=mean,
                                                         std=std, train=True, augment=True, seed=cfg.seed,
                                                         channels_last=True))
        self.run: Run = run

    @property
    def images_per_epoch(self) -> int:
        return len(self.run.train_loader) * self.run.train_loader.batch_size

    def epoch(self) -> None:
        with progress_bar(Console(quiet=True)) as progress:
            train_one_epoch(self.run, progress, progress.add_task("epoch", total=len(self.run.train_loader)))
        self.run.epoch += 1


class Pictures(Dataset):
    """Decoded images (H×W×C uint8, as torchvision's CIFAR10 holds them), transformed one at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: transforms.Compose):
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(transforms.functional.to_pil_image(self.images[i])), self.labels[i]


class Recipe:
    """The usual recipe: DataLoader workers, per-image transforms, torch.nn.utils.prune hooks, contiguous;
    on a GPU, batches copied from pinned memory and bf16 autocast when `amp` is not "off"."""

    def __init__(self, args: argparse.Namespace, images: torch.Tensor, labels: torch.Tensor, *, device: str = "cpu",
                 compile: bool = False, amp: str = "off"):
        torch.manual_seed(0)
        self.device = torch.device(device)
        self.amp = amp != "off" and self.device.type == "cuda"
        mean, std = channel_stats(images)
        transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                        transforms.ToTensor(), transforms.Normalize(mean.tolist(), std.tolist())])
        self.loader = DataLoader(Pictures(images, labels, transform), batch_size=args.batch, shuffle=True,
                                 num_workers=2, drop_last=True, persistent_workers=True,
                                 pin_memory=self.device.type == "cuda")
        self.model = build_model(args.model, 10, args.width, images.shape[1]).to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                         weight_decay=5e-4)
        self.pruned = [(m, "weight") for m in self.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for module, name in self.pruned:
            prune.identity(module, name)  # the hooks are there from the first step, as our masks
        self.forward = torch.compile(self.model) if compile else self.model
        self.every_steps, self.steps = args.every_steps, 0
        # A constant fraction of the remaining weights per event, reaching SPARSITY at the last step.
        self.per_event = 1.0 - (1.0 - SPARSITY) ** (1.0 / max(1, total_steps(args) // args.every_steps))

    @property
    def images_per_epoch(self) -> int:
        return len(self.loader) * self.loader.batch_size

    def epoch(self) -> None:
        self.model.train()
        running_loss = 0.0
        for images, labels in self.loader:
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                loss = F.cross_entropy(self.forward(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            if self.steps % self.every_steps == 0:
                prune.global_unstructured(self.pruned, pruning_method=prune.L1Unstructured, amount=self.per_event)
            running_loss += loss.item()


def total_steps(args: argparse.Namespace) -> int:
    """Optimizer steps each side trains: the warm-up epoch and the timed ones."""
    return (args.epochs + 1) * (args.images // args.batch)


def timed(epoch: Callable[[], None], device: torch.device) -> float:
    started = time.perf_counter()
    epoch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def median_epochs(sides: dict[str, Ours | Recipe], epochs: int, device: torch.device) -> dict[str, float]:
    """Median seconds per epoch of each side: a warm-up epoch each, then `epochs` epochs of each in turn."""
    for side in sides.values():
        side.epoch()  # warm-up: allocator, kernels (and compilation), worker start-up
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(epochs):
        for name, side in sides.items():
            times[name].append(timed(side.epoch, device))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs of each, after one warm-up epoch")
    # One thread by default: on a shared machine two threads per process fight other processes for the
    # cores and the figures swing by several times; pass --threads to use more.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every-steps", type=int, default=50, help="steps between pruning events (both)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = random_images(args.images, torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as scratch:
        sides = {"ours": Ours(args, Path(scratch), {"name": "synthetic", "val_size": 0}, images, labels),
                 "recipe": Recipe(args, images, labels)}
        medians = median_epochs(sides, args.epochs, cpu)
    ours_s, recipe_s = medians["ours"], medians["recipe"]
    print(f"{args.model}×{args.width}, batch {args.batch}, {args.images} CIFAR-shaped images, {args.threads} "
          f"thread(s), pruning every {args.every_steps} steps, median of {args.epochs} interleaved epochs "
          f"after a warm-up: wmprune {ours_s:.4f} s/epoch, PyTorch recipe {recipe_s:.4f} s/epoch")
    print(f"ratio={recipe_s / ours_s:.2f}")


if __name__ == "__main__":
    main()
