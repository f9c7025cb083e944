"""Drawing predictions during validation / testing (``tools/test.py --show-dir``)."""
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from mmevf.evaluation.functional import pairwise_mask_iou
from mmevf.evaluation.metrics.text_following_metric import SAME_OBJECT_IOU
from mmevf.registry import HOOKS
from mmevf.visualization.refer_seg_visualizer import make_contact_sheet


def distinct_objects_first(gt_masks: Optional[np.ndarray], num: int) -> List[int]:
    """Indices of at most ``num`` expressions: first one per object (ground-truth masks with
    IoU ≤ 0.5 to those already taken, as ``TextFollowingMetric`` tells objects apart), then
    the others in order. Without ground truth (N = ``num``): the first ``num``.

    Args:
        gt_masks: (N, H, W) bool, or ``None``.
    """
    if gt_masks is None:
        return list(range(num))
    iou = pairwise_mask_iou(torch.from_numpy(gt_masks.astype(bool)))
    chosen: List[int] = []
    for i in range(len(gt_masks)):
        if all(iou[i, j] <= SAME_OBJECT_IOU for j in chosen):
            chosen.append(i)
    chosen += [i for i in range(len(gt_masks)) if i not in chosen]
    return chosen[:num]


@HOOKS.register_module()
class ReferSegVisualizationHook(Hook):
    """Draws each expression's predicted mask with the runner's visualizer, and at the end of a
    test run one contact sheet: a grid of the first ``sheet_images`` drawn images (rows) × up
    to ``sheet_expressions`` of their expressions (columns; different objects first).

    Args:
        draw: off by default; ``tools/test.py --show/--show-dir`` switch it on.
        interval: draw every ``interval``-th validation batch.
        max_images: stop after this many images per run (``None``: all).
        show: show the pictures in a window.
        wait_time: seconds each shown picture stays.
        test_out_dir: folder (inside ``work_dir/<timestamp>/`` unless absolute) for the test
            pictures; else they go to the visualizer's backends.
        min_long_side: pictures of smaller images are upscaled to this long side (set on a
            ``ReferSegVisualizer`` while this hook draws); ``None``: the image size.
        contact_sheet: file of the contact sheet, inside ``work_dir/<timestamp>/`` unless
            absolute (next to the ``vis`` folder, the first file to open); ``None``: none.
            Without ``test_out_dir`` it goes to the backends as image ``contact_sheet``.
        sheet_images: rows of the contact sheet.
        sheet_expressions: most columns of the contact sheet.
    """
    priority = 'NORMAL'

    def __init__(self, draw: bool = False, interval: int = 50, max_images: Optional[int] = None,
                 show: bool = False, wait_time: float = 0.,
                 test_out_dir: Optional[str] = None, min_long_side: Optional[int] = 512,
                 contact_sheet: Optional[str] = 'contact_sheet.png', sheet_images: int = 4,
                 sheet_expressions: int = 3) -> None:
        self.draw = draw
        self.interval = interval
        self.max_images = max_images
        self.show = show
        self.wait_time = wait_time
        self.test_out_dir = test_out_dir
        self.min_long_side = min_long_side
        self.contact_sheet = contact_sheet
        self.sheet_images = sheet_images
        self.sheet_expressions = sheet_expressions
        self._drawn = 0
        self._sheet_rows: List[List[np.ndarray]] = []

    def _draw(self, runner, outputs: Sequence, out_dir: Optional[str], step: int,
              collect: bool = False) -> None:
        visualizer = Visualizer.get_current_instance()
        # upscaling is this hook's choice: the same visualizer class draws the inferencer's
        # overlays at the image size
        has_scale = hasattr(visualizer, 'min_long_side')
        saved = visualizer.min_long_side if has_scale else None
        if has_scale:
            visualizer.min_long_side = self.min_long_side
        try:
            for sample in outputs:
                if self.max_images is not None and self._drawn >= self.max_images:
                    return
                image = mmcv.imfrombytes(get(sample.img_path), channel_order='rgb')
                name = osp.splitext(osp.basename(sample.img_path))[0]
                out_file = None if out_dir is None else osp.join(out_dir, f'{name}.png')
                visualizer.add_datasample(name, image, sample, show=self.show,
                                          wait_time=self.wait_time, out_file=out_file, step=step)
                self._drawn += 1
                drawings = getattr(visualizer, 'drawings', None)
                if collect and drawings and len(self._sheet_rows) < self.sheet_images:
                    gts = sample.gt_masks.to_ndarray() if 'gt_masks' in sample else None
                    picks = distinct_objects_first(gts, min(self.sheet_expressions,
                                                            len(drawings)))
                    self._sheet_rows.append([drawings[i] for i in picks])
        finally:
            if has_scale:
                visualizer.min_long_side = saved

    def _test_out_dir(self, runner) -> Optional[str]:
        out_dir = self.test_out_dir
        if out_dir is not None and not osp.isabs(out_dir):
            out_dir = osp.join(runner.work_dir, runner.timestamp, out_dir)
        return out_dir

    def before_test(self, runner) -> None:
        self._drawn = 0
        self._sheet_rows = []

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence) -> None:
        if self.draw and self.every_n_inner_iters(batch_idx, self.interval):
            self._draw(runner, outputs[:1], None, runner.iter)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence) -> None:
        if not self.draw:
            return
        self._draw(runner, outputs, self._test_out_dir(runner), batch_idx,
                   collect=self.contact_sheet is not None)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        if not (self.draw and self.contact_sheet and self._sheet_rows and is_main_process()):
            return
        sheet = make_contact_sheet(self._sheet_rows)
        if self._test_out_dir(runner) is None:
            Visualizer.get_current_instance().add_image('contact_sheet', sheet)
        else:
            path = self.contact_sheet
            if not osp.isabs(path):
                path = osp.join(runner.work_dir, runner.timestamp, path)
            mmcv.imwrite(sheet[..., ::-1], path)
            runner.logger.info(f'contact sheet of the drawn predictions: {path}')
        self._sheet_rows = []
