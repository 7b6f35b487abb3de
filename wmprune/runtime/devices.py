"""Where a run computes: the device, bf16 autocast, and several GPUs through `torchrun` (PyTorch DDP) —
which process this is, and the collectives a run needs.

`torchrun --nproc_per_node N -m wmprune train ...` starts N copies of the same command. Each trains on its
shard of every global batch (`data.batch_size` stays the global batch), DDP averages the gradients, so all
copies hold identical weights and take identical pruning decisions (what one decides from its own data,
SNIP, is averaged first); rank 0 alone writes and prints. Without torchrun (WORLD_SIZE unset) everything
here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from wmprune.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world() -> World:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU); a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world


def sum_across(world: World, *tensors: torch.Tensor) -> None:
    """In place: every tensor becomes its sum over all processes."""
    if world.distributed:
        for tensor in tensors:
            dist.all_reduce(tensor)


def average_across(world: World, tensors: list[torch.Tensor]) -> None:
    """In place: every tensor becomes its mean over all processes."""
    if world.distributed:
        for tensor in tensors:
            dist.all_reduce(tensor)
            tensor.div_(world.size)


def from_main(world: World, tensors: list[torch.Tensor]) -> None:
    """In place: every process gets rank 0's values (BatchNorm statistics before an evaluation)."""
    if world.distributed:
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def main_decides(world: World, value):
    """Rank 0's value of a Python object on every process."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def main_decides_or_raises(world: World, decide):
    """Rank 0's `decide()` on every process; a UserError it raises is raised on every process (each then exits
    with the same one line) instead of leaving the others waiting for a value that never comes."""
    value, problem = None, None
    if world.is_main:
        try:
            value = decide()
        except UserError as exc:
            problem = str(exc)
    value, problem = main_decides(world, (value, problem))
    if problem is not None:
        raise UserError(problem)
    return value


def leave(world: World) -> None:
    """After a UserError that every process raised (same config, same files, rank 0's decisions shared): wait
    for the others, leave the process group (a group left standing aborts the process at exit), and let the
    exit run to its end. torchrun's agent terminates the other processes as soon as one exits; each of them is
    already exiting with the same error, so SIGTERM is ignored from here and every process exits with 2."""
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def close(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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


def uses_bf16(device: torch.device, amp: str) -> bool:
    """bf16 autocast on CUDA (amp auto|bf16); full precision elsewhere, where bf16 is slow."""
    return device.type == "cuda" and amp in ("auto", "bf16")


def describe(device: torch.device, amp: str) -> str:
    """What trained a run, for summary.csv: the GPU's name and precision, or the CPU and its thread count
    (float paths differ between machines, so a number is only comparable with its machine beside it)."""
    if device.type == "cuda":
        precision = "bf16 autocast" if uses_bf16(device, amp) else "fp32"
        return f"{torch.cuda.get_device_name(device)} ({precision})"
    return f"{device.type} (fp32, {torch.get_num_threads()} threads)"


def precision(device: torch.device, amp: str) -> str:
    """The arithmetic a run trained in, half of its machine class (summary.csv `precision`): bf16 or fp32."""
    return "bf16" if uses_bf16(device, amp) else "fp32"


def cpu_capability() -> str:
    """The widest vector instruction set torch's CPU kernels use here (AVX2, AVX512, …; summary.csv
    `cpu_capability`): recorded beside the machine class, since CPU kernels may round differently across it."""
    return torch.backends.cpu.get_cpu_capability()


def autocast(device: torch.device, amp: str):
    """The autocast context `uses_bf16` asks for, else a no-op."""
    if uses_bf16(device, amp):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
