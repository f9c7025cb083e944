"""GReferSegMetric: a hand-computed gRefCOCO case (TP, TN, FP, FN, empty predictions), the
predicted no-target rule, agreement with ReferSegMetric without no-target metainfo, and exact
two-process evaluation with a padded sampler."""
import socket
import time
from datetime import timedelta
from queue import Empty

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmdet.structures.mask import BitmapMasks
from mmengine.dataset import DefaultSampler
from mmengine.evaluator import Evaluator

from mmevf.evaluation import GReferSegMetric, ReferSegMetric
from mmevf.evaluation.metrics.grefer_seg_metric import METRIC_NAMES

H, W = 4, 5


def box(rows=(0, 0), cols=(0, 0)) -> np.ndarray:
    """A (1, H, W) mask holding rows[0]:rows[1] x cols[0]:cols[1]; box() is empty."""
    mask = np.zeros((1, H, W), bool)
    mask[0, rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def sample(pred, gt, no_target=None, pred_no_target=None, img_path='x.jpg') -> dict:
    """What the Evaluator hands a metric: a data sample (metainfo included) turned into a dict."""
    pred, gt = np.concatenate(pred), np.concatenate(gt)
    pred_instances = dict(masks=torch.from_numpy(pred).bool())
    if pred_no_target is not None:
        pred_instances['no_target'] = torch.tensor(pred_no_target)
    result = dict(pred_instances=pred_instances, img_path=img_path,
                  gt_masks=BitmapMasks(gt.astype(np.uint8), *gt.shape[1:]))
    if no_target is not None:
        result['no_target'] = no_target
    return result


def evaluate(metric, samples) -> dict:
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_hand_computed_grefcoco_case():
    empty = box()
    # a.jpg: no predicted flag, so an empty predicted mask means "no target".
    a = sample(
        pred=[box((3, 4), (4, 5)),   # e0 target, = gt: I=1, U=1, IoU 1          TN
              box((0, 2), (0, 1)),   # e1 target, 2 px inside 4: I=2, U=4, IoU .5 TN
              empty,                 # e2 target, empty: I=0, U=8, IoU 0          FP
              empty,                 # e3 no-target, empty: adds 0, 0, IoU 1      TP
              box((0, 1), (0, 3))],  # e4 no-target, 3 px: adds 0, 3, IoU 0       FN
        gt=[box((3, 4), (4, 5)), box((0, 2), (0, 2)), box((2, 4), (0, 4)), empty, empty],
        no_target=[False, False, False, True, True], img_path='a.jpg')
    # b.jpg: the predicted flag decides, whatever the mask holds (ReLA).
    b = sample(
        pred=[box((0, 1), (0, 5)) | box((1, 2), (0, 2)),  # e5 target, 7 px inside 10:
                                                          #    I=7, U=10, IoU .7 (exactly) TN
              box((3, 4), (3, 5)),   # e6 target flagged: pred 2 px, gt 4 px, overlap 1,
                                     #    I forced 0, U = |pred ∪ gt| = 5, IoU 0      FP
              box((0, 1), (0, 3)),   # e7 no-target flagged, 3 px ignored: 0, 0, IoU 1 TP
              empty,                 # e8 target not flagged, empty: I=0, U=6, IoU 0 TN
              empty],                # e9 no-target not flagged, empty: 0, 0, IoU 0  FN
        gt=[box((0, 2), (0, 5)), box((3, 4), (0, 4)), empty, box((2, 4), (0, 3)), empty],
        no_target=[False, False, True, False, True],
        pred_no_target=[False, True, True, False, False], img_path='b.jpg')
    result = evaluate(GReferSegMetric(prefix='grefcoco_val'), [a, b])
    expected = {
        'cIoU': 100 * (1 + 2 + 0 + 0 + 0 + 7 + 0 + 0 + 0 + 0)
                / (1 + 4 + 8 + 0 + 3 + 10 + 5 + 0 + 6 + 0),
        'gIoU': 100 * (1 + .5 + 0 + 1 + 0 + .7 + 0 + 1 + 0 + 0) / 10,
        'N-acc': 100 * 2 / (2 + 2),      # TP e3 e7, FN e4 e9
        'T-acc': 100 * 4 / (4 + 2),      # TN e0 e1 e5 e8, FP e2 e6
        # over the 6 targets, IoUs e0 1, e1 .5, e2 0, e5 .7, e6 0, e8 0; >= as in ReLA
        'Pr@0.7': 100 * 2 / 6, 'Pr@0.8': 100 * 1 / 6, 'Pr@0.9': 100 * 1 / 6,
    }
    assert list(result) == list(METRIC_NAMES)
    assert result == pytest.approx(expected)


def test_predicted_no_target_flag_overrides_the_mask():
    gt = [box((0, 2), (0, 2)), box()]          # a target (4 px) and a no-target
    pred = [box(), box((3, 4), (0, 5))]        # empty mask on the target, 5 px on the no-target
    by_mask = evaluate(GReferSegMetric(), [sample(pred, gt, [False, True])])
    # empty mask -> predicted no-target: FP (IoU 0, U 4); 5 px -> not rejected: FN (IoU 0, U 5)
    assert by_mask == pytest.approx({'cIoU': 0.0, 'gIoU': 0.0, 'N-acc': 0.0, 'T-acc': 0.0,
                                     'Pr@0.7': 0.0, 'Pr@0.8': 0.0, 'Pr@0.9': 0.0})
    by_flag = evaluate(GReferSegMetric(), [sample(pred, gt, [False, True], [False, True])])
    # flag: target kept (TN, I 0, U 4, IoU 0); no-target rejected (TP, adds nothing, IoU 1)
    assert by_flag == pytest.approx({'cIoU': 100 * 0 / 4, 'gIoU': 100 * (0 + 1) / 2,
                                     'N-acc': 100.0, 'T-acc': 100.0,
                                     'Pr@0.7': 0.0, 'Pr@0.8': 0.0, 'Pr@0.9': 0.0})


def test_without_no_target_metainfo_matches_refer_seg_metric():
    rng = np.random.default_rng(0)
    samples = []
    for n in (1, 3, 2, 5):
        pred, gt = rng.random((n, 9, 7)) > 0.5, rng.random((n, 9, 7)) > 0.4
        pred[0] = False  # one empty prediction per image: a target rejected
        samples.append(sample([pred], [gt]))
    ours = evaluate(GReferSegMetric(), samples)
    theirs = evaluate(ReferSegMetric(metric=('cIoU', 'gIoU', 'P@0.7', 'P@0.8', 'P@0.9')), samples)
    assert 'N-acc' not in ours  # no no-target expression: left out, not NaN
    assert ours['T-acc'] == pytest.approx(100 * (11 - 4) / 11)
    for name in ('cIoU', 'gIoU'):
        assert ours[name] == pytest.approx(theirs[name])
    for t in ('0.7', '0.8', '0.9'):
        assert ours[f'Pr@{t}'] == pytest.approx(theirs[f'P@{t}'])


def test_rejects_unknown_metric_and_mismatched_counts():
    with pytest.raises(ValueError, match='metrics must be among'):
        GReferSegMetric(metric=('P@0.5', ))
    with pytest.raises(ValueError, match='x.jpg: predicted masks'):
        GReferSegMetric().process({}, [sample([box(), box()], [box()])])
    with pytest.raises(ValueError, match=r'y.jpg: 2 masks but no_target'):
        GReferSegMetric().process({}, [sample([box(), box()], [box(), box()], [True],
                                              img_path='y.jpg')])
    with pytest.raises(ValueError, match=r'y.jpg: 1 masks but no_target'):
        GReferSegMetric().process({}, [sample([box()], [box()], None, [True, False],
                                              img_path='y.jpg')])


NUM_IMAGES = 7  # odd: a 2-process DefaultSampler pads one duplicate


def image_sample(index: int) -> dict:
    rng = np.random.default_rng(index)
    n = 1 + index % 3
    no_target = rng.random(n) < 0.4
    gt = (rng.random((n, 6, 5)) > 0.5) & ~no_target[:, None, None]
    pred = rng.random((n, 6, 5)) > 0.5
    pred[rng.random(n) < 0.3] = False
    flag = (rng.random(n) < 0.5).tolist() if index % 2 else None
    return sample([pred], [gt], no_target.tolist(), flag)


def both_metrics() -> list:
    """This metric and ReferSegMetric: one 2-process run checks both."""
    return [GReferSegMetric(prefix='grefcoco_val'),
            ReferSegMetric(metric=('cIoU', 'gIoU', 'mIoU', 'P@0.5', 'P@0.7', 'P@0.9'),
                           prefix='synthref_val')]


def evaluate_as_rank(rank: int, port: int) -> dict:
    """This process as ``rank`` of 2 (gloo): its DefaultSampler share of the images, then the
    evaluators' collection across both processes."""
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2, timeout=timedelta(seconds=120))
    try:
        evaluator = Evaluator(both_metrics())
        for index in DefaultSampler(list(range(NUM_IMAGES)), shuffle=False):
            evaluator.process([image_sample(index)])
        return evaluator.evaluate(NUM_IMAGES)
    finally:
        dist.destroy_process_group()


