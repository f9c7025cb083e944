"""DIT's cross-attention text mappings (Tab. 4): the text reads the visual tokens before a block."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from torch import Tensor

from mmevf.registry import MODELS


@MODELS.register_module()
class TextCrossAttention(BaseModule):
    """One block's text tokens from the text features and the block's visual input.

    ``T = LN_1(F + Drop(MHA(q=F, k=v=X)))`` and, with ``with_ffn``,
    ``T = LN_2(T + FFN(T))``: the mapping φ_i of L-DIT written as multi-head cross attention
    (optionally followed by a feed-forward network) instead of a linear projection, as the
    released code's Tab. 4 variants do. X is the block's input (the residual stream, not
    normalised, as released). Each text token is its own query, so padded tokens change no
    other token's output (padding invariance); whether they are seen by the block is decided
    by the injector's key mask.

    Args:
        embed_dim: ViT width d (the text features are already d wide).
        num_heads: attention heads.
        with_ffn: add the FFN sub-layer (ReLU, 4d hidden).
        dropout: dropout on the attention weights and on each sub-layer's output.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dim: int,
                 num_heads: int = 8,
                 with_ffn: bool = False,
                 dropout: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout,
                                          batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(embed_dim)
        # mmcv's FFN adds its own residual (add_identity)
        self.ffn = FFN(embed_dims=embed_dim, feedforward_channels=4 * embed_dim,
                       act_cfg=dict(type='ReLU'), ffn_drop=dropout) if with_ffn else None
        self.norm2 = nn.LayerNorm(embed_dim) if with_ffn else None

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        """(B, l, d) text features and (B, N, d) visual tokens -> (B, l, d) text tokens."""
        read, _ = self.attn(text, visual, visual, need_weights=False)
        text = self.norm1(text + self.drop(read))
        if self.ffn is not None:
            text = self.norm2(self.ffn(text))
        return text
