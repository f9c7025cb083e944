"""A training-only auxiliary loss for early-fusion prompts: the prompt token alone has to pick
its target out of SAM's image embedding."""
import copy
import math
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmevf.registry import MODELS


@MODELS.register_module()
class PromptGroundingHead(BaseModule):
    """Scores every cell of SAM's image embedding against an expression's prompt token and
    trains the scores towards the share of the cell its target covers (BCE + dice, as the mask
    losses). Used in training only: inference and the decoder are unchanged.

    ``logits[n, y, x] = scale * <prompt_n, embedding[:, y, x]> / sqrt(C) + bias``

    Why: trained from scratch, EVF-SAM's decoder can settle on "segment every object" and learn
    to ignore the prompt; the mask loss alone then pulls only weakly on the prompt's words (the
    colour word in particular). This loss needs the prompt itself to carry what tells its target
    apart in the image embedding, from the first steps, so that the decoder has something in the
    prompt to follow (docs/measurement_history.md).

    Args:
        init_scale: initial value of the learned ``scale``.
        init_bias: initial value of the learned ``bias`` (negative: most cells are background).
        loss_bce: mmdet ``CrossEntropyLoss(use_sigmoid=True)`` config (soft targets).
        loss_dice: mmdet ``DiceLoss`` config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 init_scale: float = 1.0,
                 init_bias: float = -2.0,
                 loss_bce: dict = dict(
                     type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_dice: dict = dict(
                     type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
                     eps=1.0, loss_weight=1.0),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        # (1,), not 0-d: DeepSpeed's ZeRO flattens parameters through byte views
        self.scale = nn.Parameter(torch.tensor([float(init_scale)]))
        self.bias = nn.Parameter(torch.tensor([float(init_bias)]))
        self.loss_bce = MODELS.build(copy.deepcopy(loss_bce))
        self.loss_dice = MODELS.build(copy.deepcopy(loss_dice))

    def forward(self, prompts: Tensor, image_embedding: Tensor) -> Tensor:
        """(N, C) prompt tokens of one image and its (C, h, w) embedding -> (N, h, w) logits."""
        if prompts.dim() != 2 or image_embedding.dim() != 3 or (
                prompts.shape[1] != image_embedding.shape[0]):
            raise ValueError(f'expected (N, C) prompts and a (C, h, w) embedding, got '
                             f'{tuple(prompts.shape)} and {tuple(image_embedding.shape)}')
        scores = torch.einsum('nc,chw->nhw', prompts, image_embedding)
        return scores / math.sqrt(prompts.shape[1]) * self.scale + self.bias

    @staticmethod
    def targets(gt_masks: Tensor, img_shape: Sequence[int], side: int, grid: int) -> Tensor:
        """(N, H, W) masks at the original size -> (N, grid, grid) share of each embedding cell
        the target covers, in SAM's frame: resized to ``img_shape``, padded bottom-right to
        ``side`` x ``side``, averaged over cells of ``side / grid`` pixels."""
        height, width = img_shape
        masks = F.interpolate(gt_masks[:, None].float(), size=(height, width), mode='bilinear',
                              align_corners=False)
        masks = F.pad(masks, (0, side - width, 0, side - height))
        return F.adaptive_avg_pool2d(masks, grid)[:, 0]

    def loss(self, logits: Tensor, targets: Tensor) -> Dict[str, Tensor]:
        """Mean over the N expressions of the batch of BCE (mean over cells) and dice.

        Args:
            logits: (N, h, w) from :meth:`forward`.
            targets: (N, h, w) in [0, 1] from :meth:`targets`.

        Returns:
            ``dict(loss_grounding_bce=, loss_grounding_dice=)``, float32 scalars.
        """
        if logits.shape != targets.shape or logits.dim() != 3:
            raise ValueError(f'expected (N, h, w) logits and targets of one shape, got '
                             f'{tuple(logits.shape)} and {tuple(targets.shape)}')
        logits, targets = logits.float(), targets.float()
        bce = self.loss_bce(logits, targets, reduction_override='none').flatten(1).mean(1)
        dice = self.loss_dice(logits, targets, reduction_override='none')
        count = max(len(logits), 1)
        return dict(loss_grounding_bce=bce.sum() / count, loss_grounding_dice=dice.sum() / count)
