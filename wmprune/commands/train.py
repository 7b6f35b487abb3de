"""`wmprune train`: the command's policy — which run directory, and whether to start fresh, resume or
overwrite it (refusing to touch a run otherwise); the training loop itself is `runtime.trainer.train`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from wmprune import results
from wmprune.catalog import build_config, load_config
from wmprune.config import RunConfig, read_yaml
from wmprune.errors import UserError
from wmprune.runtime.devices import close, init_world, leave, main_decides_or_raises
from wmprune.runtime.trainer import train


def train_command(config: Path, overrides: list[str], out: Path | None, resume: bool, overwrite: bool) -> None:
    """`wmprune train`: one run of the config at `config` with `--set` `overrides` into `out` (default
    `output.root/<name>-<hash>`), also under torchrun, where the processes train one run together (DDP) and
    rank 0 alone inspects and writes the directory. The processes join first, so a mistake found in the config
    ends all of them alike."""
    world = init_world()
    try:
        cfg = load_config(config, overrides)
        directory = out if out is not None else results.default_run_dir(cfg)
        if resume and overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one")
        if resume and (directory / results.SUMMARY).exists():
            if world.is_main:
                Console().print(f"{directory} is already finished; nothing to do", markup=False)
        else:
            continuing = main_decides_or_raises(world, lambda: prepare_run_dir(directory, cfg, resume, overwrite))
            train(cfg, directory, continuing, Console(record=True, quiet=not world.is_main), world)
    except UserError:
        leave(world)  # every process raised it (same config and files): none waits for another
        raise
    close(world)


def prepare_run_dir(directory: Path, cfg: RunConfig, resume: bool, overwrite: bool) -> bool:
    """Decide between a fresh start and a resume; refuse to touch an existing run otherwise.

    Returns True when training should resume from the directory's checkpoint. `overwrite` removes every
    file wmprune wrote there (run files, exported weights) and nothing else; a directory that holds files named
    like run files but no run (they are the user's) is refused, with or without it.
    """
    results.check_output_directory(directory, "--out")
    existing = results.written_files(directory)
    if not existing:
        return False
    if not results.holds_run(directory):
        raise UserError(f"{directory} holds {', '.join(p.name for p in existing)} but no wmprune run (no run's "
                        f"{results.CONFIG} or {results.STATE}); train into another --out")
    if overwrite:
        for path in existing:
            path.unlink()
        return False
    if not resume:
        raise UserError(f"{directory} already holds a run ({', '.join(p.name for p in existing)}); pass --resume "
                        "to continue it, --overwrite to replace it, or --out for another directory")
    saved = directory / results.CONFIG
    # The run's identity, not the text: keys added since (with defaults) and output.* change nothing it computes.
    if saved.exists() and build_config(read_yaml(saved)).identity() != cfg.identity():
        raise UserError(f"--resume: the config differs from {saved}; resume with the same config and --set "
                        "values, or train into a new --out")
    return (directory / results.CHECKPOINT).exists()
