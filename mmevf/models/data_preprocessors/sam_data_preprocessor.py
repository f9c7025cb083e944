"""Batching, normalisation and padding of SAM's image branch, the multimodal view and the
expressions, for every SAM-based mmevf model."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor

from mmevf.registry import MODELS


@MODELS.register_module()
class SAMDataPreprocessor(BaseDataPreprocessor):
    """Turn packed samples (see ``PackReferInputs``) into the model's batched inputs.

    Resizing happened in the pipeline (``SAMResize``); here the batch is moved to the device,
    normalised and padded, exactly as the official EVF-SAM preprocessing does:

    - SAM branch: BGR -> RGB, ``(x - mean) / std`` on the 0-255 scale, zero padding at the
      bottom / right to ``pad_size`` x ``pad_size`` (after normalisation, as SAM does). The
      longest side of every image must be ``pad_size`` (``SAMResize(sam_size=pad_size)``).
    - Multimodal branch: ``(x - mm_mean) / mm_std`` on the 0-1 scale (BEiT-3: 0.5 / 0.5;
      CLIP's own statistics for CLIP).
    - Expressions: every image's ``text_ids`` are concatenated in order and right-padded
      with ``pad_token_id``; ``expr_image_index`` maps each expression to its image.

    - Cached SAM embeddings (``LoadCachedEmbedding``, a frozen image encoder): the samples
      carry ``img_embed`` instead of ``img``; they are stacked as they are (no image to
      normalise) with their cache keys, which the segmentor checks against its encoder.

    Floating outputs are float32; the segmentor casts them to its weights' dtype.

    Returns ``dict(inputs=dict(img=(B, 3, P, P), mm_img=(B, 3, 224, 224),
    text_ids=(N, L) long, text_padding_mask=(N, L) bool True at padding,
    expr_image_index=(N,) long), data_samples=[...])`` with ``N`` the number of expressions;
    with a cache ``img_embed=(B, C, P / 16, P / 16)`` and ``img_embed_key=(B, 32)`` uint8
    replace ``img``.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = True,
                 pad_size: Optional[int] = None,
                 mm_mean: Sequence[float] = (0.5, 0.5, 0.5),
                 mm_std: Sequence[float] = (0.5, 0.5, 0.5),
                 pad_token_id: int = 1,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(-1, 1, 1), False)
        self.register_buffer('mm_mean', torch.tensor(mm_mean).view(-1, 1, 1), False)
        self.register_buffer('mm_std', torch.tensor(mm_std).view(-1, 1, 1), False)
        self.bgr_to_rgb = bgr_to_rgb
        self.pad_size = pad_size
        self.pad_token_id = pad_token_id

    def sam_images(self, images: List[torch.Tensor]) -> torch.Tensor:
        """[(3, h, w) uint8 BGR] -> (B, 3, pad_size, pad_size) normalised RGB."""
        if self.pad_size is None:
            raise ValueError('pad_size is unset: the segmentor sets it to its image encoder\'s '
                             'img_size; give it when using the preprocessor alone')
        batch = []
        for img in images:
            if max(img.shape[-2:]) != self.pad_size:
                raise ValueError(
                    f'image of shape {tuple(img.shape)} does not fit the image encoder\'s input '
                    f'{self.pad_size}: resize it in the pipeline with '
                    f'SAMResize(sam_size={self.pad_size})')
            if self.bgr_to_rgb:
                img = img.flip(0)
            img = (img.float() - self.mean.float()) / self.std.float()
            batch.append(F.pad(img, (0, self.pad_size - img.shape[-1],
                                     0, self.pad_size - img.shape[-2])))
        return torch.stack(batch)

    def cached_embeddings(self, embeddings: List[torch.Tensor],
                          keys: List[torch.Tensor]) -> dict:
        """[(C, h, w) cached embeddings], [(32,) uint8 cache keys] -> ``img_embed`` (B, C, h, w)
        float32 and ``img_embed_key`` (B, 32). (The prompt head checks the embedding shape.)"""
        return dict(img_embed=torch.stack(embeddings).float(), img_embed_key=torch.stack(keys))

    def mm_images(self, images: List[torch.Tensor]) -> torch.Tensor:
        """[(3, S, S) float RGB in about 0-1] -> (B, 3, S, S) normalised."""
        batch = torch.stack(images).float()
        return (batch - self.mm_mean.float()) / self.mm_std.float()

    def text_batch(self, data_samples: list) -> dict:
        """All expressions of all images -> padded ids, padding mask, image index."""
        ids = [t for sample in data_samples for t in sample.text_ids]
        if not ids:
            raise ValueError('the batch holds no expression')
        image_index = [i for i, sample in enumerate(data_samples) for _ in sample.text_ids]
        text_ids = torch.nn.utils.rnn.pad_sequence(
            ids, batch_first=True, padding_value=self.pad_token_id).to(self.device)
        lengths = torch.tensor([len(t) for t in ids], device=self.device)
        padding = torch.arange(text_ids.shape[1], device=self.device)[None] >= lengths[:, None]
        return dict(
            text_ids=text_ids,
            text_padding_mask=padding,
            expr_image_index=torch.tensor(image_index, device=self.device))

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, data_samples = data['inputs'], data.get('data_samples')
        if 'img_embed' in inputs:  # the image encoder's output, read from a cache
            batch = self.cached_embeddings(inputs['img_embed'], inputs['img_embed_key'])
        else:
            batch = dict(img=self.sam_images(inputs['img']))
        if 'mm_img' in inputs:
            batch['mm_img'] = self.mm_images(inputs['mm_img'])
        if data_samples is not None:
            if all('text_ids' in sample for sample in data_samples):
                batch.update(self.text_batch(data_samples))
            elif any('text_ids' in sample for sample in data_samples):
                raise ValueError('some samples of the batch carry text_ids, others do not')
            pad_shape = (self.pad_size, self.pad_size)
            for sample in data_samples:
                sample.set_metainfo(dict(batch_input_shape=pad_shape, pad_shape=pad_shape))
        return dict(inputs=batch, data_samples=data_samples)

