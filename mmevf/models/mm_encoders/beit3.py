"""BEiT-3 (Wang et al., 2022) as EVF-SAM's multimodal encoder: image and text tokens are
encoded jointly by a multiway Transformer, with no torchscale dependency at run time.

Parameter names equal those of torchscale's ``BEiT3`` module (official BEiT-3 files carry them
under ``beit3.``, EVF-SAM files under ``mm_extractor.beit3.``).
"""
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmevf.registry import MODELS
from .contract import check_mm_inputs
from .multiway import Multiway, MultiwayEncoderLayer, Streams, multiway_layer_norm

ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'ffn_dims')
ARCHS = {
    'base': dict(embed_dims=768, num_layers=12, num_heads=12, ffn_dims=3072),
    'large': dict(embed_dims=1024, num_layers=24, num_heads=16, ffn_dims=4096),
}
# Position tables start at row 2 (a fairseq convention kept by BEiT-3); rows 0, 1 are unused.
POSITION_OFFSET = 2


class VisionEmbedding(nn.Module):
    """Image (B, C_in, H, W) -> (B, 1 + H/p * W/p, C) tokens: [CLS], then the patches in
    row-major order. ``mask_token`` (masked image modelling) is kept only so that official
    state dicts load; it is not used."""

    def __init__(self, img_size: int, patch_size: int, in_channels: int,
                 embed_dims: int) -> None:
        super().__init__()
        self.img_size = img_size
        self.num_patches = (img_size // patch_size)**2
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size, stride=patch_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))

    def forward(self, images: Tensor) -> Tensor:
        patches = self.proj(images).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(images.shape[0], -1, -1), patches], dim=1)


class MultiwayEncoder(nn.Module):
    """Positions, the multiway layers and the output LayerNorm (torchscale's ``encoder``).

    Args:
        num_vision_positions: vision tokens (1 + patches); the vision table has 2 more rows.
        max_text_positions: rows of the text position table.
        fusion_layers: number of leading layers with joint vision-text attention
            (``None``: all); later layers attend within each modality.
        other arguments: as :class:`MultiwayEncoderLayer`; ``drop_path_rate`` grows linearly
            from 0 at the first layer to the given value at the last.
    """

    def __init__(self, embed_dims: int, num_layers: int, num_heads: int, ffn_dims: int,
                 eps: float, num_vision_positions: int, max_text_positions: int,
                 fusion_layers: Optional[int] = None, drop_path_rate: float = 0.0,
                 with_cp: bool = False) -> None:
        super().__init__()
        self.embed_positions = Multiway(
            nn.Embedding(num_vision_positions + POSITION_OFFSET, embed_dims),
            nn.Embedding(max_text_positions, embed_dims))
        rates = [drop_path_rate * i / max(num_layers - 1, 1) for i in range(num_layers)]
        self.layers = nn.ModuleList(
            MultiwayEncoderLayer(embed_dims, num_heads, ffn_dims, eps, rate) for rate in rates)
        self.layer_norm = multiway_layer_norm(embed_dims, eps)
        self.fusion_layers = num_layers if fusion_layers is None else fusion_layers
        self.with_cp = with_cp

    def forward(self, streams: Streams, text_padding_mask: Optional[Tensor] = None) -> Streams:
        """Token embeddings (B, Nv, C) vision, (B, L, C) text (either may be ``None``) and the
        (B, L) bool text padding mask -> encoded streams of the same shapes."""
        vision, text = streams
        # Positions restart at row 2 for each modality; slicing the tables equals the lookup.
        if vision is not None:
            vision = vision + self.embed_positions.A.weight[POSITION_OFFSET:POSITION_OFFSET +
                                                            vision.shape[1]]
        joint_mask = text_mask = None
        if text is not None:
            text = text + self.embed_positions.B.weight[POSITION_OFFSET:POSITION_OFFSET +
                                                        text.shape[1]]
            if text_padding_mask is not None and text_padding_mask.any():
                # Padded tokens are zeroed (they still get computed as queries) and never
                # attended to. The product form matches the reference bit for bit.
                text = text * (1 - text_padding_mask.unsqueeze(-1).type_as(text))
                keep = ~text_padding_mask
                text_mask = keep[:, None, None, :]
                if vision is not None:
                    keep = torch.cat([keep.new_ones(vision.shape[:2]), keep], dim=1)
                joint_mask = keep[:, None, None, :]

        streams = (vision, text)
        for i, layer in enumerate(self.layers):
            args = (streams, i < self.fusion_layers, joint_mask, text_mask)
            if self.with_cp and self.training and torch.is_grad_enabled():
                streams = checkpoint(layer, *args, use_reentrant=False)
            else:
                streams = layer(*args)
        return self.layer_norm(streams)


