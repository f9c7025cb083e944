"""SemanticIoUMetric: parity with mmseg's IoUMetric on label maps, hand-computed cases, overlap
resolution by score, errors, num_classes against foreign metainfo, and use in MetricGroup."""
import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmseg.evaluation import IoUMetric

from mmevf.evaluation import MetricGroup, ReferSegMetric, SemanticIoUMetric

IGNORE = 255


def sample(pred_masks: np.ndarray, scores, gt_masks: np.ndarray, labels,
           img_path: str = 'ade/x.jpg') -> dict:
    """What the Evaluator hands a metric: one prompt per class present, as dicts."""
    h, w = gt_masks.shape[1:]
    return dict(pred_instances=dict(masks=torch.from_numpy(pred_masks).bool(),
                                    scores=torch.tensor(scores, dtype=torch.float32)),
                gt_instances=dict(labels=torch.tensor(labels, dtype=torch.long)),
                gt_masks=BitmapMasks(gt_masks.astype(np.uint8), h, w), img_path=img_path)


def from_label_maps(pred_map: np.ndarray, gt_map: np.ndarray, rng) -> dict:
    """The dataset's prompts (the classes present in ``gt_map``, their binary masks) and the
    model's mask for each (the pixels ``pred_map`` gives that class), random scores."""
    present = [c for c in np.unique(gt_map) if c != IGNORE]
    gt = np.stack([gt_map == c for c in present])
    pred = np.stack([pred_map == c for c in present])
    return sample(pred, rng.random(len(present)).tolist(), gt, present)


def evaluate(metric, samples) -> dict:
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_parity_with_mmseg_iou_metric():
    # Per-class masks can only express predictions of prompted (present) classes, so the
    # predicted maps use the classes present in that image plus "no class" (255).
    rng = np.random.default_rng(0)
    num_classes, ours, theirs = 6, [], []
    for _ in range(3):
        present = rng.choice(num_classes, size=3, replace=False)
        gt_map = rng.choice(np.append(present, IGNORE), size=(7, 9))
        pred_map = rng.choice(np.append(present, IGNORE), size=(7, 9))
        ours.append(from_label_maps(pred_map, gt_map, rng))
        theirs.append(dict(pred_sem_seg=dict(data=torch.from_numpy(pred_map)[None]),
                           gt_sem_seg=dict(data=torch.from_numpy(gt_map)[None])))
    plain = IoUMetric(iou_metrics=['mIoU', 'mDice'])
    plain.dataset_meta = dict(classes=[f'c{i}' for i in range(num_classes)])
    metric = SemanticIoUMetric(iou_metrics=['mIoU', 'mDice'])
    metric.dataset_meta = plain.dataset_meta
    expected = evaluate(plain, theirs)
    result = evaluate(metric, ours)
    assert len(metric.results) == 3  # one entry per image
    assert sorted(result) == ['aAcc', 'mAcc', 'mDice', 'mIoU']
    assert result == expected
    # raw per-class areas agree too, not only the rounded summary
    for mine, ref in zip(metric.results, plain.results):
        for a, b in zip(mine, ref):
            assert torch.equal(a, b)


def test_hand_computed():
    # gt                pred (class 0 mask | class 1 mask; (1, 0) uncovered)
    # 0   0   1 1       0 0 0 1
    # 0 255   1 1       . 0 1 1   ((1, 1) is unlabelled: left out)
    gt_map = np.array([[0, 0, 1, 1], [0, IGNORE, 1, 1]])
    pred0 = np.array([[1, 1, 1, 0], [0, 1, 0, 0]], bool)
    pred1 = np.array([[0, 0, 0, 1], [0, 0, 1, 1]], bool)
    s = sample(np.stack([pred0, pred1]), [0.5, 0.5], np.stack([gt_map == 0, gt_map == 1]), [0, 1])
    result = evaluate(SemanticIoUMetric(num_classes=2), [s])
    # class 0: gt 3 px, pred 3 labelled px, I = 2, U = 4 -> 1/2, acc 2/3
    # class 1: gt 4 px, pred 3 px, I = 3, U = 4 -> 3/4, acc 3/4
    # mIoU = (1/2 + 3/4) / 2 = 5/8; aAcc = 5/7; mAcc = (2/3 + 3/4) / 2 = 17/24
    assert result['mIoU'] == pytest.approx(100 * 5 / 8, abs=0.005)
    assert result['aAcc'] == pytest.approx(100 * 5 / 7, abs=0.005)
    assert result['mAcc'] == pytest.approx(100 * 17 / 24, abs=0.005)


