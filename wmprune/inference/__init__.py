"""Sparse CPU inference for a pruned network: BatchNorm folding, CSR kernels, and a measured per-layer plan.

Low-level package: besides torch it imports only errors and results, never a command or runtime module.
"""

from wmprune.inference.fold import fold_batchnorm
from wmprune.inference.kernels import SparseConv2d, SparseLinear
from wmprune.inference.plan import LayerPlan, Plan, build_module, choose_kernel, load_plan, make_plan, save_plan

__all__ = ["LayerPlan", "Plan", "SparseConv2d", "SparseLinear", "build_module", "choose_kernel", "fold_batchnorm",
           "load_plan", "make_plan", "save_plan"]
