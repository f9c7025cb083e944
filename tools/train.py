"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--amp]``.

Same command line as mmdet's ``tools/train.py``; imports only mmengine and mmevf. Distributed:
``tools/dist_train.sh CONFIG NUM_PROCESSES`` (on a machine without CUDA it uses gloo).
"""
import argparse
import os

from mmengine.config import DictAction

from mmevf.compat import shutdown_distributed
from mmevf.engine.runner_setup import LAUNCHERS, build_runner, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an mmevf model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument(
        '--amp-dtype',
        choices=['float16', 'bfloat16'],
        default=None,
        help='autocast dtype with --amp (default: float16, dynamic loss scale)')
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
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)

    if args.amp or args.amp_dtype:
        if cfg.get('strategy', {}).get('type') == 'DeepSpeedStrategy':
            raise ValueError('--amp does not apply to DeepSpeed configs: set bf16/fp16 in '
                             'the config\'s strategy instead')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        if args.amp_dtype:
            cfg.optim_wrapper.dtype = args.amp_dtype

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
