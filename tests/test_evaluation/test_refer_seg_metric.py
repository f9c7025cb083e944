"""ReferSegMetric: hand-computed edge cases, agreement with mmdet's RefSegMetric, and exact
two-process evaluation with a padded sampler."""

import numpy as np
import pytest
import torch
from mmdet.evaluation import RefSegMetric
from mmdet.structures.mask import BitmapMasks
from mmengine.evaluator import Evaluator

from mmevf.evaluation import ReferSegMetric

ALL = ('cIoU', 'gIoU', 'mIoU', 'P@0.5', 'P@0.7', 'P@0.9')


def sample(pred: np.ndarray, gt: np.ndarray) -> dict:
    """What the Evaluator hands a metric: a data sample turned into a dict."""
    h, w = gt.shape[1:]
    return dict(pred_instances=dict(masks=torch.from_numpy(pred).bool()),
                gt_masks=BitmapMasks(gt.astype(np.uint8), h, w), img_path='x.jpg')


def evaluate(metric, samples) -> dict:
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_hand_computed_edge_cases():
    z = np.zeros((1, 4, 4), bool)
    gt_a = z.copy(); gt_a[0, :2, :2] = True          # 4 pixels
    pred_a = z.copy(); pred_a[0, :2, :1] = True      # I=2, U=4 -> 0.5
    gt_b = z.copy(); gt_b[0, 3, 3] = True            # one-pixel object
    pred_b = gt_b.copy()                             # I=1, U=1 -> 1.0
    gt_c = z.copy(); gt_c[0, 2:, :] = True           # 8 pixels, empty prediction: I=0, U=8
    pred_c = z.copy()
    gt_d = z.copy(); pred_d = z.copy()               # empty gt and prediction: U=0
    gt_e = z.copy(); pred_e = z.copy(); pred_e[0, 0, 0] = True  # empty gt, 1 false pixel: 0
    samples = [sample(np.concatenate([pred_a, pred_b]), np.concatenate([gt_a, gt_b])),
               sample(np.concatenate([pred_c, pred_d, pred_e]), np.concatenate([gt_c, gt_d, gt_e]))]
    result = evaluate(ReferSegMetric(metric=ALL), samples)
    ious_giou = [0.5, 1.0, 0.0, 1.0, 0.0]
    expected = {
        'cIoU': 100 * (2 + 1 + 0 + 0 + 0) / (4 + 1 + 8 + 0 + 1),
        'gIoU': 100 * np.mean(ious_giou),
        'mIoU': 100 * np.mean([0.5, 1.0, 0.0, 0.0, 0.0]),
        'P@0.5': 100 * 3 / 5, 'P@0.7': 100 * 2 / 5, 'P@0.9': 100 * 2 / 5,
    }
    assert result == pytest.approx(expected)


def test_agrees_with_mmdet_refsegmetric():
    rng = np.random.default_rng(0)
    samples = [sample(rng.random((n, 9, 7)) > 0.5, rng.random((n, 9, 7)) > 0.4)
               for n in (1, 3, 2, 5)]
    ours = evaluate(ReferSegMetric(metric=('cIoU', 'gIoU', 'mIoU')), samples)
    mmdet = evaluate(RefSegMetric(metric=('cIoU', 'mIoU')), samples)
    assert ours['cIoU'] == pytest.approx(float(mmdet['cIoU']))
    assert ours['mIoU'] == pytest.approx(float(mmdet['mIoU']))
    assert ours['gIoU'] == pytest.approx(float(mmdet['mIoU']))  # no empty union here


def test_rejects_unknown_metric_and_shape_mismatch():
    with pytest.raises(ValueError, match='metrics must be among'):
        ReferSegMetric(metric=('bIoU', ))
    with pytest.raises(ValueError, match='x.jpg: predicted masks'):
        ReferSegMetric().process({}, [sample(np.zeros((2, 4, 4)), np.zeros((1, 4, 4)))])


# Multi-process evaluation equals single-process evaluation: tested for this metric and
# GReferSegMetric in one 2-process run (test_grefer_seg_metric.py).
