"""A linear layer with its GELU or residual sum fused in, through oneDNN where it pays.

SAM's ViT blocks and BEiT-3's multiway blocks spend most of their time in linear layers. On
CPU, oneDNN's linear (torch's ``mkldnn._linear_pointwise``, what ``torch.compile`` emits for
it) applies a GELU or adds a residual in the same pass over memory; on this AVX-512 EPYC it
ran a (4096 x 768) @ (768 x 3072) fp32 product in 120 ms against 227 ms for ``F.linear``
(MKL), max |diff| 4e-6, and the BEiT-3 encoder ~7% faster on AMD Zen. The op has no autograd
formula, so training (and autocast, which it would ignore) takes ``F.linear``.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def fused_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                 gelu: Optional[str] = None, residual: Optional[Tensor] = None) -> Tensor:
    """``F.linear(x, weight, bias)`` (..., K) -> (..., M), then ``F.gelu(approximate=gelu)``
    if ``gelu`` is given (``'none'``: the exact erf GELU, ``'tanh'``), plus ``residual``
    (..., M) if given (``gelu`` and ``residual`` are exclusive).

    CPU fp32 / bf16 inputs of the weight's dtype, outside autograd and autocast, go through
    oneDNN (the results differ from ``F.linear`` only by rounding: another summation order);
    anything else through ``F.linear``, the GELU computed in fp32 at least.
    """
    if gelu is not None and residual is not None:
        raise ValueError('fused_linear fuses a GELU or a residual sum, not both')
    if _onednn_applies(x, weight, bias, residual):
        rows = x.reshape(-1, x.shape[-1])  # oneDNN's linear takes a (rows, K) matrix
        out_shape = (*x.shape[:-1], weight.shape[0])
        if residual is not None and tuple(residual.shape) == out_shape:
            out = torch.ops.mkldnn._linear_pointwise.binary(
                rows, residual.reshape(-1, out_shape[-1]).contiguous(), weight, bias, 'add')
            return out.view(out_shape)
        out = torch.ops.mkldnn._linear_pointwise(rows, weight, bias,
                                                 'none' if gelu is None else 'gelu', [],
                                                 '' if gelu is None else gelu).view(out_shape)
        return out if residual is None else out + residual
    out = F.linear(x, weight, bias)
    if gelu is not None:  # in fp32 at least, as BEiT-3's reference (bf16 / fp16 upcast)
        wide = out.to(torch.promote_types(out.dtype, torch.float32))
        out = F.gelu(wide, approximate=gelu).type_as(out)
    return out if residual is None else out + residual


def _onednn_applies(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                    residual: Optional[Tensor]) -> bool:
    """Whether :func:`fused_linear` may take oneDNN for these tensors."""
    if not (ONEDNN_LINEAR and x.device.type == 'cpu' and x.dtype == weight.dtype
            and x.dtype in ONEDNN_DTYPES and not torch.is_autocast_enabled('cpu')):
        return False
    if residual is not None and residual.dtype != x.dtype:
        return False
    return not (torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, weight, bias, residual)))


def _has_onednn_linear() -> bool:
    """Whether this torch build has oneDNN's linear (both variants) and it computes a linear;
    checked once, at import, without touching the random state."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        x = torch.arange(6.0).reshape(2, 3)
        weight, bias = torch.arange(12.0).reshape(4, 3), torch.arange(4.0)
        with torch.no_grad():
            out = torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'none', [], '')
            summed = torch.ops.mkldnn._linear_pointwise.binary(x, out, weight, bias, 'add')
        expected = F.linear(x, weight, bias)
        return bool(torch.allclose(out, expected) and torch.allclose(summed, 2 * expected))
    except (AttributeError, RuntimeError):
        return False


#: whether :func:`fused_linear` can use oneDNN in this process
ONEDNN_LINEAR = _has_onednn_linear()
#: the dtypes it takes there: oneDNN's bf16 linear needs AVX-512 (BF16) or AMX, and on an
#: AVX2-only CPU it cannot even be created ("could not create a primitive descriptor")
ONEDNN_DTYPES = (torch.float32, ) + (
    (torch.bfloat16, ) if ONEDNN_LINEAR and torch.ops.mkldnn._is_mkldnn_bf16_supported() else ())
