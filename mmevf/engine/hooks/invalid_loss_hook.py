"""Stop training at the first NaN / infinite loss: mmdet's ``CheckInvalidLossHook``, made strict."""
from typing import Optional

import torch
from mmdet.engine.hooks import CheckInvalidLossHook

from mmevf.registry import HOOKS


@HOOKS.register_module()
class InvalidLossHook(CheckInvalidLossHook):
    """mmdet's ``CheckInvalidLossHook`` checking every iteration (``interval=1``) before the
    checkpoint hook runs (priority ``VERY_HIGH``), so broken weights are never trained on nor
    saved. Unlike mmdet's bare assertion it raises a ``RuntimeError`` naming the iteration and
    every loss term.

    Args:
        interval: check every ``interval`` training iterations (mmdet's default is 50).
    """
    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1) -> None:
        super().__init__(interval=interval)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        if not self.every_n_train_iters(runner, self.interval):
            return
        loss = torch.as_tensor(outputs['loss']).detach()
        if not torch.isfinite(loss).all():
            terms = ', '.join(f'{k}={float(torch.as_tensor(v).detach()):.4g}'
                              for k, v in outputs.items())
            raise RuntimeError(f'loss is {float(loss)} at iteration {runner.iter + 1} '
                               f'({terms}); training stopped, the last checkpoint is left '
                               'untouched')
