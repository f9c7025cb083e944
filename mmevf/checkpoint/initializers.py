"""Loading weights into modules: ``init_cfg=dict(type='StrictPretrained', ...)`` and its report."""
import os.path as osp
from typing import Iterable, Optional, Sequence

import torch.nn as nn
from mmengine.model import BaseModule

from mmevf.registry import WEIGHT_INITIALIZERS
from .io import StateDict
from .layouts import read_layout


def load_state_dict_checked(module: nn.Module,
                            state_dict: StateDict,
                            source: str,
                            strict: bool = True,
                            ignore_unexpected: Iterable[str] = (),
                            ignore_missing: Iterable[str] = ()) -> None:
    """``module.load_state_dict`` that names the file and lists what does not fit.

    Args:
        module: the module to fill.
        state_dict: its weights.
        source: the file (or description) the weights come from, for messages.
        strict: raise on missing / unexpected keys (after the ignore lists).
        ignore_unexpected: key prefixes of the file that are expected not to be used.
        ignore_missing: key prefixes of the module that the file need not provide.

    Sub-modules with an ``adapt_state_dict(state_dict, prefix)`` method (the load-time hook of
    ``SAMImageEncoder``) adapt their part of the weights first.

    Raises:
        ValueError: naming every key whose shape differs, and (if ``strict``) every missing
            and unexpected key.
    """
    state_dict = dict(state_dict)
    for name, sub in module.named_modules():  # e.g. position tables made for another size
        if callable(getattr(sub, 'adapt_state_dict', None)):
            sub.adapt_state_dict(state_dict, f'{name}.' if name else '')
    own = module.state_dict()
    mismatched = [
        f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state_dict.items() if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f'{source} does not fit {type(module).__name__}: shape mismatch in\n  ' +
                         '\n  '.join(mismatched))
    ignore_unexpected, ignore_missing = tuple(ignore_unexpected), tuple(ignore_missing)
    missing = [k for k in own if k not in state_dict and not k.startswith(ignore_missing)]
    unexpected = [k for k in state_dict if k not in own and not k.startswith(ignore_unexpected)]
    if strict and (missing or unexpected):
        raise ValueError(f'{source} does not fit {type(module).__name__}:\n'
                         f'  missing keys ({len(missing)}): {_summary(missing)}\n'
                         f'  unexpected keys ({len(unexpected)}): {_summary(unexpected)}')
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)


def _summary(keys: list, limit: int = 20) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


@WEIGHT_INITIALIZERS.register_module()
class StrictPretrained:
    """Load a module's weights from (a part of) a checkpoint, as mmengine's ``Pretrained`` does,
    but for the official layouts mmevf starts from and with a strict report:

    - the file is read through mmevf's local checkpoint loader (``weights_only=True`` torch
      files, safetensors, shards), so it cannot run code;
    - ``layout`` names a foreign layout (``'sam'``, ``'beit3'``, ``'evf_sam'``, ``'bert'``, see
      :mod:`mmevf.checkpoint.layouts`) whose keys are first renamed to mmevf's; the default
      ``'mmevf'`` takes the keys as they are (containers such as ``{'state_dict': ...}`` and
      ``{'model': ...}`` unwrapped);
    - only keys under ``prefix`` are used (prefix removed), e.g. ``'image_encoder.'`` of a SAM
      file or ``'mm_encoder.'`` of the ``'beit3'`` layout;
    - a shape mismatch, a missing key, or a key under ``prefix`` the module lacks raises an
      error naming the file and the keys (``strict=False`` reports nothing for the last two).

    Args:
        checkpoint: path of the weight file or folder.
        layout: the checkpoint's layout.
        prefix: key prefix (after the layout's renaming) selecting the module's weights.
        strict: fail on missing / unexpected keys.
        ignore_missing: module key prefixes the file need not provide.
    """

    def __init__(self, checkpoint: str, layout: str = 'mmevf', prefix: Optional[str] = None,
                 strict: bool = True, ignore_missing: Sequence[str] = ()) -> None:
        self.checkpoint = checkpoint
        self.layout = layout
        self.prefix = prefix or ''
        self.strict = strict
        self.ignore_missing = tuple(ignore_missing)

    def __call__(self, module: nn.Module) -> None:
        state = read_layout(self.checkpoint, self.layout)
        if self.prefix:
            state = {k[len(self.prefix):]: v for k, v in state.items()
                     if k.startswith(self.prefix)}
            if not state:
                raise KeyError(f'{self.checkpoint} ({self.layout} layout) has no weights under '
                               f'the prefix {self.prefix!r}')
        load_state_dict_checked(module, state, self._source(), strict=self.strict,
                                ignore_missing=self.ignore_missing)

    def _source(self) -> str:
        layout = '' if self.layout == 'mmevf' else f' ({self.layout} layout)'
        return self.checkpoint + layout + (f' [{self.prefix}*]' if self.prefix else '')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(checkpoint={self.checkpoint!r}, layout={self.layout!r}, '
                f'prefix={self.prefix!r})')


STRICT_PRETRAINED_TYPES = ('StrictPretrained', 'mmevf.StrictPretrained', StrictPretrained)


def init_weights_pretrained_last(module: BaseModule) -> None:
    """``BaseModule.init_weights`` with ``StrictPretrained`` entries applied after the children
    are initialised, as mmengine does for its ``Pretrained`` (a whole-model checkpoint must not
    be overwritten by a child's own initialisation). Call from ``init_weights``."""
    if module.is_init:
        return
    cfgs = module.init_cfg if isinstance(module.init_cfg, list) else (
        [module.init_cfg] if module.init_cfg else [])
    strict = [c for c in cfgs if c.get('type') in STRICT_PRETRAINED_TYPES]
    original = module.init_cfg
    module.init_cfg = [c for c in cfgs if c not in strict] or None
    try:
        BaseModule.init_weights(module)
    finally:
        module.init_cfg = original
    for cfg in strict:  # built here: no default scope is needed outside a runner
        StrictPretrained(**{k: v for k, v in cfg.items() if k != 'type'})(module)


def load_weights(model: nn.Module, weights: str, config: str = 'the config') -> None:
    """Fill a whole ``model`` from an mmevf / MMEngine checkpoint, a plain state dict
    (``.pth``, ``.safetensors``, shards) or an official EVF-SAM folder; a mismatch names every
    missing, unexpected and mis-shaped key."""
    layout = 'evf_sam' if osp.isdir(weights) and osp.isfile(
        osp.join(weights, 'config.json')) else 'mmevf'
    state = read_layout(weights, layout)
    try:
        load_state_dict_checked(model, state, source=weights)
    except ValueError as err:
        raise ValueError(f'checkpoint does not match {config}: {err}') from None
