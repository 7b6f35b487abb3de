"""Everything wmprune offers by name — models, datasets, pruning methods, allocations, schedules — and the
validation of a run config against it.

`wmprune.config` is the schema and knows no registry; this module hands the registries to its validation,
so a new model, dataset or method needs only its registry entry.
"""

from __future__ import annotations

from pathlib import Path

from wmprune.config import RunConfig, apply_overrides, read_yaml, run_schema, validate
from wmprune.data import DATASETS, DEFAULT_VAL_SIZE
from wmprune.models import MODELS
from wmprune.pruning.methods import PRUNE_SCHEMA, PRUNING_REGISTRIES

REGISTRIES = {"models": MODELS, "datasets": DATASETS, "val_sizes": DEFAULT_VAL_SIZE, **PRUNING_REGISTRIES}
RUN_SCHEMA = run_schema(PRUNE_SCHEMA)  # RunConfig with every method's keys


def build_config(raw: dict) -> RunConfig:
    """A validated RunConfig from a nested dict; any problem is a one-line UserError naming the key."""
    return validate(RUN_SCHEMA, raw, REGISTRIES)


def load_config(path: Path, overrides: list[str] = ()) -> RunConfig:
    """Read YAML, apply `--set` overrides, validate."""
    return build_config(apply_overrides(read_yaml(path), list(overrides)))
