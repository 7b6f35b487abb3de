"""Sweep → report → plot → export on tiny synthetic runs, end to end through the command line.

One 10-run sweep (2 methods × 2 sparsities × 2 seeds + 2 dense baselines) is trained once per module and
shared by the tests below; the children are real `python -m wmprune train` processes.
"""

import json
import math
import shutil
import subprocess
from collections import Counter

import pandas as pd
import pytest
import torch
import yaml
from scipy import stats as scipy_stats

from tests.conftest import write_config
from wmprune import results
from wmprune.commands.report import (accuracy_table, dense_reference, edge_of_range, equal_drop_table,
                                     machine_class, markdown, tuning_table)
from wmprune.commands.sweep import run_sweep
from wmprune.weights import load_weights

TINY = {"model": {"name": "vgg16", "width": 0.125}, "data": {"name": "synthetic", "batch_size": 64},
        "train": {"epochs": 1, "lr": 0.05},
        "prune": {"method": "weightmom", "target_sparsity": 0.9,
                  "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 2}}}


def write_grid(directory, sweep, dense_baseline=True, **base_sections):
    write_config(directory / "base.yaml", **{**TINY, **base_sections})
    grid = directory / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": "base.yaml", "dense_baseline": dense_baseline, "sweep": sweep}))
    return grid


def _statuses(out):
    return {row["run"]: row["status"] for row in results.read_csv(out / "sweep.csv")}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(grid, runs directory, the first invocation's outcomes)."""
    root = tmp_path_factory.mktemp("sweep")
    grid = write_grid(root, {"prune.method": ["weightmom", "gmp"], "prune.target_sparsity": [0.5, 0.9],
                             "seed": [0, 1]})
    return grid, root / "runs", run_sweep(grid, root / "runs", workers=2, gpus=[])


def _run(runs, method, sparsity, seed):
    for summary in runs.glob(f"*/{results.SUMMARY}"):
        row = results.read_csv(summary)[0]
        if (row["method"], float(row["target_sparsity"]), int(row["seed"])) == (method, sparsity, seed):
            return summary.parent
    raise AssertionError("run not found")


@pytest.mark.slow
def test_sweep_trains_10_runs_and_a_second_call_trains_none(swept, cli, monkeypatch):
    grid, runs, outcomes = swept
    assert [o.status for o in outcomes] == ["finished"] * 10
    summaries = [results.read_csv(p)[0] for p in runs.glob(f"*/{results.SUMMARY}")]
    assert len(summaries) == 10
    dense = [s for s in summaries if s["method"] == "none"]
    assert sorted(int(s["seed"]) for s in dense) == [0, 1] and all(float(s["sparsity"]) == 0 for s in dense)
    assert sorted(round(float(s["sparsity"]), 2) for s in summaries) == [0.0] * 2 + [0.5] * 4 + [0.9] * 4
    checkpoints = {p: p.stat().st_mtime_ns for p in runs.glob(f"*/{results.CHECKPOINT}")}

    started = []

    class CountedPopen(subprocess.Popen):
        def __init__(self, args, *rest, **options):
            started.append(args)
            super().__init__(args, *rest, **options)

    monkeypatch.setattr(subprocess, "Popen", CountedPopen)
    code, out, err = cli("sweep", "--grid", grid, "--out", runs, "--workers", "2")
    assert code == 0, err
    assert set(_statuses(runs).values()) == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in runs.glob(f"*/{results.CHECKPOINT}")} == checkpoints
    assert started == []  # no training process, nor any other


@pytest.mark.slow
def test_sweep_resumes_an_unfinished_run(swept, cli):
    grid, runs, _ = swept
    run = _run(runs, "gmp", 0.5, 1)
    (run / results.SUMMARY).unlink()  # as if the sweep had been killed after the last checkpoint
    code, out, err = cli("sweep", "--grid", grid, "--out", runs)
    assert code == 0, err
    statuses = _statuses(runs)
    assert statuses.pop(run.name) == "finished" and set(statuses.values()) == {"skipped"}
    assert "resuming" in (runs / "logs" / f"{run.name}.log").read_text()
    assert (run / results.SUMMARY).exists()


@pytest.mark.slow
def test_report_has_seed_statistics_and_equal_drop_table(swept, cli, tmp_path):
    _, runs, _ = swept
    code, out, err = cli("report", runs, "--out", tmp_path)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "synthetic-vgg16.accuracy.csv")
    assert len(table) == 5 and set(table["n_seeds"]) == {2}
    row = table[(table["method"] == "gmp") & (table["target_sparsity"] == 0.9)].iloc[0]
    top1 = [float(results.read_csv(_run(runs, "gmp", 0.9, seed) / results.SUMMARY)[0]["test_top1"])
            for seed in (0, 1)]
    dense = [float(results.read_csv(_run(runs, "none", 0.0, seed) / results.SUMMARY)[0]["test_top1"])
             for seed in (0, 1)]
    assert row["top1_mean"] == pytest.approx(sum(top1) / 2)
    assert row["top1_std"] == pytest.approx(pd.Series(top1).std())
    assert row["delta_dense"] == pytest.approx(sum(top1) / 2 - sum(dense) / 2)
    assert row["compression_ratio"] == pytest.approx(10.0, rel=0.01)
    drops = pd.read_csv(tmp_path / "synthetic-vgg16.equal-drop.csv")
    assert list(drops["max_drop"]) == [0.5, 1.0, 2.0]
    assert {"weightmom", "gmp", "best_baseline", "weightmom_gain_pct"} <= set(drops.columns)
    page = (tmp_path / "synthetic-vgg16.md").read_text()
    assert "Highest compression ratio" in page
    machines = Counter(results.read_csv(p)[0]["device"] for p in runs.glob(f"*/{results.SUMMARY}"))
    trained_on = next(line for line in page.splitlines() if line.startswith("Machine class: cpu/fp32. Trained on: "))
    assert sum(machines.values()) == 10 and all(f"{device} × {count}" in trained_on
                                                for device, count in machines.items())

    figures = tmp_path / "figures"
    code, out, err = cli("plot", tmp_path, "--out", figures, "--run", _run(runs, "weightmom", 0.9, 0))
    assert code == 0, err
    pngs = sorted(figures.glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_equal_drop_picks_the_highest_compression_within_each_drop():
    runs = pd.DataFrame([
        # method, allocation, target, compression ratio, top-1 of seed 0 and seed 1
        *[("none", "", 0.0, 1.0, top1) for top1 in (90.0, 90.0)],
        *[("weightmom", "weightmom", s, cr, top1) for s, cr, pair in
          [(0.9, 10.0, (89.8, 89.8)), (0.95, 20.0, (89.2, 89.0)), (0.98, 50.0, (87.0, 88.0))] for top1 in pair],
        *[("gmp", "global", s, cr, top1) for s, cr, pair in
          [(0.9, 10.0, (89.6, 89.6)), (0.95, 20.0, (88.5, 88.5)), (0.98, 50.0, (80.0, 80.0))] for top1 in pair],
    ], columns=["method", "allocation", "target_sparsity", "compression_ratio", "test_top1"])
    runs = _frame(runs)
    table = equal_drop_table(accuracy_table(runs), dense_reference(runs)).set_index("max_drop")
    assert table.loc[0.5, "weightmom"] == 10.0 and table.loc[0.5, "gmp"] == 10.0
    assert table.loc[1.0, "weightmom"] == 20.0 and table.loc[1.0, "gmp"] == 10.0
    assert table.loc[1.0, "weightmom_gain_pct"] == pytest.approx(100.0)
    assert table.loc[2.0, "weightmom"] == 20.0 and table.loc[2.0, "gmp"] == 20.0  # 87.5 mean is a 2.5 drop
    assert table.loc[2.0, "best_baseline"] == "gmp" and table.loc[2.0, "weightmom_gain_pct"] == pytest.approx(0.0)


def _frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Summary rows as load_summaries gives them, from the columns a test cares about."""
    seeds = runs["seed"] if "seed" in runs else [0, 1] * (len(runs) // 2)
    devices = runs["device"] if "device" in runs else "cpu (fp32, 1 threads)"
    frame = runs.assign(dataset="cifar10", model="vgg16", sparsity=runs["target_sparsity"], variant="",
                        weights_kept_pct=100 / runs["compression_ratio"], macs_reduction=runs["compression_ratio"],
                        seed=seeds, device=devices, precision=float("nan"), params_prunable=10_000,
                        params_nonzero=(10_000 * (1 - runs["target_sparsity"])).round())
    return frame.assign(machine_class=machine_class(frame))


def test_one_dense_reference_for_both_tables():
    """Dense runs keep their config's target and form groups of unequal size: the reference is the mean over
    dense runs, in the accuracy table's Δ and in the equal-drop table alike."""
    runs = _frame(pd.DataFrame([
        ("none", "", 0.0, 1.0, 90.0, 0), ("none", "", 0.0, 1.0, 92.0, 1), ("none", "", 0.9, 1.0, 80.0, 0),
        ("weightmom", "weightmom", 0.9, 10.0, 86.8, 0), ("weightmom", "weightmom", 0.9, 10.0, 86.8, 1),
    ], columns=["method", "allocation", "target_sparsity", "compression_ratio", "test_top1", "seed"]))
    accuracy = accuracy_table(runs)
    reference = (90 + 92 + 80) / 3
    assert dense_reference(runs) == pytest.approx(reference)
    row = accuracy[accuracy["method"] == "weightmom"].iloc[0]
    assert row["delta_dense"] == pytest.approx(86.8 - reference)  # 0.53 below: within 1, not within 0.5
    drops = equal_drop_table(accuracy, dense_reference(runs)).set_index("max_drop")
    assert drops.loc[1.0, "dense_top1"] == pytest.approx(reference)
    assert math.isnan(drops.loc[0.5, "weightmom"]) and drops.loc[1.0, "weightmom"] == 10.0


def test_paired_interval_to_weightmom_and_not_reached_is_said():
    seeds = [0, 1, 2]
    ours, theirs = [90.0, 91.0, 92.5], [89.0, 90.5, 90.5]  # differences -1, -0.5, -2
    runs = _frame(pd.DataFrame(
        [("none", "", 0.0, 1.0, 93.0, s) for s in seeds]
        + [("weightmom", "weightmom", 0.9, 10.0, t, s) for t, s in zip(ours, seeds)]
        + [("gmp", "uniform", 0.9, 10.0, t, s) for t, s in zip(theirs, seeds)],
        columns=["method", "allocation", "target_sparsity", "compression_ratio", "test_top1", "seed"]))
    accuracy = accuracy_table(runs)
    gmp = accuracy[accuracy["method"] == "gmp"].iloc[0]
    differences = pd.Series([-1.0, -0.5, -2.0])
    half = scipy_stats.t.ppf(0.975, 2) * differences.std() / math.sqrt(3)
    assert gmp["vs_weightmom"] == pytest.approx(differences.mean()) and gmp["ci95"] == pytest.approx(half)
    assert gmp["n_paired"] == 3 and gmp["n_cross_machine"] == 0
    drops = equal_drop_table(accuracy, dense_reference(runs))
    text = markdown(drops, {"weightmom": "not reached", "gmp": "not reached"})
    assert "not reached" in text.splitlines()[2]  # within 0.5 of 93: nobody


@pytest.mark.slow
def test_a_named_variant_can_be_the_reference(swept, cli, tmp_path):
    """An ablation names WeightMom's own rows (momentum-weightmom): `--reference` makes them the side every
    paired interval is against. Swapping the reference flips the sign of the same per-seed differences."""
    _, runs, _ = swept
    tables = {}
    for reference in ("weightmom", "gmp"):
        code, out, err = cli("report", runs, "--out", tmp_path / reference, "--reference", reference)
        assert code == 0, err
        tables[reference] = pd.read_csv(tmp_path / reference / "synthetic-vgg16.accuracy.csv").set_index(
            ["method", "target_sparsity"])
    for target in (0.5, 0.9):
        gmp_vs_ours = tables["weightmom"].loc[("gmp", target), "vs_weightmom"]
        assert not math.isnan(gmp_vs_ours)
        assert tables["gmp"].loc[("weightmom", target), "vs_weightmom"] == pytest.approx(-gmp_vs_ours)
        assert math.isnan(tables["gmp"].loc[("gmp", target), "vs_weightmom"])
    assert "to WeightMom (`gmp`)" in (tmp_path / "gmp" / "synthetic-vgg16.md").read_text()
    assert "to WeightMom at" in (tmp_path / "weightmom" / "synthetic-vgg16.md").read_text()
    drops = pd.read_csv(tmp_path / "gmp" / "synthetic-vgg16.equal-drop.csv")
    assert "gmp" not in set(drops["best_baseline"])  # gmp is "ours" now, weightmom one of the baselines
    code, out, err = cli("report", runs, "--out", tmp_path / "x", "--reference", "momentum-weightmom")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--reference momentum-weightmom" in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_page_without_dense_runs_says_so(swept, cli, tmp_path):
    _, runs, _ = swept
    no_dense = tmp_path / "no-dense"
    no_dense.mkdir()
    for run in runs.glob(f"*/{results.SUMMARY}"):
        if results.read_csv(run)[0]["method"] != "none":
            shutil.copytree(run.parent, no_dense / run.parent.name)
    code, out, err = cli("report", no_dense, "--out", tmp_path / "tables")
    assert code == 0, err
    page = (tmp_path / "tables" / "synthetic-vgg16.md").read_text()
    assert "dense mean (no dense run)" in page and "nan" not in page


def test_pairs_from_two_machines_are_counted():
    """A paired difference between a bf16 GPU run and an fp32 CPU run also holds the machine's: the table
    says how many such pairs each interval has. Thread counts do not make a different machine; a run
    without a recorded device is not known to share one."""
    cpu, gpu, old = "cpu (fp32, 1 threads)", "NVIDIA H100 80GB HBM3 (bf16 autocast)", "unrecorded"
    runs = _frame(pd.DataFrame(
        [("weightmom", "weightmom", 0.9, 10.0, 90.0, s, d) for s, d in enumerate([cpu, gpu, old, cpu])]
        + [("gmp", "uniform", 0.9, 10.0, 89.0, s, d)
           for s, d in enumerate([gpu, gpu, cpu, "cpu (fp32, 2 threads)"])],
        columns=["method", "allocation", "target_sparsity", "compression_ratio", "test_top1", "seed", "device"]))
    gmp = accuracy_table(runs).set_index("method").loc["gmp"]
    assert gmp["n_paired"] == 4 and gmp["n_cross_machine"] == 2  # seed 0 (cpu vs gpu) and seed 2 (unrecorded)


@pytest.mark.slow
def test_bitmask_export_is_near_the_bound_and_evaluates_like_the_run(swept, cli, tmp_path):
    _, runs, _ = swept
    run = _run(runs, "weightmom", 0.9, 0)
    path = tmp_path / "w.safetensors"
    code, out, err = cli("export", "--run", run, "--format", "bitmask", "--out", path)
    assert code == 0, err
    state = torch.load(run / results.CHECKPOINT, weights_only=True)["model"]
    prunable = {row["layer"] for row in results.read_csv(run / results.LAYERS)}
    bound = sum((t.numel() + 7) // 8 + 4 * int(t.count_nonzero()) if name in prunable else
                t.numel() * t.element_size() for name, t in state.items())
    size = path.stat().st_size
    assert bound <= size <= 1.10 * bound
    loaded = load_weights(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)

    summary = results.read_csv(run / results.SUMMARY)[0]
    assert list(summary)[:len(results.SUMMARY_FIELDS)] == results.SUMMARY_FIELDS
    assert int(summary["bitmask_file_bytes"]) == size and int(summary["dense_file_bytes"]) > 5 * size
    code, out, err = cli("eval", "--run", run, "--weights", path, "--json")
    assert code == 0, err
    assert abs(json.loads(out)["test_top1"] - float(summary["test_top1"])) <= 0.01


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path, cli):
    grid = write_grid(tmp_path, {"data.name": ["synthetic", "cifar10"]}, dense_baseline=False,
                      data={"name": "synthetic", "root": str(tmp_path / "no-cifar-here"), "batch_size": 64})
    code, out, err = cli("sweep", "--grid", grid, "--out", tmp_path / "runs", "--workers", "2")
    assert code == 1 and "1 of 2 runs failed" in err
    rows = {row["run"].split("-")[0]: row for row in results.read_csv(tmp_path / "runs" / "sweep.csv")}
    assert rows["synthetic"]["status"] == "finished"
    assert rows["cifar10"]["status"] == "failed" and "data.download" in rows["cifar10"]["error"]


@pytest.mark.slow
def test_slurm_executor_runs_a_job_array_through_submitit(tmp_path):
    pytest.importorskip("submitit")
    grid = write_grid(tmp_path, {"seed": [0]}, dense_baseline=False)
    outcomes = run_sweep(grid, tmp_path / "runs", workers=1, gpus=[], executor="slurm", submitit_cluster="local")
    assert [o.status for o in outcomes] == ["finished"]
    assert len(list((tmp_path / "runs").glob(f"*/{results.SUMMARY}"))) == 1


@pytest.mark.parametrize("args, needle", [
    (["sweep", "--grid", "{tmp}/missing.yaml"], "grid file not found"),
    (["sweep", "--grid", "{bad_axis}", "--dry-run"], "unknown config key 'prune.betta'"),
    (["sweep", "--grid", "{bad_value}", "--dry-run"], "prune.target_sparsity"),
    (["sweep", "--grid", "{bad_axis}", "--executor", "pbs"], "--executor must be local or slurm"),
    (["report", "{tmp}/empty"], "no summary.csv"),
    (["report", "{tmp}/missing"], "not a directory"),
    (["plot", "{tmp}/empty", "--out", "{tmp}/f"], "no *.accuracy.csv"),
    (["plot", "--out", "{tmp}/f"], "plot needs TABLES"),
    (["export", "--run", "{tmp}/empty"], "finished run"),
    (["export", "--run", "{tmp}/empty", "--format", "zip"], "--format"),
])
def test_user_mistakes_exit_2_with_one_line(tmp_path, cli, args, needle):
    (tmp_path / "empty").mkdir()
    grids = {name: write_grid(tmp_path / name, sweep) for name, sweep in
             [("bad_axis", {"prune.betta": [0.5]}), ("bad_value", {"prune.target_sparsity": [1.5]})]
             if not (tmp_path / name).mkdir()}
    code, out, err = cli(*[a.format(tmp=tmp_path, **grids) for a in args])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err


@pytest.mark.slow
def test_tuning_chooses_on_validation_then_runs_the_choice_everywhere(tmp_path, cli):
    """A variant tried at a tuning seed apart from the evaluation seeds; a choice at an edge extends the list;
    the best last-epoch val_top1 runs at every evaluation seed; no tuning run is a test run. (Several variants
    under one rule, the mean over tuning seeds and the extension's cap: test_verdicts, on planted runs.)"""
    write_config(tmp_path / "base.yaml", **TINY)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "base": "base.yaml", "dense_baseline": True,
        "variants": {"random-erk": {"prune.method": "random", "prune.allocation": "erk"}},
        "tune": {"at": {"prune.target_sparsity": 0.9}, "seeds": [5],
                 "settings": {"random-erk": {"train.lr": [0.01, 0.05]}}},
        "sweep": {"prune.target_sparsity": [0.9], "seed": [0, 1]}}))
    runs = tmp_path / "runs"
    code, out, err = cli("sweep", "--grid", grid, "--out", runs, "--workers", "2")
    assert code == 0, err
    tuning = pd.read_csv(runs / f"{grid.stem}.tuning.csv")  # one record per grid: studies share folders
    assert set(tuning["seed"]) == {5}
    tuning_runs = set(tuning["run"])
    rows = tuning[tuning["variant"] == "random-erk"]
    means = rows.groupby("setting", sort=False)["val_top1"].mean()
    assert list(rows.groupby("setting", sort=False)["setting_val_top1"].first()) == pytest.approx(list(means))
    assert rows.loc[rows["chosen"], "setting"].unique().tolist() == [means.idxmax()]
    lrs = sorted(float(setting.split("=")[1]) for setting in means.index)
    extended = [lr for lr in lrs if lr not in (0.01, 0.05)]  # 0.01 → 0.002, 0.0004; 0.05 → 0.25, 1.25
    assert set(extended) <= {0.002, 0.0004, 0.25, 1.25} and len(extended) == rows["extension"].max()
    lr = float(means.idxmax().split("=")[1])
    assert lr not in (lrs[0], lrs[-1]) or len(extended) == 2 or lr in (0.0004, 1.25)  # inside, or at the cap
    mains = [p.parent for p in runs.glob(f"*-random-erk-*/{results.SUMMARY}") if p.parent.name not in tuning_runs]
    assert len(mains) == 2
    assert all(yaml.safe_load((d / "config.yaml").read_text())["train"]["lr"] == lr for d in mains)
    assert all(results.read_csv(d / results.SUMMARY)[0]["variant"] == "random-erk" for d in mains)
    assert {int(results.read_csv(d / results.SUMMARY)[0]["seed"]) for d in mains} == {0, 1}
    code, out, err = cli("report", runs, "--out", tmp_path / "tables")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "tables" / "synthetic-vgg16.accuracy.csv")
    assert set(table["n_seeds"]) == {2} and len(table) == 1 + 1  # no tuning run, chosen or not
    tuned = pd.read_csv(tmp_path / "tables" / "synthetic-vgg16.tuning.csv")
    assert list(tuned["settings_tried"]) == [2 + e for e in tuned["extensions"]]
    page = (tmp_path / "tables" / "synthetic-vgg16.md").read_text()
    assert "chosen on validation" in page


