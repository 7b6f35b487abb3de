"""`wmprune bench`: a finished run's network on this CPU, dense against its measured sparse plan.

For every batch size × thread count: the fair dense baseline (BatchNorm folded, `torch.inference_mode`, the faster
of contiguous and channels_last memory, same threads) and the planned module (each layer dense or CSR, as
measured) are timed end to end with interleaved repeats; the per-layer costs come from the plan. Both modules'
logits on a fixed sample of the test split are compared. Everything goes to a Rich table and `<run>/inference.csv`;
each plan to `<run>/inference-plan.b<batch>.t<threads>.json`. Method and figures: docs/inference.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from torch import nn

from wmprune import results
from wmprune.catalog import build_config
from wmprune.config import read_yaml, shown
from wmprune.errors import UserError
from wmprune.inference import Plan, build_module, fold_batchnorm, load_plan, make_plan, save_plan
from wmprune.inference.plan import DENSE, fingerprint, weight_layers
from wmprune.inference.timing import MEMORY_FORMATS, Timing, cpu_name, faster_memory_format, in_memory_format, \
    interleaved, threads
from wmprune.runtime.checkpoint import load_trained
from wmprune.runtime.loaders import make_loaders

NETWORK = "network"
FIELDS = ["model", "dataset", "sparsity", "batch", "threads", "layer", "kind", "shape", "layer_sparsity", "kernel",
          "dense_ms", "dense_q1_ms", "dense_q3_ms", "sparse_ms", "sparse_q1_ms", "sparse_q3_ms", "speedup",
          "dense_images_per_s", "sparse_images_per_s", "memory_format", "sparse_layers", "max_abs_diff",
          "max_rel_diff", "top1_agreement", "samples", "repeats", "cpu", "torch_version"]


@dataclass
class BenchOptions:
    batches: list[int]
    threads: list[int]
    repeats: int = 30  # end-to-end timed repeats per module
    warmup: int = 5
    plan_repeats: int = 10  # timed repeats per layer and kernel while planning
    samples: int = 256  # test images whose outputs are compared
    replan: bool = False
    weights: Path | None = None


MAX_COUNT = 65_536  # a batch of that many images already fills gigabytes of activations


def parse_counts(text: str, option: str) -> list[int]:
    """'1,32' -> [1, 32]; anything else is a user error naming the option."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1 or max(values) > MAX_COUNT:
        raise UserError(f"{option} takes positive integers up to {MAX_COUNT:,} separated by commas, e.g. {option} "
                        f"1,32 (got {shown(text)})")
    return values


def check_threads(counts: list[int]) -> list[int]:
    cores = os.cpu_count() or 1
    if max(counts) > cores:
        raise UserError(f"--threads {max(counts)} is more than this machine's {cores} cores; pass at most {cores}")
    return counts


def plan_path(run: Path, batch: int, thread_count: int) -> Path:
    return run / f"inference-plan.b{batch}.t{thread_count}.json"


def load_run(run: Path, weights: Path | None, samples: int) -> tuple[dict, nn.Module, torch.Tensor]:
    """The run's identity (model, dataset), its network in eval mode on the CPU, and `samples` normalised test
    images (the first ones of the test split)."""
    if not (run / results.CONFIG).is_file():
        raise UserError(f"{run} is not a run directory (no {results.CONFIG}); pass the directory `wmprune train` wrote")
    cfg = build_config(read_yaml(run / results.CONFIG))
    cpu = torch.device("cpu")
    model, splits, stats = load_trained(cfg, run, cpu, weights)
    _, _, test_loader = make_loaders(cfg, splits, cpu, stats=stats)
    images = torch.cat([batch for batch, _ in test_loader.epoch(0)])[:samples]
    return {"model": cfg.model.name, "dataset": cfg.data.name}, model.eval(), images


