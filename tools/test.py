"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out results.pkl]``.

Same command line as mmdet's ``tools/test.py``; imports only mmengine and mmevf. Distributed:
``tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults

from mmevf.evaluation import format_metric_table
from mmevf.compat import shutdown_distributed
from mmevf.engine.runner_setup import LAUNCHERS, build_runner, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) an mmevf model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory (inside the work dir) for drawn results')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between --show images')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args) -> None:
    """Switch on the config's visualization hook for --show / --show-dir."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError(f'--show/--show-dir need a `visualization` hook in default_hooks; '
                         f'{args.config} has none')
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['test_out_dir'] = args.show_dir


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl/.pickle file, got {args.out}')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)

    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    if metrics and is_main_process():
        print(format_metric_table(metrics), flush=True)
    del runner  # its DDP model holds the process group
    shutdown_distributed()


if __name__ == '__main__':
    main()
