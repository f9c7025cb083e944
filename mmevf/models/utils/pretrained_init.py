"""``init_cfg=dict(type='Pretrained', ...)`` for official weight files, in scope mmevf."""
from typing import Optional, Sequence

import torch.nn as nn

from mmevf.registry import WEIGHT_INITIALIZERS
from .weights import load_state_dict_checked, read_state_dict


@WEIGHT_INITIALIZERS.register_module(name='Pretrained')
class PretrainedWeights:
    """Load a module's weights from (a part of) a weight file, as mmengine's ``Pretrained``
    does, but for the official files mmevf starts from and with a strict report:

    - the file is read with ``weights_only=True`` (or as safetensors), so it cannot run code;
    - containers are unwrapped: SAM's plain state dict, BEiT-3's ``{'model': ...}``,
      MMEngine's ``{'state_dict': ...}``;
    - only keys under ``prefix`` are used (prefix removed), e.g. ``'image_encoder.'`` of a
      SAM file or ``'beit3.'`` of a BEiT-3 file — the pre-training heads are left out;
    - a shape mismatch, a missing key, or a key under ``prefix`` the module lacks raises an
      error naming the file and the keys (``strict=False`` reports nothing for the last two).

    In configs with ``default_scope='mmevf'`` this initializer serves ``type='Pretrained'``.

    Args:
        checkpoint: path of the weight file.
        prefix: key prefix selecting the module's weights in the file.
        map_location: device the tensors are read to.
        strict: fail on missing / unexpected keys.
        ignore_missing: module key prefixes the file need not provide.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 map_location: str = 'cpu', strict: bool = True,
                 ignore_missing: Sequence[str] = ()) -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix or ''
        self.map_location = map_location
        self.strict = strict
        self.ignore_missing = tuple(ignore_missing)

    def __call__(self, module: nn.Module) -> None:
        state = read_state_dict(self.checkpoint, self.prefix, self.map_location)
        source = f'{self.checkpoint} [{self.prefix}*]' if self.prefix else self.checkpoint
        load_state_dict_checked(module, state, source, strict=self.strict,
                                ignore_missing=self.ignore_missing)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(checkpoint={self.checkpoint!r}, prefix={self.prefix!r})'
