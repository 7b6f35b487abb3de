"""The edges a hostile or careless user reaches: nothing of theirs replaced without --overwrite, one damaged run
never stops a listing or a report, run names stay inside output.root, every damaged file and odd value is one
line and exit 2, paths of the wrong kind, the library face's errors, and one line under torchrun."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import safetensors.torch
import torch
from torch import nn

from tests.conftest import ROOT, write_config
from tests.idx_files import idx_bytes, write_fashion_mnist, write_gzip

USER_BYTES = b"the user's own file\n"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _refused(result, needle: str = "") -> str:
    code, _, err = result
    assert code == 2, err
    line = _one_line(err)
    assert needle in line, line
    return line


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run (1 epoch), trained once for the module; tests copy it."""
    import sys as _sys

    from wmprune.cli import main

    base = tmp_path_factory.mktemp("trained")
    config = write_config(base / "c.yaml", train={"epochs": 1, "lr": 0.05})
    old_argv = _sys.argv
    _sys.argv = ["wmprune", "train", "--config", str(config), "--out", str(base / "run")]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        _sys.argv = old_argv
    return base


@pytest.fixture
def run_dir(trained, tmp_path):
    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def config(trained):
    return trained / "c.yaml"


# 1. Nothing a user owns is replaced or deleted without --overwrite.

def test_export_out_keeps_a_user_file_and_replaces_its_own(run_dir, tmp_path, cli):
    user = tmp_path / "mine.safetensors"
    user.write_bytes(USER_BYTES)
    _refused(cli("export", "--run", run_dir, "--out", user), "--overwrite")
    assert user.read_bytes() == USER_BYTES
    assert cli("export", "--run", run_dir, "--out", tmp_path / "w.safetensors")[0] == 0
    assert cli("export", "--run", run_dir, "--out", tmp_path / "w.safetensors", "--format", "dense")[0] == 0
    assert cli("export", "--run", run_dir, "--out", user, "--overwrite")[0] == 0
    assert user.read_bytes() != USER_BYTES


def test_report_keeps_a_user_file_named_like_a_table(run_dir, tmp_path, cli):
    tables = tmp_path / "tables"
    assert cli("report", run_dir.parent, "--out", tables)[0] == 0
    written = {path.name: path.read_bytes() for path in tables.iterdir()}
    assert cli("report", run_dir.parent, "--out", tables)[0] == 0  # over its own tables
    assert {path.name: path.read_bytes() for path in tables.iterdir()} == written
    for name in written:
        (tables / name).write_bytes(USER_BYTES)
        _refused(cli("report", run_dir.parent, "--out", tables), name)
        assert (tables / name).read_bytes() == USER_BYTES
        (tables / name).write_bytes(written[name])
    (tables / "synthetic-vgg16.md").write_bytes(USER_BYTES)
    assert cli("report", run_dir.parent, "--out", tables, "--overwrite")[0] == 0
    assert (tables / "synthetic-vgg16.md").read_bytes() == written["synthetic-vgg16.md"]


def test_overwrite_on_a_directory_without_a_run_deletes_nothing(config, tmp_path, cli):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("log.txt", "metrics.csv"):
        (folder / name).write_bytes(USER_BYTES)
    for flags in ([], ["--overwrite"]):
        _refused(cli("train", "--config", config, "--out", folder, *flags), "no wmprune run")
        assert sorted(p.name for p in folder.iterdir()) == ["log.txt", "metrics.csv"]
        assert all(p.read_bytes() == USER_BYTES for p in folder.iterdir())


