"""Any OpenMMLab backbone (mmpretrain, mmdet, mmseg ...) as SAM's image encoder."""
from contextlib import nullcontext
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmevf.checkpoint import init_weights_pretrained_last
from mmevf.checkpoint.layouts import sam_vit_to_vitsam
from mmevf.registry import MODELS

# SAM's prompt encoder / mask decoder read a stride-16 image embedding.
STRIDE = 16
# Keys of segment_anything's ImageEncoderViT (relative to it); its patch embedding marks them.
SAM_VIT_MARKER = 'patch_embed.proj.weight'
SAM_VIT_ROOTS = ('patch_embed.proj.', 'pos_embed', 'blocks.', 'neck.')


@MODELS.register_module()
class BackboneImageEncoder(BaseModule):
    """A registry backbone (+ optional neck) as SAM's image encoder: (B, 3, S, S) normalised,
    padded images -> (B, embed_dims, S / 16, S / 16) image embedding.

    The segmentors read the encoder's ``img_size`` S (input side, the data preprocessor's
    padding, the prompt head's sizes) and ``patch_size`` (16: the embedding's stride), and
    expect the embedding shape above; this module holds any backbone to that contract. The
    backbone's outputs (a tensor or a tuple of feature maps, e.g. its ``out_indices``) go
    through the neck if there is one, and ``in_index`` picks the map. A shape that breaks the
    contract raises an error naming the backbone and the shape it gave.

    Typical set-ups (``_scope_``-prefixed types resolve in their package):

    - ``mmpretrain.ViTSAM`` with ``out_channels=256``: SAM's ViT; official
      ``sam_vit_{b,l,h}_*.pth`` weights load through
      ``init_cfg=dict(type='StrictPretrained', checkpoint=..., layout='sam',
      prefix='image_encoder.')``, their keys renamed at load time (:meth:`adapt_state_dict`);
    - ``mmpretrain.ConvNeXt`` (``out_indices=(2, )``, ``gap_before_final_norm=False``),
      ``mmpretrain.SwinTransformer`` (``out_indices=(2, )``), ``mmdet.ResNet``
      (``out_indices=(2, )``): their stride-16 stage, mapped to ``embed_dims`` channels by
      ``neck=dict(type='mmdet.ChannelMapper', in_channels=[C], out_channels=256,
      kernel_size=1, ...)``.

    Args:
        backbone: backbone config, e.g. ``dict(type='mmpretrain.ConvNeXt', arch='base', ...)``.
        neck: optional neck config applied to the backbone's outputs (as a tuple).
        img_size: side S of the square (padded) input; a multiple of 16.
        in_index: which output (of the neck, else of the backbone) is the embedding.
        embed_dims: channels of the embedding (SAM's prompt width, the prompt head's
            ``embed_dim``).
        frozen: no gradients, always in eval mode, forward under ``torch.no_grad()`` (as
            ``SAMImageEncoder(frozen=True)``: pretrained SAM weights).
        init_cfg: mmengine init config; a ``StrictPretrained`` entry is applied after the
            backbone and neck initialise themselves.
    """

    patch_size = STRIDE  # what the segmentors read: image embedding grid = img_size / 16

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 img_size: int = 1024,
                 in_index: int = -1,
                 embed_dims: int = 256,
                 frozen: bool = False,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if img_size % STRIDE:
            raise ValueError(f'img_size {img_size} is not a multiple of {STRIDE}')
        self.img_size = img_size
        self.in_index = in_index
        self.embed_dims = embed_dims
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.type_name = str(backbone['type']) + (f' + {neck["type"]}' if neck is not None else '')
        backbone_size = getattr(self.backbone, 'img_size', None)  # ViTSAM, ViT: table sizes
        if backbone_size is not None and tuple(_pair(backbone_size)) != (img_size, img_size):
            raise ValueError(f'{self.type_name} is built for img_size {backbone_size}, the image '
                             f'encoder for {img_size}: give the backbone the same img_size')
        # official SAM weights are renamed for ViTSAM at load time, on every loading path
        self._register_load_state_dict_pre_hook(self.adapt_state_dict)
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    def init_weights(self) -> None:
        """Backbone and neck initialise themselves, then a ``StrictPretrained`` entry loads."""
        init_weights_pretrained_last(self)

    def train(self, mode: bool = True) -> 'BackboneImageEncoder':
        """A frozen encoder stays in eval mode whatever ``mode`` is."""
        return super().train(mode and not self.frozen)

    def adapt_state_dict(self, state_dict: dict, prefix: str = '', *args) -> None:
        """Rename official SAM image-encoder weights under ``prefix`` (in place) to this
        encoder's ``backbone.*`` ViTSAM keys (``mmevf.checkpoint.layouts.SAM_VIT_TO_VITSAM``)
        and let the backbone resize position tables made for another grid.

        Called by mmevf's checked loading before its shape check and registered as a
        ``load_state_dict`` pre-hook, so every loading path (``StrictPretrained``, a whole
        checkpoint, ``load_from``) applies it; weights already in mmevf's keys pass unchanged.

        Raises:
            ValueError: SAM ViT weights for a backbone that is not ``ViTSAM``.
        """
        if prefix + SAM_VIT_MARKER in state_dict:
            if type(self.backbone).__name__ != 'ViTSAM':
                where = f' under {prefix}' if prefix else ''
                raise ValueError(f'SAM ViT weights (segment_anything ImageEncoderViT keys{where})'
                                 f' load into mmpretrain.ViTSAM only, not into {self.type_name}')
            sam = {k[len(prefix):]: state_dict.pop(k) for k in list(state_dict)
                   if k.startswith(prefix) and k[len(prefix):].startswith(SAM_VIT_ROOTS)}
            state_dict.update({f'{prefix}backbone.{k}': v
                               for k, v in sam_vit_to_vitsam(sam, prefix or 'SAM').items()})
        # mmpretrain's ViTs resize pos_embed / rel-pos tables in load_state_dict pre-hooks, which
        # mmevf's shape check would come before; both resize only tables of another size.
        for hook in ('_prepare_pos_embed', '_prepare_relative_position'):
            if callable(getattr(self.backbone, hook, None)):
                getattr(self.backbone, hook)(state_dict, f'{prefix}backbone.')

    def forward(self, images: Tensor) -> Tensor:
        """Encode images.

        Args:
            images: (B, 3, img_size, img_size) normalised, zero-padded images.

        Returns:
            (B, embed_dims, img_size / 16, img_size / 16) image embeddings.

        Raises:
            ValueError: images of another size, or a backbone / neck output of another shape
                than the contract, naming the backbone and the shape it gave.
        """
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f'expected (B, 3, {self.img_size}, {self.img_size}) images, got '
                             f'{tuple(images.shape)}')
        with torch.no_grad() if self.frozen else nullcontext():
            feats = self.backbone(images)
            feats = (feats, ) if torch.is_tensor(feats) else tuple(feats)
            if self.neck is not None:
                feats = tuple(self.neck(feats))
        grid = self.img_size // STRIDE
        expected = (images.shape[0], self.embed_dims, grid, grid)
        embedding = feats[self.in_index] if -len(feats) <= self.in_index < len(feats) else None
        if not torch.is_tensor(embedding) or tuple(embedding.shape) != expected:
            shapes = [tuple(f.shape) if torch.is_tensor(f) else type(f).__name__ for f in feats]
            raise ValueError(
                f'{self.type_name} gave the outputs {shapes} for {tuple(images.shape)} images, '
                f'in_index={self.in_index}; SAM needs a {expected} image embedding (B, '
                f'{self.embed_dims}, img_size / 16, img_size / 16): pick the stride-16 feature '
                f'map (the backbone\'s out_indices, in_index) and map it to {self.embed_dims} '
                f'channels (e.g. neck=dict(type=\'mmdet.ChannelMapper\', in_channels=[C], '
                f'out_channels={self.embed_dims}, kernel_size=1))')
        return embedding


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)
