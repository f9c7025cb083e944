"""tools/cache_embeddings.py and training from its cache: the first iterations' losses equal the
uncached run's, a resumed cached run repeats them, flips are served from their own entries,
several dataloader workers read one cache, and what a cache cannot stand for is refused."""
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from mmevf.registry import DATASETS, MODELS
from mmevf.utils import embedding_cache as cache
from tests.conftest import load_tool
from tests.fixtures import tiny_runs

ROOT = Path(__file__).resolve().parents[2]
FLIP = dict(type='TextAwareRandomFlip', prob=0.5)
# the training split cut to its first 8 items (8 distinct images): every cache of it encodes
# 8 images instead of 32, and the 2-iteration trainings (4 items) still draw from several
TRAIN_ITEMS = 8


def tiny_cfg(name: str, synthref_root: Path, work_dir: Path, cache_dir: Path = None,
             **overrides) -> Config:
    """``configs/evf_sam/{name}.py`` made test-sized (tests/fixtures/tiny_runs.py; the train
    split cut to ``TRAIN_ITEMS``), its embedding cache read from ``cache_dir``."""
    cfg = tiny_runs.tiny_cfg(synthref_root, work_dir, ROOT / f'configs/evf_sam/{name}.py',
                             **overrides)
    cfg.train_dataloader.dataset.indices = TRAIN_ITEMS
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        for dataset in loader.dataset.get('datasets', [loader.dataset]):
            for transform in dataset.pipeline:
                if transform.type == 'LoadCachedEmbedding':
                    transform.cache_dir = str(cache_dir)
    return cfg


def cache_embeddings(cfg: Config, tmp_path: Path, *args: str) -> str:
    """Run tools/cache_embeddings.py on ``cfg``; its printed summary line."""
    path = tmp_path / f'config_{len(list(tmp_path.glob("config_*.py")))}.py'
    cfg.dump(str(path))
    tool = load_tool('cache_embeddings')
    threads = torch.get_num_threads()
    try:
        tool.main([str(path), '--num-workers', '0', *args])
    finally:
        torch.set_num_threads(threads)
    return path


def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def entry_files(folder: Path) -> list:
    return sorted((folder / 'entries').rglob('*.safetensors'))


@pytest.fixture(scope='module')
def fp32_cache(synthref_root, tmp_path_factory) -> Path:
    """The tool's fp32 cache of the training split, into the folder the pipeline's
    LoadCachedEmbedding names (no --out), the encoder's random weights as the runner makes them
    from the seed (no checkpoint). Read, never written, by the tests below."""
    tmp_path = tmp_path_factory.mktemp('fp32_cache')
    cfg = tiny_cfg('evf-tiny-frozen-sam_synthref_cached', synthref_root, tmp_path / 'w',
                   tmp_path / 'cache')
    cache_embeddings(cfg, tmp_path)
    return tmp_path / 'cache'


def test_cached_training_equals_uncached_and_resumes(synthref_root, fp32_cache, tmp_path):
    # two iterations, a checkpoint after each: the resumed run repeats the second
    short = {'train_cfg.max_iters': 2, 'default_hooks.checkpoint.interval': 1}
    uncached = tiny_runs.train_losses(tiny_cfg('evf-tiny-frozen-sam_synthref', synthref_root,
                                     tmp_path / 'uncached', **short))
    cached_cfg = tiny_cfg('evf-tiny-frozen-sam_synthref_cached', synthref_root,
                          tmp_path / 'cached', fp32_cache, **short)
    # the encoder's random weights as the runner makes them from the seed (fp32_cache) are
    # the weights in the uncached run's checkpoints: the same cache key
    cache_embeddings(cached_cfg, tmp_path, '--out', str(tmp_path / 'from_ckpt'),
                     '--weights', str(tmp_path / 'uncached' / 'iter_1.pth'))
    assert cache.read_manifest(str(fp32_cache))['key'] == \
        cache.read_manifest(str(tmp_path / 'from_ckpt'))['key']

    cached = tiny_runs.train_losses(cached_cfg)
    assert len(cached) == 2 and all(np.isfinite(cached))
    torch.testing.assert_close(torch.tensor(cached), torch.tensor(uncached), rtol=1e-5, atol=0)

    resumed = tiny_runs.train_losses(tiny_cfg(
        'evf-tiny-frozen-sam_synthref_cached', synthref_root, tmp_path / 'cached',
        fp32_cache, resume=True, load_from=str(tmp_path / 'cached' / 'iter_1.pth'),
        **short))
    # the restored message hub holds iteration 1; 2 is recomputed after resuming
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(cached), rtol=1e-5, atol=0)


