"""CLIP (Radford et al., 2021) as EVF-SAM's prompt encoder: the paper's text-only and
late-fusion baselines (EVF-SAM Tab. 1 / 3 / 6), on ``transformers``' ``CLIPModel``."""
from typing import Optional

import torch
from mmengine.model import BaseModule, initialize
from torch import Tensor
from transformers import CLIPConfig, CLIPModel

from mmevf.registry import MODELS
from .contract import check_mm_inputs
from mmevf.checkpoint.hf_model import ConfigLike, load_hf_weights, resolve_hf_config


@MODELS.register_module()
class CLIPEncoder(BaseModule):
    """CLIP's two towers under the multimodal-encoder contract (see :mod:`.contract`):
    (image, text) -> (B, Nv + L, C) tokens, C = ``projection_dim``, in CLIP's joint embedding
    space.

    CLIP has no fusion: the towers never see each other. ``EVFProjector(token=...)`` then gives
    the paper's baselines: ``'text_cls'`` with ``EVFSAM(mm_encoder_image=False)`` the text-only
    prompt, ``'cls_concat'`` late fusion (image and text embeddings concatenated).

    The output positions (so that the projector's tokens are CLIP's pooled embeddings, exactly
    ``CLIPModel.get_image_features`` / ``get_text_features``):

    - 0: the image embedding, ``visual_projection(post_layernorm(state of [CLS]))``;
    - 1 .. Nv - 1: every patch state through the same ``post_layernorm`` and
      ``visual_projection`` (what ``'image_mean'`` averages);
    - Nv: the text embedding, ``text_projection`` of the state at the first end-of-text token
      (CLIP pools there, not at position 0; the pooling is ``transformers``' own). It takes
      the place of ``<|startoftext|>``, whose state carries no text under CLIP's causal
      attention;
    - Nv + i (i >= 1): ``text_projection`` of the state of text token i.

    Padding (right, ``text_padding_mask``) is masked out of attention; with causal attention a
    padded text gives its unpadded embedding. Every text must contain the end-of-text token
    (the tokenizer adds it, and ``TokenizeText(max_length=77)`` truncation keeps it). The
    tokens of a padded position are not meaningful.

    Args:
        config: the architecture: ``CLIPConfig`` arguments (``text_config`` /
            ``vision_config`` dicts, ``projection_dim``) or a ``CLIPConfig``; ``None`` reads
            ``pretrained``'s ``config.json``. See :mod:`.hf_model` for how it meets
            ``pretrained``.
        pretrained: a local ``CLIPModel`` folder (``save_pretrained``: ``config.json`` +
            ``model.safetensors``, e.g. ``openai/clip-vit-large-patch14``), loaded in
            :meth:`init_weights`; ``None``: ``transformers``' random initialisation.
        with_vision: build the vision tower. ``False`` for the text-only baseline: the model
            then holds (and counts) the text tower alone, and refuses images.
        init_cfg: mmengine init config, applied before the ``pretrained`` weights.
    """

    def __init__(self,
                 config: ConfigLike = None,
                 pretrained: Optional[str] = None,
                 with_vision: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained
        self.clip = CLIPModel(resolve_hf_config(CLIPConfig, config, pretrained))
        clip_config = self.clip.config
        self.embed_dims = clip_config.projection_dim
        self.max_text_length = clip_config.text_config.max_position_embeddings
        self.with_vision = with_vision
        if with_vision:
            vision = clip_config.vision_config
            self.img_size: Optional[int] = vision.image_size
            self.num_vision_tokens = (vision.image_size // vision.patch_size)**2 + 1
        else:
            # unused parts would be dead weight for the optimiser and DDP
            self.clip.vision_model = None
            self.clip.visual_projection = None
            self.img_size = None
            self.num_vision_tokens = 0

    def init_weights(self) -> None:
        """``init_cfg``, then the ``pretrained`` folder; mmengine's recursion is not used, it
        would call ``PreTrainedModel.init_weights`` and redraw CLIP's weights."""
        if self.is_init:
            return
        if self.init_cfg:
            initialize(self, self.init_cfg)
        if self.pretrained is not None:
            ignore = () if self.with_vision else ('vision_model.', 'visual_projection.')
            load_hf_weights(self.clip, self.pretrained, ignore_unexpected=ignore)
        self._is_init = True

    def encode_images(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, Nv, C): image embedding, then the projected patches."""
        clip = self.clip
        states = clip.vision_model(pixel_values=images).last_hidden_state  # (B, Nv, C_v)
        # the embedding exactly as get_image_features computes it ...
        embed = clip.visual_projection(clip.vision_model.post_layernorm(states[:, 0]))
        # ... and the patches through the same head
        patches = clip.visual_projection(clip.vision_model.post_layernorm(states[:, 1:]))
        return torch.cat([embed[:, None], patches], dim=1)

    def encode_text(self, text_ids: Tensor, text_padding_mask: Optional[Tensor]) -> Tensor:
        """(B, L) ids -> (B, L, C): text embedding, then the projected tokens 1 .. L - 1."""
        keep = None if text_padding_mask is None else (~text_padding_mask.bool()).long()
        out = self.clip.text_model(input_ids=text_ids, attention_mask=keep)
        embed = self.clip.text_projection(out.pooler_output)  # pooled at end-of-text
        tokens = self.clip.text_projection(out.last_hidden_state[:, 1:])
        return torch.cat([embed[:, None], tokens], dim=1)

    def forward(self,
                images: Optional[Tensor] = None,
                text_ids: Optional[Tensor] = None,
                text_padding_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            images: (B, 3, S, S) images normalised with CLIP's mean / std, or ``None``.
            text_ids: (B, L) CLIP token ids (``<|startoftext|> ... <|endoftext|>``), or
                ``None``.
            text_padding_mask: (B, L), True at padding; ``None``: no padding.

        Returns:
            (B, Nv + L, C) tokens, positions as in the class docstring (Nv = 0 without
            images, L = 0 without text).
        """
        check_mm_inputs(type(self).__name__, images, text_ids, text_padding_mask, self.img_size,
                        self.max_text_length)
        parts = []
        if images is not None:
            parts.append(self.encode_images(images))
        if text_ids is not None:
            parts.append(self.encode_text(text_ids, text_padding_mask))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
