"""The training loop: SGD, an LR schedule, the pruner after every optimizer step, a checkpoint per epoch."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from wmprune import results, rng
from wmprune.distributed import World, from_main, sum_across
from wmprune.config import RunConfig, dump_yaml
from wmprune.data import DATASETS
from wmprune.data.loader import TensorLoader, channel_stats
from wmprune.data.splits import Splits
from wmprune.errors import UserError
from wmprune.evaluate import autocast, evaluate, summarize
from wmprune.models import build_model
from wmprune.pruning.methods.gradual import TrainingContext
from wmprune.pruning.pruner import Pruner


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_device(name: str, world: World = World()) -> torch.device:
    """`auto` picks CUDA when present; an unavailable device is a user error, not a crash.

    Under torchrun each process takes the GPU of its local rank (device `cpu` trains on CPU with gloo).
    """
    if world.distributed and name != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", world.local_rank)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device '{name}' requested but CUDA is not available here; use device: cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device(name)


def load_splits(cfg: RunConfig) -> Splits:
    return DATASETS[cfg.data.name](cfg.data.root, cfg.data.download)


def make_loaders(cfg: RunConfig, splits: Splits, device: torch.device,
                 world: World = World()) -> tuple[TensorLoader, TensorLoader]:
    mean, std = channel_stats(splits.train_images)
    channels_last = device.type == "cuda"
    common = dict(device=device, mean=mean, std=std, seed=cfg.seed, channels_last=channels_last)
    train = TensorLoader(splits.train_images, splits.train_labels, cfg.data.batch_size, train=True,
                         augment=cfg.data.augment, shard=(world.rank, world.size), **common)
    test = TensorLoader(splits.test_images, splits.test_labels, max(cfg.data.batch_size, 500), train=False,
                        augment=False, **common)
    return train, test


def lr_lambda(cfg: RunConfig, steps_per_epoch: int, clock: Callable[[int], tuple[int, int]]):
    """Multiplier of `train.lr` at optimizer step t: linear warm-up, then cosine, multistep or constant.

    `clock` maps t to its (position, length) within the schedule; the pruning method owns it so that a
    method may restart the schedule (IMP) without the trainer knowing.
    """
    train = cfg.train
    warmup = train.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        position, total = clock(step)
        if position < warmup:
            return (position + 1) / warmup
        if train.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * (position - warmup) / max(1, total - warmup)))
        if train.lr_schedule == "multistep":
            epochs = total // steps_per_epoch
            milestones = [round(m * epochs) * steps_per_epoch for m in train.milestones]
            return train.gamma ** sum(position >= m for m in milestones)
        return 1.0

    return factor


@dataclass
class Run:
    """Everything a training run holds between epochs."""

    cfg: RunConfig
    directory: Path
    device: torch.device
    model: nn.Module
    forward: nn.Module  # the model, possibly wrapped by torch.compile
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    pruner: Pruner
    train_loader: TensorLoader
    test_loader: TensorLoader
    world: World
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels) -> training loss
    epoch: int = 0
    step: int = 0
    seconds: float = 0.0
    metrics: list[dict] = field(default_factory=list)  # one row per finished epoch (metrics.csv)


def build_run(cfg: RunConfig, directory: Path, world: World) -> Run:
    device = resolve_device(cfg.device, world)
    splits = load_splits(cfg)
    rng.seed_everything(cfg.seed)
    model = build_model(cfg.model.name, splits.num_classes, cfg.model.width, splits.channels).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    train_loader, test_loader = make_loaders(cfg, splits, device, world)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum,
                                nesterov=cfg.train.nesterov and cfg.train.momentum > 0,
                                weight_decay=cfg.train.weight_decay)
    loss = partial(F.cross_entropy, label_smoothing=cfg.train.label_smoothing)
    context = TrainingContext(model, optimizer, partial(train_loader.epoch, 0), loss, len(train_loader),
                              cfg.train.epochs)
    pruner = Pruner(cfg.prune, context)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, len(train_loader), pruner.lr_clock))
    forward = model
    if world.distributed:
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.train.compile:
        forward = torch.compile(forward)
    return Run(cfg, directory, device, model, forward, optimizer, scheduler, pruner, train_loader, test_loader,
               world, loss)


def checkpoint_state(run: Run) -> dict:
    return {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "pruner": run.pruner.state_dict(),
        "epoch": run.epoch, "step": run.step, "seconds": run.seconds, "rng": rng.capture(),
        # Kept with the weights, so a crash between the two writes never loses a metrics row.
        "metrics": run.metrics,
    }


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Read a checkpoint without executing code (`weights_only`); a damaged file is a user error."""
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we refuse them below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}; train the run first") from None
    except Exception as exc:  # torch raises many types for damaged or hostile files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load checkpoint {path} ({reason[:160]}); "
                        "it is damaged or not a wmprune checkpoint — retrain or restore it") from None


def restore(run: Run, state: dict) -> None:
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.pruner.load_state_dict(state["pruner"])
    run.epoch, run.step, run.seconds, run.metrics = state["epoch"], state["step"], state["seconds"], state["metrics"]
    rng.restore(state["rng"])


