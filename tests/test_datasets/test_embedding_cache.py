"""The embedding cache: its key covers what shapes an embedding, LoadCachedEmbedding serves an
entry only for the very image (and flip) it was made from, and the model uses cached
embeddings only when they are its own frozen encoder's."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmevf.datasets  # noqa: F401
import mmevf.models  # noqa: F401
from mmevf.datasets import ReferSegDataset
from mmevf.datasets.transforms import PackReferInputs, cache_plan
from mmevf.registry import MODELS
from mmevf.utils import embedding_cache as cache
from tests.conftest import synthref_dataset_cfg

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ROOT / 'configs/evf_sam/evf-tiny-frozen-sam_synthref.py'
KEY = 'ab' * 32
LOAD = [dict(type='LoadImageFromFile')]
RESIZE = [dict(type='SAMResize', sam_size=256, mm_size=64)]
FLIP = [dict(type='TextAwareRandomFlip', prob=1.0)]


def tiny_model(config: Path = FROZEN, seed: int = 0, **image_encoder):
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(config)).model
    cfg.image_encoder.update(image_encoder)
    torch.manual_seed(seed)
    return MODELS.build(cfg)


# ------------------------------------------------------------------------------------- the key
def test_key_follows_weights_normalisation_size_and_structure():
    model, twin = tiny_model(), tiny_model()
    key = model.image_embedding_key()
    assert len(key) == 64 and twin.image_embedding_key() == key  # same weights, same key
    assert tiny_model(seed=1).image_embedding_key() != key  # other random weights
    with torch.no_grad():  # a weight changed in place: the memoised key is recomputed
        twin.image_encoder.neck[0].weight[0, 0, 0, 0] += 1e-3
    assert twin.image_embedding_key() != key
    twin.image_encoder.load_state_dict(model.image_encoder.state_dict())
    assert twin.image_embedding_key() == key
    twin.data_preprocessor.std[0] = 1.0  # another normalisation
    assert twin.image_embedding_key() != key
    twin.data_preprocessor.std.copy_(model.data_preprocessor.std)
    twin.data_preprocessor.bgr_to_rgb = False
    assert twin.image_embedding_key() != key

    # Input size and structure count even where the weights are the same: a convolution's
    # stride has no weight; the mode and the frozen flag do not shape the embedding.
    conv = torch.nn.Conv2d(3, 4, 2)
    parts = cache.key_parts(conv, 256, [0, 0, 0], [1, 1, 1], True)
    assert cache.cache_key(cache.key_parts(conv, 128, [0, 0, 0], [1, 1, 1], True)) != \
        cache.cache_key(parts)
    conv.stride = (2, 2)
    assert cache.cache_key(cache.key_parts(conv, 256, [0, 0, 0], [1, 1, 1], True)) != \
        cache.cache_key(parts)
    conv.stride, conv.frozen = (1, 1), True
    assert cache.cache_key(cache.key_parts(conv.eval(), 256, [0, 0, 0], [1, 1, 1], True)) == \
        cache.cache_key(parts)


# ----------------------------------------------------------------------------------- the model
def cached_inputs(model, key: str):
    """A batch of two random images, and the same batch as cached embeddings with ``key``."""
    images = [torch.randint(0, 256, (3, 256, 192), dtype=torch.uint8) for _ in range(2)]
    inputs = model.data_preprocessor(dict(inputs=dict(img=images)))['inputs']
    with torch.no_grad():
        embeddings = model.image_encoder(inputs['img'])
    keys = torch.tensor([list(bytes.fromhex(key))] * 2, dtype=torch.uint8)
    return inputs, dict(img_embed=embeddings, img_embed_key=keys), embeddings


def test_model_takes_cached_embeddings_instead_of_running_its_encoder(monkeypatch):
    model = tiny_model()
    inputs, cached, embeddings = cached_inputs(model, model.image_embedding_key())
    torch.testing.assert_close(model.image_embeddings(inputs), embeddings, rtol=0, atol=0)

    def encoder_runs(*args):
        raise AssertionError('the image encoder ran')

    monkeypatch.setattr(model.image_encoder, 'forward', encoder_runs)
    torch.testing.assert_close(model.image_embeddings(cached), embeddings, rtol=0, atol=0)
    # Weights cast to bf16 (DeepSpeed) are other weights: another key. Given embeddings of
    # that key, they come in the encoder's dtype, as the encoder would have returned them.
    key = model.image_embedding_key()
    assert model.bfloat16().image_embedding_key() != key
    keys = torch.tensor([list(bytes.fromhex(model.image_embedding_key()))] * 2,
                        dtype=torch.uint8)
    bf16 = model.image_embeddings(dict(img_embed=embeddings, img_embed_key=keys))
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16, embeddings.bfloat16(), rtol=0, atol=0)


def test_model_refuses_stale_embeddings_and_an_encoder_that_changes():
    model = tiny_model()
    _, cached, _ = cached_inputs(model, model.image_embedding_key())
    stale = dict(cached, img_embed_key=cached['img_embed_key'].clone())
    stale['img_embed_key'][1, 0] ^= 1
    with pytest.raises(cache.StaleEmbeddingCacheError, match=r'images \[1\] of the batch'):
        model.image_embeddings(stale)
    with pytest.raises(cache.StaleEmbeddingCacheError):  # other weights, same cache
        tiny_model(seed=1).image_embeddings(cached)

    # The demo's tiny model trains its SAM encoder: a cache would be stale after one step.
    trained = tiny_model(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')
    with pytest.raises(ValueError, match=r'need a frozen image encoder, but image_encoder\.'
                       r'\S+ trains'):
        trained.image_embeddings(dict(cached))
    # Not trained but built with frozen=False: in training mode (BatchNorm statistics ...).
    unfrozen = tiny_model(frozen=False).train()
    with pytest.raises(ValueError, match='is in training mode'):
        unfrozen.image_embeddings(dict(cached))
    unfrozen.image_embedding_cacheable = False  # as DIT, whose encoder also reads the text
    with pytest.raises(ValueError, match='reads more than the image'):
        unfrozen.eval().image_embeddings(dict(cached))


# ------------------------------------------------------------------------------ the transform
def val_infos(root: Path, count: int = 2) -> list:
    init_default_scope('mmevf')
    cfg = synthref_dataset_cfg(root, 'val')
    cfg.pop('type')
    dataset = ReferSegDataset(**cfg)
    return [dataset.get_data_info(i) for i in range(count)]


def write_cache(folder: Path, infos: list, variants=('none', 'horizontal'),
                dtype=torch.float16, key: str = KEY) -> dict:
    """A cache of distinct made-up embeddings for the images of ``infos``, as the tool lays it
    out; returns the embeddings by (img_path, variant)."""
    plan = cache_plan(Compose(LOAD + FLIP + RESIZE).transforms)
    stored = {}
    for i, info in enumerate(infos):
        for j, variant in enumerate(variants):
            img = plan.sam_image(info, variant)['img']
            embedding = torch.full((64, 16, 16), float(10 * i + j), dtype=dtype)
            path = cache.entry_path(str(folder), info['img_path'], variant)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(cache.encode_entry(
                embedding, key, info['img_path'], variant, img.shape[:2], info_shape(info),
                cache.pixel_digest(img)))
            stored[info['img_path'], variant] = embedding
    (folder / cache.MANIFEST).write_text(cache.manifest_text(key, {}, dtype, (64, 16, 16)))
    return stored


def info_shape(info: dict) -> tuple:
    return info['height'], info['width']


def run(pipeline: list, info: dict, cache_dir: Path) -> dict:
    steps = pipeline + [dict(type='LoadCachedEmbedding', cache_dir=str(cache_dir))]
    return Compose(steps)(dict(info, text=['the circle']))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float32])
def test_entries_are_served_by_image_and_flip_in_their_dtype(synthref_root, tmp_path, dtype):
    infos = val_infos(synthref_root)
    stored = write_cache(tmp_path, infos, dtype=dtype)
    manifest = cache.read_manifest(str(tmp_path))
    assert str(dtype) == f"torch.{manifest['dtype']}"  # torch's own name, e.g. 'bfloat16'
    for info in infos:
        for variant, flip in (('none', []), ('horizontal', FLIP)):
            results = run(LOAD + flip + RESIZE, info, tmp_path)
            assert results['img_embed'].dtype == dtype
            torch.testing.assert_close(results['img_embed'],
                                       stored[info['img_path'], variant], rtol=0, atol=0)
            assert results['img_embed_key'] == KEY and 'img' not in results
            # the geometry the masks need is still SAMResize's
            assert max(results['img_shape']) == 256
            assert results['ori_shape'] == info_shape(info)
            assert results['mm_img'].shape == (3, 64, 64)


def test_what_a_cache_cannot_serve_is_refused(synthref_root, tmp_path):
    info, other = val_infos(synthref_root, 2)
    with pytest.raises(FileNotFoundError, match='holds no embedding cache'):
        run(LOAD + RESIZE, info, tmp_path)
    write_cache(tmp_path, [info], variants=('none', ))
    with pytest.raises(FileNotFoundError, match=re.escape(f'{other["img_path"]} has no embedd')):
        run(LOAD + RESIZE, other, tmp_path)
    with pytest.raises(FileNotFoundError,
                       match=re.escape(info['img_path']) + ' flipped horizontal .* has no embed'):
        run(LOAD + FLIP + RESIZE, info, tmp_path)
    # Changed pixels: a photometric transform, another SAM size.
    photometric = [dict(type='mmdet.PhotoMetricDistortion')]
    with pytest.raises(cache.StaleEmbeddingCacheError, match='A transform before it changes'):
        run(LOAD + photometric + RESIZE, info, tmp_path)
    with pytest.raises(cache.StaleEmbeddingCacheError, match='not the cached size'):
        run(LOAD + [dict(type='SAMResize', sam_size=128, mm_size=64)], info, tmp_path)
    # An entry of another cache (another encoder) in this one.
    path = cache.entry_path(str(tmp_path), info['img_path'], 'none')
    good = Path(path).read_bytes()
    write_cache(tmp_path / 'other', [info], variants=('none', ), key='cd' * 32)
    Path(path).write_bytes(
        Path(cache.entry_path(str(tmp_path / 'other'), info['img_path'], 'none')).read_bytes())
    with pytest.raises(cache.StaleEmbeddingCacheError, match='made with another encoder'):
        run(LOAD + RESIZE, info, tmp_path)
    Path(path).write_bytes(good)
    assert run(LOAD + RESIZE, info, tmp_path)['img_embed_key'] == KEY


def test_cache_plan_caches_flips_and_refuses_other_image_transforms(synthref_root):
    init_default_scope('mmevf')
    assert cache_plan(Compose(LOAD + RESIZE).transforms).variants == ('none', )
    assert cache_plan(Compose(LOAD + FLIP + RESIZE).transforms).variants == ('none', 'horizontal')
    both = [dict(type='mmdet.RandomFlip', prob=0.5, direction=['horizontal', 'vertical'])]
    assert cache_plan(Compose(LOAD + both + RESIZE).transforms).variants == \
        ('none', 'horizontal', 'vertical')
    for name in ('mmdet.PhotoMetricDistortion', 'mmdet.RandomResize'):
        extra = dict(type=name, scale=(256, 256)) if 'Resize' in name else dict(type=name)
        with pytest.raises(ValueError, match=f'{name.split(".")[1]} may change the image'):
            cache_plan(Compose(LOAD + [extra] + RESIZE).transforms)
    with pytest.raises(ValueError, match='one flip transform at most'):
        cache_plan(Compose(LOAD + FLIP + both + RESIZE).transforms)
    with pytest.raises(ValueError, match='no SAMResize'):
        cache_plan(Compose(LOAD).transforms)

    # The plan's flipped image is the training pipeline's, pixel for pixel.
    info = val_infos(synthref_root, 1)[0]
    plan = cache_plan(Compose(LOAD + FLIP + RESIZE).transforms)
    flipped = Compose(LOAD + FLIP + RESIZE)(dict(info, text=['the circle']))
    np.testing.assert_array_equal(plan.sam_image(info, 'horizontal')['img'], flipped['img'])
    plain = Compose(LOAD + RESIZE)(dict(info))
    np.testing.assert_array_equal(plan.sam_image(info, 'none')['img'], plain['img'])


def test_cached_samples_pack_and_batch_without_images(synthref_root, tmp_path):
    infos = val_infos(synthref_root, 2)
    stored = write_cache(tmp_path, infos)
    packed = [PackReferInputs()(run(LOAD + RESIZE, info, tmp_path)) for info in infos]
    assert set(packed[0]['inputs']) == {'img_embed', 'img_embed_key', 'mm_img'}
    model = tiny_model()
    out = model.data_preprocessor(pseudo_collate(packed))
    assert set(out['inputs']) == {'img_embed', 'img_embed_key', 'mm_img'}
    assert out['inputs']['img_embed'].dtype == torch.float32  # fp16 stored, exact in fp32
    torch.testing.assert_close(out['inputs']['img_embed'][1],
                               stored[infos[1]['img_path'], 'none'].float(), rtol=0, atol=0)
    assert out['inputs']['img_embed_key'].tolist() == [list(bytes.fromhex(KEY))] * 2
    assert out['data_samples'][0].pad_shape == (256, 256)


@pytest.mark.parametrize('name', ['evf-beit3b_sam-b_refcoco', 'evf-beit3l_sam-h_refcoco',
                                  'evf-tiny-frozen-sam_synthref'])
def test_cached_configs_only_add_the_cache_to_training(name):
    """Each `_cached` config is its base with LoadCachedEmbedding right after SAMResize in every
    training source's pipeline (validation still encodes), on a frozen image encoder."""
    base = Config.fromfile(str(ROOT / f'configs/evf_sam/{name}.py'))
    cached = Config.fromfile(str(ROOT / f'configs/evf_sam/{name}_cached.py'))
    assert cached.model == base.model and cached.val_dataloader == base.val_dataloader
    assert cached.model.image_encoder.frozen and 'image_encoder' not in cached.model.trainable
    sources = cached.train_dataloader.dataset.get('datasets', [cached.train_dataloader.dataset])
    base_sources = base.train_dataloader.dataset.get('datasets', [base.train_dataloader.dataset])
    assert len(sources) == len(base_sources) >= 1
    for source, base_source in zip(sources, base_sources):
        steps = [t.type for t in source.pipeline]
        at = steps.index('SAMResize') + 1
        assert steps[at] == 'LoadCachedEmbedding' and source.pipeline[at].cache_dir == \
            cached.embedding_cache
        assert source.pipeline[:at] + source.pipeline[at + 1:] == base_source.pipeline
        assert {k: v for k, v in source.items() if k != 'pipeline'} == \
            {k: v for k, v in base_source.items() if k != 'pipeline'}
