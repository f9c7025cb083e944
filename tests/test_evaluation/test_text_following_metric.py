"""TextFollowingMetric: the cross-object IoU computed by hand on small masks, and MetricGroup
under mmdet's MultiDatasetsEvaluator (one metric per split)."""
import math

import numpy as np
import pytest

from mmevf.evaluation import MetricGroup, ReferSegMetric, TextFollowingMetric
from mmevf.registry import METRICS
from .test_refer_seg_metric import evaluate, sample


def box(y0: int, y1: int, x0: int, x1: int, shape=(8, 8)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


A, B, C = box(0, 4, 0, 4), box(4, 8, 4, 8), box(0, 2, 6, 8)  # three disjoint objects


def test_identical_predictions_for_different_objects_score_one():
    # two objects, the same mask predicted for both: not following the text
    gt = np.stack([A, B])
    pred = np.stack([A | B, A | B])
    assert evaluate(TextFollowingMetric(), [sample(pred, gt)]) == dict(
        crossIoU=1.0, pairs=1, images=1)


def test_disjoint_predictions_score_zero():
    gt = np.stack([A, B, C])
    result = evaluate(TextFollowingMetric(), [sample(gt.copy(), gt)])
    assert result == dict(crossIoU=0.0, pairs=3, images=1)


def test_hand_computed_mean_and_same_object_pairs_excluded():
    # expressions 0 and 1 name object A (identical ground truth), 2 names B, 3 names C
    gt = np.stack([A, A, B, C])
    p0 = box(0, 4, 0, 4)             # 16 px
    p1 = box(0, 4, 0, 2)             # 8 px, inside p0: IoU(p0, p1) = 0.5 but same object
    p2 = box(0, 4, 2, 6)             # 16 px, overlaps p0 on 8, p1 on 0
    p3 = np.zeros((8, 8), bool)      # empty
    pred = np.stack([p0, p1, p2, p3])
    # different-object pairs: (0,2) 8/24, (0,3) 0/16, (1,2) 0/24, (1,3) 0/8, (2,3) 0/16
    expected = (8 / 24) / 5
    # a second image with one object (two expressions of it) contributes no pair
    single = sample(np.stack([A, B]), np.stack([A, A]))
    result = evaluate(TextFollowingMetric(), [sample(pred, gt), single])
    assert result['crossIoU'] == pytest.approx(expected)
    assert (result['pairs'], result['images']) == (5, 1)


def test_same_object_threshold_and_empty_predictions():
    # ground truths overlapping by IoU 12/16 = 0.75 > 0.5: one object (e.g. a duplicate ref)
    near_a = box(0, 4, 0, 3)
    empty = np.zeros((2, 8, 8), bool)
    with pytest.warns(UserWarning, match='no image'):
        result = evaluate(TextFollowingMetric(), [sample(empty, np.stack([A, near_a]))])
    assert result['pairs'] == 0
    # with a stricter rule they are two objects; two empty predictions count 1.0 (the same
    # output for both)
    result = evaluate(TextFollowingMetric(same_object_iou=0.8),
                      [sample(empty, np.stack([A, near_a]))])
    assert result == dict(crossIoU=1.0, pairs=1, images=1)


def test_no_pair_is_nan_with_warning_and_errors():
    with pytest.warns(UserWarning, match='no image'):
        result = evaluate(TextFollowingMetric(), [sample(A[None], A[None])])
    assert math.isnan(result['crossIoU']) and result['pairs'] == 0
    with pytest.raises(ValueError, match='x.jpg: predicted masks'):
        TextFollowingMetric().process({}, [sample(np.stack([A, B]), A[None])])
    with pytest.raises(ValueError, match='same_object_iou'):
        TextFollowingMetric(same_object_iou=1.0)


def test_gt_instances_fallback():
    item = sample(np.stack([A, A]), np.stack([A, B]))
    item['gt_instances'] = dict(masks=item.pop('gt_masks'))
    assert evaluate(TextFollowingMetric(), [item])['crossIoU'] == 1.0


def test_metric_group_per_split_under_multi_datasets_evaluator():
    """One MetricGroup per split: cIoU and crossIoU side by side, each split's slice only."""
    from mmdet.evaluation import MultiDatasetsEvaluator
    follows = sample(np.stack([A, B]), np.stack([A, B]))        # cIoU 100, cross 0
    ignores = sample(np.stack([A | B, A | B]), np.stack([A, B]))  # cIoU 50, cross 1
    group = dict(type='mmevf.MetricGroup',  # the evaluator builds in mmengine's scope
                 metrics=[dict(type='ReferSegMetric', metric=('cIoU', )),
                          dict(type='TextFollowingMetric')])
    evaluator = MultiDatasetsEvaluator([group, group], dataset_prefixes=['s_val', 's_testA'])
    evaluator.dataset_meta = dict(cumulative_sizes=[2, 3])
    for metric in evaluator.metrics:
        metric.process({}, [follows, follows])
        metric.process({}, [ignores])
    result = evaluator.evaluate(3)
    assert result == pytest.approx({
        's_val/cIoU': 100.0, 's_val/crossIoU': 0.0, 's_val/pairs': 2, 's_val/images': 2,
        's_testA/cIoU': 50.0, 's_testA/crossIoU': 1.0, 's_testA/pairs': 1,
        's_testA/images': 1})


def test_metric_group_checks_members():
    assert isinstance(METRICS.build(dict(type='TextFollowingMetric')), TextFollowingMetric)
    with pytest.raises(ValueError, match='at least one'):
        MetricGroup(metrics=[])

    class TwoPerSample(ReferSegMetric):
        def process(self, data_batch, data_samples):
            super().process(data_batch, data_samples)
            super().process(data_batch, data_samples)

    with pytest.raises(ValueError, match='one per sample'):
        MetricGroup(metrics=[TwoPerSample()]).process({}, [sample(A[None], A[None])])
    with pytest.raises(ValueError, match="two members report 'cIoU'"):
        evaluate(MetricGroup(metrics=[ReferSegMetric(), ReferSegMetric()]),
                 [sample(A[None], A[None])])