def train_one_epoch(run: Run, progress: Progress, task) -> dict[str, float]:
    run.model.train()
    device = run.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = torch.zeros((), dtype=torch.long, device=device)
    for images, labels in run.train_loader.epoch(run.epoch):
        with autocast(device, run.cfg.train.amp):
            logits = run.forward(images)
            loss = run.loss(logits, labels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        run.step += 1
        run.pruner.on_step(run.step)
        # Accumulate on the device: one host sync per epoch, not per step.
        loss_sum += loss.detach().double() * len(labels)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        progress.advance(task)
    sum_across(run.world, loss_sum, correct, seen)
    train_loss = loss_sum.item() / seen.item()
    if not math.isfinite(train_loss):
        raise TrainingDiverged(
            f"training loss became {train_loss} in epoch {run.epoch + 1}; the last good checkpoint in "
            f"{run.directory} is kept — lower train.lr or check the data")
    return {"train_loss": train_loss, "train_top1": 100.0 * correct.item() / seen.item()}


def results_table(title: str, row: dict) -> Table:
    """The final numbers of a run (or of `wmprune eval`), narrow enough for an 80-column terminal."""
    table = Table(title=title)
    columns = {"top-1 %": f"{row['test_top1']:.2f}", "top-5 %": f"{row['test_top5']:.2f}",
               "sparsity": f"{row['sparsity']:.4f}", "compression": f"{row['compression_ratio']:.2f}×",
               "kept %": f"{row['weights_kept_pct']:.2f}",
               "non-zero": f"{row['params_nonzero']:,} / {row['params_prunable']:,}"}
    for name in columns:
        table.add_column(name, justify="right")
    table.add_row(*columns.values())
    return table


def train(cfg: RunConfig, directory: Path, resume: bool, console: Console, world: World = World()) -> dict:
    """Train (or continue) the run in `directory`; returns its summary row. Only rank 0 writes files."""
    setup_started = time.perf_counter()
    run = build_run(cfg, directory, world)
    writes = world.is_main
    log_path = directory / results.LOG
    # A resumed run's log continues the earlier sessions' instead of replacing them.
    earlier_log = log_path.read_text() if resume and log_path.exists() else ""
    if resume:
        restore(run, load_checkpoint(directory / results.CHECKPOINT, run.device))
        console.print(f"resuming {directory} at epoch {run.epoch}, step {run.step} "
                      f"(data, model and checkpoint ready in {time.perf_counter() - setup_started:.2f}s)")
    elif writes:
        results.atomic_write_text(directory / results.CONFIG, dump_yaml(cfg))
    if cfg.data.name == "synthetic":
        console.print("[bold yellow]SYNTHETIC DATA: random images, a smoke test only — accuracy means nothing[/]")
    console.print(f"{cfg.name}: {cfg.model.name}×{cfg.model.width} on {cfg.data.name}, method {cfg.prune.method} "
                  f"→ {cfg.prune.target_sparsity:.3f} sparsity, {run.pruner.total_epochs} epochs on {run.device}")
    run.pruner.on_train_start(run.step)
    _same_masks_everywhere(run)

    steps_per_epoch = len(run.train_loader)
    epochs = run.pruner.total_epochs  # train.epochs, unless the method trains several levels (IMP)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("training", total=epochs * steps_per_epoch,
                                 completed=run.epoch * steps_per_epoch)
        while run.epoch < epochs:
            started = time.perf_counter()
            lr = run.optimizer.param_groups[0]["lr"]
            train_stats = train_one_epoch(run, progress, task)
            test_stats = evaluate(run.forward, run.test_loader, cfg.train.amp)
            sparsity = run.pruner.sparsity()
            # After measuring: the row describes the network that was trained this epoch, not the one a
            # method makes of it for the next (sparse_momentum regrows, IMP prunes and rewinds).
            run.pruner.on_epoch_end(run.epoch + 1)
            _same_masks_everywhere(run)
            run.epoch += 1
            seconds = time.perf_counter() - started
            run.seconds += seconds
            run.metrics.append({"epoch": run.epoch, "step": run.step, "lr": lr, **train_stats, **test_stats,
                                "sparsity": sparsity, "seconds": round(seconds, 3)})
            console.print(f"epoch {run.epoch:>3}/{epochs}  loss {train_stats['train_loss']:.4f}  "
                          f"train {train_stats['train_top1']:6.2f}  test {test_stats['test_top1']:6.2f}  "
                          f"sparsity {sparsity:.4f}  {seconds:.1f}s")
            if writes:
                results.atomic_torch_save(directory / results.CHECKPOINT, checkpoint_state(run))
                results.write_csv(directory / results.METRICS, results.METRIC_FIELDS, run.metrics)
                results.atomic_write_text(log_path, earlier_log + console.export_text(clear=False))
            progress.update(task, description=f"epoch {run.epoch}/{epochs}")

    counts = run.pruner.layer_counts()
    last = run.metrics[-1]
    summary = summarize(cfg, counts, {key: float(last[key]) for key in ("test_top1", "test_top5")})
    summary.update(epochs=epochs, seconds=round(run.seconds, 2), git_sha=results.git_sha(),
                   torch_version=torch.__version__)
    console.print(results_table(f"{cfg.name} — {directory}", summary))
    if writes:
        results.write_csv(directory / results.LAYERS, results.LAYER_FIELDS, [
            {"layer": c.layer, "shape": "x".join(map(str, c.shape)), "numel": c.numel, "nonzero": c.nonzero,
             "sparsity": c.sparsity} for c in counts])
        results.write_csv(directory / results.SUMMARY, results.SUMMARY_FIELDS, [summary])
        results.atomic_write_text(log_path, earlier_log + console.export_text(clear=False))
    return summary


def _same_masks_everywhere(run: Run) -> None:
    """Under DDP, rank 0's masks for all: the weights agree, but a decision from local data (SNIP) may not."""
    if run.world.distributed:
        from_main(run.world, run.pruner.masks.masks)
        run.pruner.masks.apply()
