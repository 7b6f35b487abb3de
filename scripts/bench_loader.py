"""Batched on-device augmentation (wmprune's TensorLoader) against the usual per-image PIL pipeline.

Both produce one epoch of random-crop(pad 4) + horizontal-flip + normalised float batches from the same
uint8 CIFAR-shaped images (10,000, batch 128, on the CPU with one thread by default); the epochs alternate
between the two (`--repeats` of each, so machine noise hits both alike) and the medians are compared. The last line is
`ratio=<PIL epoch time / TensorLoader epoch time>`.

    python scripts/bench_loader.py [--images 10000] [--batch 128] [--repeats 3] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision import transforms

from wmprune.data.loader import TensorLoader, channel_stats
from wmprune.data.synthetic import random_images


def tensor_epoch(images, labels, args) -> float:
    mean, std = channel_stats(images)
    loader = TensorLoader(images, labels, args.batch, device=torch.device(args.device), mean=mean, std=std,
                          train=True, augment=True, seed=0, channels_last=True)  # as training uses it
    started = time.perf_counter()
    for batch, _ in loader.epoch(0):
        batch.sum().item()  # wait for the device
    return time.perf_counter() - started


def pil_epoch(images, labels, args) -> float:
    mean, std = channel_stats(images)
    pipeline = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(mean.tolist(), std.tolist())])
    to_pil = transforms.ToPILImage()
    pictures = [to_pil(image) for image in images]  # a torchvision dataset holds decoded images too
    started = time.perf_counter()
    order = torch.randperm(len(pictures))
    for start in range(0, len(order) - args.batch + 1, args.batch):
        batch = torch.stack([pipeline(pictures[i]) for i in order[start:start + args.batch].tolist()])
        batch.to(args.device).sum().item()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one: stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = random_images(args.images, torch.Generator().manual_seed(0))
    tensor_epoch(images, labels, args)  # warm-up
    tensor, pil = [], []
    for _ in range(args.repeats):
        tensor.append(tensor_epoch(images, labels, args))
        pil.append(pil_epoch(images, labels, args))
    tensor_seconds, pil_seconds = statistics.median(tensor), statistics.median(pil)
    print(f"{args.images} images, batch {args.batch}, {args.device}, {torch.get_num_threads()} thread(s), median "
          f"of {args.repeats} interleaved epochs: TensorLoader {tensor_seconds:.6f} s/epoch, PIL per image "
          f"{pil_seconds:.6f} s/epoch")
    print(f"ratio={pil_seconds / tensor_seconds:.1f}")


if __name__ == "__main__":
    main()
