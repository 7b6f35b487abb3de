"""BatchNorm folded into the convolution before it, for inference.

In eval mode BatchNorm is the affine map y = γ (x − μ) / √(σ² + ε) + β, so after a convolution it can be merged
into the convolution's weight and bias: W' = W · γ/√(σ² + ε) per output channel, b' = (b − μ) γ/√(σ² + ε) + β
(Jacob et al. 2018, "Quantization and training of neural networks for efficient integer-arithmetic-only
inference", arXiv 1712.05877, §3.2; the arithmetic is torch.nn.utils.fusion.fuse_conv_bn_eval). Scaling a row
keeps its zeros, so a pruned convolution stays exactly as sparse.
"""

from __future__ import annotations

import copy

import torch.fx as fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def replace_module(root: nn.Module, name: str, module: nn.Module) -> None:
    """Put `module` at the dotted submodule path `name` of `root`."""
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """An eval-mode copy of `model` (traced with torch.fx) in which every BatchNorm2d whose input is a Conv2d's
    output, used by nothing else, is folded into that convolution; the convolutions keep their module names."""
    traced = fx.symbolic_trace(copy.deepcopy(model).eval())
    modules = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        source = node.args[0]
        # A convolution whose output also feeds another node must keep its unnormalised output.
        if not (isinstance(source, fx.Node) and source.op == "call_module"
                and isinstance(modules[source.target], nn.Conv2d) and len(source.users) == 1):
            continue
        replace_module(traced, source.target, fuse_conv_bn_eval(modules[source.target], modules[node.target]))
        node.replace_all_uses_with(source)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()
    return traced.requires_grad_(False)