def test_a_choice_at_the_edge_of_its_range_is_flagged():
    lrs = ["train.lr=0.02", "train.lr=0.05", "train.lr=0.1", "train.lr=0.2"]
    assert edge_of_range("train.lr=0.2", lrs) == "train.lr largest tried"
    assert edge_of_range("train.lr=0.02", lrs) == "train.lr smallest tried"
    assert edge_of_range("train.lr=0.1", lrs) == ""
    two_axes = [f"train.lr={lr} prune.gamma={g}" for lr in (0.1, 0.2, 0.4) for g in (1, 2)]
    assert edge_of_range("train.lr=0.2 prune.gamma=2", two_axes) == "prune.gamma largest tried"  # two values
    assert edge_of_range("train.lr=0.4 prune.score=momentum", ["train.lr=0.1 prune.score=momentum",
                                                                "train.lr=0.2 prune.score=magnitude",
                                                                "train.lr=0.4 prune.score=momentum"]) == \
        "train.lr largest tried"
    records = pd.DataFrame({"variant": ["gmp"] * 3 + ["imp"] * 3, "setting": lrs[:3] * 2,
                            "setting_val_top1": ["80.0", "81.0", "82.0", "85.0", "86.0", "84.0"],
                            "extension": ["0"] * 6, "chosen": [False, False, True, False, True, False]})
    assert list(tuning_table(records)["chosen_at_edge"]) == ["train.lr largest tried", ""]