def test_tool_records_dtype_resumes_and_refuses_what_it_cannot_cache(synthref_root, fp32_cache,
                                                                      tmp_path, capsys):
    cfg = tiny_cfg('evf-tiny-frozen-sam_synthref_cached', synthref_root, tmp_path / 'w',
                   tmp_path / 'bf16')
    cache_embeddings(cfg, tmp_path, '--dtype', 'bf16')
    assert f'done: {TRAIN_ITEMS} written, 0 already cached' in last_line(capsys)
    manifest = cache.read_manifest(str(tmp_path / 'bf16'))
    assert manifest['dtype'] == 'bfloat16' and manifest['embedding_shape'] == [64, 16, 16]
    assert cache.read_manifest(str(fp32_cache))['dtype'] == 'float32'
    files = entry_files(tmp_path / 'bf16')
    assert len(files) == TRAIN_ITEMS  # the training images, each once
    for path in files[:3]:
        bf16, meta = cache.read_entry(str(path))
        # the same entry in the fp32 cache (not str.replace: an entry's hash may contain 'bf16')
        fp32, _ = cache.read_entry(str(fp32_cache / path.relative_to(tmp_path / 'bf16')))
        assert bf16.dtype == torch.bfloat16 and meta['dtype'] == 'bfloat16'
        assert fp32.dtype == torch.float32
        torch.testing.assert_close(bf16, fp32.bfloat16(), rtol=0, atol=0)

    # Resumable: only a missing entry is written again.
    files[0].unlink()
    cache_embeddings(cfg, tmp_path, '--dtype', 'bf16')
    assert f'done: 1 written, {TRAIN_ITEMS - 1} already cached' in last_line(capsys)
    # Another encoder (other random weights), or another dtype, in the same folder: refused.
    other_weights = tiny_cfg('evf-tiny-frozen-sam_synthref_cached', synthref_root,
                             tmp_path / 'w', tmp_path / 'bf16', randomness=dict(seed=1))
    with pytest.raises(cache.StaleEmbeddingCacheError, match='differing in weights_sha256'):
        cache_embeddings(other_weights, tmp_path, '--dtype', 'bf16')
    with pytest.raises(ValueError, match='holds a bfloat16 cache, not float32'):
        cache_embeddings(cfg, tmp_path)
    cache_embeddings(other_weights, tmp_path, '--dtype', 'bf16', '--overwrite')
    assert f'done: {TRAIN_ITEMS} written, 0 already cached' in last_line(capsys)

    # A trainable image encoder (the demo's tiny model) is refused before anything is encoded.
    trained = tiny_cfg('evf-tiny_synthref', synthref_root, tmp_path / 'w')
    with pytest.raises(ValueError, match='need a frozen image encoder'):
        cache_embeddings(trained, tmp_path, '--out', str(tmp_path / 'trained'))
    # So is a pipeline that changes the image otherwise than by flipping it, by name.
    cfg.train_dataloader.dataset.pipeline.insert(2, dict(type='mmdet.PhotoMetricDistortion'))
    with pytest.raises(ValueError, match='PhotoMetricDistortion may change the image'):
        cache_embeddings(cfg, tmp_path, '--out', str(tmp_path / 'photometric'))
    assert not (tmp_path / 'trained').exists() and not (tmp_path / 'photometric').exists()


def flip_cfg(synthref_root: Path, tmp_path: Path) -> Config:
    cfg = tiny_cfg('evf-tiny-frozen-sam_synthref_cached', synthref_root, tmp_path / 'w',
                   tmp_path / 'cache')
    cfg.train_dataloader.dataset.pipeline.insert(2, FLIP)  # before SAMResize
    return cfg


