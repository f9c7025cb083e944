"""One attention core for SAM's ViT blocks (``SAMImageEncoder``) and DIT's text injection.

SAM's attention adds a decomposed relative-position bias to the logits,
``bias[i, (kh, kw)] = q_i . Rh[qh - kh] + q_i . Rw[qw - kw]``, which ``segment_anything`` builds
as a separate (N, N) tensor per head after materialising the (N, N) scores. Here the two small
terms ``rel_h`` (N, h) and ``rel_w`` (N, w) are broadcast-added into the additive mask of a
block of queries at a time and the fused ``F.scaled_dot_product_attention`` (flash kernel on CPU)
does the rest: exact, and the bias held at once is bounded by ``max_bias_elements`` (a global
block at 1024² never holds a (heads, 4096, 4096) tensor; a windowed block is one SDPA call).

Why not the folded-channel form (``q' = [q * scale, q_rel]``, ``k' = [k, onehot]``): torch's CPU
flash kernel needs equal q / k / v widths, so v must be zero-padded to d + h + w too (else SDPA
falls back to its math path, which materialises the (N, N) scores); at a global block
(d = 64 -> 192) that measured slower than ``segment_anything`` itself (ViT-B global attention,
2 threads: 1.81 s folded, 1.66 s segment_anything, 0.80 s one SDPA call with the full bias,
0.50-0.60 s bias per query block, 0.33 s SDPA without any bias). In windows (d = 64 -> 92)
folding and the bias tie (53 vs 56 ms).

The linear layers dominate the windowed blocks: :func:`~mmevf.models.layers.fused_linear` runs
them through oneDNN (GELU fused into the MLP's first layer) where it is faster than
``F.linear``.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, Block, get_rel_pos
from torch import Tensor

from ..layers import fused_linear

# Largest additive bias (elements) built at once: 2**26 (256 MiB fp32) splits a global block at
# 1024² (ViT-B / H: 12 / 16 heads x 4096 x 4096) into 4 query blocks of 1024 rows, a quarter
# of one (heads, N, N) tensor; a windowed block of a 1024² image is one SDPA call. Smaller
# blocks measured slower: torch's CPU flash kernel tiles queries by 64 rather than 256 below
# 768 queries, streaming the keys / values 4x as often.
MAX_BIAS_ELEMENTS = 2**26


def split_heads(x: Tensor, num_heads: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(B, N, 3C) output of a ``qkv`` Linear -> q, k, v, each (B, heads, N, C / heads) (views)."""
    b, n, _ = x.shape
    return x.reshape(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)