def run_second_rank(port: int, queue) -> None:
    """Rank 1 in a spawned interpreter; says when its imports are done, then its result."""
    queue.put(('ready', None))
    queue.put(('result', evaluate_as_rank(1, port)))


def test_two_process_evaluation_equals_single_process():
    """GReferSegMetric and ReferSegMetric under 2 processes (a DefaultSampler padding one
    duplicate) equal 1 process exactly. Rank 0 is this process, rank 1 a spawned one: two real
    processes, one interpreter start-up."""
    single = Evaluator(both_metrics())
    for index in range(NUM_IMAGES):
        single.process([image_sample(index)])
    expected = single.evaluate(NUM_IMAGES)
    assert {k for k in expected if k.startswith('grefcoco_val/')} == {
        f'grefcoco_val/{m}' for m in METRIC_NAMES}
    assert len([k for k in expected if k.startswith('synthref_val/')]) == 6

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=run_second_rank, args=(port, queue))
    proc.start()
    try:
        # this process joins the group only once the other one has imported everything, so
        # that the rendezvous timeout does not have to cover an interpreter start-up
        deadline = time.monotonic() + 600
        while True:
            try:
                assert queue.get(timeout=1) == ('ready', None)
                break
            except Empty:
                assert proc.is_alive(), f'rank 1 exited with {proc.exitcode} before starting'
                assert time.monotonic() < deadline, 'rank 1 did not start in 10 minutes'
        rank0 = evaluate_as_rank(0, port)
        kind, rank1 = queue.get(timeout=120)
        proc.join(timeout=60)
        assert kind == 'result' and proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert rank0 == expected and rank1 == expected
