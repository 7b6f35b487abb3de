"""The study's guards: one machine class per table, verdicts on declared comparisons (checked against
statsmodels), collapse rates, runs off target, tuning extended past an edge of its range, seeds in order.

Run directories here are written by hand (a summary.csv each): the report reads nothing else.
"""

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

from tests.conftest import write_config
from tests.test_experiments import TINY
from wmprune import results, verdicts
from wmprune.commands.grid import load_grid, write_tuning
from wmprune.commands.sweep import in_order, parse_seeds
from wmprune.errors import UserError

CPU, H100 = "cpu (fp32, 1 threads)", "NVIDIA H100 80GB HBM3 (bf16 autocast)"
PRUNABLE = 100_000


def write_run(root, name, method, target, seed, top1, device=CPU, precision="fp32", nonzero=None, variant="",
              sha="x", capability="AVX2"):
    """A finished run as the report sees it: its summary.csv."""
    nonzero = round((1 - target) * PRUNABLE) if nonzero is None else nonzero
    row = {"name": name, "model": "vgg16", "dataset": "fashion-mnist", "method": method,
           "allocation": "global" if method != "none" else "weightmom", "seed": seed, "target_sparsity": target,
           "sparsity": 1 - nonzero / PRUNABLE, "params_prunable": PRUNABLE, "params_nonzero": nonzero,
           "compression_ratio": PRUNABLE / nonzero, "weights_kept_pct": 100 * nonzero / PRUNABLE, "test_top1": top1,
           "test_top5": 99.0, "epochs": 10, "seconds": 1.0, "git_sha": sha, "torch_version": "2.14.1",
           "val_top1": top1, "val_size": 5000, "macs_dense": 10, "macs_pruned": 1, "macs_reduction": 10.0,
           "variant": variant, "device": device, "precision": precision, "cpu_capability": capability}
    results.write_csv(root / f"{name}-{method}-{target}-{seed}-{device[:3]}" / results.SUMMARY, list(row), [row])


def test_tables_split_by_machine_class_and_pool_only_on_the_flag(tmp_path, cli):
    runs = tmp_path / "runs"
    for seed in range(3):
        write_run(runs, "a", "none", 0.0, seed, 92.0 + seed / 10)
        write_run(runs, "a", "weightmom", 0.98, seed, 89.0 + seed / 10)
        write_run(runs, "a", "magnitude", 0.98, seed, 88.5 + seed / 10)
        write_run(runs, "g", "weightmom", 0.98, seed, 87.0 + seed / 5, device=H100, precision="bf16")
    code, out, err = cli("report", runs, "--out", tmp_path / "split")
    assert code == 0, err
    cpu = pd.read_csv(tmp_path / "split" / "fashion-mnist-vgg16.cpu-fp32.accuracy.csv")
    gpu = pd.read_csv(tmp_path / "split" / "fashion-mnist-vgg16.nvidia-h100-80gb-hbm3-bf16.accuracy.csv")
    assert set(cpu["machine_class"]) == {"cpu/fp32"} and set(gpu["machine_class"]) == {"NVIDIA H100 80GB HBM3/bf16"}
    ours = cpu[cpu["method"] == "weightmom"].iloc[0]
    assert ours["top1_mean"] == pytest.approx(89.1) and ours["n_seeds"] == 3  # no GPU run in the CPU cell
    assert set(cpu.loc[cpu["method"] == "magnitude", "n_cross_machine"]) == {0}
    assert not (tmp_path / "split" / "fashion-mnist-vgg16.accuracy.csv").exists()

    code, out, err = cli("report", runs, "--out", tmp_path / "pooled", "--pool-classes")
    assert code == 0, err
    pooled = pd.read_csv(tmp_path / "pooled" / "fashion-mnist-vgg16.accuracy.csv")
    ours = pooled[pooled["method"] == "weightmom"].iloc[0]
    assert ours["n_seeds"] == 3 and ours["machine_class"] == "NVIDIA H100 80GB HBM3/bf16 + cpu/fp32"
    page = (tmp_path / "pooled" / "fashion-mnist-vgg16.md").read_text()
    assert "POOLED across machine classes" in page and "| weightmom (pooled) |" in page
    assert "| magnitude |" in page  # a cell of one class is not marked