@pytest.mark.slow
def test_plot_keeps_a_user_file_named_like_a_figure(run_dir, tmp_path, cli):
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    assert cli("report", run_dir.parent, "--out", tables)[0] == 0
    assert cli("plot", tables, "--out", figures, "--run", run_dir)[0] == 0
    assert cli("plot", tables, "--out", figures, "--run", run_dir)[0] == 0  # over its own figures
    for name in ("synthetic-vgg16.png", "run.layers.png"):
        drawn = (figures / name).read_bytes()
        (figures / name).write_bytes(USER_BYTES)
        _refused(cli("plot", tables, "--out", figures, "--run", run_dir), name)
        assert (figures / name).read_bytes() == USER_BYTES
        (figures / name).write_bytes(drawn)
    (figures / "run.layers.png").write_bytes(USER_BYTES)
    assert cli("plot", tables, "--out", figures, "--run", run_dir, "--overwrite")[0] == 0
    assert (figures / "synthetic-vgg16.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("study", ["digits", "fashion-mnist-pilot"])
def test_committed_tables_regenerate_over_themselves(tmp_path, cli, study):
    """A guard, not a defect: `make reproduce-*` reports over its own committed tables, byte-identically."""
    runs, tables = tmp_path / "runs", tmp_path / "tables"
    shutil.copytree(ROOT / "results" / study / "runs", runs)
    shutil.copytree(ROOT / "results" / study / "tables", tables)
    code, _, err = cli("report", runs, "--out", tables)
    assert code == 0, err
    regenerated = {path.name: path.read_bytes() for path in tables.iterdir()}
    assert cli("report", runs, "--out", tables)[0] == 0
    assert {path.name: path.read_bytes() for path in tables.iterdir()} == regenerated


# 2. One damaged run never stops a listing or a report.

RUN_DAMAGE = {
    "state.json a list": ("state.json", b"[1, 2]"),
    "state.json binary": ("state.json", bytes(range(256))),
    "pid of 10^20": ("state.json", json.dumps({"status": "running", "pid": 10**20, "host": os.uname().nodename,
                                               "epoch": 0, "epochs": 1}).encode()),
    "pid as text": ("state.json", json.dumps({"status": "running", "pid": "1", "host": "h"}).encode()),
    "metrics.csv a directory": ("metrics.csv", None),
    "metrics.csv ragged": ("metrics.csv", b"epoch,step\n1,2,3,4\n"),
    "summary.csv empty": ("summary.csv", b""),
    "summary.csv binary": ("summary.csv", bytes(range(256))),
}


@pytest.mark.parametrize("damage", RUN_DAMAGE, ids=list(RUN_DAMAGE))
def test_runs_lists_a_damaged_run_as_damaged_and_the_rest(run_dir, cli, damage):
    name, content = RUN_DAMAGE[damage]
    bad = run_dir.parent / "bad"
    shutil.copytree(run_dir, bad)
    (bad / name).unlink()
    if name == "state.json":  # a finished run's status does not read its state
        (bad / "summary.csv").unlink()
    if content is None:
        (bad / name).mkdir()
    else:
        (bad / name).write_bytes(content)
    code, out, err = cli("runs", run_dir.parent, "--csv")
    assert code == 0, err
    rows = {line.split(",")[0]: line for line in out.splitlines()[1:]}
    assert rows["run"].split(",")[1] == "finished"
    if damage == "pid of 10^20":  # a pid no process can have: the process is gone
        assert rows["bad"].split(",")[1] == "interrupted", rows["bad"]
    else:
        assert rows["bad"].split(",")[1] == "damaged" and name in rows["bad"], rows["bad"]
    code, out, _ = cli("runs", run_dir.parent)
    assert code == 0 and "bad" in out


def _summary_damage(summary: bytes) -> dict[str, bytes]:
    header, row = summary.decode().splitlines()[:2]
    columns = header.split(",")
    cells = row.split(",")
    at = columns.index("target_sparsity")
    keep = [i for i, column in enumerate(columns) if column != "test_top1"]
    return {"empty": b"", "binary": bytes(range(256)),
            "missing columns": (",".join(columns[i] for i in keep) + "\n"
                                + ",".join(cells[i] for i in keep) + "\n").encode(),
            "non-numeric target": (header + "\n" + ",".join(cells[:at] + ["zzz"] + cells[at + 1:]) + "\n").encode(),
            "two rows": summary + row.encode() + b"\n"}


def test_report_skips_damaged_runs_and_says_which(run_dir, tmp_path, cli):
    healthy_tables = tmp_path / "healthy-tables"
    assert cli("report", run_dir.parent, "--out", healthy_tables)[0] == 0
    damage = _summary_damage((run_dir / "summary.csv").read_bytes())
    for name, content in damage.items():
        bad = run_dir.parent / name.replace(" ", "-")
        bad.mkdir()
        (bad / "summary.csv").write_bytes(content)
    (run_dir.parent / "sweep.tuning.csv").write_bytes(b"\x00\xff binary")
    (run_dir.parent / "sweep.comparisons.csv").write_bytes(b"dataset,model\nsynthetic,vgg16\n")
    (run_dir / "inference.csv").write_bytes(b"layer\nnetwork\n")
    tables = tmp_path / "tables"
    code, _, err = cli("report", run_dir.parent, "--out", tables)
    assert code == 0, err
    assert "Traceback" not in err
    for name in damage:
        assert f"skipped run {name.replace(' ', '-')}: summary.csv is damaged" in err, err
    assert all(f"{name} is damaged" in err for name in ("sweep.tuning.csv", "sweep.comparisons.csv", "inference.csv"))
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == \
        {p.name: p.read_bytes() for p in healthy_tables.iterdir()}


# 3. Run names stay inside output.root.

@pytest.mark.parametrize("name", ["../x", "/abs/x", "a/b", "a\\b", "a\x00b", "a\x1b[31mb", "..", "."])
def test_a_run_name_that_leaves_output_root_is_one_line(config, tmp_path, cli, name):
    root = tmp_path / "deep" / "root"
    _refused(cli("train", "--config", config, "--set", f"output.root={root}", "--set", f"name={name}"), "name")
    assert not (tmp_path / "deep").exists() and not (tmp_path / "x").exists()


def test_rich_markup_in_a_name_is_printed_literally(config, tmp_path, cli):
    code, out, err = cli("train", "--config", config, "--out", tmp_path / "run", "--set", "name=[bold]x")
    assert code == 0, err
    assert "[bold]x: vgg16" in out and "[bold]x — " in out
    code, out, _ = cli("runs", tmp_path)
    assert code == 0


def test_a_grid_variant_with_control_characters_is_sanitised():
    from wmprune.catalog import build_config
    from wmprune.commands.grid import _run_name

    cfg = build_config({"data": {"name": "synthetic"}})
    assert _run_name(cfg, "a/b\tc\x00d", {}) == "synthetic-vgg16-a_b_c_d"


# 4. Every file wmprune reads, damaged in any way, is one line and exit 2.

@pytest.mark.parametrize("content", [{}, torch.zeros(3), {"optimizer": {}}, {"model": {"w": "text"}},
                                     {"model": {}, "normalisation": "x"}],
                         ids=["empty dict", "bare tensor", "no model", "model not tensors", "bad normalisation"])
def test_a_checkpoint_of_the_wrong_structure_is_one_line(run_dir, cli, content):
    torch.save(content, run_dir / "checkpoint.pt")
    _refused(cli("eval", "--run", run_dir), "checkpoint")
    _refused(cli("export", "--run", run_dir), "checkpoint")


@pytest.mark.parametrize("content", [{}, {"epoch": 1}, "drop model"], ids=["empty dict", "no model", "no pruner"])
def test_resume_from_a_checkpoint_of_the_wrong_structure_is_one_line(config, run_dir, cli, content):
    (run_dir / "summary.csv").unlink()
    if content == "drop model":
        state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
        content = {key: value for key, value in state.items() if key != "pruner"}
    torch.save(content, run_dir / "checkpoint.pt")
    _refused(cli("train", "--config", config, "--out", run_dir, "--resume"), "checkpoint")


def test_resume_over_a_binary_log_continues(config, run_dir, cli):
    (run_dir / "summary.csv").unlink()
    (run_dir / "log.txt").write_bytes(bytes(range(256)))
    code, _, err = cli("train", "--config", config, "--out", run_dir, "--resume")
    assert code == 0, err
    assert (run_dir / "summary.csv").is_file()


def _bitmask_variants(path):
    tensors = safetensors.torch.load_file(path)
    with safetensors.safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    shapes = json.loads(metadata["shapes"])
    name = next(iter(shapes))
    variants = {
        "shapes not JSON": (tensors, {**metadata, "shapes": "{not json"}),
        "shapes a list": (tensors, {**metadata, "shapes": "[1, 2]"}),
        "bad bit order": (tensors, {**metadata, "bitorder": "sideways"}),
        "absurd shape": (tensors, {**metadata, "shapes": json.dumps({**shapes, name: [10**9, 10**9]})}),
        "negative shape": (tensors, {**metadata, "shapes": json.dumps({**shapes, name: [-1, 4]})}),
        "too few values": ({**tensors, name + ".values": tensors[name + ".values"][:-1]}, metadata),
        "missing mask": ({k: v for k, v in tensors.items() if k != name + ".mask"}, metadata),
        "mask of floats": ({**tensors, name + ".mask": tensors[name + ".mask"].float()}, metadata),
    }
    return variants


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_a_bitmask_file_with_broken_metadata_is_one_line(run_dir, tmp_path, cli, command):
    exported = tmp_path / "w.safetensors"
    assert cli("export", "--run", run_dir, "--out", exported)[0] == 0
    extra = ["--repeats", "1", "--samples", "4", "--threads", "1"] if command == "bench" else []
    for what, (tensors, metadata) in _bitmask_variants(exported).items():
        broken = tmp_path / f"{what.replace(' ', '-')}.safetensors"
        safetensors.torch.save_file(tensors, broken, metadata)
        line = _refused(cli(command, "--run", run_dir, "--weights", broken, *extra), broken.name)
        assert "damaged" in line, (what, line)


@pytest.fixture
def debian(tmp_path, monkeypatch):
    import wmprune.data.fashion_mnist as fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")


@pytest.mark.parametrize("split", ["train", "t10k"])
@pytest.mark.parametrize("kind", ["images", "labels"])
def test_an_idx_file_of_zero_items_is_one_line(tmp_path, cli, debian, split, kind):
    folder = write_fashion_mnist(tmp_path / "data" / "fashion-mnist")
    empty = torch.zeros((0, 28, 28) if kind == "images" else (0,), dtype=torch.uint8).numpy()
    write_gzip(folder / f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz", idx_bytes(empty))
    config = write_config(tmp_path / "c.yaml", data={"name": "fashion-mnist", "root": str(tmp_path / "data"),
                                                      "batch_size": 8, "val_size": 0})
    _refused(cli("train", "--config", config, "--out", tmp_path / "run"), "0 items")


def test_an_idx_file_that_claims_more_than_the_dataset_is_one_line(tmp_path, cli, debian):
    folder = write_fashion_mnist(tmp_path / "data" / "fashion-mnist")
    header = (0x0803).to_bytes(4, "big") + (2**31).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    write_gzip(folder / "train-images-idx3-ubyte.gz", header + b"\x00" * 100)
    config = write_config(tmp_path / "c.yaml", data={"name": "fashion-mnist", "root": str(tmp_path / "data")})
    _refused(cli("train", "--config", config, "--out", tmp_path / "run"), "more than")


@pytest.mark.parametrize("content", [bytes(range(256)), b"name,value\nconv,0.5\n", b"layer,sparsity\nconv,zzz\n",
                                     b""], ids=["binary", "wrong columns", "non-numeric", "empty"])
def test_a_damaged_layers_csv_under_plot_is_one_line(run_dir, tmp_path, cli, content):
    (run_dir / "layers.csv").write_bytes(content)
    _refused(cli("plot", "--run", run_dir, "--out", tmp_path / "figures"), "layers.csv")
    assert not (tmp_path / "figures").exists()


def test_a_damaged_accuracy_table_under_plot_is_one_line(tmp_path, cli):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "x-y.accuracy.csv").write_bytes(bytes(range(256)))
    _refused(cli("plot", tables, "--out", tmp_path / "figures"), "x-y.accuracy.csv")


@pytest.mark.parametrize("content", [b"", bytes(range(256))], ids=["empty", "binary"])
def test_export_checks_a_damaged_summary_before_writing(run_dir, cli, content):
    (run_dir / "summary.csv").write_bytes(content)
    _refused(cli("export", "--run", run_dir), "summary.csv")
    assert not list(run_dir.glob("weights.*"))


# 5. Every value is checked where it enters.

VALUES = {
    "seed 2^32": (["--set", "seed=4294967296"], "seed"),
    "seed 2^70": (["--set", "seed=1180591620717411303424"], "seed"),
    "NUL in a name": (["--set", "name=a\x00b"], "name"),
    "NUL in output.root": (["--set", 'output.root="a\\0b"'], "output.root"),
    "NUL in data.root": (["--set", 'data.root="a\\0b"'], "data.root"),
    "infinite lr": (["--set", "train.lr=.inf"], "train.lr"),
    "infinite weight decay": (["--set", "train.weight_decay=.inf"], "train.weight_decay"),
    "infinite gamma": (["--set", "prune.gamma=.inf"], "prune.gamma"),
}


@pytest.mark.parametrize("args, needle", VALUES.values(), ids=list(VALUES))
def test_a_value_out_of_range_is_one_line(config, tmp_path, cli, args, needle):
    _refused(cli("train", "--config", config, "--out", tmp_path / "run", *args), needle)
    assert not (tmp_path / "run").exists()


def _alias_bomb(key: str) -> str:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        name, below = chr(ord("a") + level), chr(ord("a") + level - 1)
        levels.append(f"{name}: &{name} [{', '.join(['*' + below] * 9)}]")
    return "\n".join(levels) + f"\nprune: {{{key}: *i}}\n"


def _limited(code: str, memory: int = 5 << 30, seconds: int = 60) -> subprocess.CompletedProcess:
    """Run Python `code` in a child whose address space is capped at `memory` bytes (torch alone maps 4 GB)."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=seconds,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["prunable", "method"])
def test_a_yaml_alias_bomb_is_one_short_line(tmp_path, key):
    config = tmp_path / "bomb.yaml"
    config.write_text(_alias_bomb(key))
    assert len(config.read_bytes()) < 1000
    done = _limited(f"import sys; from wmprune.cli import main; sys.argv = ['wmprune', 'train', '--config', "
                    f"{str(config)!r}]; main()")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "aliases" in _one_line(done.stderr) and len(done.stderr) < 300


@pytest.mark.slow
def test_a_long_value_is_cut_in_the_error_line(config, tmp_path, cli):
    line = _refused(cli("train", "--config", config, "--set", "model.name=" + "x" * 100_000), "model")
    assert len(line) < 400
    line = _refused(cli("train", "--config", config, "--set", "seed=[" + "1, " * 50_000 + "1]"), "seed")
    assert len(line) < 400


@pytest.mark.parametrize("option, value", [("--seeds", "0-100000000000"), ("--seeds", "4294967296"),
                                           ("--batch", "100000000000")])
def test_a_count_past_any_use_is_one_line(option, value):
    from wmprune.commands.bench import parse_counts
    from wmprune.commands.sweep import parse_seeds
    from wmprune.errors import UserError

    with pytest.raises(UserError, match=option):
        parse_seeds(value) if option == "--seeds" else parse_counts(value, option)


def test_a_long_option_value_is_cut_in_the_error_line(run_dir, cli):
    line = _refused(cli("runs", run_dir.parent, "--sort", "x" * 100_000), "sort")
    assert len(line) < 400
    line = _refused(cli("report", run_dir.parent, "--reference", "y" * 100_000, "--out", run_dir.parent / "t"))
    assert len(line) < 600


def test_a_self_containing_alias_is_one_line(tmp_path, cli):
    config = tmp_path / "loop.yaml"
    config.write_text("prune: &p {prunable: [conv], loop: *p}\n")
    _refused(cli("train", "--config", config), "aliases")


# 6. Paths of the wrong kind.

def test_train_out_naming_a_file_is_one_line(config, tmp_path, cli):
    user = tmp_path / "file"
    user.write_bytes(USER_BYTES)
    _refused(cli("train", "--config", config, "--out", user), "not a directory")
    assert user.read_bytes() == USER_BYTES


def test_export_out_naming_a_directory_is_one_line(run_dir, tmp_path, cli):
    (tmp_path / "folder").mkdir()
    _refused(cli("export", "--run", run_dir, "--out", tmp_path / "folder"), "is a directory")
    _refused(cli("export", "--run", run_dir, "--out", tmp_path / "folder", "--overwrite"), "is a directory")


def test_export_out_under_a_file_is_one_line(run_dir, tmp_path, cli):
    (tmp_path / "file").write_bytes(USER_BYTES)
    _refused(cli("export", "--run", run_dir, "--out", tmp_path / "file" / "w.safetensors"), "cannot write")


@pytest.mark.parametrize("command", ["report", "plot"])
def test_report_and_plot_out_naming_a_file_is_one_line(run_dir, tmp_path, cli, command):
    user = tmp_path / "x.md"
    user.write_bytes(USER_BYTES)
    tables = tmp_path / "tables"
    assert cli("report", run_dir.parent, "--out", tables)[0] == 0
    source = run_dir.parent if command == "report" else tables
    _refused(cli(command, source, "--out", user), "is a file")
    assert user.read_bytes() == USER_BYTES


# 7. The library face raises only UserError for misuse, in its own terms.

def _pruner(model, **kwargs):
    from wmprune import Pruner

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Pruner(model, optimizer, {"method": "weightmom", "target_sparsity": 0.5}, steps_per_epoch=4, epochs=2,
                  **kwargs)


def test_a_model_without_prunable_layers_is_a_user_error():
    from wmprune.errors import UserError

    with pytest.raises(UserError, match="no weight of the kinds to prune"):
        _pruner(nn.Sequential(nn.BatchNorm1d(4)))


def test_a_state_from_another_model_or_garbage_is_a_user_error():
    from wmprune.errors import UserError

    other = _pruner(nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2))).state_dict()
    method_garbage = {**_pruner(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))).state_dict(), "method": {"x": 1}}
    for state in (other, "garbage", {"masks": {}, "method": {}, "steps": 0}, {"masks": 1, "method": 2, "steps": 3},
                  method_garbage):
        with pytest.raises(UserError, match="state="):
            _pruner(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), state=state)


@pytest.mark.parametrize("arguments", [{"steps_per_epoch": 0}, {"steps_per_epoch": "4"}, {"epochs": -1},
                                       {"optimizer": "sgd"}])
def test_library_arguments_of_the_wrong_kind_are_a_user_error(arguments):
    from wmprune import Pruner
    from wmprune.errors import UserError

    model = nn.Sequential(nn.Linear(4, 2))
    given = {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), "steps_per_epoch": 4,
             "epochs": 2, **arguments}
    with pytest.raises(UserError, match="Pruner"):
        Pruner(model, given.pop("optimizer"), {"method": "gmp", "target_sparsity": 0.5}, **given)


def test_library_messages_name_no_cli_key():
    from wmprune import Pruner
    from wmprune.errors import UserError

    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(UserError) as error:
        Pruner(model, torch.optim.SGD(model.parameters(), lr=0.1), {"method": "weightmom", "score": "sgd_momentum"},
               steps_per_epoch=4, epochs=2)
    assert "train." not in str(error.value)
    documented = sys.modules["wmprune.pruning.pruner"].__doc__
    assert "epoch_end()" not in documented and "epoch_end(epoch)" in documented


# 8. Under torchrun a user mistake is printed once and every rank exits 2.

TORCHRUN_MISTAKES = {"existing run": [], "bad config": ["--set", "train.lr=-1"],
                     "batch not split over ranks": ["--set", "data.batch_size=33"]}


@pytest.mark.slow
@pytest.mark.parametrize("mistake", TORCHRUN_MISTAKES)
def test_a_mistake_under_torchrun_is_one_line_and_exit_2_on_every_rank(run_dir, config, tmp_path, mistake):
    out = run_dir if mistake == "existing run" else tmp_path / "new"
    args = ["--out", str(out), *TORCHRUN_MISTAKES[mistake]]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "wmprune", "train",
               "--config", str(config), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "terminate called" not in done.stderr and "Signal" not in done.stderr, done.stderr[-3000:]
    assert done.returncode != 0 and done.stderr.count("exitcode  : 2 ") == 2, done.stderr[-3000:]


def test_sweep_keeps_a_user_file_where_it_keeps_its_records(tmp_path, cli):
    from tests.test_experiments import write_grid

    grid = write_grid(tmp_path, {"prune.target_sparsity": [0.5]}, dense_baseline=False)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "sweep.csv").write_bytes(USER_BYTES)
    _refused(cli("sweep", "--grid", grid, "--out", runs), "sweep.csv")
    assert (runs / "sweep.csv").read_bytes() == USER_BYTES and sorted(p.name for p in runs.iterdir()) == ["sweep.csv"]
    (runs / "sweep.csv").unlink()
    (tmp_path / "file").write_bytes(USER_BYTES)
    _refused(cli("sweep", "--grid", grid, "--out", tmp_path / "file"), "is a file")
