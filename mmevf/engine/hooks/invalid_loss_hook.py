"""Stop training at the first NaN / infinite loss."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmevf.registry import HOOKS


@HOOKS.register_module()
class InvalidLossHook(Hook):
    """Raise as soon as the loss of an iteration is NaN or infinite, naming the iteration and
    the loss terms, instead of training on with broken weights (and saving them)."""
    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = float(torch.as_tensor(outputs['loss']).detach())
        if not math.isfinite(loss):
            terms = ', '.join(f'{k}={float(torch.as_tensor(v).detach()):.4g}'
                              for k, v in outputs.items())
            raise RuntimeError(f'loss is {loss} at iteration {runner.iter + 1} ({terms}); '
                               'training stopped, the last checkpoint is left untouched')