def test_the_page_says_which_code_and_which_cpus_trained_its_runs(tmp_path, cli):
    runs = tmp_path / "runs"
    planted = [("3e5123456789", "AVX512"), ("1109e710d061", "AVX2"), ("3e5123456789", "")]  # 3e5… reads as a float
    for seed, (sha, capability) in enumerate(planted):
        write_run(runs, "a", "weightmom", 0.98, seed, 89.0, sha=sha, capability=capability)
    write_run(runs, "g", "weightmom", 0.98, 0, 87.0, device=H100, precision="bf16", capability="AVX2")
    write_run(runs, "t", "weightmom", 0.98, 9, 88.0, sha="0ld5ha", capability="")  # a tuning run reused
    record = {"variant": "weightmom", "setting": "train.lr=0.1", "extension": 0, "seed": 9,
              "run": "t-weightmom-0.98-9-cpu", "val_top1": 88.0, "setting_val_top1": 88.0, "chosen": True}
    results.write_csv(runs / "grid.tuning.csv", list(record), [record])
    code, out, err = cli("report", runs, "--out", tmp_path / "tables")
    assert code == 0, err
    page = (tmp_path / "tables" / "fashion-mnist-vgg16.cpu-fp32.md").read_text()
    assert (f"Trained on: {CPU} × 3. CPU capability of its CPU runs (kernels may round differently across it): "
            "AVX512 × 1, AVX2 × 1, unrecorded × 1. Code (git_sha): 3e5123456789 × 2, 1109e710d061 × 1.\n") in page
    assert (f"Tuning runs: 1, trained on {CPU} × 1. CPU capability: unrecorded × 1. Code (git_sha): 0ld5ha × 1.\n"
            in page)
    page = (tmp_path / "tables" / "fashion-mnist-vgg16.nvidia-h100-80gb-hbm3-bf16.md").read_text()
    assert f"Trained on: {H100} × 1. Code (git_sha): x × 1.\n" in page


def test_old_device_strings_give_the_same_classes():
    from wmprune.commands.report import machine_class

    frame = pd.DataFrame({"device": [CPU, "cpu (fp32, 2 threads)", H100, "unrecorded", "cuda:0 (fp32)"],
                          "precision": [math.nan, "fp32", math.nan, math.nan, math.nan]})
    assert list(machine_class(frame)) == ["cpu/fp32", "cpu/fp32", "NVIDIA H100 80GB HBM3/bf16", "unrecorded",
                                          "cuda:0/fp32"]


@pytest.mark.parametrize("differences", [
    [0.3, -0.2, 0.5, 0.1, 0.0, 0.4, -0.1, 0.2, 0.3, 0.1],
    [1.8, 2.4, 1.1, 2.9, 2.0, 1.6, 2.2, 2.5],
    [-3.1, -0.4, -2.2, 0.9, -1.5],
])
def test_bonferroni_interval_and_tost_agree_with_statsmodels(differences):
    family, margin = 8, 1.0
    mean, low, high = verdicts.paired_interval(differences, family)
    expected = DescrStatsW(np.array(differences)).tconfint_mean(alpha=0.05 / family)
    assert (low, high) == pytest.approx(expected) and mean == pytest.approx(np.mean(differences))
    reference = np.full(len(differences), 80.0) + np.array(differences)
    p, _, _ = ttost_paired(reference, np.full(len(differences), 80.0), -margin, margin)
    assert verdicts.tost_pvalue(differences, margin) == pytest.approx(p)
    verdict = verdicts.decide(differences, margin, family)
    assert verdict.level == pytest.approx(1 - 0.05 / family)
    excludes_zero, inside = expected[0] > 0 or expected[1] < 0, p < 0.05 / family
    label = verdict.verdict
    assert (label.startswith(("ahead", "behind")) == excludes_zero) and (("level" == label or "within" in label)
                                                                        == inside)


