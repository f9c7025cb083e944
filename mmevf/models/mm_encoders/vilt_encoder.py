"""ViLT (Kim et al., 2021) as EVF-SAM's multimodal encoder: the paper's other early-fusion
encoder (EVF-SAM Tab. 3 / 6), on ``transformers``' ``ViltModel``."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule, initialize
from torch import Tensor
from transformers import ViltConfig, ViltModel

from mmevf.registry import MODELS
from .contract import check_mm_inputs
from mmevf.checkpoint.hf_model import ConfigLike, load_hf_weights, resolve_hf_config


@MODELS.register_module()
class ViLTEncoder(BaseModule):
    """ViLT under the multimodal-encoder contract (see :mod:`.contract`): one Transformer over
    the text tokens and the image patches together (early fusion), (image, text) ->
    (B, Nv + L, C) tokens, C = ``hidden_size``.

    ``ViltModel`` orders its sequence text first, then image; the output here is reordered to
    vision first: position 0 the image [CLS], 1 .. Nv - 1 the patches in row-major order, Nv the
    text [CLS], then the other text tokens. The inputs are those ViLT was trained with: every
    pixel valid (``pixel_mask`` all ones), ``attention_mask`` = not padding, token types 0.

    Patches are embedded here, deterministically, and handed to ``ViltModel`` as its
    ``image_embeds``: ViLT's own patch embedding *samples* the patches (``torch.multinomial``),
    and even with ``max_image_length=-1`` (keep all, the released models' setting) it returns
    them in a random order. All Nv - 1 patches are kept, in row-major order; the values equal
    ViLT's own forward's (its attention is permutation-equivariant), and ``max_image_length``
    is ignored. Position embeddings are resampled to the input grid as ViLT does (bilinear,
    corners aligned; the identity at the pre-training size).

    Args:
        config: the architecture: ``ViltConfig`` arguments or a ``ViltConfig``; ``None`` reads
            ``pretrained``'s ``config.json``. See :mod:`.hf_model`.
        pretrained: a local ViLT folder (``save_pretrained`` of ``ViltModel`` or a task model
            such as ``dandelin/vilt-b32-mlm``), loaded in :meth:`init_weights`; its pooler and
            heads are left out (the projector reads the tokens).
        img_size: input side S (square images); ``None``: the config's ``image_size`` (384).
            Nv = (S / patch_size)² + 1.
        init_cfg: mmengine init config, applied before the ``pretrained`` weights.

    Text is limited to ``max_position_embeddings`` tokens (40 for the released ViLT, special
    tokens included): tokenize with ``TokenizeText(max_length=40)``; longer text is an error.
    """

    def __init__(self,
                 config: ConfigLike = None,
                 pretrained: Optional[str] = None,
                 img_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained
        vilt_config = resolve_hf_config(ViltConfig, config, pretrained)
        # the pooler (ITM head input) never reaches the output
        self.vilt = ViltModel(vilt_config, add_pooling_layer=False)
        self.embed_dims = vilt_config.hidden_size
        self.max_text_length = vilt_config.max_position_embeddings
        self.img_size = int(img_size or self._side(vilt_config.image_size, 'image_size'))
        self.patch_size = self._side(vilt_config.patch_size, 'patch_size')
        self.num_vision_tokens = (self.img_size // self.patch_size)**2 + 1
        max_len = vilt_config.max_image_length
        if max_len is not None and 0 < max_len < self.num_vision_tokens - 1:
            print_log(f'ViLTEncoder keeps all {self.num_vision_tokens - 1} patches; the config\'s '
                      f'max_image_length={max_len} (patch sampling) is ignored',
                      logger='current')

    @staticmethod
    def _side(value, name: str) -> int:
        if isinstance(value, (list, tuple)):
            if len(set(value)) != 1:
                raise ValueError(f'ViLTEncoder takes square inputs, the config has {name}={value}')
            value = value[0]
        return int(value)

    def init_weights(self) -> None:
        """``init_cfg``, then the ``pretrained`` folder; mmengine's recursion is not used, it
        would call ``PreTrainedModel.init_weights`` and redraw ViLT's weights."""
        if self.is_init:
            return
        if self.init_cfg:
            initialize(self, self.init_cfg)
        if self.pretrained is not None:
            load_hf_weights(self.vilt, self.pretrained, ignore_unexpected=('pooler.', ))
        self._is_init = True

    def embed_images(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, Nv, C) ViLT's image embeddings: [CLS] and every patch in
        row-major order, with their position embeddings (ViLT's ``visual_embed`` without the
        sampling); the modality-type embedding is added by ``ViltModel``."""
        embeddings = self.vilt.embeddings
        patches = embeddings.patch_embeddings(images)  # (B, C, h, w)
        batch, channels, height, width = patches.shape
        grid = self._side(self.vilt.config.image_size, 'image_size') // self.patch_size
        table = embeddings.position_embeddings  # (1, 1 + grid², C)
        spatial = table[:, 1:].transpose(1, 2).reshape(1, channels, grid, grid)
        spatial = F.interpolate(spatial, size=(height, width), mode='bilinear',
                                align_corners=True)
        patches = patches.flatten(2).transpose(1, 2) + spatial.flatten(2).transpose(1, 2)
        cls = (embeddings.cls_token + table[:, :1]).expand(batch, -1, -1)
        return embeddings.dropout(torch.cat([cls, patches], dim=1))

    def forward(self,
                images: Optional[Tensor] = None,
                text_ids: Optional[Tensor] = None,
                text_padding_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            images: (B, 3, S, S) images normalised with ViLT's mean / std (0.5 / 0.5), or
                ``None`` (text only: the Transformer runs over the text alone).
            text_ids: (B, L) BERT token ids ([CLS] ... [SEP]), L <= ``max_text_length``, or
                ``None`` (image only).
            text_padding_mask: (B, L), True at padding; ``None``: no padding.

        Returns:
            (B, Nv + L, C) tokens, vision first (Nv = 0 without images, L = 0 without text).
        """
        check_mm_inputs(type(self).__name__, images, text_ids, text_padding_mask, self.img_size,
                        self.max_text_length)
        ref = images if images is not None else text_ids
        batch = ref.shape[0]
        if images is None:  # a modality left out contributes no tokens
            image_embeds = ref.new_zeros((batch, 0, self.embed_dims), dtype=self._dtype())
        else:
            image_embeds = self.embed_images(images)
        if text_ids is None:
            text_ids = ref.new_zeros((batch, 0), dtype=torch.long)
        keep = torch.ones_like(text_ids) if text_padding_mask is None else (
            ~text_padding_mask.bool()).long()
        out = self.vilt(
            input_ids=text_ids,
            attention_mask=keep,
            token_type_ids=torch.zeros_like(text_ids),
            image_embeds=image_embeds,
            pixel_mask=keep.new_ones(image_embeds.shape[:2]),
            return_dict=True)
        states = out.last_hidden_state  # (B, L + Nv, C): text first
        num_text = text_ids.shape[1]
        return torch.cat([states[:, num_text:], states[:, :num_text]], dim=1)

    def _dtype(self) -> torch.dtype:
        return self.vilt.embeddings.cls_token.dtype
