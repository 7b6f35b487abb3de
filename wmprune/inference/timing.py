"""Wall-clock timing for inference: interleaved repeats, medians and quartiles, thread count, memory format.

Repeats of the things being compared are interleaved (a, b, b, a, a, b, …) so that a burst of load from another
process on a shared machine hits both alike; warm-up rounds (allocator, oneDNN primitive caches) are not timed.
"""

from __future__ import annotations

import contextlib
import copy
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


@dataclass(frozen=True)
class Timing:
    """Median and quartiles of repeated wall-clock times, in milliseconds."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    repeats: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ms = sorted(s * 1e3 for s in seconds)
        if len(ms) == 1:
            return cls(ms[0], ms[0], ms[0], 1)
        q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
        return cls(statistics.median(ms), q1, q3, len(ms))


def interleaved(calls: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, Timing]:
    """Time every callable `repeats` times, alternating the order each round, after `warmup` untimed rounds."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            started = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - started)
    return {name: Timing.of(values) for name, values in seconds.items()}


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the block with `count` intra-op threads (torch.set_num_threads), then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def in_memory_format(model: nn.Module, name: str) -> nn.Module:
    """A copy of `model` whose 4-D weights are in memory format `name` (contiguous or channels_last)."""
    return copy.deepcopy(model).to(memory_format=MEMORY_FORMATS[name])


def faster_memory_format(model: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> dict[str, Timing]:
    """Whole-network time of the dense `model` with weights and input in each memory format (interleaved)."""
    calls = {}
    for name, fmt in MEMORY_FORMATS.items():
        copy_, inputs = in_memory_format(model, name), x.contiguous(memory_format=fmt)
        calls[name] = lambda m=copy_, i=inputs: m(i)
    with torch.inference_mode():
        return interleaved(calls, repeats, warmup)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
