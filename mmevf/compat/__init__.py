"""Fixes that let mmengine 0.10.7 / mmcv 2.1 / mmdet 3.3 / mmpretrain 1.2 run on current torch,
transformers and deepspeed.

Each fix checks that the problem it fixes is there and leaves a fixed dependency alone; none
changes anything for a host framework (an mmdet job importing mmevf) beyond what it fixes.
docs/advanced_guides/dependency_fixes.md lists them (with the install-level ones):

- loading MMEngine checkpoints under torch >= 2.6 (``weights_only``):
  :func:`mmevf.checkpoint.io.needs_weights_only_fix` and the local checkpoint loader there;
- deepspeed 0.19 without ``onebit``: :func:`.deepspeed.fix_deepspeed_strategy`, and its
  shared-memory op compiled at every CPU launch for nothing training uses:
  :func:`.deepspeed.skip_cpu_shm_comm_op` (both called by ``build_runner`` for DeepSpeed
  configs);
- distributed launch without CUDA: :func:`.distributed.setup_cpu_distributed` (tools);
- mmengine 0.10.7's ``AmpOptimWrapper`` on CPU: :class:`mmevf.engine.AnyDeviceAmpOptimWrapper`;
- mmpretrain 1.2's multimodal models under transformers 5 (``import mmpretrain.models``
  fails): :func:`.mmpretrain.fix_mmpretrain_import` (called by ``import mmevf``, and in
  interpreters that never import mmevf by the start-up hook an install puts in site-packages:
  :mod:`.import_hook`, ``mmevf-import-hook.pth``).
"""
from .distributed import setup_cpu_distributed, shutdown_distributed

__all__ = ['setup_cpu_distributed', 'shutdown_distributed']
