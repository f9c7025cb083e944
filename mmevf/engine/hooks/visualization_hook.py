"""Drawing predictions during validation / testing (``tools/test.py --show-dir``)."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from mmevf.registry import HOOKS


@HOOKS.register_module()
class ReferSegVisualizationHook(Hook):
    """Draws each expression's predicted mask with the runner's visualizer.

    Args:
        draw: off by default; ``tools/test.py --show/--show-dir`` switch it on.
        interval: draw every ``interval``-th validation batch.
        max_images: stop after this many images per run (``None``: all).
        show: show the pictures in a window.
        wait_time: seconds each shown picture stays.
        test_out_dir: folder (inside ``work_dir/<timestamp>/`` unless absolute) for the test
            pictures; else they go to the visualizer's backends.
    """
    priority = 'NORMAL'

    def __init__(self, draw: bool = False, interval: int = 50, max_images: Optional[int] = None,
                 show: bool = False, wait_time: float = 0.,
                 test_out_dir: Optional[str] = None) -> None:
        self.draw = draw
        self.interval = interval
        self.max_images = max_images
        self.show = show
        self.wait_time = wait_time
        self.test_out_dir = test_out_dir
        self._drawn = 0

    def _draw(self, runner, outputs: Sequence, out_dir: Optional[str], step: int) -> None:
        visualizer = Visualizer.get_current_instance()
        for sample in outputs:
            if self.max_images is not None and self._drawn >= self.max_images:
                return
            image = mmcv.imfrombytes(get(sample.img_path), channel_order='rgb')
            name = osp.splitext(osp.basename(sample.img_path))[0]
            out_file = None if out_dir is None else osp.join(out_dir, f'{name}.png')
            visualizer.add_datasample(name, image, sample, show=self.show,
                                      wait_time=self.wait_time, out_file=out_file, step=step)
            self._drawn += 1

    def before_test(self, runner) -> None:
        self._drawn = 0

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence) -> None:
        if self.draw and self.every_n_inner_iters(batch_idx, self.interval):
            self._draw(runner, outputs[:1], None, runner.iter)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence) -> None:
        if not self.draw:
            return
        out_dir = self.test_out_dir
        if out_dir is not None and not osp.isabs(out_dir):
            out_dir = osp.join(runner.work_dir, runner.timestamp, out_dir)
        self._draw(runner, outputs, out_dir, batch_idx)
