"""Checkpoints: a run's whole state (weights, optimizer, LR schedule, pruner, position, metrics and every
random number generator) saved atomically each epoch, and loaded without executing code."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import torch

from torch import nn

from wmprune import results
from wmprune.config import RunConfig
from wmprune.data.splits import Splits
from wmprune.errors import UserError
from wmprune.models import build_model
from wmprune.runtime.loaders import Stats, load_splits
from wmprune.runtime.run import Run
from wmprune.weights import load_weights


def capture_rng() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
                  "cached": cached},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: Run) -> None:
    state = {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "pruner": run.pruner.state_dict(),
        "epoch": run.epoch, "step": run.step, "seconds": run.seconds, "rng": capture_rng(),
        # Kept with the weights, so a crash between the two writes never loses a metrics row.
        "metrics": run.metrics,
        # eval and bench normalise as training did without recomputing them from the training split.
        "normalisation": dict(zip(("mean", "std"), run.train_loader.stats)),
    }
    results.atomic_write(run.directory / results.CHECKPOINT, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Read a checkpoint without executing code (`weights_only`); a damaged file is a user error."""
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we refuse them below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}; train the run first") from None
    except Exception as exc:  # torch raises many types for damaged or hostile files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load checkpoint {path} ({reason[:160]}); "
                        "it is damaged or not a wmprune checkpoint — retrain or restore it") from None


# What `save_checkpoint` stores and a resume needs, with the type of each.
RESUME_KEYS = {"model": dict, "optimizer": dict, "scheduler": dict, "pruner": dict, "epoch": int, "step": int,
               "seconds": float, "rng": dict, "metrics": list}


def _damaged(path: Path, what: str) -> UserError:
    return UserError(f"checkpoint {path} {what}; it is damaged or not a wmprune checkpoint — retrain or restore it")


def model_state(checkpoint, path: Path) -> dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint, checked to be a mapping of names to tensors."""
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise _damaged(path, "holds no model weights")
    return state


def resumable(checkpoint, path: Path) -> dict:
    """A loaded checkpoint, checked to hold everything a resume restores."""
    model_state(checkpoint, path)
    wrong = [key for key, kind in RESUME_KEYS.items()
             if not isinstance(checkpoint.get(key), kind) or isinstance(checkpoint.get(key), bool)]
    if wrong:
        raise _damaged(path, f"lacks what a resume needs ({', '.join(wrong)})")
    return checkpoint


def restore(run: Run, state: dict) -> None:
    """Everything but the pruner (which `build_run` resumed from the same state) back as it was saved."""
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise _damaged(run.directory / results.CHECKPOINT,
                       f"does not fit this run ({type(exc).__name__}: {str(exc).strip()[:120]})".split("\n")[0]) \
            from None
    run.epoch, run.seconds, run.metrics = state["epoch"], state["seconds"], state["metrics"]
    if run.world.rank > 0:  # the checkpoint holds rank 0's RNG states; the others draw a dropout stream apart
        torch.manual_seed(run.cfg.seed + run.world.rank + run.world.size * run.epoch)


def load_trained(cfg: RunConfig, directory: Path, device: torch.device,
                 weights: Path | None = None) -> tuple[nn.Module, Splits, Stats | None]:
    """A finished run's network (from its checkpoint, or from an exported `weights` file), its data, and the
    normalisation its checkpoint stores (None for an exported file or an older checkpoint)."""
    splits = load_splits(cfg)
    model = build_model(cfg.model.name, splits.num_classes, cfg.model.width, splits.channels).to(device)
    stats = None
    if weights:
        state = load_weights(weights)
    else:
        checkpoint = load_checkpoint(directory / results.CHECKPOINT, device)
        state = model_state(checkpoint, directory / results.CHECKPOINT)
        normalisation = checkpoint.get("normalisation")
        if normalisation is not None:
            if not (isinstance(normalisation, dict)
                    and all(isinstance(normalisation.get(key), torch.Tensor) for key in ("mean", "std"))):
                raise _damaged(directory / results.CHECKPOINT, "holds a damaged normalisation")
            stats = (normalisation["mean"].cpu(), normalisation["std"].cpu())
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"the weights do not fit the run's {cfg.model.name} ({str(exc).splitlines()[0][:160]}); "
                        "pass the file exported from this run") from None
    return model, splits, stats
