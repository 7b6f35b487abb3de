"""How much WeightMom's per-step bookkeeping (EMA of |w| + mask re-application, foreach ops) costs.

Times the same SGD steps of a model with `prune.method: none` and `weightmom` (no pruning event inside the
timed window, so this is the cost paid on every step) and prints the ratio last.

    python scripts/bench_pruning_overhead.py [--model vgg16] [--width 0.5] [--batch 128] [--steps 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from wmprune.models import build_model
from wmprune import Pruner


def seconds_per_step(method: str, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(args.model, 10, args.width).to(device)
    # Schedule starts after the timed window: every timed step is bookkeeping only.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    pruner = Pruner(model, optimizer, {"method": method, "schedule": {"start_epoch": 1, "end_epoch": 2}},
                    steps_per_epoch=10 * args.steps, epochs=2)
    images = torch.randn(args.batch, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (args.batch,), device=device)

    def step(index: int) -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        pruner.step()

    for index in range(1, 4):  # warm-up
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for index in range(4, 4 + args.steps):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    # Alternate the two so machine noise hits both alike; keep the best of each.
    dense, weightmom = [], []
    for _ in range(3):
        dense.append(seconds_per_step("none", args))
        weightmom.append(seconds_per_step("weightmom", args))
    print(f"{args.model}×{args.width} batch {args.batch} on {args.device}: "
          f"dense {min(dense) * 1e3:.1f} ms/step, weightmom {min(weightmom) * 1e3:.1f} ms/step")
    print(f"weightmom / dense step time: {min(weightmom) / min(dense):.3f}")


if __name__ == "__main__":
    main()
