"""Multiway Transformer building blocks (BEiT-3): shared self-attention, modality experts.

A multiway layer holds one copy ("expert") of every projection, LayerNorm and FFN per
modality: ``A`` for vision tokens, ``B`` for language tokens. Only the self-attention mixes
the modalities. Rather than one (B, Nv + L, C) sequence that every sub-module splits and
re-concatenates, the blocks here pass the two token streams as separate tensors
(``Streams = (vision, text)``, either may be ``None``); they meet only inside attention.

Attribute names (``A`` / ``B``, ``q_proj``, ``inner_attn_ln``, ``ffn_layernorm`` ...) follow
torchscale's BEiT-3 so that official state dicts load unchanged.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import fused_linear

Streams = Tuple[Optional[Tensor], Optional[Tensor]]  # (B, Nv, C) vision, (B, L, C) text


class FusedLinear(nn.Linear):
    """``nn.Linear`` computed by :func:`~mmevf.models.layers.fused_linear` (oneDNN on CPU
    inference)."""

    def forward(self, x: Tensor) -> Tensor:
        return fused_linear(x, self.weight, self.bias)


class Multiway(nn.Module):
    """Applies the vision expert ``A`` to the vision stream and the language expert ``B`` to
    the text stream; a missing stream (``None``) stays ``None``."""

    def __init__(self, vision: nn.Module, language: nn.Module) -> None:
        super().__init__()
        self.A = vision
        self.B = language

    def forward(self, streams: Streams) -> Streams:
        vision, text = streams
        return (None if vision is None else self.A(vision),
                None if text is None else self.B(text))


class SublnFFN(nn.Module):
    """One expert's feed-forward network with a LayerNorm on the hidden layer ("subln",
    Magneto): fc1 -> exact GELU -> LayerNorm -> fc2, (..., C) -> (..., C)."""

    def __init__(self, embed_dims: int, ffn_dims: int, eps: float) -> None:
        super().__init__()
        self.fc1 = FusedLinear(embed_dims, ffn_dims)
        self.fc2 = FusedLinear(ffn_dims, embed_dims)
        self.ffn_layernorm = nn.LayerNorm(ffn_dims, eps=eps)

    def forward(self, x: Tensor, residual: Optional[Tensor] = None) -> Tensor:
        """(..., C) -> (..., C), plus ``residual`` (same shape) if given."""
        x = fused_linear(x, self.fc1.weight, self.fc1.bias, gelu='none')  # exact GELU
        return fused_linear(self.ffn_layernorm(x), self.fc2.weight, self.fc2.bias,
                            residual=residual)


def multiway_linear(dims_in: int, dims_out: int) -> Multiway:
    return Multiway(FusedLinear(dims_in, dims_out), FusedLinear(dims_in, dims_out))


def multiway_layer_norm(dims: int, eps: float) -> Multiway:
    return Multiway(nn.LayerNorm(dims, eps=eps), nn.LayerNorm(dims, eps=eps))


class MultiwaySelfAttention(nn.Module):
    """Multi-head self-attention with per-modality q/k/v/out projections and a LayerNorm on
    the attention output before ``out_proj`` ("subln").

    Each expert's q, k and v come from one matmul with the three weights concatenated at run
    time (they stay separate parameters, as in the official state dict). Attention itself is
    ``F.scaled_dot_product_attention``; its fused kernels keep the softmax in fp32, as the
    reference does.

    Args:
        embed_dims: token width C.
        num_heads: attention heads; C must be divisible by it.
        eps: LayerNorm epsilon.
    """

    def __init__(self, embed_dims: int, num_heads: int, eps: float) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads)**-0.5
        # Registration order = the official state dict's key order.
        self.k_proj = multiway_linear(embed_dims, embed_dims)
        self.v_proj = multiway_linear(embed_dims, embed_dims)
        self.q_proj = multiway_linear(embed_dims, embed_dims)
        self.out_proj = multiway_linear(embed_dims, embed_dims)
        self.inner_attn_ln = multiway_layer_norm(embed_dims, eps)

    def _qkv(self, x: Tensor, expert: str) -> Tensor:
        """(B, N, C) tokens of one modality -> (B, N, 3C) queries, keys, values."""
        q, k, v = (getattr(proj, expert) for proj in (self.q_proj, self.k_proj, self.v_proj))
        return fused_linear(x, torch.cat([q.weight, k.weight, v.weight]),
                            torch.cat([q.bias, k.bias, v.bias]))

    def _attend(self, qkv: Tensor, key_mask: Optional[Tensor]) -> Tensor:
        """(B, N, 3C) -> (B, H, N, C / H) attention output; ``key_mask`` (B, 1, 1, N) is True
        at the keys that may be attended to (``None``: all)."""
        batch, length, _ = qkv.shape
        q, k, v = qkv.view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, scale=self.scale)

    @staticmethod
    def _merge_heads(x: Tensor) -> Tensor:
        """(B, H, N, C / H) -> (B, N, C), contiguous."""
        return x.transpose(1, 2).flatten(2)

    def forward(self, streams: Streams, joint: bool = True,
                joint_mask: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None,
                residual: Optional[Streams] = None) -> Streams:
        """
        Args:
            streams: (B, Nv, C) vision and (B, L, C) text tokens, either may be ``None``.
            joint: every token attends to both modalities (early fusion). ``False`` makes
                attention block-diagonal: each modality attends only to itself, computed as
                two independent attentions.
            joint_mask: (B, 1, 1, Nv + L) bool, True at keys to attend to in joint attention
                (``None``: no padding).
            text_mask: (B, 1, 1, L) the same for the text keys alone.
            residual: streams added to the outputs (fused into ``out_proj``).

        Returns:
            The attention outputs of both streams (plus ``residual``), shaped like the inputs.
        """
        vision, text = streams
        if vision is not None and text is not None and joint:
            qkv = torch.cat([self._qkv(vision, 'A'), self._qkv(text, 'B')], dim=1)
            out = self._attend(qkv, joint_mask)
            num_vision = vision.shape[1]
            vision = self._merge_heads(out[:, :, :num_vision])
            text = self._merge_heads(out[:, :, num_vision:])
        else:
            # Vision keys are never padded, so the vision stream alone needs no mask.
            if vision is not None:
                vision = self._merge_heads(self._attend(self._qkv(vision, 'A'), None))
            if text is not None:
                text = self._merge_heads(self._attend(self._qkv(text, 'B'), text_mask))
        vision, text = self.inner_attn_ln((vision, text))
        residual = residual or (None, None)
        return (None if vision is None else self._out(vision, 'A', residual[0]),
                None if text is None else self._out(text, 'B', residual[1]))

    def _out(self, x: Tensor, expert: str, residual: Optional[Tensor]) -> Tensor:
        proj = getattr(self.out_proj, expert)
        return fused_linear(x, proj.weight, proj.bias, residual=residual)


class MultiwayEncoderLayer(nn.Module):
    """Pre-LN Transformer layer with multiway experts and subln (BEiT-3 / Magneto):
    ``x = x + Attn(LN(x)); x = x + FFN(LN(x))``, each LN / FFN per modality.

    Args:
        embed_dims: token width C.
        num_heads: attention heads.
        ffn_dims: hidden width of the FFN.
        eps: LayerNorm epsilon.
        drop_path_rate: probability of dropping each residual branch per sample (training).
    """

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, eps: float,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.self_attn = MultiwaySelfAttention(embed_dims, num_heads, eps)
        self.self_attn_layer_norm = multiway_layer_norm(embed_dims, eps)
        self.ffn = Multiway(
            SublnFFN(embed_dims, ffn_dims, eps), SublnFFN(embed_dims, ffn_dims, eps))
        self.final_layer_norm = multiway_layer_norm(embed_dims, eps)  # the pre-FFN LayerNorm
        self.drop_path_rate = drop_path_rate

    def _residual(self, streams: Streams, branch: Streams) -> Streams:
        """``streams + branch``, with stochastic depth in training. One keep/drop decision per
        sample covers both modalities, as for a single concatenated sequence."""
        if self.training and self.drop_path_rate > 0:
            ref = streams[0] if streams[0] is not None else streams[1]
            keep_prob = 1.0 - self.drop_path_rate
            keep = ref.new_empty(ref.shape[0], 1, 1).bernoulli_(keep_prob).div_(keep_prob)
            branch = tuple(None if b is None else b * keep for b in branch)
        return tuple(None if x is None else x + b for x, b in zip(streams, branch))

    def forward(self, streams: Streams, joint: bool = True,
                joint_mask: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None) -> Streams:
        """Streams (B, Nv, C), (B, L, C) -> same shapes; the other arguments are those of
        :meth:`MultiwaySelfAttention.forward`."""
        if self.training and self.drop_path_rate > 0:
            attn = self.self_attn(self.self_attn_layer_norm(streams), joint, joint_mask,
                                  text_mask)
            streams = self._residual(streams, attn)
            return self._residual(streams, self.ffn(self.final_layer_norm(streams)))
        # No stochastic depth: the residual sums are fused into out_proj / fc2.
        streams = self.self_attn(self.self_attn_layer_norm(streams), joint, joint_mask,
                                 text_mask, residual=streams)
        normed = self.final_layer_norm(streams)
        return tuple(None if x is None else expert(n, residual=x)
                     for expert, n, x in zip((self.ffn.A, self.ffn.B), normed, streams))