def test_image_without_prompts_adds_nothing():
    empty = sample(np.zeros((0, 2, 3), bool), [], np.zeros((0, 2, 3), bool), [])
    one = sample(np.ones((1, 2, 3), bool), [0.1], np.ones((1, 2, 3), bool), [1])
    metric = SemanticIoUMetric(num_classes=2)
    result = evaluate(metric, [empty, one])
    assert len(metric.results) == 2
    assert all(float(t.sum()) == 0 for t in metric.results[0])
    assert result['mIoU'] == 100.0  # class 0 NaN (never present nor predicted), class 1 perfect


@pytest.mark.parametrize('scores,labels,expected', [
    # masks A = [1 1 1 0], B = [0 0 1 1] overlap at pixel 2; gt = [0 0 1 1]
    ((0.9, 0.1), (0, 1), 100 * 7 / 12),  # A (0) wins: pred [0 0 0 1]; IoU 2/3, 1/2 -> 7/12
    ((0.1, 0.9), (0, 1), 100.0),         # B (1) wins: pred [0 0 1 1] = gt
    ((0.5, 0.5), (0, 1), 100 * 7 / 12),  # tie: the first mask, A (0), wins
    # A is class 1, B class 0; tie: A wins -> pred [1 1 1 0]; IoU0 = 0 / 3, IoU1 = 1 / 4
    # -> 1/8 (had B won: pred [1 1 0 0], both IoUs 0)
    ((0.5, 0.5), (1, 0), 100 * 1 / 8),
])
def test_overlap_resolved_by_score(scores, labels, expected):
    a = np.array([[[1, 1, 1, 0]]], bool)
    b = np.array([[[0, 0, 1, 1]]], bool)
    gt_map = np.array([[0, 0, 1, 1]])
    gt = np.stack([gt_map == labels[0], gt_map == labels[1]])
    s = sample(np.concatenate([a, b]), list(scores), gt, list(labels))
    result = evaluate(SemanticIoUMetric(num_classes=2), [s])
    assert result['mIoU'] == pytest.approx(expected, abs=0.005)


def deferred_error(metric: SemanticIoUMetric, bad: dict, match: str) -> None:
    """``bad`` stores its reason (mmdet's MultiDatasetsEvaluator shows a metric every source's
    images); evaluating a slice that holds it raises, a slice without it does not."""
    masks = np.zeros((2, 2, 2), bool)
    masks[0, 0], masks[1, 1] = True, True
    good = sample(masks, [0.1, 0.2], masks, [0, 1], img_path='ade/ok.jpg')
    metric.results.clear()
    metric.process({}, [good, bad])
    assert len(metric.results) == 2 and isinstance(metric.results[1], str)
    with pytest.raises(ValueError, match=match):
        metric.compute_metrics(metric.results)
    assert metric.compute_metrics(metric.results[:1])['mIoU'] == 100.0


def test_errors_name_the_image():
    masks = np.zeros((2, 2, 2), bool)
    masks[0, 0], masks[1, 1] = True, True
    metric = SemanticIoUMetric(num_classes=3)

    no_labels = sample(masks, [0.1, 0.2], masks, [0, 1], img_path='ade/a.jpg')
    del no_labels['gt_instances']['labels']
    deferred_error(metric, no_labels, r'1 of 2 images.*ade/a\.jpg.*with_label=True')
    no_instances = sample(masks, [0.1, 0.2], masks, [0, 1], img_path='ade/a.jpg')
    del no_instances['gt_instances']
    deferred_error(metric, no_instances, r'ade/a\.jpg.*with_label=True')
    overlapping = masks.copy()
    overlapping[1, 0, 0] = True
    deferred_error(metric, sample(masks, [0.1, 0.2], overlapping, [0, 1], img_path='ade/c.jpg'),
                   r'ade/c\.jpg: ground-truth masks overlap')
    deferred_error(metric, sample(masks, [0.1, 0.2], masks, [0, 3], img_path='ade/d.jpg'),
                   r'ade/d\.jpg: labels \[0, 3\] outside \[0, 3\)')

    metric.results.clear()
    with pytest.raises(ValueError, match=r'ade/b\.jpg: predicted masks'):
        metric.process({}, [sample(masks[:1], [0.1], masks, [0, 1], img_path='ade/b.jpg')])
    assert metric.results == []


