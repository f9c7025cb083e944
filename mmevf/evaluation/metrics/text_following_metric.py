"""Does the prediction follow the text? The overlap of the masks predicted for different objects.

A model that ignores the expression gives every expression of an image the same mask (or the
union of all objects); its masks for *different* objects then overlap almost completely. A model
that follows the text gives disjoint masks to different objects.
"""
import warnings
from typing import Dict, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from mmevf.registry import METRICS
from ..functional import pairwise_mask_iou

# ground-truth masks overlapping by more than this IoU are one object (expressions of one
# annotation have identical masks)
SAME_OBJECT_IOU = 0.5


def different_object_pairs(gt_masks: Tensor,
                           same_object_iou: float = SAME_OBJECT_IOU) -> Tensor:
    """(N, H, W) bool ground-truth masks -> (P, 2) long index pairs ``i < j`` of expressions
    naming different objects: those whose ground-truth masks overlap by IoU ≤ ``same_object_iou``
    (two expressions of one annotation have identical masks, IoU 1)."""
    if gt_masks.shape[0] < 2:
        return gt_masks.new_zeros((0, 2), dtype=torch.long)
    different = pairwise_mask_iou(gt_masks) <= same_object_iou
    return torch.triu(different, diagonal=1).nonzero()


@METRICS.register_module()
class TextFollowingMetric(BaseMetric):
    """Cross-object IoU: how much the masks predicted for different objects of an image overlap.

    Per image, every pair of expressions ``(i, j)`` whose ground-truth masks are different
    objects (ground-truth IoU ≤ ``same_object_iou``; expressions of the same annotation have
    identical masks) contributes ``IoU(pred_i, pred_j)``; two empty predictions count 1.0 (the
    same output for both objects). Pairs of one object and images with a single object
    contribute nothing. Keys:

    - ``crossIoU``: the mean over all such pairs of the split, in [0, 1], lower is better
      (a model that segments every object, or the same one for every text, scores about 1.0;
      disjoint predictions score 0). NaN when the split has no pair;
    - ``pairs``: the number of pairs; ``images``: the images contributing at least one.

    The dataset must give all expressions of an image in one item (``ReferSegDataset`` with
    ``text_mode='original'``), as evaluation configs do. ``process`` keeps one entry per image
    (its pair IoUs on the CPU), so distributed padding is dropped exactly as in
    :class:`ReferSegMetric`.

    Args:
        same_object_iou: ground-truth masks overlapping by more than this IoU are one object.
        prefix: prefix of the keys (default ``'text_following'``).
    """
    default_prefix = 'text_following'

    def __init__(self, same_object_iou: float = SAME_OBJECT_IOU, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= same_object_iou < 1:
            raise ValueError(f'same_object_iou must be in [0, 1), got {same_object_iou}')
        self.same_object_iou = same_object_iou

    @staticmethod
    def _gt_masks(sample: dict, device: torch.device) -> Tensor:
        """(N, H, W) bool ground truth of a data sample turned into a dict."""
        gt = sample.get('gt_masks')
        if gt is None and 'gt_instances' in sample:
            gt = sample['gt_instances'].get('masks')
        if gt is None:
            raise KeyError(f'{sample.get("img_path")}: no gt_masks / gt_instances.masks')
        if isinstance(gt, Tensor):
            return gt.to(device=device, dtype=torch.bool)
        return gt.to_tensor(torch.bool, device)  # mmdet BitmapMasks / PolygonMasks

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']['masks'].bool()
            gt = self._gt_masks(sample, pred.device)
            if pred.shape != gt.shape:
                raise ValueError(f'{sample.get("img_path")}: predicted masks {tuple(pred.shape)} '
                                 f'do not match ground truth {tuple(gt.shape)}')
            pairs = different_object_pairs(gt, self.same_object_iou)
            if len(pairs):
                pred_iou = pairwise_mask_iou(pred)
                self.results.append(pred_iou[pairs[:, 0], pairs[:, 1]].cpu())
            else:
                self.results.append(torch.zeros(0, dtype=torch.float64))

    def compute_metrics(self, results: list) -> Dict[str, Union[float, int]]:
        ious = torch.cat(results) if results else torch.zeros(0, dtype=torch.float64)
        if not len(ious):
            warnings.warn('TextFollowingMetric: no image has expressions naming two different '
                          'objects; crossIoU is NaN')
        return dict(crossIoU=ious.mean().item() if len(ious) else float('nan'),
                    pairs=len(ious), images=sum(len(r) > 0 for r in results))
