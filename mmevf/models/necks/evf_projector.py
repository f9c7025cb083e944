"""EVF-SAM's projector: one token of the multimodal encoder -> one SAM prompt embedding."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmevf.registry import MODELS

TOKEN_CHOICES = ('image_cls', 'text_cls', 'image_mean', 'cls_concat', 'text_mean')


@MODELS.register_module()
class EVFProjector(BaseModule):
    """Linear -> ReLU -> Linear (C -> C -> 256) applied to a chosen encoder output token.

    The token choices are the paper's Tab. 5: ``'image_cls'`` (the vision [CLS] token at
    position 0, the default and the released models), ``'text_cls'`` (the text ``<s>`` token,
    first after the vision tokens), ``'image_mean'`` (mean of the image patch tokens) and
    ``'cls_concat'`` (both [CLS] tokens concatenated, so the first Linear takes 2C); and, not a
    paper row, ``'text_mean'`` (mean of the text tokens but padding, ``image_mean``'s text twin:
    every word's own stream reaches SAM, not only what the ``<s>`` token gathered).

    Args:
        in_channels: width C of the encoder tokens.
        out_channels: SAM's prompt width (256).
        token: which output token prompts SAM, one of ``TOKEN_CHOICES``.
    """

    def __init__(self, in_channels: int, out_channels: int = 256, token: str = 'image_cls',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if token not in TOKEN_CHOICES:
            raise ValueError(f'token must be one of {TOKEN_CHOICES}, got {token!r}')
        self.token = token
        in_dims = 2 * in_channels if token == 'cls_concat' else in_channels
        self.mlp = nn.Sequential(
            nn.Linear(in_dims, in_channels), nn.ReLU(inplace=True),
            nn.Linear(in_channels, out_channels))

    def select_token(self, tokens: torch.Tensor, num_vision_tokens: int,
                     text_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, Nv + L, C) encoder output -> (B, 1, C') chosen token (C' = 2C for concat);
        ``text_padding_mask`` (B, L) bool, True at padding, is read by ``'text_mean'`` only
        (``None``: no padding)."""
        needs_image = self.token not in ('text_cls', 'text_mean')
        needs_text = self.token in ('text_cls', 'cls_concat', 'text_mean')
        if needs_image and num_vision_tokens == 0:
            raise ValueError(f'token {self.token!r} needs image tokens, the encoder had none')
        if needs_text and tokens.shape[1] <= num_vision_tokens:
            raise ValueError(f'token {self.token!r} needs text tokens, the encoder had none')
        if self.token == 'image_cls':
            return tokens[:, :1]
        if self.token == 'text_cls':
            return tokens[:, num_vision_tokens:num_vision_tokens + 1]
        if self.token == 'image_mean':
            return tokens[:, 1:num_vision_tokens].mean(dim=1, keepdim=True)
        if self.token == 'text_mean':
            text = tokens[:, num_vision_tokens:]
            if text_padding_mask is None:
                return text.mean(dim=1, keepdim=True)
            keep = (~text_padding_mask).to(text.dtype).unsqueeze(-1)  # (B, L, 1)
            return (text * keep).sum(dim=1, keepdim=True) / keep.sum(dim=1, keepdim=True)
        return torch.cat(
            [tokens[:, :1], tokens[:, num_vision_tokens:num_vision_tokens + 1]], dim=-1)

    def forward(self, tokens: torch.Tensor, num_vision_tokens: int,
                text_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, Nv + L, C) encoder output (and (B, L) ``text_padding_mask``) -> (B, 1,
        out_channels) prompt embeddings."""
        return self.mlp(self.select_token(tokens, num_vision_tokens, text_padding_mask))
