"""Distributed launch on a machine without CUDA.

mmengine 0.10.7's pytorch and slurm launchers call ``torch.cuda.set_device(LOCAL_RANK)``
unconditionally ("Found no NVIDIA driver" with the CUDA build of torch), and its Runner gives DDP
``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module. ``tools/train.py`` and
``tools/test.py`` call :func:`setup_cpu_distributed`; configs stay GPU-first.
"""
import atexit
import gc
import os
import subprocess
from datetime import timedelta

import mmengine
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.utils import digit_version


def setup_cpu_distributed(cfg: Config) -> bool:
    """When launched with ``--launcher pytorch`` or ``slurm`` on a machine without CUDA, start
    the process group over gloo ourselves (mmengine then skips its own ``init_dist``) and build
    DDP without ``device_ids``. Returns whether anything was changed."""
    launcher = cfg.get('launcher', 'none')
    if (launcher not in ('pytorch', 'slurm') or torch.cuda.is_available()
            or digit_version(mmengine.__version__) > digit_version('0.10.7')):
        return False
    if launcher == 'slurm':
        slurm_environment(cfg.get('env_cfg', {}).get('dist_cfg', {}).get('port'))
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


def slurm_environment(port=None) -> None:
    """Set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` from a
    slurm task's environment, as mmengine's slurm launcher does: rank ``SLURM_PROCID``, world
    size ``SLURM_NTASKS``, local rank ``SLURM_LOCALID``; ``MASTER_ADDR`` unless set, the first
    host of ``SLURM_NODELIST`` (``scontrol show hostname``); ``MASTER_PORT``: ``port`` (the
    config's ``env_cfg.dist_cfg.port``), else the environment's, else 29500."""
    try:
        rank, ntasks = int(os.environ['SLURM_PROCID']), int(os.environ['SLURM_NTASKS'])
        nodes = os.environ['SLURM_NODELIST']
    except KeyError as missing:
        raise RuntimeError(f'--launcher slurm outside a slurm task: {missing} is not set (run '
                           'through srun, e.g. tools/slurm_train.sh)') from None
    if 'MASTER_ADDR' not in os.environ:
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostname', nodes], check=True,
                                   capture_output=True, text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as error:
            raise RuntimeError(f'cannot find the master host of SLURM_NODELIST={nodes}: '
                               f'`scontrol show hostname` failed ({error}); set MASTER_ADDR')
        if not hosts:
            raise RuntimeError(f'`scontrol show hostname {nodes}` named no host; set MASTER_ADDR')
        os.environ['MASTER_ADDR'] = hosts[0]
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(rank)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


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
