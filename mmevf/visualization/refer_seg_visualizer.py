"""Drawing referring-segmentation predictions: the mask over the image, the text on top."""
import os.path as osp
from typing import Optional

import mmcv
import numpy as np
from mmengine.visualization import Visualizer

from mmevf.registry import VISUALIZERS

PRED_COLOR = (50, 120, 220)  # RGB, EVF-SAM's overlay colour
GT_COLOR = (60, 220, 60)


@VISUALIZERS.register_module()
class ReferSegVisualizer(Visualizer):
    """One picture per expression: the predicted mask blended over the image (and the ground
    truth as a green outline), the expression written in the top-left corner."""

    def draw_expression(self, image: np.ndarray, text: str,
                        pred_mask: Optional[np.ndarray] = None,
                        gt_mask: Optional[np.ndarray] = None) -> np.ndarray:
        """(H, W, 3) RGB uint8 image + (H, W) bool masks -> (H, W, 3) RGB drawing."""
        self.set_image(image)
        # the prediction half-blended with its colour, the ground truth lighter on top
        if pred_mask is not None and pred_mask.any():
            self.draw_binary_masks(pred_mask.astype(bool)[None], colors=[PRED_COLOR], alphas=0.5)
        if gt_mask is not None and gt_mask.any():
            self.draw_binary_masks(gt_mask[None], colors=[GT_COLOR], alphas=0.25)
        font_size = max(8, min(image.shape[:2]) // 20)
        self.draw_texts(text, np.array([4, 4]), colors='white', font_sizes=font_size,
                        vertical_alignments='top',
                        bboxes=dict(facecolor='black', alpha=0.6, pad=2, edgecolor='none'))
        return self.get_image()

    def add_datasample(self, name: str, image: np.ndarray, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None,
                       step: int = 0) -> None:
        """Draw every expression of ``data_sample``; with ``out_file`` ``dir/name.png`` the
        pictures go to ``dir/name_0.png``, ``dir/name_1.png``, ... else to the backends."""
        preds = data_sample.pred_instances.masks.cpu().numpy() if (
            draw_pred and 'pred_instances' in data_sample) else None
        gts = data_sample.gt_masks.masks.astype(bool) if (
            draw_gt and 'gt_masks' in data_sample) else None
        for i, text in enumerate(data_sample.text):
            drawing = self.draw_expression(image, text, None if preds is None else preds[i],
                                           None if gts is None else gts[i])
            if show:
                self.show(drawing, win_name=f'{name}: {text}', wait_time=wait_time)
            if out_file is not None:
                stem, ext = osp.splitext(out_file)
                mmcv.imwrite(drawing[..., ::-1], f'{stem}_{i}{ext or ".png"}')
            else:
                self.add_image(f'{name}_{i}', drawing, step)
