"""An optimizer-wrapper constructor that leaves frozen parameters out of the optimizer."""
import inspect
from typing import List

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS

from mmevf.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` for models with frozen parts.

    mmengine 0.10.7 gives the optimizer every parameter when there is no ``paramwise_cfg``
    (frozen ones included: they take memory in the optimizer, and weight decay / momentum
    would still change them if they ever got a gradient), and with a ``paramwise_cfg`` logs a
    warning for each frozen parameter. Here parameters with ``requires_grad=False`` never
    reach the optimizer; the others get exactly the default constructor's param groups.

    Use it in a config as ``optim_wrapper = dict(constructor=
    'TrainableParamsOptimWrapperConstructor', optimizer=..., paramwise_cfg=...)``.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        frozen = [p for p in model.parameters() if not p.requires_grad]
        if len(frozen) == len(list(model.parameters())):
            raise ValueError(f'{type(model).__name__} has no trainable parameters to optimize')
        if frozen:
            print_log(f'{len(frozen)} frozen parameter tensors '
                      f'({sum(p.numel() for p in frozen):,} values) are left out of the '
                      'optimizer', logger='current')
        if self.paramwise_cfg:
            return super().__call__(model)  # add_params below leaves frozen parameters out
        # As the default constructor without paramwise_cfg: one group, trainable params only.
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cls)
        params_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        optimizer_cfg[params_arg] = [p for p in model.parameters() if p.requires_grad]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg, default_args=dict(optimizer=optimizer))

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module=None) -> None:
        """The default param groups, without the frozen parameters (and without a warning for
        each one: sub-modules with no trainable parameter are skipped as a whole)."""
        if not any(p.requires_grad for p in module.parameters()):
            return
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
