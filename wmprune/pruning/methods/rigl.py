"""RigL (Evci, Gale, Menick, Castro & Elsen 2020, "Rigging the Lottery: Making All Tickets Winners",
arXiv 1911.11134): sparse training that moves connections, dropping by |w| and growing by |gradient|.

Sparse from the first step: a random mask at the target sparsity (as `random`; per-layer counts from the
allocation, default `erk` as in the paper; layer floors as everywhere). Then at every optimizer step t
that is a multiple of ΔT (`prune.rigl.update_every`, 100) and comes before T_end = `end_fraction` (0.75)
of the run's steps, in every layer, with f(t) = α/2 · (1 + cos(π t / T_end)) (`alpha`, 0.3):

1. drop the k active weights with the smallest |w|, k = min(⌊f(t) · active⌋, g) where g counts the
   layer's positions that are inactive before the update and have a non-zero dense gradient;
2. grow k positions, among those inactive after the drop, with the largest |dense gradient|. As in the
   paper's Algorithm 1 a weight just dropped may be grown again; it then keeps its value and optimizer
   state (the authors' code does the same: only positions inactive before the update are new);
3. new connections start at 0 (they were masked, so they are) and so do their optimizer state entries
   (SGD's momentum buffer), which otherwise hold the gradients the pruned position kept accumulating.

The cap on k is ours. Algorithm 1 grows the top k by |gradient| whatever it is, and so does the authors'
TensorFlow code (google-research/rigl, `SparseRigLOptimizer` in rigl/sparse_optimizers.py: the top
⌊f(t) · active⌋ of |gradient| among the positions off after the drop). Where fewer positions than that
have a non-zero gradient (the rows and columns of dead ReLU units have an exactly-zero gradient), the rest
would be grown at gradient 0: they start at 0 and, while their gradient stays 0 (a dead unit's does), stay
exactly 0, so the network ends up sparser than the target, which is measured by counting non-zero
weights. With the cap every grown position has a non-zero gradient (the g positions stay inactive through
the drop and outrank every zero), and such a layer moves fewer than ⌊f(t) · active⌋ weights. Positions
dropped in the same update could be grown too, but which they are depends on k; leaving them out of g
keeps the bound simple and only ever moves fewer weights.

Short runs. The default ΔT of 100 leaves no update before T_end in a run of fewer than 135 optimizer
steps (at end_fraction 0.75), where RigL would be static sparse training from a random mask. There, and
only there, ΔT becomes ⌊(T_end − 1) / 4⌋ (at least 1): the largest interval that leaves 4 updates before
T_end (a 1-epoch run of 100 steps: T_end 75, ΔT 18, updates at steps 18, 36, 54 and 72). The rule is ours;
the paper trains for tens of thousands of steps. Longer runs keep ΔT = 100. A value other than the default
is taken as given, and one that leaves no update is refused; `update_every: 100` written out counts as the
default, since a run's config.yaml writes every value and sweeps and resumes train from it.

Each layer keeps its number of active weights (no redistribution across layers), so the density and the
layer floors hold throughout. A layer without inactive positions (kept dense, or dense under ERK) has
nowhere to grow and is left alone. The schedule is a function of the step count, so RigL keeps no state
beyond the masks and the Pruner's step.

The dense gradient. Masks multiply the weights after every optimizer step, never the gradients, so after
backward() the `.grad` of a pruned position is ∂L/∂w at w = 0 there: the dense gradient. `Pruner.step()`
runs after `optimizer.step()` and before the next `zero_grad()`, so `.grad` still holds this step's
gradient. One step of difference: the paper grows by the gradient at the weights of the update step (the
authors' TensorFlow code updates the mask in place of the optimizer step on those iterations); ours is the
gradient that produced this step's update, taken on the same batch at the weights before it. Under
torchrun DDP has all-reduced the gradients in backward(), so every process sees the same gradients and
weights and takes the same decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import Field

from wmprune.config import MethodSection
from wmprune.errors import UserError
from wmprune.pruning.budget import Allocation
from wmprune.pruning.context import MaskChange, TrainingContext
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.random_mask import RandomPruning
from wmprune.pruning.schedules import cosine_decay

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


UPDATES_IN_A_SHORT_RUN = 4


class RigLSection(MethodSection):
    """`prune.rigl:` drop by |w| and grow by |gradient| every `update_every` optimizer steps, with the fraction
    alpha decayed along a cosine to 0 at `end_fraction` of the run's steps (Evci et al. 2020's defaults)."""

    update_every: int = Field(100, gt=0, description="optimizer steps between mask updates (ΔT)")
    end_fraction: float = Field(0.75, gt=0, le=1, description="fraction of the steps after which masks stay fixed")
    alpha: float = Field(0.3, gt=0, lt=1, description="fraction of each layer's active weights moved at step 0 "
                                                      "of the cosine")


class RigL(RandomPruning):
    """Random sparse start (as `random`), then drop by |w| and grow by |gradient| every ΔT steps."""

    default_allocation = "erk"
    section = RigLSection

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        super().__init__(masks, cfg, allocate, context)
        knobs = cfg.rigl
        self.end_step = round(knobs.end_fraction * context.epochs * context.steps_per_epoch)  # T_end
        self.update_every = update_interval(knobs, self.end_step)  # ΔT
        # Without an update RigL would silently be static sparse training from a random mask.
        if self.update_every >= self.end_step:
            fix = (f"lower update_every to at most {self.end_step - 1} or raise end_fraction" if self.end_step > 1
                   else "raise end_fraction or train for more steps")
            raise UserError(f"prune.rigl.update_every ({knobs.update_every}) leaves no mask update before step "
                            f"{self.end_step} (prune.rigl.end_fraction={knobs.end_fraction} of the run's "
                            f"optimizer steps); {fix}")

    def is_update(self, step: int) -> bool:
        """Mask updates: every ΔT optimizer steps, before T_end."""
        return step % self.update_every == 0 and step < self.end_step

    def update_fraction(self, step: int) -> float:
        """f(t) = α/2 · (1 + cos(π t / T_end)): the fraction of each layer's active weights moved at step t."""
        return cosine_decay(self.cfg.rigl.alpha, step, self.end_step)

    def on_step(self, step: int) -> None:
        super().on_step(step)  # masks applied: every inactive weight is 0 before it may be grown
        if self.is_update(step):
            self.update_masks(self.update_fraction(step))

    @torch.no_grad()
    def update_masks(self, fraction: float) -> None:
        """Drop k = min(⌊fraction · active⌋, inactive positions with a non-zero gradient) weights of each layer
        by |w|, grow as many by |gradient|."""
        masks = self.masks
        gradients = [_gradient(weight).abs() for weight in masks.weights]
        before = [mask != 0 for mask in masks.masks]
        # k is capped by the inactive positions with a non-zero gradient, so every grown weight moves and
        # the layer's non-zero count stays at its target (see the module docstring). One host transfer
        # for both counts.
        active, growable = torch.stack([
            torch.stack([torch.count_nonzero(old) for old in before]),
            torch.stack([torch.count_nonzero(gradient.masked_fill(old, 0))
                         for gradient, old in zip(gradients, before)]),
        ]).cpu()
        moved = torch.minimum((active.double() * fraction).floor().long(), growable).tolist()
        magnitudes = [weight.abs() for weight in masks.weights]
        masks.drop(magnitudes, moved)
        masks.grow(gradients, moved)
        masks.apply()
        self.context.on_mask_change(MaskChange(magnitudes, before))
        state = self.context.optimizer.state
        for weight, mask, old in zip(masks.weights, masks.masks, before):
            new = (mask != 0) & ~old
            for value in state.get(weight, {}).values():  # SGD's momentum buffer; any per-weight slot
                if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                    value.masked_fill_(new, 0)


def update_interval(knobs: RigLSection, end_step: int) -> int:
    """ΔT for a run whose T_end is `end_step`: `update_every`, unless it is the default and leaves no update
    before T_end; then the largest interval that leaves UPDATES_IN_A_SHORT_RUN updates (module docstring)."""
    default = type(knobs).model_fields["update_every"].default
    if knobs.update_every != default or knobs.update_every < end_step:
        return knobs.update_every
    return max(1, (end_step - 1) // UPDATES_IN_A_SHORT_RUN)


def _gradient(weight: torch.Tensor) -> torch.Tensor:
    """This step's dense gradient of a prunable weight (see the module docstring)."""
    if weight.grad is None:
        raise UserError("rigl grows by the gradient: call pruner.step() after optimizer.step() and before the "
                        "next zero_grad(), with every prunable layer in the loss")
    return weight.grad
