"""GMP: gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune", arXiv 1710.01878).

The same schedule and allocation machinery as WeightMom, with the current |w| as the score instead of
its moving average: the closest ablation of WeightMom's momentum (WeightMom with β = 0).
Zhu & Gupta give every layer the same sparsity, so its default allocation is `uniform`.
"""

from wmprune.pruning.methods.gradual import GradualPruning
from wmprune.pruning.scores import Score


class GradualMagnitude(GradualPruning):
    """Cubic-schedule pruning of the smallest current |w|."""

    score_class = Score
    default_allocation = "uniform"
