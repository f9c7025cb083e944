"""SAM's prompt encoder + mask decoder, prompted by text embeddings as in EVF-SAM."""
import copy
from contextlib import nullcontext
from types import SimpleNamespace
from typing import ContextManager, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import Tensor

from mmevf.registry import MODELS

Points = Tuple[Tensor, Tensor]  # (N, P, 2) xy in input-image pixels, (N, P) labels


@MODELS.register_module()
class SAMPromptHead(BaseModule):
    """Decodes one image embedding into one mask per prompt (text, points, box, mask).

    ``prompt_encoder`` and ``mask_decoder`` are ``segment_anything``'s modules, so the keys
    equal SAM's ``prompt_encoder.*`` / ``mask_decoder.*`` keys. EVF-SAM's only change to SAM is
    that text embeddings are appended to the sparse prompt tokens (after the point and box
    tokens); the N prompts of one image share its embedding (the decoder repeats it N times).

    Args:
        embed_dim: prompt / transformer width (256).
        image_embedding_size: side h = w of the image embedding (64).
        input_image_size: side of the padded image given to the image encoder (1024).
        mask_in_chans: hidden channels of the mask-prompt encoder (16).
        num_multimask_outputs: SAM's disambiguating masks (3; one more mask token is the
            single-mask output).
        transformer: ``TwoWayTransformer`` arguments other than ``embedding_dim``.
        iou_head_depth: layers of the IoU-prediction MLP (3).
        iou_head_hidden_dim: width of the IoU-prediction MLP (256).
        multimask_output: default of :meth:`forward`'s ``multimask_output``.
        mask_threshold: logit threshold of a predicted mask (0.0).
        loss_bce: per-pixel BCE-with-logits loss config (an mmdet ``CrossEntropyLoss``).
        loss_dice: per-mask dice loss config (an mmdet ``DiceLoss``).
        init_cfg: mmengine initialisation config; official SAM weights load strictly through
            ``dict(type='StrictPretrained', checkpoint='sam_vit_h_4b8939.pth', layout='sam',
            prefix='prompt_head.')``: the ``'sam'`` layout names SAM's ``prompt_encoder.*`` /
            ``mask_decoder.*`` ``prompt_head.prompt_encoder.*`` /
            ``prompt_head.mask_decoder.*``, so ``prefix='prompt_head.'`` selects this head.
    """

    def __init__(self,
                 embed_dim: int = 256,
                 image_embedding_size: int = 64,
                 input_image_size: int = 1024,
                 mask_in_chans: int = 16,
                 num_multimask_outputs: int = 3,
                 transformer: dict = dict(depth=2, mlp_dim=2048, num_heads=8),
                 iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256,
                 multimask_output: bool = False,
                 mask_threshold: float = 0.0,
                 loss_bce: dict = dict(
                     type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_dice: dict = dict(
                     type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
                     eps=1e-3, loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.multimask_output = multimask_output
        self.mask_threshold = mask_threshold
        self.prompt_encoder = PromptEncoder(
            embed_dim=embed_dim,
            image_embedding_size=(image_embedding_size, image_embedding_size),
            input_image_size=(input_image_size, input_image_size),
            mask_in_chans=mask_in_chans)
        self.mask_decoder = MaskDecoder(
            transformer_dim=embed_dim,
            transformer=TwoWayTransformer(embedding_dim=embed_dim, **transformer),
            num_multimask_outputs=num_multimask_outputs,
            iou_head_depth=iou_head_depth,
            iou_head_hidden_dim=iou_head_hidden_dim)
        self.loss_bce = MODELS.build(copy.deepcopy(loss_bce))
        self.loss_dice = MODELS.build(copy.deepcopy(loss_dice))

    # ------------------------------------------------------------------ decoding
    def forward(self,
                image_embeddings: Tensor,
                text_embeds: Optional[Tensor] = None,
                points: Optional[Points] = None,
                boxes: Optional[Tensor] = None,
                mask_inputs: Optional[Tensor] = None,
                multimask_output: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
        """Predict one mask per prompt for one image.

        Args:
            image_embeddings: (1, C, h, w) embedding of ONE image, shared by all N prompts.
            text_embeds: (N, T, C) text prompt tokens (EVF-SAM: T = 1), or ``None``.
            points: point coordinates (N, P, 2), xy in input-image pixels, and labels (N, P)
                (1 foreground, 0 background, -1 padding), or ``None``.
            boxes: (N, 4) xyxy boxes in input-image pixels, or ``None``.
            mask_inputs: (N, 1, 4h, 4w) low-resolution mask logits, or ``None``.
            multimask_output: decode SAM's 3 disambiguating masks and keep, per prompt, the
                one with the highest predicted IoU (else: the single-mask token 0).
                ``None``: the constructor's default.

        Returns:
            (N, 1, 4h, 4w) low-resolution mask logits and (N, 1) predicted IoUs.

        The decoder's inputs are cast to the head's parameter dtype: the image-embedding
        dtype when the whole model has one dtype (as EVF-SAM casts its prompts), while e.g.
        bf16 embeddings of a frozen bf16 image encoder are upcast for an fp32 head.
        """
        masks, iou_pred, _ = self._decode(image_embeddings, text_embeds, points, boxes,
                                          mask_inputs, multimask_output, iou_token=False)
        return masks, iou_pred

    def forward_with_iou_token(self,
                               image_embeddings: Tensor,
                               text_embeds: Optional[Tensor] = None,
                               points: Optional[Points] = None,
                               boxes: Optional[Tensor] = None,
                               mask_inputs: Optional[Tensor] = None,
                               multimask_output: Optional[bool] = None
                               ) -> Tuple[Tensor, Tensor, Tensor]:
        """:meth:`forward` (same arguments, same masks and IoUs) plus SAM's IoU-token output.

        Returns:
            (N, 1, 4h, 4w) mask logits, (N, 1) predicted IoUs and (N, C) IoU-token output:
            ``hs[:, 0]`` of ``MaskDecoder.predict_masks``, the token after the two-way
            transformer has attended to the image and the prompts (the IoU head's input;
            one per prompt, whichever mask ``multimask_output`` keeps).
        """
        masks, iou_pred, token = self._decode(image_embeddings, text_embeds, points, boxes,
                                              mask_inputs, multimask_output, iou_token=True)
        assert token is not None
        return masks, iou_pred, token

    def _decode(self, image_embeddings: Tensor, text_embeds: Optional[Tensor],
                points: Optional[Points], boxes: Optional[Tensor],
                mask_inputs: Optional[Tensor], multimask_output: Optional[bool],
                iou_token: bool) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """:meth:`forward`'s work; with ``iou_token`` also the (N, C) IoU-token output, else
        ``None``."""
        if multimask_output is None:
            multimask_output = self.multimask_output
        size = self.image_embedding_size
        if image_embeddings.shape[0] != 1 or tuple(image_embeddings.shape[1:]) != (
                self.embed_dim, size, size):
            raise ValueError(f'expected a (1, {self.embed_dim}, {size}, {size}) image embedding, '
                             f'got {tuple(image_embeddings.shape)}')
        dtype = self.mask_decoder.iou_token.weight.dtype
        with self._positional_autocast():
            sparse, dense = self.embed_prompts(text_embeds, points, boxes, mask_inputs)
            image_pe = self.prompt_encoder.get_dense_pe()
        # segment_anything's MaskDecoder returns no token: its IoU head's input is hs[:, 0],
        # read by a hook that exists during this call only (the default path has none).
        tokens: List[Tensor] = []
        handle = self.mask_decoder.iou_prediction_head.register_forward_pre_hook(
            lambda module, args: tokens.append(args[0])) if iou_token else None
        try:
            masks, iou_pred = self.mask_decoder(
                image_embeddings=image_embeddings.to(dtype),
                image_pe=image_pe.to(dtype),
                sparse_prompt_embeddings=sparse.to(dtype),
                dense_prompt_embeddings=dense.to(dtype),
                multimask_output=multimask_output)
        finally:
            if handle is not None:
                handle.remove()
        if multimask_output:
            best = iou_pred.argmax(dim=1, keepdim=True)  # (N, 1)
            masks = masks.gather(1, best[..., None, None].expand(-1, -1, *masks.shape[2:]))
            iou_pred = iou_pred.gather(1, best)
        return masks, iou_pred, tokens[0] if iou_token else None

    def embed_prompts(self,
                      text_embeds: Optional[Tensor] = None,
                      points: Optional[Points] = None,
                      boxes: Optional[Tensor] = None,
                      mask_inputs: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """SAM's prompt embeddings with the text tokens appended to the sparse ones.

        Returns:
            sparse (N, K + T, C): K point / box tokens as SAM embeds them, then the T text
            tokens; dense (N, C, h, w): the embedded mask, else SAM's ``no_mask_embed``.
        """
        sizes = {name: len(value) for name, value in (
            ('text_embeds', text_embeds), ('points', None if points is None else points[0]),
            ('boxes', boxes), ('mask_inputs', mask_inputs)) if value is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError(f'prompts disagree on the number of prompts N: {sizes}')
        num_prompts = next(iter(sizes.values()), 1)
        # With no point, box or mask, SAM's encoder assumes one prompt: (1, 0, C), (1, C, h, w).
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_inputs)
        sparse = sparse.expand(num_prompts, -1, -1)
        dense = dense.expand(num_prompts, -1, -1, -1)
        if text_embeds is not None:
            if text_embeds.dim() != 3 or text_embeds.shape[-1] != self.embed_dim:
                raise ValueError(f'expected (N, T, {self.embed_dim}) text embeddings, got '
                                 f'{tuple(text_embeds.shape)}')
            sparse = torch.cat([sparse, text_embeds.to(sparse.dtype)], dim=1)
        return sparse, dense

    def _positional_autocast(self) -> ContextManager:
        """SAM's positional encoding multiplies float32 coordinates with its Gaussian matrix,
        which fails when the head is held in half precision; autocast to the matrix's dtype
        then runs that product in it, as EVF-SAM's patched prompt encoder does."""
        matrix = self.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
        device = matrix.device.type
        if matrix.dtype == torch.float32 or torch.is_autocast_enabled(device):
            return nullcontext()
        return torch.autocast(device, dtype=matrix.dtype)

    def postprocess_masks(self, masks: Tensor, input_size: Sequence[int],
                          original_size: Sequence[int]) -> Tensor:
        """Low-resolution logits -> logits at the original image size, as
        ``segment_anything.modeling.Sam.postprocess_masks`` (in float32, as EVF-SAM).

        Args:
            masks: (N, 1, 4h, 4w) mask logits.
            input_size: (h_resized, w_resized), the image inside the padded input.
            original_size: (H, W) of the image before resizing.

        Returns:
            (N, 1, H, W) float32 mask logits.
        """
        # segment_anything's own, which reads only its image encoder's input side
        sam = SimpleNamespace(image_encoder=SimpleNamespace(img_size=self.input_image_size))
        return Sam.postprocess_masks(sam, masks.float(), tuple(map(int, input_size)),
                                     tuple(map(int, original_size)))

    # ------------------------------------------------------------------ loss
    def loss(self, mask_logits: Tensor, gt_masks: Tensor,
             avg_factor: Optional[float] = None) -> Dict[str, Tensor]:
        """EVF-SAM's mask losses for the N masks of one image.

        Per mask j: ``bce_j`` = mean over pixels of BCE-with-logits, and
        ``dice_j = 1 - (2 Σ σ(p) t + 1e-3) / (Σ σ(p) + Σ t + 1e-3)`` (EVF-SAM's dice with its
        ``/1000`` scaling and eps 1e-6 written in pixel units), each times its loss weight.
        Each returned loss is ``Σ_j loss_j / avg_factor``:

        * ``avg_factor=None`` (default): N, i.e. the mean over this image's masks. Combine
          images as ``Σ_i N_i loss_i / Σ_i N_i`` (EVF-SAM's mean over all masks in the batch).
        * ``avg_factor`` = the number of masks in the whole batch: the per-image results simply
          add up to the batch loss.

        Args:
            mask_logits: (N, H, W) mask logits (at the original image size).
            gt_masks: (N, H, W) ground-truth masks in {0, 1}.
            avg_factor: divisor of the summed per-mask losses; ``None`` means N.

        Returns:
            ``dict(loss_mask_bce=, loss_mask_dice=)``, float32 scalars (0 if N = 0).
        """
        if mask_logits.shape != gt_masks.shape or mask_logits.dim() != 3:
            raise ValueError(f'expected (N, H, W) logits and masks of one shape, got '
                             f'{tuple(mask_logits.shape)} and {tuple(gt_masks.shape)}')
        if avg_factor is None:
            avg_factor = max(mask_logits.shape[0], 1)
        logits, target = mask_logits.float(), gt_masks.float()
        bce = self.loss_bce(logits, target, reduction_override='none')  # (N, H, W)
        dice = self.loss_dice(logits, target, reduction_override='none')  # (N,)
        return dict(
            loss_mask_bce=bce.flatten(1).mean(dim=1).sum() / avg_factor,
            loss_mask_dice=dice.sum() / avg_factor)