def test_verdict_names():
    assert verdicts.decide([0.1, -0.1, 0.05, 0.0, -0.05, 0.1, 0.0, -0.1], 1.0, 8).verdict == "level"
    assert verdicts.decide([3.0, 3.5, 2.8, 3.2, 3.1], 1.0, 8).verdict == "ahead"
    assert verdicts.decide([-3.0, -3.5, -2.8, -3.2, -3.1], 1.0, 8).verdict == "behind"
    assert verdicts.decide([0.5, 0.52, 0.48, 0.5, 0.51, 0.49], 1.0, 8).verdict == "ahead (within margin)"
    assert verdicts.decide([2.0, -3.0, 1.0], 1.0, 8).verdict == "undecided"


def _declare(runs, baselines, targets, seeds):
    rows = [{"dataset": "fashion-mnist", "model": "vgg16", "reference": "weightmom", "baseline": b,
             "target_sparsity": t, "seeds": " ".join(map(str, seeds))} for b in baselines for t in targets]
    results.write_csv(runs / "grid.comparisons.csv", list(rows[0]), rows)


def test_verdicts_csv_for_declared_comparisons_and_a_bimodal_cell_is_a_collapse_rate(tmp_path, cli):
    runs = tmp_path / "runs"
    snip = [86.2, 70.6, 37.4, 88.0]  # one run closer to chance (10) than to dense (92): a split cell
    for seed in range(4):
        write_run(runs, "a", "none", 0.0, seed, 92.0)
        write_run(runs, "a", "weightmom", 0.98, seed, 89.0 + seed / 10)
        write_run(runs, "a", "magnitude", 0.98, seed, 85.0 + seed / 5)
        write_run(runs, "a", "snip", 0.98, seed, snip[seed])
    _declare(runs, ["magnitude", "snip"], [0.98], range(1, 6))
    code, out, err = cli("report", runs, "--out", tmp_path / "tables")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "tables" / "fashion-mnist-vgg16.verdicts.csv").set_index("baseline")
    differences = [4.0, 3.9, 3.8, 3.7]
    low, high = DescrStatsW(np.array(differences)).tconfint_mean(alpha=0.05 / 2)
    assert table.loc["magnitude", "verdict"] == "ahead" and table.loc["magnitude", "family_size"] == 2
    assert (table.loc["magnitude", "low"], table.loc["magnitude", "high"]) == pytest.approx((low, high))
    assert table.loc["magnitude", "seeds_planned"] == 5 and table.loc["magnitude", "n_paired"] == 4
    assert table.loc["snip", "verdict"] == "mixed collapse" and math.isnan(table.loc["snip", "low"])
    accuracy = pd.read_csv(tmp_path / "tables" / "fashion-mnist-vgg16.accuracy.csv").set_index("method")
    assert accuracy.loc["snip", "collapse_rate"] == "1/4" and math.isnan(accuracy.loc["snip", "ci95"])
    assert pd.isna(accuracy.loc["magnitude", "collapse_rate"])
    page = (tmp_path / "tables" / "fashion-mnist-vgg16.md").read_text()
    assert "provisional" in page and "Bonferroni-adjusted" in page

    code, out, err = cli("plot", tmp_path / "tables", "--out", tmp_path / "figures")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "fashion-mnist-vgg16.png", "fashion-mnist-vgg16.verdicts.png"]


