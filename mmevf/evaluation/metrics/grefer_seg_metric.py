"""gIoU / cIoU / N-acc / T-acc / Pr@k for generalized referring segmentation (gRefCOCO, the
GRES protocol of ReLA, CVPR 2023)."""
from typing import Dict, Sequence

import torch

from mmevf.registry import METRICS
from .refer_seg_metric import ReferSegMetric

METRIC_NAMES = ('cIoU', 'gIoU', 'N-acc', 'T-acc', 'Pr@0.7', 'Pr@0.8', 'Pr@0.9')


@METRICS.register_module()
class GReferSegMetric(ReferSegMetric):
    """ReLA's ``ReferEvaluator`` (``gres_model/evaluation/refer_evaluation.py`` after its
    "fix eval metrics" commit), per expression, in percent.

    An expression is *no-target* when the image's metainfo ``no_target`` (one bool per
    expression; absent means all False) says so; its ground-truth mask is empty. It is
    *predicted no-target* when ``pred_instances.no_target`` says so (ReLA's rule: its
    classifier decides, whatever the mask holds) or, if the model gives no such flag, when its
    predicted mask is empty. With I and U the intersection and union of the predicted and the
    ground-truth mask:

    ===========  ====================  ==============  =========================
    expression   predicted no-target   IoU             adds to ΣI, ΣU
    ===========  ====================  ==============  =========================
    no-target    yes (TP)              1               0, 0
    no-target    no (FN)               0               0, U (the predicted area)
    target       yes (FP)              0               0, U
    target       no (TN)               I / U           I, U
    ===========  ====================  ==============  =========================

    - ``gIoU`` = 100 · mean IoU over all expressions; ``cIoU`` = 100 · ΣI / ΣU;
    - ``N-acc`` = 100 · TP / (TP + FN), ``T-acc`` = 100 · TN / (TN + FP);
    - ``Pr@t`` = 100 · fraction of target expressions with IoU ≥ t.

    A target expression whose ground truth and prediction are both empty scores 0 (ReLA),
    unlike ``ReferSegMetric``'s gIoU. A metric whose denominator is empty (``N-acc`` on a split
    without no-target expressions; ``T-acc`` and ``Pr@t`` on one without targets) is left out of
    the results, so tables show a blank (ReLA reports ``N_acc = T_acc = 0`` then).

    ``process`` keeps one entry per image (per-expression integer intersections and unions and
    the two no-target flags), so multi-process results equal single-process results.

    Args:
        metric: names from ``METRIC_NAMES``.
        prefix: prefix of the keys, e.g. ``'grefcoco_val'`` -> ``'grefcoco_val/gIoU'``.
    """

    def __init__(self, metric: Sequence[str] = METRIC_NAMES, **kwargs) -> None:
        unknown = set(metric) - set(METRIC_NAMES)
        if unknown or not metric:
            raise ValueError(f'metrics must be among {METRIC_NAMES}, got {list(metric)}')
        super().__init__(**kwargs)
        self.metrics = tuple(metric)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            super().process(data_batch, [sample])  # per-expression I and U, shapes checked
            intersection, union = self.results.pop()
            pred = sample['pred_instances']
            if 'no_target' in pred:
                pred_nt = torch.as_tensor(pred['no_target'], dtype=torch.bool).cpu()
            else:
                pred_nt = ~pred['masks'].flatten(1).any(-1).cpu()
            gt_nt = sample.get('no_target', [False] * len(union))
            gt_nt = torch.as_tensor(gt_nt, dtype=torch.bool).cpu()
            if pred_nt.shape != union.shape or gt_nt.shape != union.shape:
                raise ValueError(f'{sample.get("img_path")}: {len(union)} masks but no_target of '
                                 f'shape {tuple(pred_nt.shape)} (predicted), '
                                 f'{tuple(gt_nt.shape)} (ground truth)')
            self.results.append((intersection, union, pred_nt, gt_nt))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        intersection, union, pred_nt, gt_nt = (torch.cat(column) for column in zip(*results))
        target, hit = ~gt_nt, ~gt_nt & ~pred_nt
        intersection = torch.where(hit, intersection, 0).double()
        union = torch.where(gt_nt & pred_nt, 0, union).double()
        iou = torch.where(gt_nt, pred_nt.double(), intersection / union.clamp(min=1))
        values = {
            'cIoU': 100 * intersection.sum() / union.sum().clamp(min=1),
            'gIoU': 100 * iou.mean(),
        }
        if gt_nt.any():
            values['N-acc'] = 100 * (gt_nt & pred_nt).double().sum() / gt_nt.sum()
        if target.any():
            values['T-acc'] = 100 * hit.double().sum() / target.sum()
            for name in self.metrics:
                if name.startswith('Pr@'):
                    values[name] = 100 * (iou[target] >= float(name[3:])).double().mean()
        return {name: values[name].item() for name in self.metrics if name in values}
