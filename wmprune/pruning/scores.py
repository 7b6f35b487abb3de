"""Per-weight scores that more than one method uses (WeightMom's moving average of |w| lives with WeightMom
in `methods/weightmom.py`).

- `Score`: the current |w|, and the interface every score follows (GMP, one-shot magnitude, IMP, SNIP's base).

- `RandomScore`: uniform noise, the lowest values go. The `random` baseline (Lee et al. 2019, arXiv
  1810.02340; Frankle et al. 2021, arXiv 2009.08576), the random start of sparse_momentum and rigl, and the
  layer-wise shuffle control (`prune.shuffle`, Frankle et al. 2021).
- `SGDMomentumScore`: |SGD momentum buffer|, the exponential average of the gradient that the optimizer
  keeps (Dettmers & Zettlemoyer 2019, arXiv 1907.04840): sparse_momentum's redistribution and regrowth,
  and WeightMom's `prune.score: sgd_momentum` reading of "momentum".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from wmprune.errors import UserError
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.context import TrainingContext

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class Score:
    """Per-weight importance kept alongside the masks; lower means pruned first. Stateless: current |w|."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        self.masks = masks

    def update(self) -> None:
        """Called after every optimizer step."""

    def masks_changed(self) -> None:
        """Called after a pruning event has changed the masks (and re-applied them)."""

    def scores(self) -> list[torch.Tensor]:
        return [w.detach().abs() for w in self.masks.weights]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class RandomScore(Score):
    """Fresh uniform noise per weight each time it is asked, from a generator of its own (state in
    `state_dict`), seeded once from the global torch RNG (seeded by the run's `seed`) at construction.

    Its own, because the global RNG also drives dropout, which torchrun processes draw apart after the
    shared initialisation (runtime/run.py): masks drawn during training must still agree everywhere.
    """

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        super().__init__(masks, cfg, context)
        device = masks.weights[0].device if len(masks) else torch.device("cpu")
        self.generator = torch.Generator(device).manual_seed(int(torch.randint(2**62, ())))

    def scores(self) -> list[torch.Tensor]:
        return [torch.rand(w.shape, device=w.device, generator=self.generator) for w in self.masks.weights]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if "generator" in state:  # checkpoints written before the generator was its own lack it
            self.generator.set_state(state["generator"].cpu())


class SGDMomentumScore(Score):
    """|momentum buffer| of the optimizer for every prunable weight; needs SGD with momentum > 0."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        super().__init__(masks, cfg, context)
        self.optimizer = context.optimizer
        weights = {id(w) for w in masks.weights}
        # Without momentum torch's SGD keeps no buffer: the score would not exist.
        if any(group.get("momentum", 0) == 0 for group in self.optimizer.param_groups
               if any(id(p) in weights for p in group["params"])):
            raise UserError("the SGD momentum score (score: sgd_momentum) ranks by the optimizer's momentum buffer: "
                            "build the optimizer with momentum > 0, or choose another score")

    def scores(self) -> list[torch.Tensor]:
        state = self.optimizer.state
        if any("momentum_buffer" not in state[w] for w in self.masks.weights):
            raise UserError("the SGD momentum score has no momentum buffer before the first optimizer step; "
                            "start pruning later (prune.schedule.start_epoch)")
        return [state[w]["momentum_buffer"].abs() for w in self.masks.weights]
