"""Base of the text-prompted SAM segmentors: expressions grouped by their image, each optionally
prompted by points and a box as well (or by points / a box alone)."""
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .base import BaseSAMSegmentor, LowResOutput

# Data-sample fields holding the geometric prompts, one entry (or None) per expression.
GEOMETRIC_FIELDS = ('prompt_points', 'prompt_point_labels', 'prompt_boxes')
# (text, (points, labels), boxes) of expressions of one layout -> their low-resolution output;
# points and boxes default to None (a model without geometric prompts takes the text alone)
DecodeGroup = Callable[[Optional[Tensor], Optional[Tuple[Tensor, Tensor]], Optional[Tensor]],
                       LowResOutput]


class ExpressionPrompt(NamedTuple):
    """The prompts of one expression, in the image encoder's input frame."""
    text_index: Optional[int]  # row in its image's text embeddings; None: no text
    points: Optional[Tensor]  # (P, 2) float32 xy in input pixels
    labels: Optional[Tensor]  # (P,) long: 1 foreground, 0 background
    box: Optional[Tensor]  # (4,) float32 xyxy in input pixels

    @property
    def layout(self) -> Tuple[bool, int, bool]:
        """(has text, number of points, has box): prompts of one layout decode together."""
        return (self.text_index is not None, 0 if self.points is None else len(self.points),
                self.box is not None)


def to_input_frame(xy: Tensor, ori_shape: Sequence[int], img_shape: Sequence[int]) -> Tensor:
    """(..., 2) xy in original-image pixels -> float32 xy in the resized image.

    ``ResizeLongestSide.apply_coords`` of segment_anything's ``SamPredictor``: x scaled by
    w' / W, y by h' / H, in float64 (its numpy arithmetic) before the cast to float32, so the
    prompts are bit-identical to SAM's.
    """
    (old_h, old_w), (new_h, new_w) = ori_shape[:2], img_shape[:2]
    scale = torch.tensor([new_w / old_w, new_h / old_h], dtype=torch.float64, device=xy.device)
    return (xy.to(torch.float64) * scale).float()


