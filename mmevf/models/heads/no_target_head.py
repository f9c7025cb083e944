"""Whether an expression has no target in its image (generalized referring segmentation, as
gRefCOCO): one logit per expression, read from SAM's mask decoder."""
import copy
from typing import Dict, Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmevf.registry import MODELS


@MODELS.register_module()
class NoTargetHead(BaseModule):
    """A small MLP: one decoder token per expression -> its no-target logit.

    It reads SAM's **IoU-token output** (``hs[:, 0]`` of ``MaskDecoder.predict_masks``,
    :meth:`SAMPromptHead.forward_with_iou_token`), not the output mask token, because:

    * SAM trains that token to judge the decoded mask as a whole (its IoU head predicts the
      mask's quality); "is anything referred to at all" is the same kind of global judgement;
    * there is one per prompt whatever ``multimask_output`` is (the mask tokens are four, and
      which one is kept depends on the predicted IoUs);
    * the mask tokens feed the hypernetwork that draws the mask: a no-target loss read there
      would pull directly on the mask's own weights, while the IoU token's output gets no
      gradient from the mask loss (SAM's IoU head is unused in training), so the two tasks
      share the two-way transformer only.

    Args:
        in_channels: width of the token (the prompt head's ``embed_dim``); the segmentor
            fills it in when left out.
        hidden_channels: width of the hidden layers; ``None``: ``in_channels``.
        num_layers: linear layers (ReLU between them), the last one giving the logit.
        loss_no_target: BCE-with-logits config on the no-target flags (an mmdet
            ``CrossEntropyLoss(use_sigmoid=True)``, as the mask losses); its ``loss_weight``
            weighs ``loss_no_target`` against the mask losses.
        detach_input: read the token without sending the no-target loss back through it: the
            decision is learned on what the mask path computes, and the two-way transformer,
            the prompt and the image embedding train on the mask loss alone. ``False``: the
            no-target loss trains them too.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: Optional[int] = None,
                 num_layers: int = 2,
                 loss_no_target: dict = dict(
                     type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 detach_input: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.detach_input = bool(detach_input)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        hidden_channels = hidden_channels or in_channels
        widths = [in_channels] + [hidden_channels] * (num_layers - 1)
        layers = []
        for width_in, width_out in zip(widths, widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(widths[-1], 1))
        self.mlp = nn.Sequential(*layers)
        self.loss_no_target = MODELS.build(copy.deepcopy(loss_no_target))

    def forward(self, tokens: Tensor) -> Tensor:
        """(N, C) decoder tokens -> (N,) no-target logits (> 0: more likely no target)."""
        return self.mlp(tokens.detach() if self.detach_input else tokens)[:, 0]

    def loss(self, logits: Tensor, no_target: Tensor) -> Dict[str, Tensor]:
        """BCE-with-logits of the N expressions of a batch, averaged over them.

        Args:
            logits: (N,) no-target logits.
            no_target: (N,) bool, True for an expression without target.

        Returns:
            ``dict(loss_no_target=)``, a float32 scalar (times the loss weight).
        """
        if logits.shape != no_target.shape or logits.dim() != 1:
            raise ValueError(f'expected (N,) logits and flags, got {tuple(logits.shape)} and '
                             f'{tuple(no_target.shape)}')
        return dict(loss_no_target=self.loss_no_target(logits.float(), no_target.float()))

    @staticmethod
    def scores(logits: Tensor) -> Tensor:
        """(N,) logits -> (N,) float32 no-target probabilities."""
        return torch.sigmoid(logits.float())
