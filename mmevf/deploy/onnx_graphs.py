"""EVF-SAM as three traceable graphs: "encode the image once, prompt many times".

- :class:`ImageEncoderGraph`: (1, 3, S, S) padded normalised image -> (1, C, h, w) SAM image
  embedding.
- :class:`TextEncoderGraph`: (1, 3, s, s) multimodal view of the image and E tokenised
  expressions (E, L) -> (E, T, C) prompt tokens (the multimodal encoder and the projector:
  ``EVFSAM.encode_prompts``).
- :class:`MaskDecoderGraph`: the image embedding, E prompt tokens (E, T, C), points / box corners
  (E, P, 2) with labels (E, P) as segment_anything's ONNX decoder takes them, and the original
  (H, W) -> (E, 1, H, W) mask logits at the original size, (E, 1) predicted IoUs (and (E,)
  no-target logits for a model with a no-target head).

Each computes exactly what the PyTorch model computes on the same inputs (the same modules,
called the same way); :func:`reference_path` switches off the CPU fast paths (oneDNN's fused
linear, the fused SAM attention), whose operators have no ONNX form, for the export.
"""
import importlib
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# labels of the decoder's point input (segment_anything's ONNX convention)
PAD_LABEL, BACKGROUND, FOREGROUND, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1, 0, 1, 2, 3


@contextmanager
def reference_path(model: nn.Module) -> Iterator[None]:
    """Run ``model`` through plain torch operators while the context lasts: oneDNN's fused
    linear off (:mod:`mmevf.models.layers.fused_linear`) and every module with a
    ``fast_attention`` switch (``SAMImageEncoder``) on segment_anything's own forward. Both
    paths compute the same function (their parity is tested where they are defined)."""
    fused = importlib.import_module('mmevf.models.layers.fused_linear')
    switched = [m for m in model.modules() if getattr(m, 'fast_attention', False) is True]
    onednn = fused.ONEDNN_LINEAR
    try:
        fused.ONEDNN_LINEAR = False
        for module in switched:
            module.fast_attention = False
        yield
    finally:
        fused.ONEDNN_LINEAR = onednn
        for module in switched:
            module.fast_attention = True


class ImageEncoderGraph(nn.Module):
    """SAM's image encoder: (1, 3, S, S) -> (1, C, S / 16, S / 16) (the model's own
    ``image_encoder``)."""

    input_names = ('image', )
    output_names = ('image_embeddings', )

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.image_encoder

    def forward(self, image: Tensor) -> Tensor:
        return self.encoder(image)


class TextEncoderGraph(nn.Module):
    """The model's ``encode_prompts`` for E expressions of one image: the multimodal view
    (1, 3, s, s) (absent for a text-only encoder, ``mm_encoder_image=False``), token ids (E, L)
    int64 and the padding mask (E, L) bool (True at padding) -> (E, T, C) prompt tokens."""

    output_names = ('prompt_tokens', )

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.with_image = bool(getattr(model, 'mm_encoder_image', True))

    @property
    def input_names(self) -> Tuple[str, ...]:
        return (('mm_image', ) if self.with_image else ()) + ('text_ids', 'text_padding_mask')

    def forward(self, *args: Tensor) -> Tensor:
        if self.with_image:
            mm_image, text_ids, text_padding_mask = args
        else:
            (text_ids, text_padding_mask), mm_image = args, None
        # every expression reads the same image: index 0 for each, as the data preprocessor's
        # expr_image_index maps them
        inputs = dict(text_ids=text_ids, text_padding_mask=text_padding_mask,
                      expr_image_index=torch.zeros_like(text_ids[:, 0]))
        if mm_image is not None:
            inputs['mm_img'] = mm_image
        return self.model.encode_prompts(inputs)


