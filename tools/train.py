"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--amp]
[--dtype fp16|bf16]``.

Same command line as mmdet's ``tools/train.py``; imports only mmengine and mmevf. Distributed:
``tools/dist_train.sh CONFIG NUM_PROCESSES`` (on a machine without CUDA it uses gloo).
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmevf.compat import shutdown_distributed
from mmevf.engine.runner_setup import LAUNCHERS, build_runner, load_config
from mmevf.utils import torch_dtype_name


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an mmevf model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument(
        '--dtype',
        choices=['fp16', 'bf16'],
        default=None,
        help='autocast dtype of mixed precision; implies --amp (default with --amp: the '
        'config\'s, else fp16 on a GPU, bf16 on the CPU; dynamic loss scale for fp16)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or without a value from the latest '
        'checkpoint in the work directory')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=100 '
        '\'optim_wrapper.optimizer.lr=1e-5\'')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def use_amp(cfg: Config, dtype: Optional[str] = None) -> None:
    """``--amp`` / ``--dtype``: mixed precision through mmevf's ``AnyDeviceAmpOptimWrapper``
    (any device, the CPU too), the autocast ``dtype`` (``'bf16'`` / ``'fp16'``) written in
    mmengine's spelling (``'bfloat16'`` / ``'float16'``); ``None`` keeps the config's."""
    if cfg.get('strategy', {}).get('type') == 'DeepSpeedStrategy':
        raise ValueError('--amp / --dtype do not apply to DeepSpeed configs: set bf16 / fp16 in '
                         'the config\'s strategy instead')
    cfg.optim_wrapper.type = 'AnyDeviceAmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    if dtype:
        cfg.optim_wrapper.dtype = torch_dtype_name(dtype)


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)

    if args.amp or args.dtype:  # --dtype implies --amp
        use_amp(cfg, args.dtype)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not os.path.exists(args.resume):
            raise FileNotFoundError(f'--resume checkpoint {args.resume} does not exist')
        cfg.resume = True
        cfg.load_from = args.resume

    runner = build_runner(cfg)
    runner.train()
    del runner  # its DDP model holds the process group
    shutdown_distributed()


if __name__ == '__main__':
    main()
