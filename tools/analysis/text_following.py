"""Do a checkpoint's masks follow the text? The cross-object IoU of one split.

``python tools/analysis/text_following.py CONFIG CHECKPOINT [--split val]``

Runs the config's val loader (with ``--split`` put in its dataset) through the test loop with
``ReferSegMetric`` and :class:`~mmevf.evaluation.TextFollowingMetric`, and prints cIoU beside
the mean IoU between the masks predicted for expressions naming *different* objects of an image
(lower is better: a model that gives every text the same mask scores about 1.0, disjoint masks
score 0). Nothing is trained or saved besides the runner's log.
"""
import argparse
import copy
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process

from mmevf.compat import shutdown_distributed
from mmevf.engine.runner_setup import LAUNCHERS, build_runner, load_config
from mmevf.evaluation import format_metric_table


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Cross-object IoU of a checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--split', default='val', help='split of the val dataset (default: val)')
    parser.add_argument('--same-object-iou', type=float, default=0.5,
                        help='ground-truth masks overlapping by more than this are one object')
    parser.add_argument('--work-dir', help='the dir for the log (default: work_dirs/<config>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. val_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = '0'
    return args


def text_following_config(cfg: Config, split: str, same_object_iou: float = 0.5) -> Config:
    """``cfg`` whose test loop scores ``split`` of the val dataset with cIoU and the cross-object
    IoU (keys ``<split>/cIoU``, ``<split>/crossIoU``, ``<split>/pairs``, ``<split>/images``)."""
    loader = copy.deepcopy(cfg.val_dataloader)
    if 'split' not in loader.dataset:
        raise ValueError(f'the val dataset ({loader.dataset.get("type")}) has no `split`; '
                         f'this tool needs a single refer-format dataset')
    # every expression of an image in one item, so that pairs of objects can be formed
    loader.dataset.update(split=split, text_mode='original')
    cfg.test_dataloader = loader
    # a list: a dict with `metrics` would be read as an evaluator config
    cfg.test_evaluator = [
        dict(type='ReferSegMetric', metric=('cIoU', 'gIoU'), prefix=split),
        dict(type='TextFollowingMetric', same_object_iou=same_object_iou, prefix=split)
    ]
    cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    return cfg


def summary(metrics: dict, split: str) -> str:
    """The one line ``make demo`` prints."""
    return (f'text following ({split}): cross-object IoU {metrics[f"{split}/crossIoU"]:.3f} '
            f'over {metrics[f"{split}/pairs"]} pairs of expressions naming different objects '
            f'in {metrics[f"{split}/images"]} images (lower is better; the same mask for every '
            f'text scores ~1.0)')


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg = text_following_config(cfg, args.split, args.same_object_iou)
    cfg.load_from = args.checkpoint
    runner = build_runner(cfg)
    metrics = runner.test()
    if metrics and is_main_process():
        print(format_metric_table(metrics), flush=True)
        print(summary(metrics, args.split), flush=True)
    del runner  # its DDP model holds the process group
    shutdown_distributed()
    return metrics


if __name__ == '__main__':
    main()
