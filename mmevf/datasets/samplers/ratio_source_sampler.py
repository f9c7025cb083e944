"""Mixing the sources of a concatenated dataset by fixed ratios, the source drawn per sample."""
from typing import Iterator, List, Optional, Sequence, Sized, Union

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmevf.registry import DATA_SAMPLERS


class _SourceStream:
    """Endless reshuffled passes over one source's ``size`` local indices.

    Args:
        size: number of samples of the source.
        rng: the source's own generator (identical on every rank).
        shuffle: reshuffle every pass; ``False`` walks ``0..size-1`` in order.
    """

    def __init__(self, size: int, rng: np.random.Generator, shuffle: bool) -> None:
        self.size = size
        self.rng = rng
        self.shuffle = shuffle
        self.order = np.empty(0, dtype=np.int64)
        self.pos = 0

    def _new_pass(self, taken: np.ndarray) -> None:
        order = self.rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        if taken.size:
            # A step straddling two passes must not meet the head of the new pass again:
            # move what this step already holds to the pass's end (it stays a permutation).
            seen = np.isin(order, taken)
            order = np.concatenate([order[~seen], order[seen]])
        self.order, self.pos = order, 0

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` local indices, distinct whenever ``count <= size``."""
        parts: List[np.ndarray] = []
        while count > 0:
            if self.pos == self.order.size:
                self._new_pass(np.concatenate(parts) if parts else np.empty(0, np.int64))
            part = self.order[self.pos:self.pos + count]
            self.pos += part.size
            count -= part.size
            parts.append(part)
        return np.concatenate(parts) if parts else np.empty(0, np.int64)


class _SourcePool:
    """Endless source labels of one rank, in shuffled blocks of ``block`` labels whose counts
    follow the probabilities exactly (largest remainder), so any stretch of draws is within
    ``1 / block`` per source of the ratios after every block, whatever the seed."""

    def __init__(self, probs: np.ndarray, rng: np.random.Generator, block: int = 1000) -> None:
        exact = probs * block
        counts = np.floor(exact).astype(np.int64)
        remainder = block - counts.sum()
        counts[np.argsort(-(exact - counts), kind='stable')[:remainder]] += 1
        self.labels = np.repeat(np.arange(len(probs)), counts)
        self.rng = rng
        self.buffer = np.empty(0, dtype=np.int64)

    def take(self, count: int) -> np.ndarray:
        while self.buffer.size < count:
            self.buffer = np.concatenate([self.buffer, self.rng.permutation(self.labels)])
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken


@DATA_SAMPLERS.register_module()
class RatioSourceSampler(Sampler):
    """Endless sampler over a ``ConcatDataset`` drawing the source of every sample by ratio.

    mmdet's ``MultiSourceSampler`` fixes how many samples of each source every batch holds
    (``int(batch_size * ratio)``), so a batch of 16 cannot mix 16:4:4:2:2:1 and rare sources
    may never appear; here each sample's source is drawn from a shuffled pool instead.

    Semantics, with ``W`` ranks and one *step* = the ``W * batch_size`` samples of one
    iteration over all ranks:

    - Every rank draws its samples' sources from its own endless pool of shuffled blocks of
      1000 labels whose counts are the ratios (largest remainder): each source's frequency is
      within 0.1 % of its share after every 1000 draws of a rank, for any seed. Every rank
      computes every rank's pool (seeded by ``seed`` and the rank), so all ranks agree on the
      whole step: rank ``r`` holds samples ``r * batch_size`` to ``(r + 1) * batch_size - 1``.
    - Inside a source, indices come from endless passes over a permutation of the source
      (seeded by ``seed`` and the source's position, reshuffled every pass), consumed by the
      step as a whole in the order above, so ranks never take the same position.
    - Hence within one step no dataset index appears twice, on one rank or across ranks,
      whenever every source gets at most as many draws as it has samples (always when each
      source holds ``>= W * batch_size`` samples); and over passes each source is covered
      evenly.
    - The stream depends only on ``seed``, ``W``, ``batch_size``, ``source_ratio`` and the
      sources' lengths. ``seed=None`` takes a random seed synchronised over ranks, as
      mmengine's samplers do; the Runner passes ``randomness.seed``.

    Nested shares are written flat: the paper's RefCOCO family (4 sources, uniform) :
    Objects365 : ADE20K : PartImageNet : HumanParsing : PASCAL-Part = 16 : 4 : 4 : 2 : 2 : 1
    is ``source_ratio=[4, 4, 4, 4, 4, 4, 2, 2, 1]``.

    The sampler never ends (use ``IterBasedTrainLoop``); ``len()`` is the dataset's, as for
    mmengine's ``InfiniteSampler``.

    Args:
        dataset: a ``ConcatDataset`` (anything with ``datasets``), sources in ratio order.
        batch_size: the dataloader's per-rank batch size, which defines a step.
        source_ratio: one non-negative weight per source (normalised here).
        shuffle: shuffle each source's passes; ``False`` walks every source in order.
        seed: random seed, identical on all ranks; ``None`` draws a synchronised one.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 source_ratio: Sequence[Union[int, float]],
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not hasattr(dataset, 'datasets'):
            raise TypeError(
                f'RatioSourceSampler needs a ConcatDataset, got {type(dataset).__name__}')
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        sizes = [len(d) for d in dataset.datasets]
        ratio = np.asarray(source_ratio, dtype=np.float64)
        if ratio.shape != (len(sizes), ):
            raise ValueError(f'source_ratio needs one weight per source ({len(sizes)}), '
                             f'got {list(source_ratio)}')
        if (ratio < 0).any() or not np.isfinite(ratio).all() or ratio.sum() <= 0:
            raise ValueError(f'source_ratio must be non-negative with a positive sum, '
                             f'got {list(source_ratio)}')
        for i, (size, weight) in enumerate(zip(sizes, ratio)):
            if weight > 0 and size == 0:
                raise ValueError(f'source {i} is empty but has ratio {weight}')

        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = batch_size
        self.source_ratio = list(source_ratio)
        self.probs = ratio / ratio.sum()
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.shuffle = shuffle
        # Same seed on every rank: the whole step is drawn everywhere and each rank keeps
        # its slice, which is what keeps ranks from duplicating each other.
        self.seed = sync_random_seed() if seed is None else seed

    def _rng(self, *key: int) -> np.random.Generator:
        # SeedSequence gives independent streams for (seed, purpose, source) keys.
        return np.random.default_rng([self.seed % 2**32, *key])

    def __iter__(self) -> Iterator[int]:
        pools = [_SourcePool(self.probs, self._rng(0, r)) for r in range(self.world_size)]
        streams = [_SourceStream(size, self._rng(1, i), self.shuffle)
                   for i, size in enumerate(self.sizes)]
        step = self.world_size * self.batch_size
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        while True:
            sources = np.concatenate([pool.take(self.batch_size) for pool in pools])
            indices = np.empty(step, dtype=np.int64)
            for i, stream in enumerate(streams):
                drawn = sources == i
                if drawn.any():
                    indices[drawn] = stream.take(int(drawn.sum())) + self.offsets[i]
            yield from indices[mine].tolist()

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Unused: the stream is endless and does not restart per epoch."""
