"""mmengine's ``AmpOptimWrapper`` on any device: also on the CPU."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from mmevf.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AnyDeviceAmpOptimWrapper(MMEngineAmpOptimWrapper):
    """Automatic mixed precision, as mmengine's wrapper on GPU / NPU / MLU / MUSA, and on CPU.

    mmengine 0.10.7 asserts an accelerator and its autocast accepts only bf16 on CPU; here a
    CPU run autocasts to ``dtype`` (default bfloat16, float16 also works) and scales the loss
    only for float16 (bfloat16 has float32's exponent range). Its own name, so that mmengine's
    ``AmpOptimWrapper`` keeps its meaning: configs write ``type='AnyDeviceAmpOptimWrapper'``
    with mmengine's ``dtype='bfloat16'`` / ``'float16'``, and ``tools/train.py --amp
    [--dtype bf16|fp16]`` selects it (``--dtype`` alone implies ``--amp``).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None,
                 use_fsdp: bool = False,
                 **kwargs) -> None:
        self.on_cpu = get_device() == 'cpu'
        if not self.on_cpu:
            super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
            return
        OptimWrapper.__init__(self, **kwargs)
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'dtype should be one of {self.valid_dtypes}, got {dtype!r}')
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype or torch.bfloat16
        self._scale_update_param = None
        scaler_kwargs: dict = {}
        if isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            scaler_kwargs = dict(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            scaler_kwargs = dict(loss_scale)
        elif loss_scale != 'dynamic':
            raise TypeError(f'loss_scale must be "dynamic", a float or a dict, got {loss_scale}')
        self.loss_scaler = torch.amp.GradScaler(
            'cpu', enabled=self.cast_dtype == torch.float16, **scaler_kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module):
        if not self.on_cpu:
            with super().optim_context(model):
                yield
            return
        with OptimWrapper.optim_context(self, model), torch.autocast('cpu', self.cast_dtype):
            yield
