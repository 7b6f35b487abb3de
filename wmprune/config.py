"""Typed run configuration: the single place where user input is validated.

A run is described by one YAML file (keys in the README's config table) plus repeatable `--set a.b=value`
overrides. Every problem becomes a `UserError` whose one line names the key and what is allowed.

This module is the schema of what every run has and sits below everything it describes: names of models,
datasets, methods, allocations and schedules are checked against the registries that `wmprune.catalog` passes
in as the validation context (and the default allocation of a method comes from there too), so the
registries' modules may import this one without closing a circle. It names no pruning method: each method's
own keys are declared in its file (`Knobs`, `MethodSection`) and joined to `PruneConfig` by the methods
registry (`prune_schema`), the way open_lth gives each pruning strategy its own hparams.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic_core import to_jsonable_python
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, create_model,
                      field_validator, model_validator)

from wmprune.errors import UserError


class _Strict(BaseModel):
    """Unknown keys and type coercions are errors, not silent surprises; so is an infinite or NaN number (an
    infinite learning rate would be accepted here and diverge an epoch later)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# Characters a run name cannot hold: it names a directory inside output.root, and a separator, NUL or control
# character would put it elsewhere or garble a terminal.
UNSAFE_NAME_CHARACTERS = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_SHOWN = 80  # characters of a user's value echoed in an error line


def safe_name(text: str) -> str:
    """`text` with every character a run name cannot hold replaced by `_` (grids name their runs this way)."""
    return UNSAFE_NAME_CHARACTERS.sub("_", text)