class MaskDecoderGraph(nn.Module):
    """SAM's prompt encoder and mask decoder as the model's ``prompt_head`` runs them, with the
    text tokens appended after the point / box tokens, and the masks brought to the original
    size as ``SAMPromptHead.postprocess_masks`` does.

    Inputs (one image, E prompts of one layout):

    - ``image_embeddings`` (1, C, h, w);
    - ``prompt_tokens`` (E, T, C): the text prompt tokens, T = 0 for prompts without text;
    - ``point_coords`` (E, P, 2) float32 xy in the image encoder's input frame and
      ``point_labels`` (E, P) float32: 1 foreground, 0 background, -1 padding, 2 / 3 the top-left
      / bottom-right corners of a box (segment_anything's ONNX decoder's encoding). As SAM's
      prompt encoder, points without a box end with one padding point (0, 0, label -1); a box
      comes after the points as its two corners; P = 0 for text alone;
    - ``orig_im_size`` (2,) float32 (H, W) of the original image.

    Outputs: ``masks`` (E, 1, H, W) logits, ``iou_predictions`` (E, 1) and, for a model with
    a no-target head, ``no_target_logits`` (E,).
    """

    input_names = ('image_embeddings', 'prompt_tokens', 'point_coords', 'point_labels',
                   'orig_im_size')

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = model.prompt_head
        self.no_target_head = getattr(model, 'no_target_head', None)
        self.img_size = int(self.head.input_image_size)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return ('masks', 'iou_predictions') + (
            ('no_target_logits', ) if self.no_target_head is not None else ())

    def embed_points(self, coords: Tensor, labels: Tensor) -> Tensor:
        """(E, P, 2) coordinates and (E, P) labels -> (E, P, C) sparse tokens, as SAM's
        ``PromptEncoder`` embeds points (``_embed_points``) and box corners (``_embed_boxes``):
        the positional encoding of the pixel centre plus the label's learned embedding; a
        padding point is the "not a point" embedding alone."""
        encoder = self.head.prompt_encoder
        positional = encoder.pe_layer._pe_encoding((coords + 0.5) / self.img_size)
        labels = labels[..., None]
        learned = [BACKGROUND, FOREGROUND, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]
        embedded = positional
        for label in learned:
            weight = encoder.point_embeddings[label].weight  # (1, C)
            embedded = torch.where(labels == label, positional + weight, embedded)
        return torch.where(labels == PAD_LABEL, encoder.not_a_point_embed.weight, embedded)

    def to_original_size(self, masks: Tensor, orig_im_size: Tensor) -> Tensor:
        """(E, 1, 4h, 4w) low-resolution logits -> (E, 1, H, W): upsampled to the padded input,
        the padding cropped, resized to the original (H, W); the resized size computed in float64
        as ``ResizeLongestSide.get_preprocess_shape`` computes it in Python."""
        side = self.img_size
        masks = F.interpolate(masks, (side, side), mode='bilinear', align_corners=False)
        size = orig_im_size.to(torch.float64)
        resized = torch.floor(size * (side / size.max()) + 0.5).to(torch.int64)
        masks = masks[..., :resized[0], :resized[1]]
        original = orig_im_size.to(torch.int64)
        return F.interpolate(masks, size=(original[0], original[1]), mode='bilinear',
                             align_corners=False)

    def forward(self, image_embeddings: Tensor, prompt_tokens: Tensor, point_coords: Tensor,
                point_labels: Tensor, orig_im_size: Tensor) -> Tuple[Tensor, ...]:
        head = self.head
        encoder = head.prompt_encoder
        num_prompts = prompt_tokens.shape[0]
        sparse = torch.cat([self.embed_points(point_coords, point_labels),
                            prompt_tokens.to(point_coords.dtype)], dim=1)
        size = image_embeddings.shape[-2:]
        dense = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            num_prompts, -1, size[0], size[1])
        # the IoU head's input (the IoU token after the two-way transformer) feeds the
        # no-target head, read as SAMPromptHead.forward_with_iou_token reads it
        tokens: List[Tensor] = []
        handle = None if self.no_target_head is None else \
            head.mask_decoder.iou_prediction_head.register_forward_pre_hook(
                lambda module, args: tokens.append(args[0]))
        try:
            masks, iou = head.mask_decoder(
                image_embeddings=image_embeddings, image_pe=encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=head.multimask_output)
        finally:
            if handle is not None:
                handle.remove()
        if head.multimask_output:  # the mask with the highest predicted IoU, as the head keeps
            best = iou.argmax(dim=1, keepdim=True)
            masks = masks.gather(1, best[..., None, None].expand(-1, -1, *masks.shape[2:]))
            iou = iou.gather(1, best)
        outputs = (self.to_original_size(masks, orig_im_size), iou)
        if self.no_target_head is not None:
            outputs += (self.no_target_head(tokens[0]), )
        return outputs