def table_classes(log_file) -> list:
    """The Class column of the per-class table mmseg logged."""
    return [line.split('|')[1].strip() for line in log_file.read_text().splitlines()
            if line.startswith('|') and 'Class' not in line]


def test_num_classes_overrides_foreign_dataset_meta(tmp_path):
    # the metainfo of another dataset (3 classes) with labels up to 5: num_classes=6 is used
    gt_map = np.array([[4, 4, 5, 5]])
    pred = np.array([[[1, 1, 1, 1]], [[0, 0, 0, 0]]], bool)  # all of it predicted as class 4
    s = sample(pred, [0.9, 0.1], np.stack([gt_map == 4, gt_map == 5]), [4, 5])
    foreign = dict(classes=('a', 'b', 'c'))

    without = SemanticIoUMetric()
    without.dataset_meta = foreign
    without.process({}, [s])
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        without.compute_metrics(without.results)

    MMLogger.get_instance('test_semantic_iou_metric', log_file=str(tmp_path / 'log.txt'))
    metric = SemanticIoUMetric(num_classes=6)
    metric.dataset_meta = foreign
    result = evaluate(metric, [s])
    assert [len(t) for t in metric.results[0]] == [6] * 4
    # class 4: gt 2, pred 4, I = 2, U = 4 -> 1/2; class 5: gt 2, pred 0 -> 0; classes 0-3 NaN
    assert result['mIoU'] == pytest.approx(100 * 1 / 4)
    assert metric.dataset_meta is foreign  # lent names only during compute_metrics
    assert table_classes(tmp_path / 'log.txt') == ['0', '1', '2', '3', '4', '5']

    named = SemanticIoUMetric(num_classes=6, class_names=list('uvwxyz'))
    named.dataset_meta = foreign
    MMLogger.get_instance('test_semantic_iou_metric_named', log_file=str(tmp_path / 'n.txt'))
    evaluate(named, [s])
    assert table_classes(tmp_path / 'n.txt') == list('uvwxyz')


def test_in_metric_group_beside_refer_seg_metric():
    gt_map = np.array([[0, 0, 1, 1], [0, IGNORE, 1, 1]])
    pred0 = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], bool)
    pred1 = np.array([[0, 0, 0, 1], [0, 0, 1, 1]], bool)
    s = sample(np.stack([pred0, pred1]), [0.5, 0.5], np.stack([gt_map == 0, gt_map == 1]), [0, 1])
    group = MetricGroup(metrics=[dict(type='ReferSegMetric'),
                                 dict(type='SemanticIoUMetric', num_classes=2)], prefix='ade_val')
    evaluator = Evaluator(group)
    evaluator.dataset_meta = dict(classes=('object', ))  # a RefCOCO split's metainfo
    evaluator.process([s, s])
    result = evaluator.evaluate(2)
    assert {'ade_val/cIoU', 'ade_val/gIoU', 'ade_val/mIoU', 'ade_val/aAcc',
            'ade_val/mAcc'} <= set(result)
    # refer reading: I = 2 + 3, U = 4 + 4 per image
    assert result['ade_val/cIoU'] == pytest.approx(100 * 5 / 8)
    assert result['ade_val/mIoU'] == pytest.approx(100 * (1 / 2 + 3 / 4) / 2, abs=0.005)

    # ReferSegMetric can report an 'mIoU' of its own: the group refuses the clash
    clash = MetricGroup(metrics=[ReferSegMetric(metric=('cIoU', 'mIoU')),
                                 SemanticIoUMetric(num_classes=2)])
    clash.process({}, [s])
    with pytest.raises(ValueError, match="two members report 'mIoU'"):
        clash.compute_metrics(clash.results)
