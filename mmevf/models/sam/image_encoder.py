"""SAM's ViT image encoder (``segment_anything``'s ``ImageEncoderViT``) as an mmevf model."""
import copy
from contextlib import nullcontext
from functools import partial
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from segment_anything.modeling import ImageEncoderViT

from mmevf.models.utils.weights import load_pretrained
from mmevf.registry import MODELS

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
    the official ``sam_vit_{b,l,h}_*.pth`` files load strictly through ``pretrained``.

    Architecture as in ``build_sam.py``: patch 16, windowed attention with relative positions,
    a few global-attention blocks, ``qkv_bias``, LayerNorm eps 1e-6, a conv neck to
    ``out_chans``.

    Args:
        arch: ``'vit_b'``, ``'vit_l'``, ``'vit_h'``, or a dict with the keys ``embed_dim``,
            ``depth``, ``num_heads`` and ``global_attn_indexes`` (e.g. tiny test encoders).
        img_size: side S of the square (padded) input; SAM uses 1024.
        patch_size: ViT patch size (16).
        window_size: window of the non-global attention blocks (14).
        mlp_ratio: MLP width / embedding width (4).
        out_chans: channels of the output embedding, SAM's prompt width (256).
        frozen: no gradients, always in eval mode, forward under ``torch.no_grad()``.
        pretrained: official SAM weight file (the ``image_encoder.*`` part is loaded strictly
            in :meth:`init_weights`), or ``None``.
        init_cfg: mmengine initialisation config, applied before ``pretrained`` is loaded.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'vit_h',
                 img_size: int = 1024,
                 patch_size: int = 16,
                 window_size: int = 14,
                 mlp_ratio: float = 4.0,
                 out_chans: int = 256,
                 frozen: bool = True,
                 pretrained: Optional[str] = None,
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
        self.pretrained = pretrained
        if frozen:
            self.requires_grad_(False)
            self.train(False)

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

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (if any), then load ``pretrained``; both only on the first call,
        so that a later ``init_weights`` of a parent model never overwrites loaded weights."""
        first_call = not self.is_init
        super().init_weights()
        if first_call:
            load_pretrained(self, self.pretrained, prefix='image_encoder.')

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
            return super().forward(images)