def test_the_verdicts_figure_draws_each_declared_interval_and_names_its_verdict():
    from wmprune.commands.plot import verdicts_figure

    table = pd.DataFrame([  # baseline, target, n, difference, low, high, verdict — as report writes them
        ("magnitude", 0.99, 10, -0.4, -1.3, 0.5, "undecided"),
        ("magnitude", 0.98, 10, 0.1, -0.3, 0.5, "level"),
        ("snip", 0.98, 10, 20.0, math.nan, math.nan, "mixed collapse"),
        ("rigl", 0.98, 1, 2.0, math.nan, math.nan, "undecided"),
        ("imp", 0.98, 0, math.nan, math.nan, math.nan, "undecided"),
    ], columns=["baseline", "target_sparsity", "n_paired", "difference", "low", "high", "verdict"]).assign(
        reference="weightmom", level=1 - 0.05 / 8, margin=1.0, family_size=8)
    axes = verdicts_figure(table, "t").axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == ["magnitude @ 0.98", "snip @ 0.98", "rigl @ 0.98", "imp @ 0.98", "magnitude @ 0.99"]
    (bars,) = axes.containers
    segments = [tuple(segment[:, 0]) for segment in bars.lines[2][0].get_segments()]
    assert segments == [pytest.approx((-0.3, 0.5)), pytest.approx((-1.3, 0.5))]
    crosses = next(line for line in axes.lines if line.get_marker() == "x")
    assert list(crosses.get_xdata()) == [20.0, 2.0] and list(crosses.get_ydata()) == [1, 2]
    assert [text.get_text() for text in axes.texts] == [
        "level (n=10)", "mixed collapse (n=10)", "undecided (n=1)", "undecided (n=0)", "undecided (n=10)"]
    (band,) = axes.patches
    assert band.get_x() == pytest.approx(-1.0) and band.get_width() == pytest.approx(2.0)


def test_a_run_off_its_target_is_flagged(tmp_path, cli):
    runs = tmp_path / "runs"
    write_run(runs, "a", "rigl", 0.95, 0, 90.0, nonzero=4_800)  # 4 % below the 5,000 of 0.95: off
    write_run(runs, "a", "rigl", 0.95, 1, 90.0, nonzero=4_990)  # 0.2 % below: on target
    write_run(runs, "a", "weightmom", 0.95, 0, 90.0)
    code, out, err = cli("report", runs, "--out", tmp_path / "tables")
    assert code == 0, err
    accuracy = pd.read_csv(tmp_path / "tables" / "fashion-mnist-vgg16.accuracy.csv").set_index("method")
    assert accuracy.loc["rigl", "off_target"] == 1 and accuracy.loc["weightmom", "off_target"] == 0
    assert "off their sparsity target" in err and "a-rigl-0.95-0-cpu" in err
    assert "**Off target**" in (tmp_path / "tables" / "fashion-mnist-vgg16.md").read_text()


def _tuning_grid(tmp_path, extend=2, seeds=(7,)):
    write_config(tmp_path / "base.yaml", **{**TINY, "data": {"name": "synthetic", "val_size": 64}})
    grid = tmp_path / "grid.yaml"
    lrs = [0.05, 0.1, 0.2]
    grid.write_text(yaml.safe_dump({
        "base": "base.yaml", "variants": {"weightmom": {"prune.method": "weightmom"}, "gmp": {"prune.method": "gmp"}},
        "tune": {"at": {"prune.target_sparsity": 0.9}, "seeds": list(seeds), "extend": extend,
                 "settings": {"weightmom": {"train.lr": lrs}, "gmp": {"train.lr": lrs}}},
        "sweep": {"prune.target_sparsity": [0.5, 0.9], "seed": [1, 2]}}))
    return grid


def _finish(points, score):
    """Plant a finished tuning run whose validation top-1 is score(lr, seed)."""
    for point in points:
        if not point.finished:
            lr, seed = point.config.train.lr, point.config.seed
            results.write_csv(point.directory / results.SUMMARY, ["val_top1"], [{"val_top1": score(lr, seed)}])


