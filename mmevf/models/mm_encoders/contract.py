"""What every EVF-SAM multimodal encoder accepts and returns.

``encoder(images, text_ids, text_padding_mask) -> (B, Nv + L, C)`` tokens:

- ``images``: (B, 3, S, S) images normalised by the data preprocessor (``mm_mean`` /
  ``mm_std``), S the encoder's input side (``SAMResize(mm_size=S)``), or ``None``;
- ``text_ids``: (B, L) int64 token ids of the encoder's own tokenizer (``TokenizeText``), or
  ``None``; ``text_padding_mask``: (B, L) bool, True at padding (``None``: no padding);
- the output holds the vision tokens first (Nv = ``num_vision_tokens``, 0 without images; the
  image [CLS]-like token at position 0), then L text tokens (the text [CLS]-like token at
  position Nv); C = ``embed_dims``. ``EVFProjector`` picks its token by these positions.

Implementations, each checking its inputs with :func:`check_mm_inputs`:
``BEiT3MultiwayEncoder`` (early fusion), ``CLIPEncoder`` (none / late fusion), ``ViLTEncoder``
(early fusion).
"""
from typing import Optional

from torch import Tensor


def check_mm_inputs(name: str, images: Optional[Tensor], text_ids: Optional[Tensor],
                    text_padding_mask: Optional[Tensor], img_size: Optional[int],
                    max_text_length: int) -> None:
    """Raise a ``ValueError`` naming the encoder when the inputs break the contract.

    Args:
        name: the encoder's class name, for messages.
        images / text_ids / text_padding_mask: the encoder's inputs.
        img_size: the side S the images must have; ``None``: the encoder takes no images.
        max_text_length: the longest text (in tokens, special tokens included) it can read.
    """
    if images is None and text_ids is None:
        raise ValueError(f'{name} needs images, text_ids or both')
    if images is not None:
        if img_size is None:
            raise ValueError(f'{name} was built without an image branch but got images')
        if images.dim() != 4 or images.shape[2:] != (img_size, img_size):
            raise ValueError(f'{name}: images must be (B, C, {img_size}, {img_size}) (the '
                             f'pipeline\'s SAMResize(mm_size={img_size})), got '
                             f'{tuple(images.shape)}')
    if text_ids is None:
        if text_padding_mask is not None:
            raise ValueError(f'{name}: text_padding_mask given without text_ids')
        return
    if text_ids.dim() != 2:
        raise ValueError(f'{name}: text_ids must be (B, L), got {tuple(text_ids.shape)}')
    if text_ids.shape[1] > max_text_length:
        raise ValueError(f'{name}: text of {text_ids.shape[1]} tokens is longer than the '
                         f'{max_text_length} its position table allows; truncate it with '
                         f'TokenizeText(max_length={max_text_length})')
    if images is not None and images.shape[0] != text_ids.shape[0]:
        raise ValueError(f'{name}: batch sizes differ: {images.shape[0]} images, '
                         f'{text_ids.shape[0]} texts')
    if text_padding_mask is not None and text_padding_mask.shape != text_ids.shape:
        raise ValueError(f'{name}: text_padding_mask {tuple(text_padding_mask.shape)} does not '
                         f'match text_ids {tuple(text_ids.shape)}')