def shown(value: Any) -> str:
    """`repr(value)`, cut to MAX_SHOWN characters: an error line stays one short line whatever the input."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN - 15]}… ({len(text):,} characters)"


def plain(text: str) -> str:
    """`text` itself where it is short and printable, else `shown(text)`."""
    return text if text.isprintable() and len(text) <= MAX_SHOWN else shown(text)


def _run_name(value: str) -> str:
    if value in ("", ".", "..") or UNSAFE_NAME_CHARACTERS.search(value):
        raise ValueError("names the run's directory inside output.root: it cannot be empty, '.' or '..', nor hold "
                         "a path separator or a control character")
    return value


def registry(info: ValidationInfo, key: str):
    """The registry `key` from the validation context (`wmprune.catalog` supplies it)."""
    context = info.context or {}
    if key not in context:
        raise ValueError(f"no '{key}' registry to check against; validate through wmprune.catalog.build_config")
    return context[key]


def registered(what: str, key: str):
    """A string that must name an entry of the registry `key` of the validation context."""

    def check(value: str, info: ValidationInfo) -> str:
        names = registry(info, key)
        if value not in names:
            raise ValueError(f"unknown {what} {shown(value)}; choose one of: {', '.join(sorted(names))}")
        return value

    return Annotated[str, AfterValidator(check)]


def _path(value: Path) -> Path:
    if "\x00" in str(value):
        raise ValueError("a path cannot hold a NUL character")
    return value


FolderPath = Annotated[Path, AfterValidator(_path)]
ModelName = registered("model", "models")
DatasetName = registered("dataset", "datasets")
ScheduleName = registered("schedule", "schedules")
MethodName = registered("method", "methods")
AllocationName = registered("allocation", "allocations")


class ModelConfig(_Strict):
    name: ModelName = "vgg16"
    width: float = Field(1.0, gt=0, le=8)


class DataConfig(_Strict):
    name: DatasetName = "cifar10"
    root: FolderPath = Path("data")
    batch_size: int = Field(128, gt=0)
    augment: bool = True
    download: bool = False
    val_size: int | None = Field(None, ge=0, description="training images held out for validation; "
                                                          "left out: the dataset's default; 0: none")


class TrainConfig(_Strict):
    epochs: int = Field(160, gt=0)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5.0e-4, ge=0)
    lr_schedule: Literal["cosine", "multistep", "constant"] = "cosine"
    milestones: list[float] = Field(default=[0.5, 0.75], description="multistep: fractions of train.epochs")
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_epochs: int = Field(0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    amp: Literal["auto", "bf16", "off"] = "auto"
    compile: bool = False
    sync_bn: bool = Field(False, description="under torchrun on GPUs: BatchNorm statistics over the global batch")

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < m < 1 for m in v) or v != sorted(v):
            raise ValueError("must be increasing fractions of train.epochs inside (0, 1), e.g. [0.5, 0.75]")
        return v


class ScheduleConfig(_Strict):
    """When the target sparsity rises. Epochs left out scale with train.epochs (see RunConfig)."""

    kind: ScheduleName = "cubic"
    start_epoch: int | None = Field(None, ge=0)
    end_epoch: int | None = Field(None, ge=0)
    every_steps: int = Field(100, gt=0)


class Knobs(_Strict):
    """Keys a method adds at the top level of the prune section (a mixin of `PruneConfig`, with its validators)."""


class MethodSection(_Strict):
    """A method's own section, `prune.<method>:`. Every run carries every section (defaults where left out);
    `for_epochs` fills and checks what scales with the run, `in_use` telling whether the run uses the method."""

    def for_epochs(self, epochs: int, in_use: bool) -> Self:
        return self


class PruneConfig(_Strict):
    """The prune section's keys every run has; `prune_schema` adds each method's own."""

    method: MethodName = "weightmom"
    target_sparsity: float = Field(0.9, ge=0, lt=1)
    schedule: ScheduleConfig = ScheduleConfig()
    allocation: AllocationName = Field(None, description="left out: the method's own default")
    min_layer_density: float = Field(0.1, ge=0, le=1, description="every layer keeps at least this fraction "
                                     "of the network's density 1 − target_sparsity (and one weight)")
    prunable: list[Literal["conv", "linear"]] = ["conv", "linear"]
    dense_first_layer: bool = False
    dense_last_layer: bool = False

    @model_validator(mode="before")
    @classmethod
    def _method_allocation(cls, data: Any, info: ValidationInfo) -> Any:
        """A left-out allocation becomes the method's own (weightmom → weightmom, gmp → uniform, …).

        Before the fields are checked, so the filled-in name is checked like a written one."""
        if isinstance(data, dict) and data.get("allocation") is None:
            method = data.get("method", cls.model_fields["method"].default)
            default = registry(info, "default_allocations").get(method) if isinstance(method, str) else None
            if default is not None:  # an unknown or mistyped method is reported by its own field check
                data = {**data, "allocation": default}
        return data

    def for_epochs(self, epochs: int) -> PruneConfig:
        """This config with what scales with the run filled in for `epochs` epochs: the schedule window
        (default start at 5 %, end at 70 % of the epochs) and every method section's own (`MethodSection.
        for_epochs`), which also checks the epoch-valued knobs of the method in use. Raises ValueError naming
        the key."""
        schedule = self.schedule
        start = schedule.start_epoch if schedule.start_epoch is not None else round(0.05 * epochs)
        end = schedule.end_epoch if schedule.end_epoch is not None else max(start + 1, round(0.7 * epochs))
        if end > epochs:
            raise ValueError(f"prune.schedule.end_epoch ({end}) is after the last epoch ({epochs}); lower it")
        if end < start:
            raise ValueError(f"prune.schedule.end_epoch ({end}) is before start_epoch ({start}); swap or fix them")
        update = {name: resolved for name, section in self
                  if isinstance(section, MethodSection)
                  and (resolved := section.for_epochs(epochs, in_use=self.method == name)) != section}
        if (start, end) != (schedule.start_epoch, schedule.end_epoch):
            update["schedule"] = schedule.model_copy(update={"start_epoch": start, "end_epoch": end})
        return self.model_copy(update=update) if update else self

    @field_validator("prunable")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one of: conv, linear")
        return v


class OutputConfig(_Strict):
    root: FolderPath = Path("results/runs")
    tensorboard: bool = True  # event files in the run directory (needs the `tensorboard` extra)


class RunConfig(_Strict):
    name: Annotated[str, AfterValidator(_run_name)] = "run"
    variant: str | None = Field(None, description="the run's row label in reports (a grid's variant name); "
                                                  "left out: method and allocation")
    seed: int = Field(0, ge=0, lt=2**32)  # numpy's seed range
    device: str = "auto"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    # Built from {} at validation time, so the method's default allocation comes from the context.
    prune: PruneConfig = Field(default_factory=dict, validate_default=True)
    output: OutputConfig = OutputConfig()

    @field_validator("device")
    @classmethod
    def _device_syntax(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("must be auto, cpu, cuda or cuda:N")

    @model_validator(mode="after")
    def _dataset_val_size(self, info: ValidationInfo) -> RunConfig:
        """A left-out data.val_size becomes the dataset's default, written resolved into config.yaml."""
        if self.data.val_size is None:
            default = registry(info, "val_sizes")[self.data.name]
            self.data = self.data.model_copy(update={"val_size": default})
        return self

    @model_validator(mode="after")
    def _fit_epochs(self, info: ValidationInfo) -> RunConfig:
        """Knobs that scale with train.epochs (schedule window, method sections), then the method's own check
        of the rest of the run (the `run_checks` registry: e.g. a method that needs SGD momentum)."""
        if info.context is None:  # re-run by the assignment below (validate_assignment), after the checks
            return self
        registry(info, "run_checks")[self.prune.method](self.prune, self.train)
        resolved = self.prune.for_epochs(self.train.epochs)
        if resolved != self.prune:
            self.prune = resolved
        return self

    def identity(self) -> dict:
        """The values that make this run what it is: those that differ from the defaults, without `output.*`
        (where a run is written is not what it is). A key added later with a default leaves it unchanged,
        so no committed run is renamed by it (open_lth names its runs the same way)."""
        values = self.model_dump(mode="json", exclude={"output"})
        return _differences(values, _defaults(type(self)))

    def short_hash(self) -> str:
        """Eight hex digits of `identity()` (names run directories)."""
        text = yaml.safe_dump(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def prune_schema(sections: dict[str, type[MethodSection]], knobs: list[type[Knobs]]) -> type[PruneConfig]:
    """The full prune section: the keys every run has, each method's section under its name and the
    top-level keys its `Knobs` add (with their validators)."""
    fields = {name: (section, section()) for name, section in sections.items()}
    return create_model("PruneConfig", __base__=(*knobs, PruneConfig), **fields)


def run_schema(prune: type[PruneConfig]) -> type[RunConfig]:
    """RunConfig with the full prune section (`prune_schema`)."""
    return create_model("RunConfig", __base__=RunConfig,
                        prune=(prune, Field(default_factory=dict, validate_default=True)))


def _defaults(schema: type[BaseModel]) -> dict:
    """The JSON form of every field's default, sections as nested dicts, nothing validated or resolved."""
    out = {}
    for name, field in schema.model_fields.items():
        section = field.annotation if isinstance(field.annotation, type) else None
        if section is not None and issubclass(section, BaseModel):
            out[name] = _defaults(section)
        else:
            out[name] = to_jsonable_python(field.get_default(call_default_factory=True))
    return out


def _differences(values: dict, defaults: dict) -> dict:
    """The entries of `values` that differ from `defaults`, recursing into sections."""
    out = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            nested = _differences(value, default)
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out


def _format_error(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if not key.isprintable() or len(key) > MAX_SHOWN:
        key = shown(key)[1:-1]
    message = first["msg"].removeprefix("Value error, ")
    if not key:
        return f"config error: {message}"
    if first["type"] == "extra_forbidden":
        return f"unknown config key '{key}'; check the spelling against the README's config table"
    got = first.get("input")
    shown_value = "" if isinstance(got, dict) or got is None else f" (got {shown(got)})"
    return f"config key '{key}': {message}{shown_value}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (['a', 'b'], YAML-typed value)."""
    if "=" not in text:
        raise UserError(f"--set {shown(text)} needs the form key=value, e.g. --set prune.target_sparsity=0.95")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise UserError(f"--set {shown(text)} has an empty key; use the form key=value")
    try:
        value = load_yaml_text(raw, f"--set {shown(text)}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def set_dotted(raw: dict, path: list[str], value: Any, source: str) -> None:
    """Set `a.b.c` in a nested dict; unknown keys are caught later by validation. `source` names the
    user's input in the error (`--set 'a.b=1'`, `grid axis 'a.b'`)."""
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise UserError(f"{source}: {shown(part)} is a value, not a section")
        node = child
    node[path[-1]] = value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `--set a.b=value` overrides to a nested dict."""
    for text in overrides:
        path, value = parse_override(text)
        set_dotted(raw, path, value, f"--set '{text}'")
    return raw


MAX_YAML_BYTES = 1_000_000  # a config or grid file is a few kilobytes
MAX_YAML_VALUES = 100_000  # scalars, lists and mappings after aliases are expanded


def load_yaml_text(text: str, source: str) -> Any:
    """YAML through the safe loader, refusing documents whose aliases expand past MAX_YAML_VALUES values: a few
    hundred bytes of nested aliases (a "billion laughs") would otherwise take gigabytes. Raises yaml.YAMLError
    for bad syntax and UserError for a document too large or too deep."""
    if len(text) > MAX_YAML_BYTES:
        raise UserError(f"{source} is {len(text):,} characters, more than a config holds ({MAX_YAML_BYTES:,}); "
                        "pass the right file")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_values(node) > MAX_YAML_VALUES:
            raise UserError(f"{source} expands (through YAML aliases) to more than {MAX_YAML_VALUES:,} values; "
                            "write the values out or remove the aliases")
        return loader.construct_document(node)
    except RecursionError:
        raise UserError(f"{source} nests lists or mappings too deeply; flatten it") from None
    finally:
        loader.dispose()


def _expanded_values(root: yaml.Node) -> int:
    """How many values the document under `root` holds once every alias is copied out (an alias that
    contains itself counts as too many). Shared nodes are counted once per use, each node visited once."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(child)] for child in children), MAX_YAML_VALUES + 1)
            continue
        if id(node) in open_nodes:
            return MAX_YAML_VALUES + 1  # an alias to a node that contains it
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return MAX_YAML_VALUES + 1
            stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def read_yaml(path: Path) -> dict:
    """Load a YAML mapping, turning every way it can fail into a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}; pass an existing YAML file, e.g. configs/quickstart.yaml")
    try:
        data = load_yaml_text(path.read_text(), str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"YAML syntax error in {path}{where}: {problem}; fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of config keys at the top level")
    return data


def validate(schema: type[BaseModel], raw: dict, registries: dict) -> BaseModel:
    """`raw` checked against `schema`, names against `registries`; any problem is a one-line UserError."""
    try:
        return schema.model_validate(raw, context=registries)
    except ValidationError as err:
        raise UserError(_format_error(err)) from None


def dump_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