@MODELS.register_module()
class BEiT3MultiwayEncoder(BaseModule):
    """BEiT-3 multimodal encoder: (image, text) -> (B, Nv + L, C) tokens, vision first.

    Image patches and text tokens are embedded separately, then encoded by a multiway
    Transformer: shared self-attention over all tokens (early fusion), vision expert ``A`` /
    language expert ``B`` for every projection, LayerNorm and FFN.

    Args:
        arch: ``'base'`` / ``'large'`` or a dict with ``embed_dims``, ``num_layers``,
            ``num_heads`` and ``ffn_dims``.
        img_size: input image side (square images only).
        patch_size: patch side.
        in_channels: image channels.
        vocab_size: text vocabulary size (64010 for BEiT-3's XLM-R sentencepiece model).
        max_text_positions: rows of the text position table; text length <= this - 2.
        layer_norm_eps: epsilon of every LayerNorm.
        fusion_layers: ``None`` (default, the paper): joint vision-text attention in every
            layer. ``k``: joint attention only in the first ``k`` layers, later layers attend
            within each modality (block-diagonal attention, computed as two separate
            attentions). ``0``: late fusion, each modality encoded on its own.
        drop_path_rate: stochastic depth rate of the last layer (linear from 0).
        with_cp: activation checkpointing per layer while training.
        init_cfg: MMEngine init config; without one, the reference initialisation. An official
            BEiT-3 checkpoint (unilm ``{'model': ...}`` file with ``beit3.`` keys) loads
            strictly through ``dict(type='StrictPretrained', checkpoint=..., layout='beit3',
            prefix='mm_encoder.')``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 vocab_size: int = 64010,
                 max_text_positions: int = 1024,
                 layer_norm_eps: float = 1e-5,
                 fusion_layers: Optional[int] = None,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        num_layers = arch['num_layers']
        if fusion_layers is not None and not 0 <= fusion_layers <= num_layers:
            raise ValueError(f'fusion_layers must be None or in [0, {num_layers}], '
                             f'got {fusion_layers}')
        self.embed_dims = arch['embed_dims']
        self.max_text_length = max_text_positions - POSITION_OFFSET

        self.text_embed = nn.Embedding(vocab_size, self.embed_dims)
        self.vision_embed = VisionEmbedding(img_size, patch_size, in_channels, self.embed_dims)
        self.num_vision_tokens = self.vision_embed.num_patches + 1
        self.encoder = MultiwayEncoder(
            eps=layer_norm_eps, num_vision_positions=self.num_vision_tokens,
            max_text_positions=max_text_positions, fusion_layers=fusion_layers,
            drop_path_rate=drop_path_rate, with_cp=with_cp, **arch)

    @staticmethod
    def _parse_arch(arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise ValueError(f'arch must be one of {sorted(ARCHS)} or a dict, got {arch!r}')
            return dict(ARCHS[arch])
        if set(arch) != set(ARCH_KEYS):
            raise ValueError(f'an arch dict needs exactly the keys {ARCH_KEYS}, got {sorted(arch)}')
        return dict(arch)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` if given (e.g. ``StrictPretrained`` official weights), else the
        reference initialisation (BEiT-3 / EVF-SAM when training from scratch)."""
        if self.is_init:
            return
        if self.init_cfg:
            super().init_weights()
            return
        self._reference_init()
        self._is_init = True

    @torch.no_grad()
    def _reference_init(self) -> None:
        # unilm's BEiT3Wrapper: every Linear trunc_normal(std .02) truncated at +-1 std, LN 1 / 0.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.02, b=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # torchscale's own initialisation for what the wrapper leaves alone.
        nn.init.normal_(self.text_embed.weight, std=self.embed_dims**-0.5)
        for table in (self.encoder.embed_positions.A, self.encoder.embed_positions.B):
            nn.init.normal_(table.weight)  # nn.Embedding's default N(0, 1)
        nn.init.zeros_(self.vision_embed.cls_token)
        nn.init.zeros_(self.vision_embed.mask_token)
        self.vision_embed.proj.reset_parameters()

    def forward(self,
                images: Optional[Tensor] = None,
                text_ids: Optional[Tensor] = None,
                text_padding_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            images: (B, 3, H, W) normalised images ((x - 0.5) / 0.5), or ``None``.
            text_ids: (B, L) int64 token ids, or ``None``.
            text_padding_mask: (B, L), True (non-zero) at padding tokens; ``None``: no padding.

        Returns:
            (B, Nv + L, C) tokens: vision ([CLS] then patches; Nv = ``num_vision_tokens``, 0
            without images), then text (L = 0 without text).
        """
        check_mm_inputs(type(self).__name__, images, text_ids, text_padding_mask,
                        self.vision_embed.img_size, self.max_text_length)
        vision = None if images is None else self.vision_embed(images)
        text = None if text_ids is None else self.text_embed(text_ids)
        if text_padding_mask is not None:
            text_padding_mask = text_padding_mask.bool()
        vision, text = self.encoder((vision, text), text_padding_mask)
        if vision is None or text is None:
            return text if vision is None else vision
        return torch.cat([vision, text], dim=1)
