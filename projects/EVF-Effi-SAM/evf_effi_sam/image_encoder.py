"""EfficientSAM's image encoder: a plain ViT (global attention, absolute positions) + SAM's neck."""
import math
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor

from mmevf.registry import MODELS

# EfficientSAM's two released sizes (build_efficient_sam_vit{t,s}); depth 12 for both
ARCH_SETTINGS = {
    'vit_t': dict(embed_dim=192, depth=12, num_heads=3),
    'vit_s': dict(embed_dim=384, depth=12, num_heads=6),
}
ARCH_KEYS = ('embed_dim', 'depth', 'num_heads')


class PatchEmbed(nn.Module):
    """(B, 3, S, S) -> (B, C, S / p, S / p): one strided convolution (key ``proj``)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Attention(nn.Module):
    """Global multi-head self-attention with one fused ``qkv`` projection (with bias)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, c / heads)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """``fc1`` -> GELU -> ``fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@MODELS.register_module()
class EfficientSAMImageEncoder(BaseModule):
    """EfficientSAM's ViT image encoder (Xiong et al., 2024), keys as the official
    ``image_encoder.*``: ``pos_embed`` (1, 1 + (P / p)², C), ``patch_embed.proj``,
    ``blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``neck.{0..3}``.

    Unlike SAM's encoder: no windowed attention, no relative positions; the position table is
    the one of a 224² pre-training grid with a [CLS] slot (dropped), resized bicubically to the
    input grid at every forward; the neck is SAM's (1x1 conv, LayerNorm2d, 3x3 conv,
    LayerNorm2d, no conv bias).

    Args:
        arch: ``'vit_t'`` (EfficientSAM-Ti), ``'vit_s'`` (EfficientSAM-S) or a dict with
            ``embed_dim``, ``depth``, ``num_heads``.
        img_size: side S of the square input (1024); the data pipeline stretches images to it.
        patch_size: 16.
        pretrain_img_size: side of the grid ``pos_embed`` is stored for (224 -> 14 x 14 + 1).
        mlp_ratio: 4.
        out_chans: neck width (256).
        frozen: no gradients, always in eval mode (EVF-Effi-SAM keeps EfficientSAM frozen
            except the decoder, like EVF-SAM).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'vit_s',
                 img_size: int = 1024,
                 patch_size: int = 16,
                 pretrain_img_size: int = 224,
                 mlp_ratio: float = 4.0,
                 out_chans: int = 256,
                 frozen: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise ValueError(f'unknown EfficientSAM arch {arch!r}, choose from '
                                 f'{list(ARCH_SETTINGS)} or give a dict')
            arch = ARCH_SETTINGS[arch]
        elif set(arch) != set(ARCH_KEYS):
            raise ValueError(f'arch dict needs exactly the keys {ARCH_KEYS}, got {sorted(arch)}')
        if img_size % patch_size:
            raise ValueError(f'img_size {img_size} is not a multiple of patch_size {patch_size}')
        self.arch = dict(arch)
        self.img_size = img_size
        self.patch_size = patch_size
        self.out_chans = out_chans
        self.frozen = frozen
        dim = arch['embed_dim']
        self.patch_embed = PatchEmbed(patch_size, 3, dim)
        num_positions = (pretrain_img_size // patch_size)**2 + 1  # + the unused [CLS] slot
        self.pos_embed = nn.Parameter(torch.zeros(1, num_positions, dim))
        self.blocks = nn.ModuleList(
            Block(dim, arch['num_heads'], mlp_ratio) for _ in range(arch['depth']))
        self.neck = nn.Sequential(
            nn.Conv2d(dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans))
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    def train(self, mode: bool = True) -> 'EfficientSAMImageEncoder':
        """A frozen encoder stays in eval mode whatever ``mode`` is."""
        return super().train(mode and not self.frozen)

    def abs_pos(self, h: int, w: int) -> Tensor:
        """(1, h, w, C) positions: the table without its [CLS] slot, bicubically resized."""
        table = self.pos_embed[:, 1:]
        side = int(math.sqrt(table.shape[1]))
        if (side, side) == (h, w):
            return table.reshape(1, h, w, -1)
        grid = table.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False)
        return grid.permute(0, 2, 3, 1)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) normalised images -> (B, out_chans, S / p, S / p) embeddings."""
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f'expected (B, 3, {self.img_size}, {self.img_size}) images, got '
                             f'{tuple(images.shape)}')
        if self.frozen:
            with torch.no_grad():
                return self._forward(images)
        return self._forward(images)

    def _forward(self, images: Tensor) -> Tensor:
        x = self.patch_embed(images).permute(0, 2, 3, 1)  # (B, h, w, C)
        b, h, w, c = x.shape
        x = (x + self.abs_pos(h, w)).reshape(b, h * w, c)
        for block in self.blocks:
            x = block(x)
        return self.neck(x.reshape(b, h, w, c).permute(0, 3, 1, 2))
