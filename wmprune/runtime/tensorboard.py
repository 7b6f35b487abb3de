"""TensorBoard event files in the run directory (`output.tensorboard`), so a sweep can be watched while it
runs: `tensorboard --logdir results/runs`. The x axis of every curve is the optimizer step.

Written, by rank 0 only:
- at every epoch end: `<split>/<metric>` for every `<split>_<metric>` column of the metrics row (train, val,
  test: loss, top1, top5) and `lr`, the learning rate after that many steps;
- at every change of the masks (the Pruner's `on_mask_change`: pruning events, regrowth, IMP's prune and
  rewind, pruning at initialization): `sparsity/network` and `layer_sparsity/<tensor>` from the masks, and
  the histogram `scores/ranked` of the scores the method ranked by (WeightMom's momentum, |w| for the
  magnitude methods, |g·w| for SNIP) over the weights it ranked;
- the same sparsity tags at the start and at every epoch end that had no change, so flat stretches show.

A resumed run continues the same curves: its writer purges every event after the checkpoint's step
(`purge_step`), which the killed process may have written, and writes them again.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console

from wmprune.pruning.pruner import MaskEvent
from wmprune.runtime.run import Run

_SPLITS = ("train", "val", "test")
_BINS = 64


class Board:
    """One run's TensorBoard writer; the trainer calls it at events and epoch ends, never per step."""

    def __init__(self, open_writer: Callable[[], Any]):
        # The event file is created at the first write, so a run that fails while loading its data leaves
        # no directory behind.
        self.open_writer = open_writer
        self.opened: Any = None  # torch.utils.tensorboard.SummaryWriter, imported only where it exists
        self.sparsity_step = -1  # the step whose sparsity was last written: one value per step and tag

    @property
    def writer(self) -> Any:
        if self.opened is None:
            self.opened = self.open_writer()
        return self.opened

    def mask_changed(self, event: MaskEvent) -> None:
        """The Pruner's `on_mask_change`."""
        self._sparsity(event.step, event.sparsity, event.layers)
        ranked = torch.cat([score[chosen].flatten().float()
                            for score, chosen in zip(event.change.scores, event.change.candidates)])
        if ranked.numel():
            self._histogram("scores/ranked", ranked, event.step)

    def start(self, run: Run) -> None:
        """A fresh run's starting point: the initial learning rate and masks."""
        self.writer.add_scalar("lr", run.optimizer.param_groups[0]["lr"], run.step)
        if self.sparsity_step != run.step:
            self._sparsity(run.step, *run.pruner.mask_sparsity())

    def epoch_end(self, run: Run) -> None:
        """The epoch's metrics row; flushed, so that everything up to the checkpoint about to be saved is on
        disk and a resume never needs an event written before it."""
        for key, value in run.metrics[-1].items():
            split, _, metric = key.partition("_")
            if split in _SPLITS and metric:
                self.writer.add_scalar(f"{split}/{metric}", value, run.step)
        self.writer.add_scalar("lr", run.optimizer.param_groups[0]["lr"], run.step)
        if self.sparsity_step != run.step:
            self._sparsity(run.step, *run.pruner.mask_sparsity())
        self.writer.flush()

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()

    def _sparsity(self, step: int, network: float, layers: dict[str, float]) -> None:
        self.writer.add_scalar("sparsity/network", network, step)
        for name, value in layers.items():
            self.writer.add_scalar(f"layer_sparsity/{name}", value, step)
        self.sparsity_step = step

    @torch.no_grad()
    def _histogram(self, tag: str, values: torch.Tensor, step: int) -> None:
        # Binned where the scores live (one transfer of 64 counts), not copied to the host whole.
        low, high = values.min().item(), values.max().item()
        if high > low:
            counts = torch.histc(values, bins=_BINS, min=low, max=high)
        else:  # every score equal: one bucket
            counts = values.new_full((1,), len(values))
        edges = torch.linspace(low, high, len(counts) + 1)[1:]
        self.writer.add_histogram_raw(tag, min=low, max=high, num=len(values), sum=values.sum().item(),
                                      sum_squares=values.square().sum().item(), bucket_limits=edges.tolist(),
                                      bucket_counts=counts.tolist(), global_step=step)


def open_board(enabled: bool, directory: Path, purge_step: int, console: Console) -> Board | None:
    """The run's writer, or None when `output.tensorboard` is off or TensorBoard is not installed (said in one
    line; the run goes on). `purge_step`: the first step this process writes (0 for a fresh run)."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        console.print("TensorBoard is not installed, so this run writes no curves (pip install "
                      "'wmprune[tensorboard]', or set output.tensorboard=false to silence this)",
                      soft_wrap=True, markup=False)
        return None
    # One unbroken line, to be copied: the parent shows the whole sweep the run belongs to.
    console.print(f"curves: tensorboard --logdir {directory.parent}", soft_wrap=True, markup=False, highlight=False)
    return Board(partial(SummaryWriter, str(directory), purge_step=purge_step))
