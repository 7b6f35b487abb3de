"""Pruning methods by name. Adding one: a file in this folder and an entry here.

Each class names its `default_allocation`, used when `prune.allocation` is left out.
"""

from wmprune.pruning.methods.gmp import GradualMagnitude
from wmprune.pruning.methods.base import PruningMethod
from wmprune.pruning.methods.imp import IterativeMagnitude
from wmprune.pruning.methods.magnitude import OneShotMagnitude
from wmprune.pruning.methods.random_mask import RandomPruning
from wmprune.pruning.methods.rigl import RigL
from wmprune.pruning.methods.snip import Snip
from wmprune.pruning.methods.sparse_momentum import SparseMomentum
from wmprune.pruning.methods.weightmom import WeightMom

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
}
