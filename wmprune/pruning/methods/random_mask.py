"""Random pruning at initialization: a fixed random mask at the target sparsity.

The sanity baseline of Lee et al. 2019 (SNIP, arXiv 1810.02340) and Frankle et al. 2021 (arXiv
2009.08576): any method worth using must beat it. The per-layer counts come from the allocation (default
`uniform`; `erk` gives the stronger random baseline of Liu et al. 2022, arXiv 2202.02643); which weights go
within a layer is uniformly random (seeded by the run's `seed`).
"""

from wmprune.pruning.methods.base import PruneAtInit
from wmprune.pruning.scores import RandomScore


class RandomPruning(PruneAtInit):
    score_class = RandomScore
    default_allocation = "uniform"
