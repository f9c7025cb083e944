"""Distributed launch on a machine without CUDA.

mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device(LOCAL_RANK)`` unconditionally
("Found no NVIDIA driver" with the CUDA build of torch), and its Runner gives DDP
``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module. ``tools/train.py`` and
``tools/test.py`` call :func:`setup_cpu_distributed`; configs stay GPU-first.
"""
import atexit
import gc
import os
from datetime import timedelta

import mmengine
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.utils import digit_version


def setup_cpu_distributed(cfg: Config) -> bool:
    """When launched with ``--launcher pytorch`` on a machine without CUDA, start the process
    group over gloo ourselves (mmengine then skips its own ``init_dist``) and build DDP without
    ``device_ids``. Returns whether anything was changed."""
    if (cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available()
            or digit_version(mmengine.__version__) > digit_version('0.10.7')):
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
        # a fallback for runs that end before the tools' shutdown_distributed()
        atexit.register(_destroy_process_group)
    return True


def shutdown_distributed() -> None:
    """End a distributed run while the interpreter is fully alive; call it after dropping
    the runner (its DDP model holds the process group).

    A gloo worker thread frees each finished collective, which needs the GIL. If the main
    thread is already finalizing Python, the worker cannot take it and the process aborts
    ("terminate called without an active exception", SIGABRT; seen in about 1 of 10 two-process
    runs, the rank that skips the checkpoint save reaching exit first). Destroying the group
    at exit does not help while the runner still holds it: wait for all ranks, unregister the
    group, and collect it, which joins its threads.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    gc.collect()


def _destroy_process_group() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
        gc.collect()  # joins gloo's threads if nothing else holds the group