def rel_pos_terms(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                  size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """SAM's two decomposed relative-position terms (``add_decomposed_rel_pos``'s ``rel_h`` and
    ``rel_w``), computed exactly as SAM does, without the (N, N) sum.

    Args:
        q: (B, heads, h*w, d) unscaled queries (SAM's bias uses unscaled q).
        rel_pos_h, rel_pos_w: the block's tables (2 h - 1, d), (2 w - 1, d); other lengths are
            interpolated by SAM's ``get_rel_pos``.
        size: the (h, w) query / key grid.

    Returns:
        rel_h (B, heads, h*w, h) and rel_w (B, heads, h*w, w): the bias of query i and key
        (kh, kw) is ``rel_h[i, kh] + rel_w[i, kw]``.
    """
    h, w = size
    rh = get_rel_pos(h, h, rel_pos_h).to(q.dtype)  # (h, h, d)
    rw = get_rel_pos(w, w, rel_pos_w).to(q.dtype)  # (w, w, d)
    b, heads, _, d = q.shape
    grid_q = q.reshape(b * heads, h, w, d)
    rel_h = torch.einsum('bhwc,hkc->bhwk', grid_q, rh).reshape(b, heads, h * w, h)
    rel_w = torch.einsum('bhwc,wkc->bhwk', grid_q, rw).reshape(b, heads, h * w, w)
    return rel_h, rel_w


def rel_pos_attention(q: Tensor,
                      k: Tensor,
                      v: Tensor,
                      scale: float,
                      rel_pos: Optional[Tuple[Tensor, Tensor]] = None,
                      size: Optional[Tuple[int, int]] = None,
                      extra_k: Optional[Tensor] = None,
                      extra_v: Optional[Tensor] = None,
                      extra_mask: Optional[Tensor] = None,
                      max_bias_elements: int = MAX_BIAS_ELEMENTS) -> Tensor:
    """SAM's attention ``softmax(scale q k^T + rel-pos bias) v`` over a grid, through SDPA.

    Extra keys / values (DIT's text) are appended after the grid keys with a zero rel-pos bias;
    ``extra_mask`` masks some of them out (the grid keys always attend).

    Args:
        q, k, v: (B, heads, h*w, d) grid queries, keys, values (strided views are fine).
        scale: logit scale of ``q k^T`` (SAM: d ** -0.5; the rel-pos bias is not scaled).
        rel_pos: the block's (rel_pos_h, rel_pos_w) tables, or ``None`` for no rel-pos.
        size: the (h, w) grid; needed with ``rel_pos``.
        extra_k, extra_v: (B, heads, l, d) extra keys / values, or ``None``.
        extra_mask: (B, 1, 1, l) bool, True = attend, or ``None`` (all attend).
        max_bias_elements: largest bias built at once; queries are processed in as few equal
            blocks as keep (B, heads, block, keys) below it.

    Returns:
        (B, heads, h*w, d) attention outputs (before the output projection).
    """
    if extra_k is not None:
        k, v = torch.cat([k, extra_k], dim=2), torch.cat([v, extra_v], dim=2)
    if rel_pos is None:
        mask = None if extra_mask is None else F.pad(extra_mask, (q.shape[2], 0), value=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    if size is None:
        raise ValueError('rel_pos needs the (h, w) grid size')
    b, heads, n, _ = q.shape
    num_keys = k.shape[2]
    rel_h, rel_w = rel_pos_terms(q, *rel_pos, size)
    rel_h, rel_w = rel_h.unsqueeze(-1), rel_w.unsqueeze(-2)  # (B, heads, N, h, 1), (.., 1, w)
    extra_bias = None
    if num_keys > n:  # zero bias on the extra keys, -inf where masked out
        extra_bias = q.new_zeros(b, 1, 1, num_keys - n)
        if extra_mask is not None:
            extra_bias.masked_fill_(~extra_mask, float('-inf'))
    per_row = b * heads * num_keys
    num_blocks = -(-n // max(1, max_bias_elements // per_row))
    rows = -(-n // num_blocks)  # equal blocks
    # (B, N, heads, d) memory like SDPA's own output, so that merging the heads is a view
    out = None if num_blocks == 1 else q.new_empty(b, n, heads, v.shape[-1]).transpose(1, 2)
    differentiable = torch.is_grad_enabled() and (rel_h.requires_grad or rel_w.requires_grad)
    # one buffer for all blocks: a fresh allocation per block costs as much as writing it
    # (the pages are faulted in again every time)
    buffer = None if differentiable else q.new_empty(b * heads * rows * num_keys)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        if buffer is None:  # out= is not differentiable
            bias = (rel_h[:, :, start:stop] + rel_w[:, :, start:stop]).flatten(-2)
            if extra_bias is not None:
                bias = torch.cat([bias, extra_bias.expand(b, heads, stop - start, -1)], dim=-1)
        else:  # the (block, h, w) sum written straight into the mask: one pass, no temporaries
            bias = buffer[:b * heads * (stop - start) * num_keys].view(
                b, heads, stop - start, num_keys)
            torch.add(rel_h[:, :, start:stop], rel_w[:, :, start:stop],
                      out=bias[..., :n].unflatten(-1, size))
            if extra_bias is not None:
                bias[..., n:] = extra_bias
        block = F.scaled_dot_product_attention(q[:, :, start:stop], k, v, attn_mask=bias,
                                               scale=scale)
        if out is None:
            return block
        out[:, :, start:stop] = block
    return out


def pad_grid(x: Tensor, window_size: int, fill: Optional[Tensor] = None) -> Tensor:
    """Pad (B, H, W, K) to multiples of ``window_size`` with ``fill`` (K,) (zeros if ``None``);
    returned as is when no padding is needed."""
    b, h, w, c = x.shape
    pad_h, pad_w = -h % window_size, -w % window_size
    if not pad_h and not pad_w:
        return x
    if fill is None:
        return F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    out = x.new_empty(b, h + pad_h, w + pad_w, c)  # every element written once
    out[:, :h, :w] = x
    out[:, h:] = fill
    out[:, :h, w:] = fill
    return out


def sam_attention(attn: Attention, x: Tensor, window_size: int = 0,
                  max_bias_elements: int = MAX_BIAS_ELEMENTS) -> Tensor:
    """A ``segment_anything`` ``Attention`` (with its block's window partition) on a grid, through
    :func:`rel_pos_attention`: equal to ``window_unpartition(attn(window_partition(x)))``.

    SAM pads the normalised grid with zeros before ``qkv``; the padded tokens' qkv is the bias,
    so ``qkv`` and ``proj`` only run on the real tokens and the qkv output is padded with the bias.

    Args:
        attn: the block's ``Attention`` (its ``qkv``, ``proj``, ``num_heads``, ``scale`` and
            rel-pos tables are used; any grid size, tables interpolated as SAM does).
        x: (B, H, W, C) normalised tokens.
        window_size: SAM's window (0: global attention over the grid).
        max_bias_elements: see :func:`rel_pos_attention`.

    Returns:
        (B, H, W, C) projected attention outputs.
    """
    b, h, w, c = x.shape
    heads = attn.num_heads
    dh = c // heads
    qkv = fused_linear(x, attn.qkv.weight, attn.qkv.bias)  # (B, H, W, 3C)
    rel_pos = (attn.rel_pos_h, attn.rel_pos_w) if attn.use_rel_pos else None
    if window_size > 0:
        ws = window_size
        qkv = pad_grid(qkv, ws, attn.qkv.bias)
        nh, nw = qkv.shape[1] // ws, qkv.shape[2] // ws
        # (B, nh, ws, nw, ws, 3, heads, dh) -> (3, B * windows, heads, ws * ws, dh): one copy
        q, k, v = (qkv.view(b, nh, ws, nw, ws, 3, heads, dh).permute(5, 0, 1, 3, 6, 2, 4, 7)
                   .reshape(3, b * nh * nw, heads, ws * ws, dh).unbind(0))
        out = rel_pos_attention(q, k, v, attn.scale, rel_pos, (ws, ws),
                                max_bias_elements=max_bias_elements)
        # (B * windows, heads, ws * ws, dh) -> (B, Hp, Wp, C): one copy, then the crop (a view)
        out = (out.view(b, nh, nw, heads, ws, ws, dh).permute(0, 1, 4, 2, 5, 3, 6)
               .reshape(b, nh * ws, nw * ws, c)[:, :h, :w])
    else:
        q, k, v = split_heads(qkv.view(b, h * w, 3 * c), heads)
        out = rel_pos_attention(q, k, v, attn.scale, rel_pos, (h, w),
                                max_bias_elements=max_bias_elements)
        out = out.transpose(1, 2).reshape(b, h, w, c)
    return fused_linear(out, attn.proj.weight, attn.proj.bias)


def sam_block(blk: Block, x: Tensor, max_bias_elements: int = MAX_BIAS_ELEMENTS,
              window_size: Optional[int] = None) -> Tensor:
    """A ``segment_anything`` ``Block`` through the fast core: equal to ``blk(x)``.

    Args:
        blk: the block (its ``norm1``, ``attn``, ``norm2``, ``mlp`` and ``window_size``).
        x: (B, H, W, C) tokens.
        max_bias_elements: see :func:`rel_pos_attention`.
        window_size: overrides the block's window (0: global attention over the grid, as
            DIT's released code runs every block); ``None``: the block's own.

    Returns:
        (B, H, W, C) tokens.
    """
    window_size = blk.window_size if window_size is None else window_size
    x = x + sam_attention(blk.attn, blk.norm1(x), window_size, max_bias_elements)
    mlp = blk.mlp
    xn = blk.norm2(x)
    if type(mlp.act) is nn.GELU:  # SAM's MLPBlock: lin2(GELU(lin1(x))), GELU fused in lin1
        hidden = fused_linear(xn, mlp.lin1.weight, mlp.lin1.bias, gelu=mlp.act.approximate)
        y = fused_linear(hidden, mlp.lin2.weight, mlp.lin2.bias)
    else:
        y = mlp(xn)
    # in place only without autograd (norm2 saved x for backward)
    return x.add_(y) if not torch.is_grad_enabled() else x + y
