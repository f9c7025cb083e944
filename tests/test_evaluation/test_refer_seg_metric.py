"""ReferSegMetric: hand-computed edge cases, agreement with mmdet's RefSegMetric, and exact
two-process evaluation with a padded sampler."""
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmdet.evaluation import RefSegMetric
from mmdet.structures.mask import BitmapMasks
from mmengine.dataset import DefaultSampler
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


NUM_IMAGES = 7  # odd: a 2-process DefaultSampler pads one duplicate


def image_sample(index: int) -> dict:
    rng = np.random.default_rng(index)
    n = 1 + index % 3
    return sample(rng.random((n, 6, 5)) > 0.5, rng.random((n, 6, 5)) > 0.5)


def run_rank(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    evaluator = Evaluator(ReferSegMetric(metric=ALL, prefix='synthref_val'))
    for index in DefaultSampler(list(range(NUM_IMAGES)), shuffle=False):
        evaluator.process([image_sample(index)])
    queue.put((rank, evaluator.evaluate(NUM_IMAGES)))
    dist.destroy_process_group()


def test_two_process_evaluation_equals_single_process():
    single = Evaluator(ReferSegMetric(metric=ALL, prefix='synthref_val'))
    for index in range(NUM_IMAGES):
        single.process([image_sample(index)])
    expected = single.evaluate(NUM_IMAGES)
    assert sorted(expected) == sorted(f'synthref_val/{m}' for m in ALL)

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=run_rank, args=(rank, port, queue)) for rank in range(2)]
    for proc in procs:
        proc.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert results[0] == expected and results[1] == expected