def batch_of(images: torch.Tensor, size: int) -> torch.Tensor:
    """The first `size` images, cycling when the sample is smaller."""
    repeats = -(-size // len(images))
    return images.repeat(repeats, 1, 1, 1)[:size].contiguous()


def compare_outputs(dense: nn.Module, planned: nn.Module, images: torch.Tensor, batch: int,
                    memory_format: str) -> dict[str, float]:
    """Max |Δ logit|, that relative to the largest |dense logit|, and top-1 agreement over `images`, run in
    batches of `batch` as the plan will be."""
    fmt = MEMORY_FORMATS[memory_format]
    with torch.inference_mode():
        chunks = [chunk.contiguous(memory_format=fmt) for chunk in images.split(batch)]
        reference = torch.cat([dense(chunk) for chunk in chunks])
        output = torch.cat([planned(chunk) for chunk in chunks])
    diff = float((output - reference).abs().max())
    return {"max_abs_diff": diff, "max_rel_diff": diff / max(float(reference.abs().max()), 1e-30),
            "top1_agreement": float((output.argmax(1) == reference.argmax(1)).float().mean()),
            "samples": len(images)}


def plan_for(run: Path, folded: nn.Module, x: torch.Tensor, thread_count: int, options: BenchOptions,
             console: Console) -> Plan:
    """The saved plan for this batch size and thread count when it fits these weights, else a new measured one."""
    path = plan_path(run, len(x), thread_count)
    if path.is_file() and not options.replan:
        plan = load_plan(path)
        if plan.fingerprint() == fingerprint(folded):
            console.print(f"using the plan in {path} (--replan measures a new one)", markup=False)
            return plan
        console.print(f"{path} was made for other weights; measuring a new plan", markup=False)
    formats = faster_memory_format(folded, x, options.repeats, options.warmup)
    memory_format = min(formats, key=lambda name: formats[name].median_ms)
    dense = in_memory_format(folded, memory_format)
    plan = make_plan(dense, x.contiguous(memory_format=MEMORY_FORMATS[memory_format]), memory_format,
                     {name: t.median_ms for name, t in formats.items()}, thread_count, cpu_name(),
                     options.plan_repeats, options.warmup)
    save_plan(path, plan)
    return plan


def layer_rows(plan: Plan) -> list[dict]:
    """Per-layer costs as measured while planning: dense, the best CSR kernel, and the one chosen."""
    rows = []
    for layer in plan.layers:
        sparse = {k: v for k, v in layer.costs_ms.items() if k != DENSE}
        best = min(sparse, key=sparse.get) if sparse else None
        row = {"layer": layer.layer, "kind": layer.kind, "shape": "x".join(map(str, layer.shape)),
               "layer_sparsity": layer.sparsity, "kernel": layer.kernel, "dense_ms": layer.costs_ms[DENSE],
               "dense_q1_ms": layer.quartiles_ms[DENSE][0], "dense_q3_ms": layer.quartiles_ms[DENSE][1],
               "speedup": layer.costs_ms[DENSE] / layer.costs_ms[layer.kernel]}
        if best:
            row.update(sparse_ms=sparse[best], sparse_q1_ms=layer.quartiles_ms[best][0],
                       sparse_q3_ms=layer.quartiles_ms[best][1])
        rows.append(row)
    return rows


def network_row(plan: Plan, dense: Timing, sparse: Timing, sparsity: float) -> dict:
    return {"layer": NETWORK, "kind": NETWORK, "layer_sparsity": sparsity, "kernel": "plan",
            "dense_ms": dense.median_ms, "dense_q1_ms": dense.q1_ms, "dense_q3_ms": dense.q3_ms,
            "sparse_ms": sparse.median_ms, "sparse_q1_ms": sparse.q1_ms, "sparse_q3_ms": sparse.q3_ms,
            "speedup": dense.median_ms / sparse.median_ms,
            "dense_images_per_s": 1e3 * plan.batch / dense.median_ms,
            "sparse_images_per_s": 1e3 * plan.batch / sparse.median_ms,
            "sparse_layers": f"{plan.sparse_layers}/{len(plan.layers)}", "repeats": dense.repeats}


def bench_one(run: Path, folded: nn.Module, images: torch.Tensor, batch: int, thread_count: int,
              options: BenchOptions, console: Console) -> list[dict]:
    """Plan, time and compare at one batch size and thread count; the network row first, then one per layer."""
    with threads(thread_count):
        x = batch_of(images, batch)
        plan = plan_for(run, folded, x, thread_count, options, console)
        dense = in_memory_format(folded, plan.memory_format)
        planned = build_module(dense, plan)
        x = x.contiguous(memory_format=MEMORY_FORMATS[plan.memory_format])
        with torch.inference_mode():
            timed = interleaved({"dense": lambda: dense(x), "sparse": lambda: planned(x)},
                                options.repeats, options.warmup)
        agreement = compare_outputs(dense, planned, images, batch, plan.memory_format)
    layers = weight_layers(folded).values()
    sparsity = 1.0 - sum(int(torch.count_nonzero(m.weight)) for m in layers) / sum(m.weight.numel() for m in layers)
    common = {"sparsity": sparsity, "batch": batch, "threads": thread_count, "memory_format": plan.memory_format,
              "cpu": plan.cpu, "torch_version": torch.__version__}
    rows = [network_row(plan, timed["dense"], timed["sparse"], sparsity) | agreement] + layer_rows(plan)
    return [common | row for row in rows]


def render(rows: list[dict], title: str) -> Table:
    """One table for one batch size × thread count: every layer, then the whole network."""
    network = rows[0]
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, caption=(
        f"dense baseline: BatchNorm folded, {network['memory_format']}, inference_mode. Network: medians of "
        f"{network['repeats']} interleaved repeats, q1–q3 dense {network['dense_q1_ms']:.3f}–"
        f"{network['dense_q3_ms']:.3f}, sparse {network['sparse_q1_ms']:.3f}–{network['sparse_q3_ms']:.3f} ms; "
        f"layers: medians measured while planning (quartiles in {results.INFERENCE}). Outputs on {network['samples']} test images: "
        f"max |Δ| {network['max_abs_diff']:.2e} ({network['max_rel_diff']:.1e} of max |logit|), "
        f"top-1 agreement {100 * network['top1_agreement']:.1f} %."))
    for column in ("layer", "shape", "sparsity", "kernel", "dense ms", "sparse ms", "speedup"):
        table.add_column(column, justify="left" if column in ("layer", "shape", "kernel") else "right",
                         no_wrap=column in ("layer", "shape", "kernel"))

    def ms(row: dict, kind: str) -> str:
        return "—" if row.get(f"{kind}_ms") is None else f"{row[f'{kind}_ms']:.3f}"

    for row in rows[1:]:
        table.add_row(row["layer"], row["shape"], f"{row['layer_sparsity']:.3f}", row["kernel"], ms(row, "dense"),
                      ms(row, "sparse"), f"{row['speedup']:.2f}×")
    table.add_row(f"[bold]{NETWORK}[/]", "", f"{network['sparsity']:.3f}",
                  f"plan {network['sparse_layers']}", ms(network, "dense"), ms(network, "sparse"),
                  f"[bold]{network['speedup']:.2f}×[/]")
    return table


def bench_run(run: Path, options: BenchOptions, console: Console) -> list[dict]:
    """Benchmark the run at every batch size × thread count; write `<run>/inference.csv`; return its rows."""
    identity, model, images = load_run(run, options.weights, options.samples)
    folded = fold_batchnorm(model)
    rows = []
    for batch in options.batches:
        for thread_count in options.threads:
            measured = [identity | row for row in bench_one(run, folded, images, batch, thread_count, options,
                                                            console)]
            console.print(render(measured, f"{run.name}: {identity['model']}, batch {batch}, "
                                           f"{thread_count} thread(s), {measured[0]['cpu']}"))
            rows += measured
    results.write_csv(run / results.INFERENCE, FIELDS, rows)
    console.print(f"written {run / results.INFERENCE}", markup=False)
    return rows
