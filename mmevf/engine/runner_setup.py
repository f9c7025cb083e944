"""Shared set-up of the command-line tools: config loading, CPU launch, runner building."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from mmevf.compat import setup_cpu_distributed
from mmevf.compat.deepspeed import fix_deepspeed_strategy, skip_cpu_shm_comm_op


def register_all_modules(init_scope: bool = True) -> None:
    """Import every mmevf module so its registry entries exist, and optionally make ``mmevf``
    the default scope (what ``default_scope='mmevf'`` does for a runner)."""
    import mmevf.datasets  # noqa: F401
    import mmevf.engine  # noqa: F401
    import mmevf.evaluation  # noqa: F401
    import mmevf.models  # noqa: F401
    import mmevf.visualization  # noqa: F401
    if init_scope:
        init_default_scope('mmevf')


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read ``config`` as mmdet's tools do: ``--cfg-options`` merged, ``work_dir`` defaulting to
    ``./work_dirs/<config name>``; on a machine without CUDA a ``pytorch`` launch uses gloo."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    setup_cpu_distributed(cfg)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg``, or the registered runner named by ``runner_type``
    (e.g. ``FlexibleRunner`` for DeepSpeed, whose optimizer registration is fixed first)."""
    strategy = cfg.get('strategy') or {}
    if str(strategy.get('type', '')).endswith('DeepSpeedStrategy'):
        fix_deepspeed_strategy()
        skip_cpu_shm_comm_op()
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


LAUNCHERS: Sequence[str] = ('none', 'pytorch', 'slurm', 'mpi')
