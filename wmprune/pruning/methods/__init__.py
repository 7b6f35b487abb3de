"""Pruning methods by name. Adding one: a file in this folder and an entry here."""

from wmprune.pruning.methods.gradual import PruningMethod
from wmprune.pruning.methods.weightmom import WeightMom

METHODS: dict[str, type[PruningMethod]] = {
    "none": PruningMethod,
    "weightmom": WeightMom,
}
