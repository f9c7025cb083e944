"""RatioSourceSampler: per-sample source draws at fixed ratios over a ConcatDataset, within 1 %
over 10,000 draws on one rank and on each of two, no index twice within a step, reproducible
from the seed, and built from a Runner config with ``randomness.seed``."""
import itertools
from typing import List

import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset, ConcatDataset
from mmengine.model import BaseModel

import mmevf.datasets  # noqa: F401
from mmevf.datasets.samplers import RatioSourceSampler
from mmevf.datasets.samplers import ratio_source_sampler as sampler_module

# The paper's multitask mix, RefCOCO family (4 sources) uniform inside its 16.
PAPER_RATIO = [4, 4, 4, 4, 4, 4, 2, 2, 1]
# Small and unequal sources, so a 10,000-draw run crosses many passes of each.
SIZES = [40, 55, 70, 33, 300, 120, 45, 64, 32]


class ToySource(BaseDataset):
    """``size`` items ``dict(source=k, local=i)``."""

    def __init__(self, source: int, size: int, **kwargs) -> None:
        self.source, self.size = source, size
        super().__init__(ann_file='', serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        return [dict(source=self.source, local=i) for i in range(self.size)]


def toy_concat(sizes=SIZES) -> ConcatDataset:
    return ConcatDataset([ToySource(k, n) for k, n in enumerate(sizes)])


def draws(sampler: RatioSourceSampler, n: int = 10000) -> np.ndarray:
    return np.fromiter(itertools.islice(iter(sampler), n), dtype=np.int64)


def source_of(indices: np.ndarray, sizes=SIZES) -> np.ndarray:
    return np.searchsorted(np.cumsum(sizes), indices, side='right')


def build_on_rank(monkeypatch, rank: int, world_size: int, **kwargs) -> RatioSourceSampler:
    monkeypatch.setattr(sampler_module, 'get_dist_info', lambda: (rank, world_size))
    kwargs.setdefault('source_ratio', PAPER_RATIO)
    return RatioSourceSampler(toy_concat(), **kwargs)


def assert_frequencies(indices: np.ndarray, ratio=PAPER_RATIO) -> None:
    freq = np.bincount(source_of(indices), minlength=len(ratio)) / len(indices)
    share = np.asarray(ratio) / sum(ratio)
    assert np.abs(freq - share).max() < 0.01, (freq, share)


@pytest.mark.parametrize('seed', range(20))
def test_frequencies_within_one_percent_on_one_rank(monkeypatch, seed):
    """Any seed: sources come from shuffled blocks with the exact counts."""
    sampler = build_on_rank(monkeypatch, 0, 1, batch_size=16, seed=seed)
    indices = draws(sampler)
    assert ((indices >= 0) & (indices < sum(SIZES))).all()
    assert_frequencies(indices)


@pytest.mark.parametrize('seed', range(5))
def test_two_ranks_own_streams_disjoint_within_each_step(monkeypatch, seed):
    batch = 8  # a step takes 16 samples; every source holds at least 16
    per_rank = [draws(build_on_rank(monkeypatch, r, 2, batch_size=batch, seed=seed))
                for r in (0, 1)]
    for indices in per_rank:
        assert_frequencies(indices)
    assert not np.array_equal(per_rank[0], per_rank[1])
    steps = np.concatenate([i.reshape(-1, batch) for i in per_rank], axis=1)
    assert all(len(set(step)) == 2 * batch for step in steps.tolist())


def test_step_drawing_one_source_many_times_stays_distinct(monkeypatch):
    # One source, 16 samples, steps of 12: most steps straddle two passes.
    monkeypatch.setattr(sampler_module, 'get_dist_info', lambda: (0, 1))
    sampler = RatioSourceSampler(toy_concat([16]), batch_size=12, source_ratio=[1], seed=0)
    indices = draws(sampler, 12 * 40)
    assert all(len(set(step)) == 12 for step in indices.reshape(-1, 12).tolist())
    # and every sample is visited within each 16-draw pass
    assert all(sorted(p) == list(range(16)) for p in indices.reshape(-1, 16).tolist())


def test_same_seed_same_stream_other_seed_other_stream(monkeypatch):
    a, b, c = (draws(build_on_rank(monkeypatch, 1, 2, batch_size=4, seed=s), 2000)
               for s in (5, 5, 6))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # a fresh iterator restarts the stream
    sampler = build_on_rank(monkeypatch, 1, 2, batch_size=4, seed=5)
    assert np.array_equal(draws(sampler, 100), draws(sampler, 100))


def test_zero_ratio_source_is_never_drawn(monkeypatch):
    ratio = [1, 0, 1, 0, 1, 0, 1, 0, 1]
    indices = draws(build_on_rank(monkeypatch, 0, 1, batch_size=4, seed=0, source_ratio=ratio))
    assert set(source_of(indices).tolist()) == {0, 2, 4, 6, 8}


@pytest.mark.parametrize('kwargs, error', [
    (dict(source_ratio=[1, 2]), ValueError),
    (dict(source_ratio=[-1] + PAPER_RATIO[1:]), ValueError),
    (dict(source_ratio=[0] * 9), ValueError),
    (dict(source_ratio=PAPER_RATIO, batch_size=0), ValueError),
])
def test_refuses_bad_arguments(monkeypatch, kwargs, error):
    kwargs.setdefault('batch_size', 4)
    with pytest.raises(error):
        build_on_rank(monkeypatch, 0, 1, **kwargs)


def test_refuses_a_plain_dataset():
    with pytest.raises(TypeError, match='ConcatDataset'):
        RatioSourceSampler(ToySource(0, 4), batch_size=2, source_ratio=[1], seed=0)


class RecordingModel(BaseModel):
    """Remembers the (source, local index) of every training sample it is fed."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: List[tuple] = []

    def forward(self, source, local, mode='loss', **kwargs):
        self.seen += list(zip(source, local))
        return dict(loss=self.weight.sum() * 0)


def test_runner_builds_it_from_config_with_the_randomness_seed(tmp_path):
    from mmengine.runner import Runner
    model = RecordingModel()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        default_scope='mmevf',
        randomness=dict(seed=7),
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='RatioSourceSampler', batch_size=4, source_ratio=[2, 1, 1]),
            dataset=dict(type='ConcatDataset',
                         datasets=[ToySource(k, n) for k, n in enumerate([10, 6, 8])])),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=None),
        log_processor=dict(by_epoch=False))
    runner.train()
    sampler = runner.train_dataloader.sampler
    assert isinstance(sampler, RatioSourceSampler) and sampler.seed == 7
    offsets = [0, 10, 16]
    fed = [offsets[s] + i for s, i in model.seen]
    expected = RatioSourceSampler(runner.train_dataloader.dataset, batch_size=4,
                                  source_ratio=[2, 1, 1], seed=7)
    assert fed == draws(expected, 12).tolist()
