"""Sparsity schedules: how the target sparsity rises from 0 to its final value during training.

Each schedule is a shape f(progress) on [0, 1] → [0, 1]; `SparsitySchedule` places it on the step axis
between `start_epoch` and `end_epoch` and quantises it to updates every `every_steps` steps.
`cosine_decay` is the other schedule: the fraction of weights the regrowing methods move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


def cubic(progress: float) -> float:
    """Zhu & Gupta 2017 (arXiv 1710.01878), eq. 1: s_t = s_f (1 − (1 − progress)^3).

    Prunes fast while the network is redundant and slowly near the final sparsity.
    """
    return 1.0 - (1.0 - progress) ** 3


def linear(progress: float) -> float:
    """Constant pruning rate between start and end."""
    return progress


def oneshot(progress: float) -> float:
    """Everything at the start step (Han et al. 2015, arXiv 1506.02626, pruning a trained net once)."""
    return 1.0


SCHEDULES: dict[str, Callable[[float], float]] = {"cubic": cubic, "linear": linear, "oneshot": oneshot}


@dataclass(frozen=True)
class SparsitySchedule:
    """Target sparsity as a function of the optimizer step."""

    shape: Callable[[float], float]
    final: float
    start_step: int
    end_step: int
    every_steps: int

    def is_update(self, step: int) -> bool:
        """Pruning events: every `every_steps` from the start, and exactly at the end."""
        if step < self.start_step or step > self.end_step:
            return False
        return (step - self.start_step) % self.every_steps == 0 or step == self.end_step

    def target(self, step: int) -> float:
        """The sparsity the network should have after the update at (or last before) `step`."""
        if step < self.start_step:
            return 0.0
        if step >= self.end_step:
            return self.final
        last_update = self.start_step + (step - self.start_step) // self.every_steps * self.every_steps
        progress = (last_update - self.start_step) / (self.end_step - self.start_step)
        return self.final * self.shape(progress)


def build_schedule(kind: str, final: float, start_epoch: int, end_epoch: int, every_steps: int,
                   steps_per_epoch: int) -> SparsitySchedule:
    return SparsitySchedule(SCHEDULES[kind], final, start_epoch * steps_per_epoch,
                            end_epoch * steps_per_epoch, every_steps)


def cosine_decay(initial: float, position: float, length: float) -> float:
    """initial · ½(1 + cos(π · position / length)): `initial` at 0, 0 at `length`. The prune-and-regrow
    fraction of sparse momentum (Dettmers & Zettlemoyer 2019, arXiv 1907.04840; per epoch) and of RigL
    (Evci et al. 2020, arXiv 1911.11134; per optimizer step)."""
    return initial * 0.5 * (1.0 + math.cos(math.pi * position / length))
