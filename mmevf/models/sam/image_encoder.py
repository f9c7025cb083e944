"""SAM's ViT image encoder (``segment_anything``'s ``ImageEncoderViT``) as an mmevf model."""
import copy
from contextlib import nullcontext
from functools import partial
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from segment_anything.modeling import ImageEncoderViT

from mmevf.registry import MODELS
from .attention import MAX_BIAS_ELEMENTS, sam_block

ARCH_KEYS = ('embed_dim', 'depth', 'num_heads', 'global_attn_indexes')

# The three released SAM image encoders, as in ``segment_anything/build_sam.py``.
ARCH_SETTINGS: Dict[str, dict] = {
    'vit_b': dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    'vit_l': dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    'vit_h': dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}


@MODELS.register_module()
class SAMImageEncoder(ImageEncoderViT, BaseModule):
    """SAM's image encoder: (B, 3, S, S) normalised images -> (B, out_chans, S/16, S/16).

    It *is* ``segment_anything``'s ``ImageEncoderViT`` (a subclass adding mmengine's init
    machinery), so its state-dict keys are SAM's ``image_encoder.*`` keys without the prefix and
    the official ``sam_vit_{b,l,h}_*.pth`` files load strictly through ``init_cfg``.

    Architecture as in ``build_sam.py``: patch 16, windowed attention with relative positions,
    a few global-attention blocks, ``qkv_bias``, LayerNorm eps 1e-6, a conv neck to
    ``out_chans``.

    ``fast_attention`` (default) runs the same blocks through :mod:`mmevf.models.sam.attention`
    (the core DIT shares): SAM's windowed / global attention with decomposed relative positions
    in fused SDPA calls, the rel-pos bias built for a block of queries at a time (a global block
    at 1024² holds no (heads, 4096, 4096) tensor), qkv / proj on the real (unpadded) tokens
    only, the linear layers through oneDNN with the MLP's GELU fused (inference on CPU). Equal
    to ``segment_anything``'s forward within float rounding (fp32 max |diff| ~5e-6 for
    ViT-B/L/H at 1024²); ``fast_attention=False`` runs ``segment_anything``'s own forward. Works
    with the weights in bfloat16 (``encoder.bfloat16()``) or under ``torch.autocast``.

    Args:
        arch: ``'vit_b'``, ``'vit_l'``, ``'vit_h'``, or a dict with the keys ``embed_dim``,
            ``depth``, ``num_heads`` and ``global_attn_indexes`` (e.g. tiny test encoders).
        img_size: side S of the square (padded) input; SAM uses 1024.
        patch_size: ViT patch size (16).
        window_size: window of the non-global attention blocks (14).
        mlp_ratio: MLP width / embedding width (4).
        out_chans: channels of the output embedding, SAM's prompt width (256).
        frozen: no gradients, always in eval mode, forward under ``torch.no_grad()``.
        pos_embed_interp: interpolation of a loaded ``pos_embed`` made for another grid (the
            official 1024² tables into a 512² DIT encoder; DIT's released code: bicubic).
            Relative-position tables are resized linearly, as SAM's ``get_rel_pos`` does.
        fast_attention: the fused attention core (see above); ``False``: ``segment_anything``'s
            forward, e.g. for parity checks. An attribute, so it can be switched after building.
        max_bias_elements: largest rel-pos bias (elements) the fast path builds at once: its
            memory bound (default 2**26: a global block at 1024² in 4 query blocks).
        init_cfg: mmengine initialisation config; official SAM weights load strictly through
            ``dict(type='StrictPretrained', checkpoint='sam_vit_h_4b8939.pth',
            prefix='image_encoder.')``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'vit_h',
                 img_size: int = 1024,
                 patch_size: int = 16,
                 window_size: int = 14,
                 mlp_ratio: float = 4.0,
                 out_chans: int = 256,
                 frozen: bool = True,
                 pos_embed_interp: str = 'bicubic',
                 fast_attention: bool = True,
                 max_bias_elements: int = MAX_BIAS_ELEMENTS,
                 init_cfg: Optional[dict] = None) -> None:
        arch_cfg = self._arch_settings(arch)
        if img_size % patch_size:
            raise ValueError(f'img_size {img_size} is not a multiple of patch_size {patch_size}')
        # ImageEncoderViT.__init__ reaches BaseModule.__init__ (init_cfg=None) through the MRO.
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=arch_cfg['embed_dim'],
            depth=arch_cfg['depth'],
            num_heads=arch_cfg['num_heads'],
            mlp_ratio=mlp_ratio,
            out_chans=out_chans,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=window_size,
            global_attn_indexes=tuple(arch_cfg['global_attn_indexes']))
        self.init_cfg = copy.deepcopy(init_cfg)
        self.arch = arch_cfg
        self.patch_size = patch_size
        self.out_chans = out_chans
        self.frozen = frozen
        self.pos_embed_interp = pos_embed_interp
        self.fast_attention = fast_attention
        self.max_bias_elements = max_bias_elements
        # position tables of weights made for another input size are resized once, at load
        self._register_load_state_dict_pre_hook(self.adapt_state_dict)
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    def adapt_state_dict(self, state_dict: dict, prefix: str = '', *args) -> None:
        """Resize ``pos_embed`` (1, H, W, C) and the rel-pos tables (2 n - 1, C) in
        ``state_dict`` (in place) to this encoder's grid when they were made for another one.
        Also a ``load_state_dict`` pre-hook, so every loading path applies it."""
        for name, own in self.state_dict().items():
            key = prefix + name
            value = state_dict.get(key)
            if (value is None or value.shape == own.shape or value.dim() != own.dim()
                    or value.shape[-1] != own.shape[-1]):  # only another grid, same width
                continue
            if name == 'pos_embed':
                value = F.interpolate(value.permute(0, 3, 1, 2).float(), size=own.shape[1:3],
                                      mode=self.pos_embed_interp, align_corners=False)
                state_dict[key] = value.permute(0, 2, 3, 1).to(own.dtype)
            elif name.endswith(('rel_pos_h', 'rel_pos_w')) and value.shape[1:] == own.shape[1:]:
                state_dict[key] = _resize_rel_pos(value, own.shape[0])

    @staticmethod
    def _arch_settings(arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise ValueError(f'unknown SAM arch {arch!r}, choose from {list(ARCH_SETTINGS)} '
                                 'or give a dict')
            return dict(ARCH_SETTINGS[arch])
        missing = set(ARCH_KEYS) - set(arch)
        unknown = set(arch) - set(ARCH_KEYS)
        if missing or unknown:
            raise ValueError(f'arch dict needs exactly the keys {ARCH_KEYS}; missing '
                             f'{sorted(missing)}, unknown {sorted(unknown)}')
        return dict(arch)

    def train(self, mode: bool = True) -> 'SAMImageEncoder':
        """A frozen encoder stays in eval mode whatever ``mode`` is."""
        return super().train(mode and not self.frozen)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            images: (B, 3, img_size, img_size) normalised, zero-padded images.

        Returns:
            (B, out_chans, img_size / patch_size, img_size / patch_size) image embeddings.
        """
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f'expected (B, 3, {self.img_size}, {self.img_size}) images, got '
                             f'{tuple(images.shape)}')
        with torch.no_grad() if self.frozen else nullcontext():
            if not self.fast_attention:
                return super().forward(images)
            x = self.patch_embed(images)
            if self.pos_embed is not None:
                x = x + self.pos_embed
            for blk in self.blocks:
                x = sam_block(blk, x, self.max_bias_elements)
            return self.neck(x.permute(0, 3, 1, 2))


def _resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    """(L, C) relative-position table -> (length, C), linear, exactly as SAM's ``get_rel_pos``
    resizes it at run time."""
    resized = F.interpolate(table.reshape(1, table.shape[0], -1).permute(0, 2, 1), size=length,
                            mode='linear')
    return resized.reshape(-1, length).permute(1, 0)
