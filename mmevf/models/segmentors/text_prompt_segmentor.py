"""What every mmevf segmentor shares: masks at the original size, the loss, predictions."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

LowResOutput = Tuple[Tensor, Tensor]  # (N_i, 1, 4h, 4w) mask logits, (N_i, 1) predicted IoU


class TextPromptSegmentor(BaseModel):
    """Base of the text-prompted SAM segmentors (``EVFSAM``, ``DITSam``).

    A subclass builds ``self.prompt_head`` (``SAMPromptHead``) and implements :meth:`decode`;
    this class turns its low-resolution output into masks at the original image size, the
    BCE + dice loss and ``pred_instances``, identically for every method, so that data
    pipeline, metric, runners and inferencer work with all of them.
    """

    def __init__(self, data_preprocessor: Union[dict, torch.nn.Module],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if hasattr(self.data_preprocessor, 'dtype_source'):
            # inputs follow the weights: DeepSpeed casts parameters to bf16, not buffers
            self.data_preprocessor.dtype_source = self.parameter_dtype

    def parameter_dtype(self) -> torch.dtype:
        """The dtype of the model's weights (the data preprocessor casts inputs to it)."""
        return next(self.parameters()).dtype

    def check_trainable(self, trainable: Sequence[str],
                        frozen_modules: Sequence[str]) -> None:
        """Every ``trainable`` prefix must name parameters, and none may name a module in
        ``frozen_modules`` that was built with ``frozen=True``."""
        known = [name for name, _ in self.named_parameters()]
        for prefix in trainable:
            if not any(name.startswith(prefix) for name in known):
                raise ValueError(f'trainable prefix {prefix!r} matches no parameter')
        for module in frozen_modules:
            if getattr(getattr(self, module), 'frozen', False) and any(
                    p.startswith(module) for p in trainable):
                raise ValueError(f'{module} is listed as trainable but built with frozen=True')

    def decode(self, inputs: Dict[str, Tensor]) -> List[LowResOutput]:
        """Low-resolution mask logits and IoU predictions, one entry per image."""
        raise NotImplementedError

    def mask_logits(self, inputs: Dict[str, Tensor],
                    data_samples: list) -> List[Tuple[Tensor, Tensor]]:
        """Per image: mask logits at the original size (N_i, H, W) and IoU scores (N_i,)."""
        results = []
        for (low_res, iou), sample in zip(self.decode(inputs), data_samples):
            logits = self.prompt_head.postprocess_masks(
                low_res, sample.img_shape, sample.ori_shape)
            results.append((logits[:, 0], iou[:, 0]))
        return results

    def forward(self,
                inputs: Dict[str, Tensor],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.decode(inputs)
        raise ValueError(f'invalid mode {mode!r}: use "loss", "predict" or "tensor"')

    def loss(self, inputs: Dict[str, Tensor], data_samples: list) -> Dict[str, Tensor]:
        """The prompt head's mask losses (BCE + dice) at the original image size, averaged
        over all expressions of the batch."""
        losses: Dict[str, Tensor] = {}
        total = 0
        for (logits, _), sample in zip(self.mask_logits(inputs, data_samples), data_samples):
            gt = sample.gt_instances.masks.to_tensor(logits.dtype, logits.device)
            if gt.shape != logits.shape:
                raise ValueError(f'{sample.img_path}: {gt.shape[0]} ground-truth masks of size '
                                 f'{tuple(gt.shape[1:])} for {logits.shape[0]} expressions')
            for name, value in self.prompt_head.loss(logits, gt).items():
                losses[name] = losses.get(name, 0) + value * len(gt)
            total += len(gt)
        return {name: value / total for name, value in losses.items()}

    def predict(self, inputs: Dict[str, Tensor], data_samples: list) -> list:
        """Adds ``pred_instances`` (one bool mask per expression at the original size, plus
        the predicted IoU as ``scores``) to every data sample."""
        threshold = self.prompt_head.mask_threshold
        for (logits, scores), sample in zip(self.mask_logits(inputs, data_samples),
                                            data_samples):
            sample.pred_instances = InstanceData(masks=logits > threshold, scores=scores.float())
        return data_samples
