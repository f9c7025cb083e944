"""Reading weight files: one local loader for every format mmevf meets, safe, with clear errors.

:func:`load_local_checkpoint` is registered as mmengine's ``CheckpointLoader`` scheme for local
paths, so every reader goes through it: ``Runner`` ``load_from`` / ``resume``, ``init_cfg``
initialisers (mmengine's ``Pretrained`` and mmevf's ``StrictPretrained``), the inferencer and
the converters. It reads

- torch files (``.pth`` / ``.pt`` / ``.bin``) with ``weights_only=True``, so a checkpoint never
  runs code (MMEngine's own training-state objects allowed where mmengine needs it, see
  :func:`needs_weights_only_fix`);
- ``.safetensors`` files;
- sharded checkpoints: a ``*.index.json`` (the transformers layout) or a folder holding
  ``model.safetensors`` / ``pytorch_model.bin`` or their index, shards merged in order.

A missing, truncated or corrupt file raises an error that names it.
"""
import json
import os.path as osp
import pickle
from typing import Any, Callable, Dict, List, Optional

import mmengine
import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from mmengine.utils import digit_version

StateDict = Dict[str, torch.Tensor]

CONTAINER_KEYS = ('state_dict', 'model', 'module')
# Weight files of a transformers-style folder, in order of preference.
FOLDER_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stands in for ``builtins.getattr`` while unpickling: HistoryBuffer pickles its statistics
    methods as ``getattr(HistoryBuffer, 'mean')``; only its public methods may be looked up."""
    if (obj is HistoryBuffer and not name.startswith('_')
            and callable(vars(HistoryBuffer).get(name))):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed')


# What an MMEngine checkpoint pickles besides tensors (its MessageHub): allowed, nothing else.
MMENGINE_CHECKPOINT_GLOBALS: List[Any] = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    (np._core.multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (np._core.multiarray.scalar, 'numpy._core.multiarray.scalar'),
    # checkpoints written under numpy 1.x name the same functions through numpy.core
    (np._core.multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (np._core.multiarray.scalar, 'numpy.core.multiarray.scalar'),
] + [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int32, np.int64,
                                 np.bool_, np.uint8)]


def needs_weights_only_fix() -> bool:
    """torch >= 2.6 loads with ``weights_only=True`` by default and mmengine <= 0.10.7 calls
    ``torch.load`` without the argument, so resuming an MMEngine checkpoint (which pickles its
    MessageHub) fails there. Where both hold, torch files are read with MMEngine's objects
    allowed; elsewhere mmengine's own reader is kept for them."""
    return (digit_version(torch.__version__) >= digit_version('2.6.0')
            and digit_version(mmengine.__version__) <= digit_version('0.10.7'))


def load_torch_file(filename: str, map_location: Optional[Any] = None) -> Any:
    """``torch.load(weights_only=True)`` with MMEngine's own objects allowed; a file that is
    not a checkpoint, is cut short or asks for code raises an error naming it."""
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if 'Weights only load failed' in str(error):  # a well-formed pickle asking for code
            raise RuntimeError(
                f'refusing to load checkpoint {filename}: it contains objects other than '
                f'tensors and MMEngine training state, and loading them could run code.\n'
                f'{error}') from error
        raise _corrupt(filename, error) from error
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as error:
        raise _corrupt(filename, error) from error


def load_safetensors_file(filename: str, map_location: Optional[Any] = None) -> StateDict:
    """A ``.safetensors`` file as a state dict on ``map_location`` (default CPU)."""
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        return load_file(filename, device=str(device))
    except Exception as error:  # safetensors raises its own SafetensorError
        raise _corrupt(filename, error) from error


def _corrupt(filename: str, error: BaseException) -> ValueError:
    return ValueError(f'cannot read checkpoint {filename}: the file is truncated, corrupt or '
                      f'not a checkpoint ({type(error).__name__}: {error})')


def shard_files(path: str) -> List[str]:
    """The weight files of a sharded checkpoint, in order: ``path`` is a ``*.index.json`` or a
    folder (transformers layout: ``model.safetensors`` / ``pytorch_model.bin`` or their
    ``.index.json``)."""
    if path.endswith('.index.json'):
        with open(path) as f:
            try:
                weight_map = json.load(f)['weight_map']
            except (json.JSONDecodeError, KeyError) as error:
                raise ValueError(f'{path} is not a checkpoint index (no weight_map)') from error
        folder = osp.dirname(path)
        return [osp.join(folder, shard) for shard in sorted(set(weight_map.values()))]
    for name in FOLDER_WEIGHT_FILES:
        if osp.isfile(osp.join(path, name + '.index.json')):
            return shard_files(osp.join(path, name + '.index.json'))
        if osp.isfile(osp.join(path, name)):
            return [osp.join(path, name)]
    raise FileNotFoundError(f'{path} holds none of {FOLDER_WEIGHT_FILES} (or their .index.json)')


_MMENGINE_LOCAL_LOADER = CheckpointLoader._schemes.get('')
if getattr(_MMENGINE_LOCAL_LOADER, '__module__', None) == __name__:  # this module reloaded
    _MMENGINE_LOCAL_LOADER = None


def load_local_checkpoint(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine's ``CheckpointLoader`` scheme for local paths (see the module docstring)."""
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename) or filename.endswith('.index.json'):
        state: StateDict = {}
        for shard in shard_files(filename):
            state.update(load_local_checkpoint(shard, map_location))
        return state
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    if filename.endswith('.safetensors'):
        return load_safetensors_file(filename, map_location)
    if needs_weights_only_fix() or _MMENGINE_LOCAL_LOADER is None:
        return load_torch_file(filename, map_location)
    return _MMENGINE_LOCAL_LOADER(filename, map_location)


def read_state_dict(path: str, prefix: str = '', map_location: str = 'cpu') -> StateDict:
    """The tensors of a weight file, optionally only those under ``prefix``.

    Containers are unwrapped (MMEngine's ``{'state_dict': ...}``, BEiT-3's ``{'model': ...}``,
    ``{'module': ...}``) and a ``module.`` prefix left by a wrapped (DDP) model is removed.

    Args:
        path: anything :func:`load_local_checkpoint` reads.
        prefix: keep only keys starting with it, with the prefix removed
            (e.g. ``'image_encoder.'`` for SAM's image encoder).
        map_location: device for the tensors.

    Returns:
        The (sub-)state dict, ``{key: tensor}``.
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'weight file {path} does not exist')
    state = CheckpointLoader.load_checkpoint(path, map_location=map_location)
    while isinstance(state, dict):
        containers = [k for k in CONTAINER_KEYS if k in state and isinstance(state[k], dict)]
        if not containers or any(torch.is_tensor(v) for v in state.values()):
            break
        state = state[containers[0]]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'{path} does not hold a state dict of tensors')
    if state and all(k.startswith('module.') for k in state):  # saved from a wrapped model
        state = {k[len('module.'):]: v for k, v in state.items()}
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise KeyError(f'{path} has no weights under the prefix {prefix!r}')
    return state


# One reader for every local path (a prefix-less scheme is mmengine's local-file loader).
CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
