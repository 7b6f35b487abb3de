"""wmprune: gradual momentum-based weight pruning (WeightMom, arXiv 2208.05970) and its baselines.

The library face is `Pruner` (wmprune/pruning/pruner.py): build it from a model, an optimizer and a prune
config, call `step()` after every `optimizer.step()`. It is imported on first use, so `wmprune`'s command
line and file readers start without loading torch.
"""

__all__ = ["Pruner"]


def __getattr__(name: str):
    if name == "Pruner":
        from wmprune.pruning.pruner import Pruner

        return Pruner
    raise AttributeError(f"module 'wmprune' has no attribute {name!r}")