def test_the_choice_is_the_best_mean_over_the_tuning_seeds(tmp_path):
    grid_path, out = _tuning_grid(tmp_path, seeds=(7, 8)), tmp_path / "runs"
    planted = {(0.05, 7): 90.0, (0.05, 8): 10.0, (0.1, 7): 60.0, (0.1, 8): 62.0, (0.2, 7): 55.0, (0.2, 8): 55.0}
    for trials in load_grid(grid_path, out).tuning.values():
        for trial in trials:
            _finish(trial.points, lambda lr, seed: planted[lr, seed])
    grid = load_grid(grid_path, out)
    assert not grid.waiting  # 0.1 wins on the mean (61 against 50): inside the range, nothing to extend
    assert {p.config.train.lr for p in grid.points if p.config.seed in (1, 2)} == {0.1}  # not 0.05, best at seed 7
    write_tuning(grid, out)
    rows = pd.read_csv(out / f"{grid_path.stem}.tuning.csv")
    assert rows.groupby("setting")["setting_val_top1"].first().to_dict() == {
        "train.lr=0.05": 50.0, "train.lr=0.1": 61.0, "train.lr=0.2": 55.0}
    assert set(rows.loc[rows["chosen"], "setting"]) == {"train.lr=0.1"} and set(rows["seed"]) == {7, 8}


def test_a_choice_at_an_edge_extends_the_list_until_inside_or_at_the_cap(tmp_path):
    grid_path, out = _tuning_grid(tmp_path), tmp_path / "runs"
    scores = {"weightmom": lambda lr, seed: 100 * lr,  # best at ever larger lr: extends to the cap
              "gmp": lambda lr, seed: 50 - abs(lr - 0.01) * 100}  # best at the bottom edge, twice: the cap
    for step in range(4):
        grid = load_grid(grid_path, out)
        for name, trials in grid.tuning.items():
            for trial in trials:
                _finish(trial.points, scores[name])
    grid = load_grid(grid_path, out)
    assert not grid.waiting
    tried = {name: [trial.tried["train.lr"] for trial in trials] for name, trials in grid.tuning.items()}
    assert tried["weightmom"] == [0.05, 0.1, 0.2, 0.4, 0.8]  # 0.2 / 0.1 applied twice: the cap
    assert tried["gmp"] == [0.05, 0.1, 0.2, 0.025, 0.0125]  # 0.05 / 0.1 applied twice
    chosen = {p.config.variant: p.config.train.lr for p in grid.points if p.config.seed in (1, 2)}
    assert chosen == {"weightmom": 0.8, "gmp": 0.0125}
    assert [trial.extension for trial in grid.tuning["weightmom"]] == [0, 0, 0, 1, 2]


def test_extension_stops_inside_the_range(tmp_path):
    grid_path, out = _tuning_grid(tmp_path), tmp_path / "runs"
    def score(lr, seed):  # best at 0.4 once it is tried; 0.8 is worse
        return 50 - abs(lr - 0.35) * 100

    for _ in range(4):
        for trials in load_grid(grid_path, out).tuning.values():
            for trial in trials:
                _finish(trial.points, score)
    grid = load_grid(grid_path, out)
    assert [t.tried["train.lr"] for t in grid.tuning["gmp"]] == [0.05, 0.1, 0.2, 0.4, 0.8]
    chosen = {p.config.train.lr for p in grid.points if p.config.seed in (1, 2)}
    assert chosen == {0.4}  # inside: 0.2 < 0.4 < 0.8


