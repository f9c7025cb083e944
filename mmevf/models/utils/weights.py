"""Reading official weight files safely and loading them with clear reports.

Weight files are read with ``weights_only=True`` (``.pth`` / ``.bin``) or safetensors, so a
checkpoint can never run code. Official files wrap their state dict differently (SAM: none,
BEiT-3: ``{'model': ...}``, MMEngine: ``{'state_dict': ...}``); :func:`read_state_dict` unwraps
them and selects one sub-module by key prefix.
"""
import os.path as osp
from typing import Dict, Iterable, Optional

import torch
import torch.nn as nn

from mmevf.utils.compat import load_checkpoint_file

StateDict = Dict[str, torch.Tensor]

CONTAINER_KEYS = ('state_dict', 'model', 'module')


def read_state_dict(path: str, prefix: str = '', map_location: str = 'cpu') -> StateDict:
    """Read the tensors of a weight file, optionally only those under ``prefix``.

    Args:
        path: a ``.pth`` / ``.pt`` / ``.bin`` file (torch pickle, read with
            ``weights_only=True``) or a ``.safetensors`` file.
        prefix: keep only keys starting with it, with the prefix removed
            (e.g. ``'image_encoder.'`` for SAM's image encoder).
        map_location: device for the tensors.

    Returns:
        The (sub-)state dict, ``{key: tensor}``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'weight file {path} does not exist')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state = load_file(path, device=map_location)
    else:
        state = load_checkpoint_file(path, map_location=map_location)
    while isinstance(state, dict):
        containers = [k for k in CONTAINER_KEYS if k in state and isinstance(state[k], dict)]
        if not containers or any(torch.is_tensor(v) for v in state.values()):
            break
        state = state[containers[0]]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'{path} does not hold a state dict of tensors')
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise KeyError(f'{path} has no weights under the prefix {prefix!r}')
    return state


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
        ignore_unexpected: key prefixes of the file that are expected not to be used
            (e.g. BEiT-3's pre-training heads).
        ignore_missing: key prefixes of the module that the file need not provide.

    Raises:
        ValueError: naming every key whose shape differs, and (if ``strict``) every missing
            and unexpected key.
    """
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


def load_pretrained(module: nn.Module, path: Optional[str], prefix: str = '',
                    **kwargs) -> None:
    """Fill ``module`` from the part of ``path`` under ``prefix`` (no-op for ``path=None``);
    ``kwargs`` go to :func:`load_state_dict_checked`."""
    if path is None:
        return
    load_state_dict_checked(module, read_state_dict(path, prefix), f'{path} [{prefix}*]'
                            if prefix else path, **kwargs)
