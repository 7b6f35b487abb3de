"""Sparse CPU inference: BatchNorm folding, CSR kernels against the dense masked model, the plan's choice logic
(injected costs, no live timings), `wmprune bench` and its pickup by `wmprune report`."""

import csv
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from tests.conftest import ROOT, write_config
from tests.printed_numbers import assert_printed_quotient
from wmprune.commands import bench
from wmprune.catalog import build_config
from wmprune.config import read_yaml
from wmprune.errors import UserError
from wmprune.inference import (LayerPlan, Plan, SparseConv2d, build_module, choose_kernel, fold_batchnorm,
                               load_plan, make_plan, save_plan)
from wmprune.inference import plan as plan_module
from wmprune.inference.kernels import IM2COL, im2col
from wmprune.inference.plan import DENSE, candidate_kernels, fingerprint, weight_layers
from wmprune.inference.timing import Timing, in_memory_format
from wmprune.models import build_model
from wmprune.runtime.trainer import train

MODELS = ["alexnet", "vgg16", "resnet50"]


def _pruned(name: str, sparsity: float, seed: int = 0) -> nn.Module:
    """A small model in eval mode with random masks at `sparsity` on every conv / linear weight and BatchNorm
    statistics far from identity, so folding has something to fold."""
    generator = torch.Generator().manual_seed(seed)
    model = build_model(name, 10, 0.125)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(torch.rand(module.weight.shape, generator=generator) >= sparsity)
            elif isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return model.eval()


def _all_sparse_plan(model: nn.Module, batch: int) -> Plan:
    """Every layer that can go sparse does, cycling through its CSR kernels so every im2col variant is used."""
    layers = []
    for i, ((name, shape, nonzero), module) in enumerate(zip(fingerprint(model), weight_layers(model).values())):
        sparse = candidate_kernels(module)[1:] or [DENSE]
        kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
        layers.append(LayerPlan(name, kind, shape, nonzero, sparse[i % len(sparse)]))
    return Plan(batch, 1, "contiguous", {}, layers, torch.__version__, "test")


def _close(output: torch.Tensor, reference: torch.Tensor, rtol: float = 1e-4) -> bool:
    return float((output - reference).abs().max()) <= rtol * float(reference.abs().max())


