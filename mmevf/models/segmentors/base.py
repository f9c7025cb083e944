"""What every SAM-based mmevf segmentor shares: geometry, trainable parts, masks at the original
size, the loss and the predictions."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from mmevf.checkpoint import init_weights_pretrained_last
from mmevf.registry import MODELS
from .embedding_cache_mixin import EmbeddingCacheMixin

LowResOutput = Tuple[Tensor, Tensor]  # (N_i, 1, 4h, 4w) mask logits, (N_i, 1) predicted IoU


class BaseSAMSegmentor(EmbeddingCacheMixin, BaseModel):
    """Base of the segmentors built around SAM (``EVFSAM``, ``DITSAM``, ``SAMPretrainer``).

    A subclass builds ``self.image_encoder`` and ``self.prompt_head`` (through
    :meth:`build_sam`) and implements :meth:`decode_batch`; this class turns its
    low-resolution output into masks at the original image size, the BCE + dice loss and
    ``pred_instances``, identically for every method, so that data pipeline, metric, runners
    and inferencer work with all of them.

    Geometry comes from the image encoder alone: its ``img_size`` S is the padded input side
    (the data preprocessor's ``pad_size``) and the prompt head's ``input_image_size``; its
    output grid S / patch is the head's ``image_embedding_size``. Changing SAM's input size is
    one edit (the encoder's ``img_size``, and ``SAMResize(sam_size)`` in the data pipeline,
    which the data preprocessor checks against it).

    Image embeddings come from :class:`EmbeddingCacheMixin` (``image_embeddings``): the image
    encoder once per image, or a cache standing in for a frozen one.
    """

    def __init__(self, data_preprocessor: Union[dict, torch.nn.Module],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def build_sam(self, image_encoder: dict, prompt_head: dict) -> None:
        """Build ``image_encoder`` and ``prompt_head`` with the head's (and the data
        preprocessor's) sizes derived from the encoder."""
        self.image_encoder = MODELS.build(image_encoder)
        side = int(self.image_encoder.img_size)
        grid = side // int(self.image_encoder.patch_size)
        prompt_head = dict(prompt_head)
        for key, value in (('input_image_size', side), ('image_embedding_size', grid)):
            if prompt_head.setdefault(key, value) != value:
                raise ValueError(f'prompt_head.{key}={prompt_head[key]} disagrees with the image '
                                 f'encoder ({value}); leave it out, it is derived')
        self.prompt_head = MODELS.build(prompt_head)
        if getattr(self.data_preprocessor, 'pad_size', side) is None:
            self.data_preprocessor.pad_size = side
        elif getattr(self.data_preprocessor, 'pad_size', side) != side:
            raise ValueError(f'data_preprocessor.pad_size={self.data_preprocessor.pad_size} '
                             f'disagrees with the image encoder img_size={side}; leave it out')

    def init_weights(self) -> None:
        """mmengine's ``init_weights``; a ``StrictPretrained`` entry of this model's
        ``init_cfg`` (a whole checkpoint) is applied after the parts initialise themselves."""
        init_weights_pretrained_last(self)

    def set_trainable(self, trainable: Sequence[str], frozen_modules: Sequence[str] = (),
                      always_frozen: Sequence[str] = ()) -> None:
        """Train exactly the parameters whose names start with a ``trainable`` prefix (and not
        with an ``always_frozen`` one). Every prefix must name parameters, and none may name a
        module in ``frozen_modules`` that was built with ``frozen=True``."""
        trainable, always_frozen = tuple(trainable), tuple(always_frozen)
        names = [name for name, _ in self.named_parameters()]
        for prefix in trainable:
            if not any(name.startswith(prefix) for name in names):
                raise ValueError(f'trainable prefix {prefix!r} matches no parameter')
        for module in frozen_modules:
            if getattr(getattr(self, module), 'frozen', False) and any(
                    p.startswith(module) for p in trainable):
                raise ValueError(f'{module} is listed as trainable but built with frozen=True')
        for name, param in self.named_parameters():
            param.requires_grad_(name.startswith(trainable) and not name.startswith(always_frozen))

    # ------------------------------------------------------------------ outputs
    def decode_batch(self, inputs: Dict[str, Tensor], data_samples: Optional[list]
                     ) -> List[LowResOutput]:
        """Low-resolution mask logits and IoU predictions, one entry per image (a
        ``TextPromptSegmentor`` with a no-target head appends its logits: a 3-tuple)."""
        raise NotImplementedError

    def postprocess_masks(self, low_res: Tensor, data_sample) -> Tensor:
        """One image's (N_i, 1, 4h, 4w) low-resolution logits -> (N_i, H, W) float32 logits at
        its original size: SAM's (the padding cropped, ``img_shape`` resized to ``ori_shape``,
        by the prompt head)."""
        return self.prompt_head.postprocess_masks(low_res, data_sample.img_shape,
                                                  data_sample.ori_shape)[:, 0]

    def mask_loss(self, logits: Tensor, gt_masks: Tensor) -> Dict[str, Tensor]:
        """The mask losses of one image's (N_i, H, W) logits against its (N_i, H, W) ground
        truth, averaged over its masks: the prompt head's (BCE + dice)."""
        return self.prompt_head.loss(logits, gt_masks)

    @property
    def mask_threshold(self) -> float:
        """Logits above it are the mask: the prompt head's."""
        return self.prompt_head.mask_threshold

    def mask_logits(self, inputs: Dict[str, Tensor],
                    data_samples: list) -> List[Tuple[Tensor, ...]]:
        """Per image: mask logits at the original size (N_i, H, W) and IoU scores (N_i,), then
        whatever further per-expression output :meth:`decode_batch` gives, as it is (only a
        ``TextPromptSegmentor`` with a no-target head has one: (N_i,) no-target logits)."""
        return self.masks_at_original_size(self.decode_batch(inputs, data_samples), data_samples)

    def masks_at_original_size(self, outputs: List[LowResOutput],
                               data_samples: list) -> List[Tuple[Tensor, ...]]:
        """:meth:`mask_logits` of the batch's :meth:`decode_batch` ``outputs``."""
        return [(self.postprocess_masks(low_res, sample), iou[:, 0], *extra)
                for (low_res, iou, *extra), sample in zip(outputs, data_samples)]

    def forward(self,
                inputs: Dict[str, Tensor],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``loss`` / ``predict`` as every MMEngine model; ``tensor``: :meth:`decode_batch`.

        Floating inputs are cast to the dtype of the model's weights first (DeepSpeed bf16
        casts parameters, not the data preprocessor's buffers)."""
        dtype = next(self.parameters()).dtype
        inputs = {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
                  for k, v in inputs.items()}
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.decode_batch(inputs, data_samples)
        raise ValueError(f'invalid mode {mode!r}: use "loss", "predict" or "tensor"')

    def loss(self, inputs: Dict[str, Tensor], data_samples: list) -> Dict[str, Tensor]:
        """The prompt head's mask losses (BCE + dice) at the original image size, averaged
        over all masks of the batch."""
        return self.batch_mask_loss(
            [outputs[0] for outputs in self.mask_logits(inputs, data_samples)], data_samples)

    def batch_mask_loss(self, logits: List[Tensor], data_samples: list,
                        keep: Optional[List[Tensor]] = None) -> Dict[str, Tensor]:
        """:meth:`mask_loss` over a batch, averaged over its masks (each mask weighs the same).

        Args:
            logits: per image, (N_i, H, W) mask logits at its original size.
            data_samples: their samples (``gt_instances.masks``: N_i masks at that size).
            keep: per image, an (N_i,) bool selection of the masks that count; ``None``: all.

        Returns:
            :meth:`mask_loss`'s terms. If no mask counts, each is a zero that keeps the graph
            (the same keys every iteration, as distributed logging needs).
        """
        losses: Dict[str, Tensor] = {}
        total = 0
        for i, (logits_i, sample) in enumerate(zip(logits, data_samples)):
            gt = sample.gt_instances.masks.to_tensor(logits_i.dtype, logits_i.device)
            if gt.shape != logits_i.shape:
                raise ValueError(f'{sample.img_path}: {gt.shape[0]} ground-truth masks of size '
                                 f'{tuple(gt.shape[1:])} for {logits_i.shape[0]} predictions')
            if keep is not None:
                logits_i, gt = logits_i[keep[i]], gt[keep[i]]
            for name, value in self.mask_loss(logits_i, gt).items():
                # an image without a mask that counts adds nothing (not even 0 x NaN)
                losses[name] = losses.get(name, 0) + (value * len(gt) if len(gt) else 0)
            total += len(gt)
        if total == 0:  # zeros attached to the logits: backward and DDP still see them
            anchor = sum(logits_i.sum() for logits_i in logits) * 0
            return {name: anchor for name in losses}
        return {name: value / total for name, value in losses.items()}

    def predict(self, inputs: Dict[str, Tensor], data_samples: list) -> list:
        """Adds ``pred_instances`` (one bool mask per prompt at the original size, plus the
        predicted IoU as ``scores``) to every data sample."""
        threshold = self.mask_threshold
        for (logits, scores, *_), sample in zip(self.mask_logits(inputs, data_samples),
                                                data_samples):
            sample.pred_instances = InstanceData(masks=logits > threshold, scores=scores.float())
        return data_samples
