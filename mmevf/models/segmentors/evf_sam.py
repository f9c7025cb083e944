"""EVF-SAM: SAM prompted by an early-fused vision-language encoder."""
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from mmevf.registry import MODELS
from .text_prompt_segmentor import DecodeGroup, TextPromptSegmentor


@MODELS.register_module()
class EVFSAM(TextPromptSegmentor):
    """EVF-SAM (Zhang et al., 2024) as an MMEngine model.

    For a batch of B images carrying N expressions in total:

    1. SAM's image encoder runs **once per image**: (B, 3, 1024, 1024) -> (B, 256, 64, 64).
    2. The multimodal encoder (BEiT-3) reads each expression together with the 224² view of its
       image: (N, 3, 224, 224) + (N, L) -> (N, Nv + L, C).
    3. The projector turns one output token into a prompt embedding: (N, 1, 256).
    4. SAM's prompt encoder / mask decoder decode all expressions of an image against that
       image's embedding: (N_i, 1, 256, 256) low-resolution logits, then masks at the original
       image size.

    Expressions may also carry points and a box, or only those (no text token is appended
    then); see :class:`TextPromptSegmentor` for the data-sample fields and
    :meth:`group_decoders`. The image is still encoded once, whatever the mix of prompts.

    Args:
        image_encoder: SAM image encoder config (``SAMImageEncoder``).
        mm_encoder: multimodal encoder config (``BEiT3MultiwayEncoder``).
        projector: ``EVFProjector`` config; ``in_channels`` defaults to the encoder width.
        prompt_head: ``SAMPromptHead`` config; its sizes are derived from the image encoder.
        data_preprocessor: ``SAMDataPreprocessor`` config.
        mm_encoder_image: give the image to the multimodal encoder (the method); ``False`` is
            the paper's text-only baseline (Tab. 3; use ``EVFProjector(token='text_cls')``).
        trainable: prefixes of the parameters that train (Tab. 4); all others are frozen.
            The paper trains the multimodal encoder, the projector, the prompt encoder and the
            mask decoder.
        init_cfg: mmengine init config.
        no_target_head / no_target_threshold / mask_loss_on_no_target: expressions without
            target (off by default), see :class:`TextPromptSegmentor`.
        grounding_head: ``PromptGroundingHead`` config (training only: an auxiliary loss on
            each text prompt against its image's embedding, computed from what decoding
            computes anyway), or ``None`` (default: no new key, no new loss).
    """
    supports_geometric_prompts = True

    def __init__(self,
                 image_encoder: dict,
                 mm_encoder: dict,
                 projector: dict,
                 prompt_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 mm_encoder_image: bool = True,
                 trainable: Sequence[str] = ('mm_encoder', 'projector', 'prompt_head'),
                 init_cfg: Optional[dict] = None,
                 no_target_head: Optional[dict] = None,
                 no_target_threshold: float = 0.5,
                 mask_loss_on_no_target: bool = False,
                 grounding_head: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='SAMDataPreprocessor'),
                         init_cfg=init_cfg, no_target_head=no_target_head,
                         no_target_threshold=no_target_threshold,
                         mask_loss_on_no_target=mask_loss_on_no_target)
        self.build_sam(image_encoder, prompt_head)
        self.mm_encoder = MODELS.build(mm_encoder)
        projector = dict(projector)
        projector.setdefault('in_channels', self.mm_encoder.embed_dims)
        self.projector = MODELS.build(projector)
        self.mm_encoder_image = mm_encoder_image
        self.grounding_head = None if grounding_head is None else MODELS.build(grounding_head)
        self.trainable = tuple(trainable)
        if self.grounding_head is not None and 'grounding_head' not in self.trainable:
            self.trainable += ('grounding_head', )  # new weights: they train in any case
        self.set_trainable(self.trainable, frozen_modules=('image_encoder', ))

    # ------------------------------------------------------------------ encoding
    def encode_prompts(self, inputs: Dict[str, Tensor]) -> Tensor:
        """Expressions (and their images) -> (N, 1, 256) prompt embeddings."""
        images = None
        if self.mm_encoder_image:
            images = inputs['mm_img'][inputs['expr_image_index']]
        tokens = self.mm_encoder(images, inputs['text_ids'], inputs['text_padding_mask'])
        num_vision = self.mm_encoder.num_vision_tokens if images is not None else 0
        return self.projector(tokens, num_vision, inputs['text_padding_mask'])

    def group_decoders(self, inputs: Dict[str, Tensor]) -> Tuple[List[DecodeGroup], torch.device]:
        """SAM's prompt head on each image's embedding (encoded once per image, whatever the
        prompts): ``(text, points, boxes) -> (logits, IoUs[, no-target logits])``
        (:meth:`decode_prompt_head`)."""
        image_embeddings = self.image_embeddings(inputs)
        return ([partial(self.decode_prompt_head, image_embeddings[i:i + 1])
                 for i in range(image_embeddings.shape[0])], image_embeddings.device)

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Dict[str, Tensor], data_samples: list) -> Dict[str, Tensor]:
        """:meth:`TextPromptSegmentor.loss`; with a grounding head also its losses, on the
        prompts and image embeddings of this decoding (each image still encoded once)."""
        if self.grounding_head is None:
            return super().loss(inputs, data_samples)
        if any(self.has_geometric_prompts(sample) for sample in data_samples):
            raise ValueError('grounding_head trains on text expressions only: this batch has '
                             'points or boxes')
        embeddings = self.image_embeddings(inputs)  # (B, C, h, w)
        prompts = self.group_by_image(self.encode_prompts(inputs), inputs)  # (N_i, 1, C) each
        outputs, logits, targets = [], [], []
        side, grid = int(self.image_encoder.img_size), embeddings.shape[-1]
        for i, (prompts_i, sample) in enumerate(zip(prompts, data_samples)):
            outputs.append(self.decode_prompt_head(embeddings[i:i + 1], prompts_i))
            logits.append(self.grounding_head(prompts_i[:, 0], embeddings[i]))
            gt = sample.gt_instances.masks.to_tensor(embeddings.dtype, embeddings.device)
            targets.append(self.grounding_head.targets(gt, sample.img_shape, side, grid))
        losses = self.loss_by_outputs(self.masks_at_original_size(outputs, data_samples),
                                      data_samples)
        losses.update(self.grounding_head.loss(torch.cat(logits), torch.cat(targets)))
        return losses