class TextPromptSegmentor(BaseSAMSegmentor):
    """Base of the text-prompted SAM segmentors (``EVFSAM``, ``DITSAM``).

    The data preprocessor batches the N expressions of B images together and maps each to its
    image (``expr_image_index``, (N,)). A subclass whose text is a prompt next to the image
    (``EVFSAM``, ``EVFSAM2``) gives ``encode_prompts`` (expressions -> (N, T, C) prompts) and
    :meth:`group_decoders` (each image's features once, and how prompts decode against them);
    :meth:`decode` and :meth:`decode_geometric` are built on them. Others (``DITSAM``)
    implement :meth:`decode` and regroup their per-expression results with
    :meth:`group_by_image`.

    **Points and boxes** (predict / tensor / loss modes). A data sample may carry, for each of
    its N_i expressions, geometric prompts in *original-image* pixels (``TextSegInferencer``
    sets them after the pipeline):

    - ``prompt_points``: N_i entries, ``None`` or (P_j, 2) xy;
    - ``prompt_point_labels``: N_i entries, ``None`` or (P_j,) labels, 1 foreground, 0 background;
    - ``prompt_boxes``: N_i entries, ``None`` or (4,) xyxy;
    - ``text`` (metainfo): N_i entries; ``None`` marks an expression **without text** (points /
      box only). Only the expressions with text have ``text_ids``, so ``text_ids`` and the
      preprocessor's ``expr_image_index`` cover those alone (the whole batch may have none:
      then ``inputs`` has no ``text_ids``).

    Such samples are decoded by :meth:`decode_geometric` (``EVFSAM``: the SAM decoder gets the
    point / box tokens, then the text token, as SAM's prompt encoder orders them; the projects'
    ``EVFSAM2`` the same with SAM-2's); a batch without these fields takes :meth:`decode`
    unchanged. Coordinates are mapped to the image encoder's input exactly as ``SamPredictor``
    maps them (:func:`to_input_frame`).
    """
    # a subclass whose DecodeGroups take points / boxes sets this
    supports_geometric_prompts: bool = False

    def decode(self, inputs: Dict[str, Tensor]) -> List[LowResOutput]:
        """Low-resolution mask logits and IoU predictions, one entry per image: each image's
        text prompts decoded against its features (computed once per image)."""
        decoders, _ = self.group_decoders(inputs)
        prompts = self.group_by_image(self.encode_prompts(inputs), inputs)
        return [decode_group(prompts_i) for decode_group, prompts_i in zip(decoders, prompts)]

    def group_decoders(self, inputs: Dict[str, Tensor]) -> Tuple[List[DecodeGroup], torch.device]:
        """Per image of the batch, how expressions of one layout decode against it (its
        features computed once): a :data:`DecodeGroup` each, and the features' device."""
        raise NotImplementedError

    def decode_geometric(self, inputs: Dict[str, Tensor],
                         data_samples: list) -> List[LowResOutput]:
        """:meth:`decode` for samples carrying points / boxes (see the class docstring): the
        image features once per image (:meth:`group_decoders`), the expressions with text
        through ``encode_prompts``, then :meth:`decode_expressions` per image."""
        if not self.supports_geometric_prompts:
            raise ValueError(f'{type(self).__name__} takes text prompts only: points, boxes '
                             f'and expressions without text need a model that prompts SAM\'s '
                             f'mask decoder with them (EVFSAM, EVFSAM2)')
        decoders, device = self.group_decoders(inputs)
        texts: List[Optional[Tensor]] = [None] * len(data_samples)
        if 'text_ids' in inputs:  # only the expressions with text are encoded
            texts = self.group_by_image(self.encode_prompts(inputs), inputs)
        return [
            self.decode_expressions(
                decode_group, text,
                self.expression_prompts(sample, 0 if text is None else len(text)), device)
            for decode_group, text, sample in zip(decoders, texts, data_samples)
        ]

    def decode_batch(self, inputs: Dict[str, Tensor],
                     data_samples: Optional[list] = None) -> List[LowResOutput]:
        if data_samples is not None and any(self.has_geometric_prompts(s) for s in data_samples):
            return self.decode_geometric(inputs, data_samples)
        return self.decode(inputs)

    @staticmethod
    def group_by_image(values: Tensor, inputs: Dict[str, Tensor]) -> List[Tensor]:
        """(N, ...) per-expression values -> one (N_i, ...) tensor per image, in batch order."""
        image_index = inputs['expr_image_index']
        # with cached image embeddings the batch has `img_embed` instead of `img`
        num_images = int((inputs['img'] if 'img' in inputs else inputs['img_embed']).shape[0])
        return [values[image_index == i] for i in range(num_images)]

    # ------------------------------------------------------------------ geometric prompts
    @staticmethod
    def has_geometric_prompts(sample) -> bool:
        """Whether ``sample`` carries any of the fields ``prompt_points``,
        ``prompt_point_labels``, ``prompt_boxes``."""
        return any(field in sample for field in GEOMETRIC_FIELDS)

    @staticmethod
    def expression_prompts(sample, num_texts: int) -> List[ExpressionPrompt]:
        """The N_i expressions of one data sample in the image encoder's input frame.

        Args:
            sample: the data sample (``ori_shape``, ``img_shape``, the optional fields of the
                class docstring).
            num_texts: how many text embeddings the model made for this image.

        Raises:
            ValueError naming the image: fields of different lengths, text entries that do
            not match ``num_texts``, malformed points / boxes, or an expression with no prompt.
        """
        name = sample.get('img_path') or f'image #{sample.get("img_id", "?")}'
        fields = {f: list(sample.get(f)) for f in GEOMETRIC_FIELDS if f in sample}
        texts = list(sample.text) if 'text' in sample else None
        sizes = {f: len(v) for f, v in fields.items()}
        if texts is not None:
            sizes['text'] = len(texts)
        if not fields:  # a text-only sample in a batch that has geometric prompts elsewhere
            sizes['text_ids'] = num_texts
        if len(set(sizes.values())) > 1:
            raise ValueError(f'{name}: the prompt fields disagree on the number of '
                             f'expressions: {sizes}')
        count = next(iter(sizes.values()))
        has_text = [True] * count if texts is None else [t is not None for t in texts]
        if sum(has_text) != num_texts:
            raise ValueError(f'{name}: {sum(has_text)} expressions have text but the model '
                             f'encoded {num_texts} (text_ids)')
        ori_shape, img_shape = sample.ori_shape, sample.img_shape
        columns = [fields.get(f, [None] * count) for f in GEOMETRIC_FIELDS]
        prompts, text_index = [], 0
        for j, (points, labels, box) in enumerate(zip(*columns)):
            if (points is None) != (labels is None):
                raise ValueError(f'expression #{j} of {name}: prompt_points and '
                                 f'prompt_point_labels must be given together')
            if points is not None:
                points = torch.as_tensor(points, dtype=torch.float64)
                labels = torch.as_tensor(labels).long()
                if points.dim() != 2 or points.shape[1] != 2 or not len(points) or \
                        labels.shape != points.shape[:1]:
                    raise ValueError(f'expression #{j} of {name}: expected (P, 2) points and '
                                     f'(P,) labels with P > 0, got {tuple(points.shape)} and '
                                     f'{tuple(labels.shape)}')
                points = to_input_frame(points, ori_shape, img_shape)
            if box is not None:
                box = torch.as_tensor(box, dtype=torch.float64)
                if box.shape != (4, ):
                    raise ValueError(f'expression #{j} of {name}: expected a (4,) xyxy box, '
                                     f'got {tuple(box.shape)}')
                box = to_input_frame(box.view(2, 2), ori_shape, img_shape).view(4)
            if not has_text[j] and points is None and box is None:
                raise ValueError(f'expression #{j} of {name} has no prompt: no text, point '
                                 f'or box')
            prompts.append(ExpressionPrompt(text_index if has_text[j] else None, points,
                                            labels, box))
            text_index += has_text[j]
        return prompts

    def decode_expressions(self, decode_group: DecodeGroup, text_embeds: Optional[Tensor],
                           prompts: List[ExpressionPrompt],
                           device: torch.device) -> LowResOutput:
        """Decode the N_i expressions of one image.

        Args:
            decode_group: decodes expressions of one layout against the image:
                ``(text (G, T, C) | None, points ((G, P, 2), (G, P)) | None, boxes (G, 4) |
                None) -> ((G, 1, 4h, 4w) logits, (G, 1) IoUs)`` (``EVFSAM``: its
                ``prompt_head`` on the image embedding).
            text_embeds: (T_i, T, C) prompt tokens of its expressions with text (T_i rows,
                indexed by ``ExpressionPrompt.text_index``), or ``None`` if T_i = 0.
            prompts: the expressions (:meth:`expression_prompts`).
            device: where the image's features are.

        Returns:
            (N_i, 1, 4h, 4w) low-resolution mask logits and (N_i, 1) predicted IoUs, in the
            order of ``prompts``.

        Expressions of one layout (text or not, point count, box or not) are decoded in one
        call; other layouts apart: padding them to a common point count would add SAM's
        padding tokens to the decoder's prompts and change their masks.
        """
        groups: Dict[Tuple[bool, int, bool], List[int]] = {}
        for j, prompt in enumerate(prompts):
            groups.setdefault(prompt.layout, []).append(j)
        order, masks, ious = [], [], []
        for (has_text, num_points, has_box), members in groups.items():
            chosen = [prompts[j] for j in members]
            text = text_embeds[[p.text_index for p in chosen]] if has_text else None
            points = (torch.stack([p.points for p in chosen]).to(device),
                      torch.stack([p.labels for p in chosen]).to(device)) if num_points else None
            boxes = torch.stack([p.box for p in chosen]).to(device) if has_box else None
            mask, iou = decode_group(text, points, boxes)
            order += members
            masks.append(mask)
            ious.append(iou)
        inverse = torch.argsort(torch.tensor(order, device=device))
        return torch.cat(masks)[inverse], torch.cat(ious)[inverse]