@pytest.mark.parametrize("tune, needle", [
    ({"at": {"seed": 9}, "settings": {"weightmom": {"train.lr": [0.1, 0.2]}, "gmp": {"train.lr": [0.1]}}},
     "same number of settings"),
    ({"at": {"seed": 9}, "settings": {"weightmom": {"train.lr": [0.1]}}}, "missing: gmp"),
    ({"seeds": [9], "settings": {"weightmom": {"train.lr": [0.1]}, "gmp": {"train.lr": [0.1]}}},
     "missing: prune.target_sparsity"),
    ({"at": {"seed": 0, "prune.target_sparsity": 0.9},
      "settings": {"weightmom": {"train.lr": [0.1]}, "gmp": {"train.lr": [0.1]}}}, "seed(s) 0 are also evaluation"),
    ({"at": {"prune.target_sparsity": 0.9}, "seeds": [3, 0],
      "settings": {"weightmom": {"train.lr": [0.1]}, "gmp": {"train.lr": [0.1]}}}, "seed(s) 0 are also evaluation"),
    ({"at": {"prune.target_sparsity": 0.9}, "seeds": [3], "extend": 1,
      "settings": {"weightmom": {"train.lr": [0.1]}, "gmp": {"train.lr": [0.1]}}}, "extend must be an integer ≥ 2"),
    ({"at": {"prune.target_sparsity": 0.9}, "settings": {"weightmom": {"train.lr": [0.1]}, "gmp": {"train.lr": [0.1]}}},
     "tune: seeds needs"),
])
def test_unequal_or_incomplete_tuning_budgets_are_refused(tmp_path, cli, tune, needle):
    write_config(tmp_path / "base.yaml", **TINY)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": "base.yaml", "tune": tune, "sweep": {
        "prune.method": ["weightmom", "gmp"], "seed": [0], "prune.target_sparsity": [0.5, 0.9]}}))
    code, _, err = cli("sweep", "--grid", grid, "--out", tmp_path / "runs", "--dry-run")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_a_killed_child_is_recorded_as_killed_not_by_its_last_progress_line(tmp_path):
    from wmprune.commands.sweep import _error_line

    log = tmp_path / "run.log"
    log.write_text("epoch   3/6 loss 0.4 train 85.2\n4.1s\n")
    assert _error_line(log, -9).startswith("killed by signal 9")
    log.write_text("error: data.val_size=512 leaves no training images\n")
    assert _error_line(log, 2) == "error: data.val_size=512 leaves no training images"
