import pytest

from wmprune.catalog import build_config, load_config
from wmprune.errors import UserError
from tests.conftest import ROOT, write_config


def _error(raw) -> str:
    with pytest.raises(UserError) as info:
        build_config(raw)
    return str(info.value)


def test_defaults_and_schedule_scaling():
    cfg = build_config({"train": {"epochs": 100}})
    assert (cfg.prune.schedule.start_epoch, cfg.prune.schedule.end_epoch) == (5, 70)
    assert build_config({"train": {"epochs": 160}, "prune": {"schedule": {"start_epoch": 5, "end_epoch": 110}}}
                        ).prune.schedule.end_epoch == 110


@pytest.mark.parametrize("raw, needle", [
    ({"bogus": 1}, "unknown config key 'bogus'"),
    ({"prune": {"bogus": 1}}, "unknown config key 'prune.bogus'"),
    ({"prune": {"max_layer_sparsity": 0.99}}, "unknown config key 'prune.max_layer_sparsity'"),  # now min_layer_density
    ({"prune": {"min_layer_density": 1.5}}, "prune.min_layer_density"),
    ({"model": {"name": "lenet"}}, "unknown model 'lenet'"),
    ({"data": {"name": "mnist"}}, "unknown dataset 'mnist'"),
    ({"prune": {"method": "magic"}}, "unknown method 'magic'"),
    ({"prune": {"allocation": "magic"}}, "unknown allocation 'magic'"),
    ({"prune": {"schedule": {"kind": "magic"}}}, "unknown schedule 'magic'"),
    ({"prune": {"target_sparsity": 1.0}}, "prune.target_sparsity"),
    ({"prune": {"target_sparsity": -0.1}}, "prune.target_sparsity"),
    ({"train": {"lr": 0}}, "train.lr"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"data": {"batch_size": -1}}, "data.batch_size"),
    ({"model": {"width": 0}}, "model.width"),
    ({"train": {"epochs": "many"}}, "train.epochs"),
    ({"device": "tpu"}, "device"),
    ({"train": {"epochs": 10}, "prune": {"schedule": {"start_epoch": 6, "end_epoch": 4}}}, "before start_epoch"),
    ({"train": {"epochs": 10}, "prune": {"schedule": {"start_epoch": 1, "end_epoch": 11}}}, "after the last epoch"),
])
def test_bad_values_name_the_key(raw, needle):
    message = _error(raw)
    assert needle in message
    assert "\n" not in message


def test_overrides_are_typed(tmp_path):
    path = write_config(tmp_path / "c.yaml")
    cfg = load_config(path, ["prune.target_sparsity=0.95", "train.nesterov=false", "model.name=resnet50"])
    assert cfg.prune.target_sparsity == 0.95 and cfg.train.nesterov is False and cfg.model.name == "resnet50"
    with pytest.raises(UserError, match="key=value"):
        load_config(path, ["prune.target_sparsity"])
    with pytest.raises(UserError, match="unknown config key 'prune.sparsity'"):
        load_config(path, ["prune.sparsity=0.5"])


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmodel: {name: vgg16\ntrain: {}\n")
    with pytest.raises(UserError, match=r"line \d+"):
        load_config(path)


def test_hash_depends_on_resolved_config():
    assert build_config({}).short_hash() == build_config({}).short_hash()
    assert build_config({}).short_hash() != build_config({"seed": 1}).short_hash()


def test_run_identity_is_the_non_default_values_without_output():
    cfg = build_config({"seed": 3, "train": {"lr": 0.1, "epochs": 10}, "output": {"root": "elsewhere"}})
    assert cfg.identity()["seed"] == 3 and cfg.identity()["train"] == {"epochs": 10}  # lr 0.1 is the default
    assert "output" not in cfg.identity()
    moved = build_config({"seed": 3, "train": {"lr": 0.1, "epochs": 10}})
    assert moved.short_hash() == cfg.short_hash()


def test_a_new_key_with_a_default_renames_no_run():
    """A key added later (top level or in a section) leaves every existing run's name as it was."""
    from pydantic import create_model

    from wmprune.catalog import REGISTRIES, RUN_SCHEMA
    from wmprune.pruning.methods import PRUNE_SCHEMA

    cfg = load_config(ROOT / "configs" / "quickstart.yaml")
    NewPrune = create_model("NewPrune", __base__=PRUNE_SCHEMA, new_knob=(float, 0.5))
    NewRun = create_model("NewRun", __base__=RUN_SCHEMA, new_section_key=(int, 7), prune=(NewPrune, {}))
    grown = NewRun.model_validate(cfg.model_dump(mode="json"), context=REGISTRIES)
    assert grown.prune.new_knob == 0.5 and grown.new_section_key == 7
    assert grown.short_hash() == cfg.short_hash()
    changed = NewRun.model_validate({**cfg.model_dump(mode="json"), "new_section_key": 8}, context=REGISTRIES)
    assert changed.short_hash() != cfg.short_hash()


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_and_grid_validates(path, tmp_path):
    """A typo in a committed config or grid (say a study's) fails here, not hours into a sweep."""
    from wmprune.commands.grid import load_grid

    if path.parent.name == "grids":
        grid = load_grid(path, tmp_path / "runs")
        assert grid.points and all(point.config.model.name for point in grid.points)
    else:
        assert load_config(path).name