@pytest.mark.parametrize("name", MODELS)
def test_folding_batchnorm_matches_the_eval_model(name):
    model = _pruned(name, 0.0)
    folded = fold_batchnorm(model)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert _close(folded(x), model(x), 1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert [n for n, _ in weight_layers(folded).items()] == [n for n, _ in weight_layers(model).items()]


def test_folding_keeps_the_zeros():
    model = _pruned("vgg16", 0.9)
    for (name, shape, nonzero), (_, original) in zip(fingerprint(fold_batchnorm(model)), weight_layers(model).items()):
        assert nonzero == int(torch.count_nonzero(original.weight))


@pytest.mark.parametrize("case", [(3, 9, 3, 1, 1, 1), (5, 9, 3, 2, 1, 3), (4, 8, 1, 2, 0, 2), (6, 4, 3, 1, 1, 4),
                                  (2, 7, 5, 2, 2, 2)])
@pytest.mark.parametrize("method", IM2COL)
def test_every_im2col_equals_unfold(case, method):
    channels, size, kernel, stride, padding, batch = case
    x = torch.randn(batch, channels, size, size)
    expected = F.unfold(x, kernel, padding=padding, stride=stride).transpose(0, 1).reshape(channels * kernel ** 2, -1)
    assert torch.equal(im2col(x, (kernel, kernel), (stride, stride), (padding, padding), method), expected)
    # The batch-folded column layout must not depend on the input's memory layout.
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(im2col(cl, (kernel, kernel), (stride, stride), (padding, padding), method), expected)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("sparsity", [0.6, 0.9, 0.98])
@pytest.mark.parametrize("name", MODELS)
def test_sparse_module_equals_the_dense_masked_model(name, sparsity, batch):
    model = _pruned(name, sparsity)
    folded = fold_batchnorm(model)
    planned = build_module(folded, _all_sparse_plan(folded, batch))
    convs = [m for m in planned.modules() if isinstance(m, nn.Conv2d)]
    assert not convs, f"{len(convs)} convolutions stayed dense"
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert _close(planned(x), model(x))


def test_sparse_module_with_channels_last_dense_layers():
    model = _pruned("resnet50", 0.9)
    folded = in_memory_format(fold_batchnorm(model), "channels_last")
    plan = _all_sparse_plan(folded, 2)
    plan.layers[0].kernel = DENSE  # a dense layer in channels_last next to sparse ones
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert _close(build_module(folded, plan)(x), model(x))


def test_choose_kernel_keeps_the_cheapest_and_dense_on_a_tie():
    assert choose_kernel({DENSE: 1.0, "csr-strided": 2.0, "csr-shifts": 3.0}) == DENSE
    assert choose_kernel({DENSE: 1.0, "csr-strided": 0.4, "csr-shifts": 0.3}) == "csr-shifts"
    assert choose_kernel({DENSE: 1.0, "csr": 1.0}) == DENSE


def test_dense_layers_are_not_tried_sparse():
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    assert candidate_kernels(conv) == [DENSE]
    with torch.no_grad():
        conv.weight[:, :2] = 0
    assert candidate_kernels(conv) == [DENSE] + [f"csr-{m}" for m in IM2COL]
    pointwise = nn.Conv2d(4, 4, 1, stride=2)
    with torch.no_grad():
        pointwise.weight.zero_()
    assert candidate_kernels(pointwise) == [DENSE, "csr-pointwise"]


def test_plan_follows_injected_costs(monkeypatch, tmp_path):
    folded = fold_batchnorm(_pruned("vgg16", 0.9))
    names = list(weight_layers(folded))
    costly = names[1]  # its sparse kernels cost more than dense: it must stay dense

    def fake(model, x, repeats, warmup):
        costs = {}
        for name, module in weight_layers(model).items():
            sparse_cost = 5.0 if name == costly else 0.5
            costs[name] = {k: Timing(1.0 if k == DENSE else sparse_cost + 0.1 * i, 0, 0, 1)
                           for i, k in enumerate(candidate_kernels(module))}
        return costs

    monkeypatch.setattr(plan_module, "measure_layers", fake)
    plan = make_plan(folded, torch.zeros(1, 3, 32, 32), "contiguous", {"contiguous": 1.0}, 1, "test", 1, 0)
    kernels = {layer.layer: layer.kernel for layer in plan.layers}
    assert kernels[costly] == DENSE
    assert all(kernel != DENSE for name, kernel in kernels.items() if name != costly)
    assert kernels[names[0]] == "csr-unfold"  # the cheapest of the three CSR kernels the fake costs
    save_plan(tmp_path / "plan.json", plan)
    assert load_plan(tmp_path / "plan.json") == plan
    module = build_module(folded, plan)
    assert isinstance(module.get_submodule(costly), nn.Conv2d)
    assert isinstance(module.get_submodule(names[0]), SparseConv2d)


def test_plan_for_other_weights_or_damaged_file_is_refused(tmp_path):
    folded = fold_batchnorm(_pruned("vgg16", 0.9))
    other = fold_batchnorm(_pruned("vgg16", 0.9, seed=1))
    with pytest.raises(UserError, match="other weights"):
        build_module(other, _all_sparse_plan(folded, 1))
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(UserError, match="--replan"):
        load_plan(tmp_path / "plan.json")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished two-epoch WeightMom run of a width-1/8 VGG16 on synthetic data."""
    root = tmp_path_factory.mktemp("bench")
    config = build_config(read_yaml(write_config(root / "c.yaml")))
    train(config, root / "runs" / "tiny", False, Console(quiet=True, record=True))
    return root / "runs" / "tiny"


@pytest.mark.slow
def test_bench_writes_inference_csv_and_report_picks_it_up(tiny_run, cli, tmp_path):
    code, out, err = cli("bench", "--run", tiny_run, "--batch", "1,2", "--threads", "1", "--repeats", "2",
                         "--samples", "6")
    assert code == 0, err
    assert "network" in out and "agreement" in out
    with open(tiny_run / "inference.csv") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == bench.FIELDS
    network = [row for row in rows if row["layer"] == "network"]
    assert [(row["batch"], row["threads"]) for row in network] == [("1", "1"), ("2", "1")]
    for row in network:
        assert float(row["speedup"]) == pytest.approx(float(row["dense_ms"]) / float(row["sparse_ms"]))
        assert float(row["max_rel_diff"]) <= 1e-4 and float(row["top1_agreement"]) == 1.0
        assert int(row["samples"]) == 6
    assert len(rows) == 2 * (1 + 14)  # VGG16: 13 convolutions and one linear layer
    assert (tiny_run / "inference-plan.b1.t1.json").is_file()
    code, out, err = cli("bench", "--run", tiny_run, "--batch", "1", "--threads", "1", "--repeats", "2",
                         "--samples", "6")
    assert code == 0 and "using the plan" in out
    code, out, err = cli("report", tiny_run.parent, "--out", tmp_path / "tables")
    assert code == 0, err
    with open(tmp_path / "tables" / "synthetic-vgg16.accuracy.csv") as handle:
        reader = csv.DictReader(handle)
        row = next(reader)
    columns = reader.fieldnames
    assert columns[columns.index("compression_ratio") + 1] == "speedup_b1_t1"
    assert float(row["speedup_b1_t1"]) > 0
    assert "speedup_b1_t1" in out


@pytest.mark.slow
@pytest.mark.parametrize("args, needle", [
    (["--run", "{tmp}/nowhere"], "not a run directory"),
    (["--run", "{broken}"], "cannot load checkpoint"),
    (["--run", "{broken}", "--batch", "1,x"], "--batch takes positive integers"),
    (["--run", "{broken}", "--threads", "0"], "--threads takes positive integers"),
    (["--run", "{broken}", "--threads", "4096"], "cores"),
])
def test_bench_mistakes_are_one_line_and_exit_2(tiny_run, cli, tmp_path, args, needle):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text((tiny_run / "config.yaml").read_text())
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, out, err = cli("bench", *(a.format(tmp=tmp_path, broken=broken) for a in args))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err, err


@pytest.mark.slow
def test_bench_inference_script_smoke(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_inference.py"), "--width", "0.0625",
                           "--sparsity", "0.9", "--repeats", "2", "--samples", "4", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("speedup="), lines[-1]
    times = re.search(r"dense (?P<dense>[\d.]+) ms, sparse plan (?P<sparse>[\d.]+) ms", lines[-2])
    assert times, lines[-2]
    assert_printed_quotient(lines[-1].removeprefix("speedup="), times["dense"], times["sparse"])
