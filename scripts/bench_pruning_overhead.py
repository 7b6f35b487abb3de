"""What pruning costs per training step — wmprune's WeightMom bookkeeping and `torch.nn.utils.prune`'s
hooks, each against the same dense step — and what one pruning event costs on ResNet50.

Per step (VGG16 ×1/2, batch 128, CIFAR-shaped random batch, channels_last for all three, one thread by
default):
- dense: forward, backward, SGD step;
- wmprune: the same, then `Pruner.step()` (masks re-applied with one `_foreach_mul_`, the momentum updated
  in place), at 90 % sparsity, with no pruning event inside the timed window;
- torch.nn.utils.prune: the same dense step with the masks (90 % pruned by |w|) as forward pre-hooks,
  weight = weight_orig · mask in every forward and through the backward.
Each repeat times `--steps` steps of each, in turn (interleaved, so machine noise hits all alike); the
overhead is the median over `--repeats` repeats of each repeat's ratio to its dense time (paired, so slow
drifts of a shared machine cancel). The bookkeeping alone (`Pruner.step()`) is also timed directly. Then
the cost of one pruning event (prune_to, the allocation and the per-layer top-k) of a WeightMom-pruned
ResNet50 at width 1, against `prune.global_unstructured` (on a contiguous copy: it cannot rank channels_last
weights). The last line is `overhead=<median of wmprune step / dense step − 1>`.

    python scripts/bench_pruning_overhead.py [--model vgg16] [--width 0.5] [--batch 128] [--steps 5]
                                             [--repeats 9] [--event-width 1.0] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from wmprune import Pruner
from wmprune.models import build_model

SPARSITY = 0.9
NO_EVENTS = {"method": "weightmom", "target_sparsity": SPARSITY,
             "schedule": {"kind": "oneshot", "start_epoch": 0, "end_epoch": 0}}  # prunes at construction only


def network(args: argparse.Namespace, model: str, width: float, hooks: bool = False) -> nn.Module:
    """The model in the chosen memory format; with `hooks`, its weights 90 % pruned by |w| as
    `torch.nn.utils.prune` hooks — pruned while contiguous: its top-k takes `.view(-1)` of the weight, which
    fails on channels_last tensors (so `torch.nn.utils.prune` can only train channels_last between events)."""
    torch.manual_seed(0)
    net = build_model(model, 10, width)
    if hooks:
        layers = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=SPARSITY)
    return net.to(memory_format=torch.channels_last) if args.channels_last else net


def stepper(args: argparse.Namespace, kind: str, bookkeeping: list[float]) -> Callable[[], None]:
    """One training step of `kind` (dense, wmprune, torch_prune) on a fixed batch; wmprune's steps append
    the seconds of their `Pruner.step()` to `bookkeeping`."""
    model = network(args, args.model, args.width, hooks=kind == "torch_prune")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    after_step = lambda: None  # noqa: E731
    if kind == "wmprune":
        after_step = Pruner(model, optimizer, NO_EVENTS, steps_per_epoch=10**6, epochs=1).step
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    images = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=fmt)
    labels = torch.randint(0, 10, (args.batch,))

    def step() -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        started = time.perf_counter()
        after_step()
        if kind == "wmprune":
            bookkeeping.append(time.perf_counter() - started)

    return step


def per_step(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], float]:
    """Median seconds per step of each kind, the median paired overhead of each against dense, and the
    median seconds of wmprune's `Pruner.step()` alone."""
    bookkeeping: list[float] = []
    steps = {kind: stepper(args, kind, bookkeeping) for kind in ("dense", "wmprune", "torch_prune")}
    for step in steps.values():  # warm-up: allocator, oneDNN kernels, SGD buffers
        step(), step()
    bookkeeping.clear()
    times: dict[str, list[float]] = {kind: [] for kind in steps}
    for _ in range(args.repeats):
        for kind, step in steps.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[kind].append((time.perf_counter() - started) / args.steps)
    overhead = {kind: statistics.median(t / d - 1 for t, d in zip(times[kind], times["dense"])) for kind in times}
    return {kind: statistics.median(t) for kind, t in times.items()}, overhead, statistics.median(bookkeeping)


def event_seconds(args: argparse.Namespace) -> tuple[float, float]:
    """Median seconds of one WeightMom pruning event and of one `prune.global_unstructured` call (3 each,
    to 50, 70 and 90 % sparsity) on ResNet50 at `--event-width`."""
    model = network(args, "resnet50", args.event_width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    method = Pruner(model, optimizer, {**NO_EVENTS, "target_sparsity": 0.9, "schedule": {"start_epoch": 1}},
                    steps_per_epoch=10, epochs=2).method
    ours, theirs = [], []
    for target in (0.5, 0.7, 0.9):
        started = time.perf_counter()
        method.prune_to(target)
        ours.append(time.perf_counter() - started)
    torch.manual_seed(0)  # contiguous: torch.nn.utils.prune cannot rank channels_last weights (see network)
    layers = [(m, "weight") for m in build_model("resnet50", 10, args.event_width).modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    for amount in (0.5, 0.4, 1 / 3):  # of the remaining weights: 50, 70 and 90 % in all
        started = time.perf_counter()
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=amount)
        theirs.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--event-width", type=float, default=1.0, help="ResNet50 width for the event timing")
    # One thread by default: on a shared machine two threads per process fight other processes for the
    # cores and the figures swing by several times; pass --threads to use more.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--contiguous", dest="channels_last", action="store_false",
                        help="contiguous weights and batches (default: channels_last, as wmprune trains)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    medians, overhead, bookkeeping = per_step(args)
    dense = medians["dense"]
    layout = "channels_last" if args.channels_last else "contiguous"
    print(f"{args.model}×{args.width}, batch {args.batch}, {layout}, {args.threads} thread(s), {SPARSITY:.0%} "
          f"sparse, median of {args.repeats} interleaved repeats of {args.steps} steps:")
    for kind, seconds in medians.items():
        print(f"  {kind:12s} {seconds * 1e3:10.3f} ms/step  overhead {overhead[kind]:+.4f}")
    print(f"  wmprune's Pruner.step() alone: {bookkeeping * 1e3:.2f} ms, {bookkeeping / dense:.4f} of a dense step")
    ours, theirs = event_seconds(args)
    print(f"one pruning event, resnet50×{args.event_width}: wmprune {ours:.3f} s, "
          f"torch.nn.utils.prune.global_unstructured {theirs:.3f} s (median of 3)")
    print(f"overhead={overhead['wmprune']:.4f}")


if __name__ == "__main__":
    main()
