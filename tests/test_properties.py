"""Property tests (Hypothesis) of the parsers that take outside input: `--set` values, the config loader, the IDX
and CIFAR readers, the bitmask reader, and the readers behind `runs` and `report`. Whatever the input, each
either succeeds or raises UserError (or, for the listing and report readers, says "damaged"); never another
exception. Memory is bounded where a parser could blow up (the YAML loader, in a child with a capped address
space)."""

import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from wmprune.catalog import build_config
from wmprune.config import apply_overrides, load_yaml_text, read_yaml
from wmprune.errors import UserError

# Few examples each and no deadline: the whole file runs in seconds on a loaded 2-core machine, and nothing
# depends on timing.
FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BASE = {"name": "p", "device": "cpu", "model": {"name": "vgg16", "width": 0.125}, "data": {"name": "synthetic"},
        "train": {"epochs": 2}}
KEYS = st.sampled_from(["name", "seed", "device", "model.name", "model.width", "data.batch_size", "train.lr",
                        "train.weight_decay", "train.milestones", "prune.target_sparsity", "prune.prunable",
                        "prune.schedule.end_epoch", "prune.method", "output.root", "x.y", "seed.x", ""])
YAML_SCALARS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=30),
                         st.sampled_from([".inf", "-.inf", ".nan", "~", "[", "{a: 1", "&a [*a]", "!!python/none",
                                          "[conv, linear]", "0x10", "1e400"]))


def _user_error_or_value(call):
    try:
        return call()
    except UserError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000, str(exc)
        return None


@FAST
@given(key=KEYS, value=YAML_SCALARS)
def test_a_set_override_is_accepted_or_one_line(key, value):
    text = f"{key}={value}"
    _user_error_or_value(lambda: build_config(apply_overrides(json.loads(json.dumps(BASE)), [text])))


@FAST
@given(text=st.text(max_size=200))
def test_any_set_text_is_accepted_or_one_line(text):
    _user_error_or_value(lambda: build_config(apply_overrides(json.loads(json.dumps(BASE)), [text])))


YAML_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(),
                                     st.text(max_size=10)),
                           lambda children: st.one_of(st.lists(children, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), children, max_size=4)),
                           max_leaves=20)
SECTIONS = st.fixed_dictionaries({}, optional={
    "name": YAML_VALUES, "seed": YAML_VALUES, "model": st.dictionaries(st.sampled_from(["name", "width"]), YAML_VALUES),
    "train": st.dictionaries(st.sampled_from(["epochs", "lr", "momentum", "weight_decay"]), YAML_VALUES),
    "prune": st.dictionaries(st.sampled_from(["method", "target_sparsity", "prunable", "schedule"]), YAML_VALUES)})


@FAST
@given(raw=SECTIONS)
def test_a_config_of_any_shape_is_accepted_or_one_line(tmp_path, raw):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    _user_error_or_value(lambda: build_config(read_yaml(path)))


@FAST
@given(text=st.text(max_size=300))
def test_any_config_text_is_a_mapping_or_one_line(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    loaded = _user_error_or_value(lambda: read_yaml(path))
    assert loaded is None or isinstance(loaded, dict)


def test_yaml_loading_stays_within_bounded_memory():
    """Random alias-nested documents in a child with 512 MB of address space: each loads or is a UserError."""
    code = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
        import yaml
        from hypothesis import given, settings, strategies as st
        from wmprune.config import load_yaml_text
        from wmprune.errors import UserError

        @settings(max_examples=80, deadline=None, derandomize=True)
        @given(fan=st.integers(1, 40), depth=st.integers(1, 12), key=st.sampled_from(["prunable", "a", "<<"]))
        def check(fan, depth, key):
            lines = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, depth)]
            text = "\\n".join(lines) + f"\\nprune: {{{key}: *l{depth - 1}}}\\n"
            try:
                load_yaml_text(text, "c.yaml")
            except (UserError, yaml.YAMLError):
                pass

        check()
        print("bounded")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "bounded" in done.stdout, done.stderr[-2000:]


# The data readers

def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as handle:
        handle.write(data)
    return buffer.getvalue()


@FAST
@given(magic=st.sampled_from([0x0803, 0x0801, 0x0802, 0]), dims=st.lists(st.integers(0, 2**32 - 1), min_size=1,
                                                                        max_size=3),
       body=st.binary(max_size=64), gzipped=st.booleans())
def test_an_idx_file_is_read_or_one_line(tmp_path, magic, dims, body, gzipped):
    from wmprune.data.fashion_mnist import _IMAGES_MAGIC, _read_idx

    raw = struct.pack(f">{1 + len(dims)}I", magic, *dims) + body
    path = tmp_path / "f.gz"
    path.write_bytes(_gzip(raw) if gzipped else raw)
    array = _user_error_or_value(lambda: _read_idx(path, _IMAGES_MAGIC))
    assert array is None or array.dtype == np.uint8


PICKLABLE = st.recursive(st.one_of(st.none(), st.integers(), st.binary(max_size=8), st.text(max_size=8),
                                   st.builds(lambda n, w: np.zeros((n, w), dtype=np.uint8), st.integers(0, 3),
                                             st.sampled_from([3072, 3, 0]))),
                         lambda children: st.one_of(st.lists(children, max_size=3),
                                                    st.dictionaries(st.sampled_from([b"data", b"labels", "data"]),
                                                                    children, max_size=3)),
                         max_leaves=8)