def test_sweep_orders_main_runs_seed_by_seed_and_can_run_chosen_seeds(tmp_path):
    grid_path = _tuning_grid(tmp_path)
    out = tmp_path / "runs"
    for _ in range(4):
        for trials in load_grid(grid_path, out).tuning.values():
            for trial in trials:
                _finish(trial.points, lambda lr, seed: -abs(lr - 0.1))
    ordered = in_order(load_grid(grid_path, out), None)
    tuning = ordered.tuning_directories
    main_seeds = [p.config.seed for p in ordered.points if p.directory not in tuning]
    assert all(p.directory in tuning for p in ordered.points[:len(tuning)])
    assert main_seeds == sorted(main_seeds) and set(main_seeds) == {1, 2}
    only = in_order(load_grid(grid_path, out), [2])
    assert {p.config.seed for p in only.points if p.directory not in tuning} == {2}
    assert parse_seeds("1,3-5") == [1, 3, 4, 5]
    with pytest.raises(UserError, match="--seeds"):
        parse_seeds("1-x")


def test_declared_comparisons_get_their_planned_seeds(tmp_path):
    grid_path = _tuning_grid(tmp_path)
    raw = yaml.safe_load(grid_path.read_text())
    del raw["tune"]
    raw["compare"] = {"reference": "weightmom", "baselines": ["gmp"], "at": {"prune.target_sparsity": [0.9]},
                      "seeds": [1, 2, 3, 4]}
    grid_path.write_text(yaml.safe_dump(raw))
    grid = load_grid(grid_path, tmp_path / "runs")
    seeds = {}
    for p in grid.points:
        seeds.setdefault((p.config.variant, p.config.prune.target_sparsity), set()).add(p.config.seed)
    assert seeds == {("weightmom", 0.9): {1, 2, 3, 4}, ("gmp", 0.9): {1, 2, 3, 4},
                     ("weightmom", 0.5): {1, 2}, ("gmp", 0.5): {1, 2}}
    assert [(row["baseline"], row["target_sparsity"]) for row in grid.comparisons] == [("gmp", 0.9)]
    raw["compare"]["baselines"] = ["magnitude"]
    grid_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="not a variant of this grid"):
        load_grid(grid_path, tmp_path / "runs")


def test_a_study_with_only_tuning_runs_so_far_is_said_and_writes_nothing(tmp_path, cli):
    runs = tmp_path / "runs"
    for lr, top1 in ((0.05, 88.0), (0.1, 89.0)):
        write_run(runs, f"t{lr}", "weightmom", 0.98, 0, top1)
    names = sorted(p.name for p in runs.iterdir())
    results.write_csv(runs / "grid.tuning.csv", ["variant", "setting", "extension", "seed", "run", "val_top1",
                                                 "setting_val_top1", "chosen"],
                      [{"variant": "weightmom", "setting": f"train.lr={lr}", "extension": 0, "seed": 0, "run": name,
                        "val_top1": top1, "setting_val_top1": top1, "chosen": lr == 0.1}
                       for name, lr, top1 in zip(names, (0.05, 0.1), (88.0, 89.0))])
    code, out, err = cli("report", runs, "--out", tmp_path / "tables")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "only tuning runs (2)" in err and "grid.tuning.csv" in err
    assert not (tmp_path / "tables").exists()


def test_the_declared_comparisons_are_recorded_whole_before_any_tuning_has_finished(tmp_path):
    """The family a verdict is adjusted for is what the grid declares, not what has finished tuning so far."""
    grid_path = _tuning_grid(tmp_path)
    raw = yaml.safe_load(grid_path.read_text())
    raw["compare"] = {"reference": "weightmom", "baselines": ["gmp"], "at": {"prune.target_sparsity": [0.5, 0.9]},
                      "seeds": [1, 2, 3]}
    grid_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    grid = load_grid(grid_path, out)
    assert set(grid.waiting) == {"weightmom", "gmp"}
    expected = [("weightmom", "gmp", 0.5, "1 2 3"), ("weightmom", "gmp", 0.9, "1 2 3")]
    assert [(r["reference"], r["baseline"], r["target_sparsity"], r["seeds"]) for r in grid.comparisons] == expected
    for trials in grid.tuning.values():
        for trial in trials:
            _finish(trial.points, lambda lr, seed: -abs(lr - 0.1))
    assert load_grid(grid_path, out).comparisons == grid.comparisons
