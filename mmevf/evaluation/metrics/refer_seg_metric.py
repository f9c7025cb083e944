"""cIoU / gIoU / precision@k for referring segmentation (EVF-SAM's protocol)."""
from typing import Dict, Sequence

import torch
from mmdet.evaluation import RefSegMetric

from mmevf.registry import METRICS

METRIC_NAMES = ('cIoU', 'gIoU', 'mIoU', 'P@0.5', 'P@0.6', 'P@0.7', 'P@0.8', 'P@0.9')


@METRICS.register_module()
class ReferSegMetric(RefSegMetric):
    """mmdet's ``RefSegMetric`` with EVF-SAM's definitions and precision at IoU thresholds.

    Every expression of every image counts once (all sentences with ``text_mode='original'``):

    - ``cIoU`` = 100 · ΣI / ΣU over all expressions of the split (mmdet's ``cIoU``);
    - ``gIoU`` = 100 · mean per-expression IoU, where an expression whose prediction and
      ground truth are both empty counts IoU 1.0 (EVF-SAM, LISA);
    - ``mIoU`` = the same mean with such expressions counting 0 (mmdet's ``mIoU``);
    - ``P@t`` = 100 · fraction of expressions with IoU ≥ t.

    ``process`` keeps one entry per image (per-expression intersections and unions on the
    CPU), so the evaluator's truncation to the dataset size drops exactly the samples that a
    distributed sampler padded: multi-process results equal single-process results.

    Args:
        metric: names from ``METRIC_NAMES``.
        prefix: prefix of the keys, e.g. ``'refcoco_val'`` -> ``'refcoco_val/cIoU'``.
    """
    default_prefix = None

    def __init__(self,
                 metric: Sequence[str] = ('cIoU', 'gIoU', 'P@0.5', 'P@0.7', 'P@0.9'),
                 **kwargs) -> None:
        unknown = set(metric) - set(METRIC_NAMES)
        if unknown or not metric:
            raise ValueError(f'metrics must be among {METRIC_NAMES}, got {list(metric)}')
        super().__init__(metric=('cIoU', ), **kwargs)
        self.metrics = tuple(metric)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']['masks'].bool()
            gt = sample['gt_masks'].to_tensor(torch.bool, pred.device)
            if pred.shape != gt.shape:
                raise ValueError(f'{sample.get("img_path")}: predicted masks {tuple(pred.shape)} '
                                 f'do not match ground truth {tuple(gt.shape)}')
            overlap, union = self.compute_iou(pred, gt)
            self.results.append((overlap.flatten(1).sum(-1).cpu(), union.flatten(1).sum(-1).cpu()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        intersection = torch.cat([r[0] for r in results]).double()
        union = torch.cat([r[1] for r in results]).double()
        iou = intersection / union.clamp(min=1)
        empty = union == 0
        giou = torch.where(empty, torch.ones_like(iou), iou)
        values = {
            'cIoU': 100 * intersection.sum() / union.sum().clamp(min=1),
            'gIoU': 100 * giou.mean(),
            'mIoU': 100 * iou.mean(),
        }
        for name in self.metrics:
            if name.startswith('P@'):
                values[name] = 100 * (giou >= float(name[2:])).double().mean()
        return {name: values[name].item() for name in self.metrics}