def test_flipped_images_are_served_from_their_own_entries(synthref_root, fp32_cache, tmp_path):
    cfg = flip_cfg(synthref_root, tmp_path)
    cache_embeddings(cfg, tmp_path)
    files = entry_files(tmp_path / 'cache')
    assert len(files) == 2 * TRAIN_ITEMS
    assert sum('.horizontal.' in f.name for f in files) == TRAIN_ITEMS

    init_default_scope('mmevf')
    cached = DATASETS.build(cfg.train_dataloader.dataset)
    plain_cfg = cfg.train_dataloader.dataset.copy()
    plain_cfg.pipeline = [t for t in plain_cfg.pipeline if t.type != 'LoadCachedEmbedding']
    plain = DATASETS.build(plain_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # the runner's random encoder: the tool's seed
    flips = set()
    for index in range(6):
        items = []
        for dataset in (cached, plain):  # the same random flip and expressions for both
            random.seed(index)
            np.random.seed(index)
            items.append(dataset[index])
        assert items[0]['data_samples'].flip == items[1]['data_samples'].flip
        assert items[0]['data_samples'].text == items[1]['data_samples'].text
        flips.add(items[0]['data_samples'].flip)
        batch = model.data_preprocessor(pseudo_collate([items[1]]))['inputs']
        with torch.no_grad():
            expected = model.image_encoder(batch['img'])[0]
        # equal up to the encoder's batch (the tool's 4 images, 1 here)
        torch.testing.assert_close(items[0]['inputs']['img_embed'], expected, rtol=1e-5,
                                   atol=1e-5)
        other = 'none' if items[0]['data_samples'].flip else 'horizontal'
        mirrored, _ = cache.read_entry(cache.entry_path(
            str(tmp_path / 'cache'), items[0]['data_samples'].img_path, other))
        assert (mirrored - expected).abs().max() > 1e-2  # the other variant would be wrong
    assert flips == {True, False}

    # A cache made without the flip (fp32_cache) does not serve the flipped images: the image
    # is named.
    flip_cfg_no_cache = flip_cfg(synthref_root, tmp_path)
    flip_cfg_no_cache.train_dataloader.dataset.pipeline[4].cache_dir = str(fp32_cache)
    dataset = DATASETS.build(flip_cfg_no_cache.train_dataloader.dataset)
    np.random.seed(0)
    with pytest.raises(FileNotFoundError, match=r'\.jpg flipped horizontal \(its flip variant\) '
                       'has no embedding'):
        for index in range(len(dataset)):
            dataset[index]


def test_two_dataloader_workers_read_one_cache(synthref_root, tmp_path, capsys):
    cfg = tiny_cfg('evf-tiny-frozen-sam_synthref_cached', synthref_root, tmp_path / 'w',
                   tmp_path / 'cache')
    # val and test (three splits) into one folder: one entry per distinct image
    for split in ('val', 'test'):
        cache_embeddings(cfg, tmp_path, '--split', split, '--out', str(tmp_path / 'cache'))
        assert 'written' in last_line(capsys)
    counts = {}
    init_default_scope('mmevf')
    for split in ('val', 'test'):
        dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
        counts[split] = {dataset.get_data_info(i)['img_path'] for i in range(len(dataset))}
    assert len(entry_files(tmp_path / 'cache')) == len(counts['val'] | counts['test'])

    val = cfg.val_dataloader.dataset
    val.pipeline.insert(2, dict(type='LoadCachedEmbedding', cache_dir=str(tmp_path / 'cache')))
    dataset = DATASETS.build(val)

    def embeddings(workers: int) -> torch.Tensor:
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=workers,
                                             collate_fn=pseudo_collate)
        return torch.cat([torch.stack(batch['inputs']['img_embed']) for batch in loader])

    alone = embeddings(0)
    assert alone.shape == (len(dataset), 64, 16, 16)
    torch.testing.assert_close(embeddings(2), alone, rtol=0, atol=0)
