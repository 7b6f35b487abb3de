"""Convolution and linear layers computed as a CSR sparse × dense matrix product on the CPU.

The weight (Cout × Cin·kh·kw) is held in torch's CSR layout and multiplied with `torch.addmm`, which on an x86
CPU build runs Intel MKL's sparse BLAS (torch.sparse docs, "Sparse CSR Tensor"; `torch.__config__.show()` lists
MKL). A convolution first lays its input out as columns (im2col, Chellapilla et al. 2006, "High performance
convolutional neural networks for document processing"): one column per output pixel, the batch folded into
the columns, so one product computes the whole layer: (Cout × K) @ (K × B·Ho·Wo) with K = Cin·kh·kw.

Three im2col implementations are kept because each is fastest somewhere (docs/inference.md has the figures);
the plan measures them per layer and keeps the fastest:

- `unfold`: `F.unfold`, a dedicated loop; fastest for batch 1 on maps of 4×4 and smaller;
- `strided`: a zero-padded copy viewed with `as_strided` and copied once; fastest for batch 1 on larger maps;
- `shifts`: one strided copy per kernel tap into a zeroed buffer; fastest for batch > 1.

A 1×1 convolution without padding needs no im2col: its columns are the (strided) input itself.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

IM2COL = ("unfold", "strided", "shifts")


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           method: str) -> torch.Tensor:
    """The K × (B·Ho·Wo) column matrix of `x` (B × C × H × W, any strides), rows ordered (c, i, j) as a
    Conv2d weight flattens, columns ordered (b, ho, wo)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    b, c, h, w = x.shape
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    if method == "unfold":
        cols = F.unfold(x, kernel, padding=padding, stride=stride)  # B × K × L
        return cols[0] if b == 1 else cols.transpose(0, 1).reshape(c * kh * kw, b * ho * wo)
    if method == "strided":
        padded = F.pad(x, (pw, pw, ph, ph))
        s_b, s_c, s_h, s_w = padded.stride()
        view = padded.as_strided((c, kh, kw, b, ho, wo), (s_c, s_h, s_w, s_b, s_h * sh, s_w * sw))
        return view.reshape(c * kh * kw, b * ho * wo)
    if method == "shifts":
        cols = x.new_zeros(c, kh, kw, b, ho, wo)
        source = x.transpose(0, 1)
        for i in range(kh):
            rows = _valid(i, h, ho, sh, ph)
            for j in range(kw):
                columns = _valid(j, w, wo, sw, pw)
                cols[:, i, j, :, rows[0], columns[0]] = source[:, :, rows[1], columns[1]]
        return cols.view(c * kh * kw, b * ho * wo)
    raise ValueError(f"unknown im2col method {method!r}; one of {IM2COL}")


def _valid(tap: int, size: int, out: int, stride: int, padding: int) -> tuple[slice, slice]:
    """Output positions o whose input position o·stride + tap − padding lies inside [0, size), and those inputs."""
    first = max(0, -(-(padding - tap) // stride))
    last = min(out - 1, (size - 1 + padding - tap) // stride)
    if last < first:
        return slice(0, 0), slice(0, 0)
    start = first * stride + tap - padding
    return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)


def to_csr(weight: torch.Tensor) -> torch.Tensor:
    """`weight` (2-D) in CSR with int32 indices: MKL's sparse BLAS takes 32-bit indices, and int64 ones are
    converted on every call (about a fifth of a small product's time here)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": known, and the tests pin the results
        warnings.simplefilter("ignore", UserWarning)
        csr = weight.to_sparse_csr()
        return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape)


def is_pointwise(conv: nn.Conv2d) -> bool:
    """A 1×1 convolution without padding: its im2col is the input itself."""
    return conv.kernel_size == (1, 1) and conv.padding == (0, 0)


class SparseConv2d(nn.Module):
    """A Conv2d (groups 1, dilation 1) computed as CSR(W) @ im2col(x) + b; input and output are B × C × H × W.

    For batch > 1 the output is returned as a view in C × B × H × W memory: copying it back would cost as much
    as the layout change the next layer may do anyway.
    """

    def __init__(self, conv: nn.Conv2d, method: str) -> None:
        super().__init__()
        if conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError("SparseConv2d supports groups=1, dilation=1 only")
        if method not in IM2COL and not (method == "pointwise" and is_pointwise(conv)):
            raise ValueError(f"unknown im2col method {method!r} for {conv}")
        weight = conv.weight.detach()
        self.out_channels = weight.shape[0]
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.method = method
        # A plain attribute, not a buffer: state_dict round trips of CSR tensors are not what this module is for.
        self.weight = to_csr(weight.reshape(self.out_channels, -1))
        bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(self.out_channels)
        self.bias = bias.reshape(-1, 1)

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "pointwise":
            x = x[:, :, ::self.stride[0], ::self.stride[1]]
            return x.transpose(0, 1).reshape(x.shape[1], -1)
        return im2col(x, self.kernel_size, self.stride, self.padding, self.method)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ho = _out_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        wo = _out_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        out = torch.addmm(self.bias, self.weight, self.columns(x))
        return out.view(self.out_channels, b, ho, wo).transpose(0, 1)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, nnz={self.weight.values().numel()}, im2col={self.method}"


class SparseLinear(nn.Module):
    """A Linear layer computed as (CSR(W) @ xᵀ + b)ᵀ."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        self.weight = to_csr(weight)
        bias = linear.bias.detach() if linear.bias is not None else weight.new_zeros(weight.shape[0])
        self.bias = bias.reshape(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, self.weight, x.t()).t()

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, nnz={self.weight.values().numel()}"