@FAST
@given(batch=PICKLABLE, cut=st.integers(0, 64))
def test_a_cifar_batch_is_read_or_one_line(tmp_path, batch, cut):
    from wmprune.data.cifar import _read_batch

    blob = pickle.dumps(batch, protocol=2)
    path = tmp_path / "data_batch_1"
    path.write_bytes(blob if cut == 0 else blob[:-cut])
    _user_error_or_value(lambda: _read_batch(path, b"labels", 10))


# The bitmask reader

SHAPES = st.one_of(st.lists(st.integers(-2, 2**40), max_size=3), st.text(max_size=5), st.integers(), st.none())


@FAST
@given(shape=SHAPES, bitorder=st.sampled_from(["little", "big", "sideways", ""]), mask_bytes=st.integers(0, 8),
       values=st.integers(0, 40), mask_dtype=st.sampled_from([torch.uint8, torch.float32]),
       drop=st.sampled_from(["", ".mask", ".values"]), shapes_text=st.one_of(st.none(), st.text(max_size=10)))
def test_a_bitmask_file_is_unpacked_or_one_line(tmp_path, shape, bitorder, mask_bytes, values, mask_dtype, drop,
                                                shapes_text):
    import safetensors.torch

    from wmprune.weights import load_weights

    tensors = {"w.mask": torch.full((mask_bytes,), 255, dtype=torch.uint8).to(mask_dtype),
               "w.values": torch.ones(values), "b": torch.zeros(2)}
    tensors = {name: tensor for name, tensor in tensors.items() if not (drop and name.endswith(drop))}
    metadata = {"format": "wmprune-bitmask", "bitorder": bitorder,
                "shapes": shapes_text if shapes_text is not None else json.dumps({"w": shape})}
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file(tensors, path, metadata)
    _user_error_or_value(lambda: load_weights(path))


@FAST
@given(blob=st.binary(max_size=200))
def test_any_bytes_as_a_weights_file_are_one_line(tmp_path, blob):
    from wmprune.weights import load_weights

    path = tmp_path / "w.safetensors"
    path.write_bytes(blob)
    _user_error_or_value(lambda: load_weights(path))


# The readers behind `runs` and `report`

RUN_FILE_BYTES = st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode),
                           YAML_VALUES.map(lambda v: json.dumps(v).encode()),
                           st.fixed_dictionaries({}, optional={
                               "status": YAML_VALUES, "pid": st.integers(-2**70, 2**70), "host": YAML_VALUES,
                               "epoch": YAML_VALUES}).map(lambda v: json.dumps(v).encode()))


@FAST
@given(state=st.one_of(st.none(), RUN_FILE_BYTES), summary=st.one_of(st.none(), RUN_FILE_BYTES),
       metrics=st.one_of(st.none(), RUN_FILE_BYTES))
def test_any_run_files_are_listed(tmp_path, state, summary, metrics):
    from wmprune.commands.runs import FIELDS, list_runs

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text("name: r\n")
    for name, content in (("state.json", state), ("summary.csv", summary), ("metrics.csv", metrics)):
        (run / name).unlink(missing_ok=True)
        if content is not None:
            (run / name).write_bytes(content)
    rows = list_runs(tmp_path / "runs", sort="sparsity")
    assert len(rows) == 1 and list(rows[0]) == FIELDS


SUMMARY_HEADER = ("dataset,model,method,allocation,seed,target_sparsity,sparsity,params_prunable,params_nonzero,"
                  "compression_ratio,weights_kept_pct,test_top1")
CELLS = st.one_of(st.sampled_from(["digits", "vgg16", "weightmom", "0", "0.9", "100", "inf", "nan", "", "zzz", "-1",
                                   '"', "1e400"]), st.text(alphabet="0123456789.,-e\"", max_size=6))


@FAST
@given(cells=st.lists(CELLS, min_size=0, max_size=14), header=st.sampled_from([SUMMARY_HEADER, "a,b", ""]),
       extra_row=st.booleans())
def test_any_summary_is_reported_or_skipped_with_a_reason(tmp_path, cells, header, extra_row):
    from wmprune.commands.report import _read_records, _summary_row

    path = tmp_path / "r" / "summary.csv"
    path.parent.mkdir(exist_ok=True)
    row = ",".join(cells)
    path.write_text(f"{header}\n{row}\n" + (f"{row}\n" if extra_row else ""))
    skipped = []
    frames = _read_records([path], _summary_row, skipped, "run")
    assert len(frames) + len(skipped) == 1
    if frames:
        assert isinstance(frames[0], pd.DataFrame) and len(frames[0]) == 1
        assert 0 <= float(frames[0]["target_sparsity"].iloc[0]) < 1


@pytest.mark.parametrize("text", ["a: *missing", "a: &a [*a]", "!!python/object:os.system {}", "\x00"])
def test_hostile_yaml_texts_are_one_line(text):
    with pytest.raises((UserError, yaml.YAMLError)):
        load_yaml_text(text, "c.yaml")
