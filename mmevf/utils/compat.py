"""Fixes that let mmengine 0.10.7 / mmcv 2.1 / mmdet 3.3 run on current torch, in one place.

Applied once on ``import mmevf`` (checkpoint loading, DeepSpeed optimizers) or called by
``tools/train.py`` / ``tools/test.py`` (distributed launch on CPU). Each fix says why it exists;
delete it when the upstream release that fixes it is the one we pin.
"""
import atexit
import os
import os.path as osp
from datetime import timedelta
from typing import Any, Callable, List, Optional

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

# ---------------------------------------------------------------------------------------------
# 1. torch >= 2.6 loads with weights_only=True by default, and mmengine 0.10.7 calls torch.load
#    without the argument, so resume / load_from of an MMEngine checkpoint (which pickles its
#    MessageHub: HistoryBuffer, numpy arrays and scalars) fails. We keep weights_only=True — a
#    checkpoint never runs code — and allow exactly the objects MMEngine itself writes.
# ---------------------------------------------------------------------------------------------


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stands in for ``builtins.getattr`` while unpickling: HistoryBuffer pickles its statistics
    methods as ``getattr(HistoryBuffer, 'mean')``; only its public methods may be looked up."""
    if (obj is HistoryBuffer and not name.startswith('_')
            and callable(vars(HistoryBuffer).get(name))):
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed')


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


def load_checkpoint_file(filename: str, map_location: Optional[Any] = None) -> Any:
    """Load a local checkpoint with ``weights_only=True``, MMEngine's own objects allowed.

    Pure weight files (SAM, BEiT-3 state dicts) need nothing from the allow-list; MMEngine
    checkpoints (``state_dict`` + ``meta`` + ``message_hub`` + ``optimizer``) need it to resume.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except torch.serialization.pickle.UnpicklingError as error:
        raise RuntimeError(
            f'refusing to load checkpoint {filename}: it contains objects other than tensors '
            f'and MMEngine training state, and loading them could run code.\n{error}') from error


# mmengine's default loader for local paths (prefix '') is replaced; every entry point
# (Runner.load_checkpoint / resume, init_cfg=Pretrained, load_checkpoint) goes through it.
CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)

# ---------------------------------------------------------------------------------------------
# 2. mmengine 0.10.7's DeepSpeedStrategy registers deepspeed's optimizers by importing
#    deepspeed.runtime.fp16.onebit, which deepspeed 0.19 removed: register those that exist.
# ---------------------------------------------------------------------------------------------


def register_deepspeed_optimizers() -> List[str]:
    """Register the optimizers the installed deepspeed provides; returns their names."""
    import importlib

    from mmengine.registry import OPTIMIZERS
    candidates = {
        'deepspeed.ops.adam': ('DeepSpeedCPUAdam', 'FusedAdam'),
        'deepspeed.ops.lamb': ('FusedLamb', ),
        'deepspeed.runtime.fp16.onebit': ('OnebitAdam', 'OnebitLamb', 'ZeroOneAdam'),
    }
    registered = []
    for module_name, names in candidates.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            if hasattr(module, name):
                OPTIMIZERS.register_module(module=getattr(module, name), force=True)
                registered.append(name)
    return registered


try:
    import mmengine._strategy.deepspeed as _mmengine_deepspeed
except ImportError:  # mmengine without DeepSpeed support
    pass
else:
    _mmengine_deepspeed.register_deepspeed_optimizers = register_deepspeed_optimizers

# ---------------------------------------------------------------------------------------------
# 3. Distributed launch on a machine without CUDA. mmengine 0.10.7's pytorch launcher calls
#    torch.cuda.set_device(LOCAL_RANK) unconditionally ("Found no NVIDIA driver" with the CUDA
#    build of torch), and its Runner gives DDP device_ids=[LOCAL_RANK], which DDP rejects for a
#    CPU module. tools/train.py and tools/test.py call this; configs stay GPU-first.
# ---------------------------------------------------------------------------------------------


def setup_cpu_distributed(cfg: Config) -> bool:
    """When launched with ``--launcher pytorch`` on a machine without CUDA, start the process
    group over gloo ourselves (mmengine then skips its own ``init_dist``) and build DDP without
    ``device_ids``. Returns whether anything was changed."""
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    strategy = cfg.get('strategy')
    if strategy is not None:  # FlexibleRunner: the strategy wraps the model
        if strategy.get('type', 'DDPStrategy').endswith('DDPStrategy'):
            cfg.merge_from_dict({'strategy.model_wrapper.device_ids': None})
    else:
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel',
            # mmengine reads the top-level flag only when it builds the wrapper itself
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=timedelta(seconds=cfg.env_cfg.dist_cfg.get('timeout', 1800)))
        # mmengine never destroys the group; gloo's threads alive at interpreter exit abort
        # the process ("terminate called without an active exception").
        atexit.register(_destroy_process_group)
    return True


def _destroy_process_group() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
