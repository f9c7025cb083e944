"""Base of the text-prompted SAM segmentors: expressions grouped by their image, each optionally
prompted by points and a box as well (or by points / a box alone)."""
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmevf.registry import MODELS
from .base import BaseSAMSegmentor, LowResOutput

# Data-sample fields holding the geometric prompts, one entry (or None) per expression.
GEOMETRIC_FIELDS = ('prompt_points', 'prompt_point_labels', 'prompt_boxes')
# LowResOutput plus the (N_i,) no-target logits, from a segmentor with a no-target head
NoTargetOutput = Tuple[Tensor, Tensor, Tensor]
# What the decoding methods give per image (or layout group): LowResOutput, or NoTargetOutput
# exactly when the segmentor has a no-target head (``no_target_head is not None``).
DecodeOutput = Union[LowResOutput, NoTargetOutput]
# (text, (points, labels), boxes) of expressions of one layout -> their low-resolution output;
# points and boxes default to None (a model without geometric prompts takes the text alone)
DecodeGroup = Callable[[Optional[Tensor], Optional[Tuple[Tensor, Tensor]], Optional[Tensor]],
                       DecodeOutput]


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

    **Expressions without target** (generalized referring segmentation, as gRefCOCO). A data
    sample's metainfo may carry ``no_target``: N_i bools (absent: all False); the ground-truth
    mask of such an expression is empty. With a ``no_target_head`` (a ``NoTargetHead``,
    reading SAM's IoU-token output through :meth:`decode_prompt_head`):

    - every decoding method gives, per image, ``(low-res logits, IoUs, (N_i,) no-target
      logits)`` (:data:`NoTargetOutput`, also in ``tensor`` mode) instead of the 2-tuple
      :data:`LowResOutput`: the logit travels with the masks it belongs to, through the
      regrouping by image and layout, and a model without the head gives exactly what it gave
      before (the type says which: :data:`DecodeOutput`);
    - ``loss`` adds ``loss_no_target`` (BCE-with-logits on the flags, averaged over the
      batch's expressions); the mask losses count the target expressions only, or all of them
      (the empty mask as target) with ``mask_loss_on_no_target``;
    - ``predict`` adds ``no_target`` (N_i,) bool and ``no_target_scores`` (N_i,) float32
      (sigmoid) to ``pred_instances`` and empties the masks scored above
      ``no_target_threshold``.

    Args:
        data_preprocessor: ``SAMDataPreprocessor`` config (or module).
        init_cfg: mmengine init config.
        no_target_head: ``NoTargetHead`` config, or ``None`` (default: no head, no new key,
            the outputs of a model built without it). ``in_channels`` defaults to the prompt
            head's ``embed_dim``. Built by :meth:`build_sam` next to the prompt head it reads;
            it always trains (new weights), whatever the subclass's ``trainable``.
        no_target_threshold: with the head, expressions whose no-target probability is above
            it are predicted without target (empty mask).
        mask_loss_on_no_target: with the head, also count no-target expressions in the mask
            losses (target: the empty mask); ``False``: target expressions only.
    """
    # a subclass whose DecodeGroups take points / boxes sets this
    supports_geometric_prompts: bool = False

    def __init__(self,
                 data_preprocessor: Union[dict, torch.nn.Module],
                 init_cfg: Optional[dict] = None,
                 no_target_head: Optional[dict] = None,
                 no_target_threshold: float = 0.5,
                 mask_loss_on_no_target: bool = False) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # built with the prompt head (build_sam); a plain attribute until then, so that a
        # model without the head has no new module and no new state-dict key
        self._no_target_head_cfg = None if no_target_head is None else dict(no_target_head)
        self.no_target_head: Optional[torch.nn.Module] = None
        self.no_target_threshold = float(no_target_threshold)
        self.mask_loss_on_no_target = bool(mask_loss_on_no_target)

    def build_sam(self, image_encoder: dict, prompt_head: dict) -> None:
        """:meth:`BaseSAMSegmentor.build_sam`, then the no-target head (if configured) on the
        prompt head's tokens."""
        super().build_sam(image_encoder, prompt_head)
        if self._no_target_head_cfg is None:
            return
        if not hasattr(self.prompt_head, 'forward_with_iou_token'):
            raise TypeError(f'no_target_head reads SAM\'s IoU token through '
                            f'SAMPromptHead.forward_with_iou_token; '
                            f'{type(self.prompt_head).__name__} has none')
        cfg = dict(self._no_target_head_cfg)
        cfg.setdefault('in_channels', self.prompt_head.embed_dim)
        # its random initial weights leave the random stream as they found it: the modules
        # built after it start as in the model without the head, so the two compare run to run
        with torch.random.fork_rng(devices=[]):
            self.no_target_head = MODELS.build(cfg)

    def set_trainable(self, trainable: Sequence[str], frozen_modules: Sequence[str] = (),
                      always_frozen: Sequence[str] = ()) -> None:
        """:meth:`BaseSAMSegmentor.set_trainable`; a no-target head trains in any case (its
        weights are new: a ``trainable`` written for the model without it must not freeze
        it at its random initialisation)."""
        trainable = tuple(trainable)
        if self.no_target_head is not None and not any(
                'no_target_head'.startswith(prefix) for prefix in trainable):
            trainable += ('no_target_head', )
        super().set_trainable(trainable, frozen_modules, always_frozen)

    def decode_prompt_head(self, image_embeddings: Tensor, text_embeds: Optional[Tensor] = None,
                           points: Optional[Tuple[Tensor, Tensor]] = None,
                           boxes: Optional[Tensor] = None) -> DecodeOutput:
        """The prompt head on one image's (1, C, h, w) embedding for N prompts (its
        ``forward`` arguments): (N, 1, 4h, 4w) logits and (N, 1) IoUs; with a no-target
        head also its (N,) logits, read from SAM's IoU-token output."""
        # only the prompts given: a head that takes text alone (EfficientSAM's) is called
        # exactly as before
        prompts = dict(points=points, boxes=boxes)
        prompts = {name: value for name, value in prompts.items() if value is not None}
        if self.no_target_head is None:
            return self.prompt_head(image_embeddings, text_embeds, **prompts)
        masks, ious, token = self.prompt_head.forward_with_iou_token(
            image_embeddings, text_embeds, **prompts)
        return masks, ious, self.no_target_head(token)

    def decode(self, inputs: Dict[str, Tensor]) -> List[DecodeOutput]:
        """Low-resolution mask logits and IoU predictions (and no-target logits, with the
        head), one entry per image: each image's text prompts decoded against its features
        (computed once per image)."""
        decoders, _ = self.group_decoders(inputs)
        prompts = self.group_by_image(self.encode_prompts(inputs), inputs)
        return [decode_group(prompts_i) for decode_group, prompts_i in zip(decoders, prompts)]

    def group_decoders(self, inputs: Dict[str, Tensor]) -> Tuple[List[DecodeGroup], torch.device]:
        """Per image of the batch, how expressions of one layout decode against it (its
        features computed once): a :data:`DecodeGroup` each, and the features' device."""
        raise NotImplementedError

    def decode_geometric(self, inputs: Dict[str, Tensor],
                         data_samples: list) -> List[DecodeOutput]:
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
                     data_samples: Optional[list] = None) -> List[DecodeOutput]:
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
                           device: torch.device) -> DecodeOutput:
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
            (N_i, 1, 4h, 4w) low-resolution mask logits and (N_i, 1) predicted IoUs (and
            (N_i,) no-target logits, with the head), in the order of ``prompts``.

        Expressions of one layout (text or not, point count, box or not) are decoded in one
        call; other layouts apart: padding them to a common point count would add SAM's
        padding tokens to the decoder's prompts and change their masks.
        """
        groups: Dict[Tuple[bool, int, bool], List[int]] = {}
        for j, prompt in enumerate(prompts):
            groups.setdefault(prompt.layout, []).append(j)
        order, outputs = [], []
        for (has_text, num_points, has_box), members in groups.items():
            chosen = [prompts[j] for j in members]
            text = text_embeds[[p.text_index for p in chosen]] if has_text else None
            points = (torch.stack([p.points for p in chosen]).to(device),
                      torch.stack([p.labels for p in chosen]).to(device)) if num_points else None
            boxes = torch.stack([p.box for p in chosen]).to(device) if has_box else None
            outputs.append(decode_group(text, points, boxes))
            order += members
        inverse = torch.argsort(torch.tensor(order, device=device))
        # each element (logits, IoUs, no-target logits) back in the order of `prompts`
        return tuple(torch.cat(column)[inverse] for column in zip(*outputs))

    # ------------------------------------------------------------------ no-target expressions
    @staticmethod
    def no_target_flags(sample, count: int, device: torch.device) -> Tensor:
        """A sample's ``no_target`` metainfo (absent: all False) as (N_i,) bool.

        Raises:
            ValueError naming the image if it does not have ``count`` entries.
        """
        flags = sample.get('no_target')
        if flags is None:
            return torch.zeros(count, dtype=torch.bool, device=device)
        flags = torch.as_tensor(list(flags), dtype=torch.bool, device=device).view(-1)
        if len(flags) != count:
            name = sample.get('img_path') or f'image #{sample.get("img_id", "?")}'
            raise ValueError(f'{name}: {len(flags)} no_target flags for {count} expressions')
        return flags

    def loss(self, inputs: Dict[str, Tensor], data_samples: list) -> Dict[str, Tensor]:
        """:meth:`BaseSAMSegmentor.loss`; with a no-target head also ``loss_no_target`` and
        the mask losses on the target expressions only (all of them with
        ``mask_loss_on_no_target``), averaged over the masks that count."""
        return self.loss_by_outputs(self.mask_logits(inputs, data_samples), data_samples)

    def loss_by_outputs(self, outputs: List[Tuple[Tensor, ...]],
                        data_samples: list) -> Dict[str, Tensor]:
        """:meth:`loss` of the batch's :meth:`mask_logits` ``outputs`` (for a subclass that
        decodes the batch itself, e.g. to reuse what decoding computed)."""
        logits = [output[0] for output in outputs]
        if self.no_target_head is None:
            return self.batch_mask_loss(logits, data_samples)
        flags = [self.no_target_flags(sample, len(output[0]), output[0].device)
                 for output, sample in zip(outputs, data_samples)]
        keep = None if self.mask_loss_on_no_target else [~f for f in flags]
        losses = self.batch_mask_loss(logits, data_samples, keep)
        losses.update(self.no_target_head.loss(torch.cat([output[2] for output in outputs]),
                                               torch.cat(flags)))
        return losses

    def predict(self, inputs: Dict[str, Tensor], data_samples: list) -> list:
        """:meth:`BaseSAMSegmentor.predict`; with a no-target head ``pred_instances`` also
        holds ``no_target`` (N_i,) bool and ``no_target_scores`` (N_i,) float32, and the
        masks of the expressions without target are empty."""
        if self.no_target_head is None:
            return super().predict(inputs, data_samples)
        threshold = self.mask_threshold
        for (logits, scores, no_target_logits), sample in zip(
                self.mask_logits(inputs, data_samples), data_samples):
            no_target_scores = self.no_target_head.scores(no_target_logits)
            no_target = no_target_scores > self.no_target_threshold
            sample.pred_instances = InstanceData(
                masks=(logits > threshold) & ~no_target[:, None, None], scores=scores.float(),
                no_target=no_target, no_target_scores=no_target_scores)
        return data_samples
