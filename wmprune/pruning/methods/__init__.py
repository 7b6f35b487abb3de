"""Pruning methods by name, and the registries assembled from them: the one place that knows every method.
Adding one: a file in this folder and an entry in `METHODS` (docs/adding-a-method.md).

Each class names its `default_allocation`, used when `prune.allocation` is left out, and may bring
allocations and scorers of its own (`PruningMethod.allocations`, `.scorers`), merged here with the shared
ones.
"""

from wmprune.config import prune_schema
from wmprune.pruning.allocation import SHARED_ALLOCATIONS
from wmprune.pruning.budget import Allocation
from wmprune.pruning.methods.base import PruningMethod
from wmprune.pruning.methods.gmp import GradualMagnitude
from wmprune.pruning.methods.gradual import GradualPruning
from wmprune.pruning.methods.imp import IterativeMagnitude
from wmprune.pruning.methods.magnitude import OneShotMagnitude
from wmprune.pruning.methods.random_mask import RandomPruning
from wmprune.pruning.methods.rigl import RigL
from wmprune.pruning.methods.snip import Snip
from wmprune.pruning.methods.sparse_momentum import SparseMomentum
from wmprune.pruning.methods.synflow import SynFlow
from wmprune.pruning.methods.weightmom import WeightMom
from wmprune.pruning.schedules import SCHEDULES
from wmprune.pruning.scores import Score

METHODS: dict[str, type[PruningMethod]] = {
    "none": PruningMethod,
    "weightmom": WeightMom,
    "gmp": GradualMagnitude,
    "magnitude": OneShotMagnitude,
    "imp": IterativeMagnitude,
    "sparse_momentum": SparseMomentum,
    "rigl": RigL,
    "random": RandomPruning,
    "snip": Snip,
    "synflow": SynFlow,
}

ALLOCATIONS: dict[str, Allocation] = {**SHARED_ALLOCATIONS, **{
    name: allocation for method in METHODS.values() for name, allocation in method.allocations.items()}}
SCORERS: dict[str, type[Score]] = {name: score for method in METHODS.values() for name, score in method.scorers.items()}

# The prune section: the keys every run has, each method's section under its name, and the top-level keys its
# class or a base class brings (`knobs`, in the order of METHODS, each once).
PRUNE_SCHEMA = prune_schema(
    {name: method.section for name, method in METHODS.items() if "section" in vars(method) and method.section},
    list(dict.fromkeys(cls.knobs for method in METHODS.values() for cls in method.__mro__
                       if "knobs" in vars(cls) and cls.knobs)))

# What the prune section's names are checked against (wmprune.catalog adds models and datasets).
PRUNING_REGISTRIES = {
    "methods": METHODS, "allocations": ALLOCATIONS, "schedules": SCHEDULES, "scorers": SCORERS,
    "default_allocations": {name: method.default_allocation for name, method in METHODS.items()},
    "gradual_methods": {name for name, method in METHODS.items() if issubclass(method, GradualPruning)},
    "run_checks": {name: method.check_run for name, method in METHODS.items()},
}
