"""SAM's image branch from a cache of frozen image-encoder embeddings, and which pipelines a
cache can serve."""
import json
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Tuple

import mmcv
from mmcv.transforms import BaseTransform
from mmcv.transforms import LoadAnnotations as MMCVLoadAnnotations
from mmcv.transforms import LoadImageFromFile
from mmcv.transforms import RandomFlip as MMCVRandomFlip
from mmdet.datasets.transforms import PackDetInputs

from mmevf.registry import TRANSFORMS
from mmevf.utils import embedding_cache as cache
from .sam_resize import SAMResize
from .tokenize import TokenizeText

# Transforms that leave the image alone; anything else before the cache is refused.
IMAGE_NEUTRAL = (MMCVLoadAnnotations, TokenizeText, PackDetInputs)


@TRANSFORMS.register_module()
class LoadCachedEmbedding(BaseTransform):
    """Replace the SAM-branch image by the embedding that ``tools/cache_embeddings.py`` stored
    for it, so that a model with a frozen image encoder trains without running it.

    Place it right after ``SAMResize``: the image is still loaded and resized (the BEiT-3 view,
    ``img_shape`` / ``scale_factor`` for the masks and the check below need it), then the entry
    of ``img_path`` and its flip (``'none'`` or the ``flip_direction`` of a flip transform
    before ``SAMResize``) is read. It must belong to this cache (the manifest's key) and have
    been computed from exactly these pixels: the entry stores the SHA-256 of the SAM-resized
    image, so a transform that changes the image (photometric, resize jitter, crop ...; only
    flips have cached variants), a changed image file or another resize is refused, never
    silently replaced by a wrong embedding. Whether the cache fits the *model* (weights, input
    size, normalisation) the model checks: ``img_embed_key`` travels with the embedding.

    Required keys: ``img`` (SAM-resized, (h, w, 3) uint8), ``img_path``, ``img_shape``,
    ``ori_shape``; optional ``flip``, ``flip_direction``.
    Added keys: ``img_embed`` ((C, h', w') tensor in the cache's dtype), ``img_embed_key``
    (the cache key, 64 hex digits).
    Removed keys: ``img`` (the SAM branch is the embedding now).

    Args:
        cache_dir: folder written by ``tools/cache_embeddings.py``.
    """

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir
        self._manifest: Optional[dict] = None  # read once per process (dataloader worker)

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            manifest = cache.read_manifest(self.cache_dir)
            if manifest is None:
                raise FileNotFoundError(
                    f'{self.cache_dir} holds no embedding cache ({cache.MANIFEST} is missing): '
                    'write it with tools/cache_embeddings.py CONFIG --out '
                    f'{self.cache_dir}')
            self._manifest = manifest
        return self._manifest

    def transform(self, results: dict) -> dict:
        key = self.manifest['key']
        img_path, variant = results['img_path'], cache.image_variant(results)
        path = cache.entry_path(self.cache_dir, img_path, variant)
        try:
            embedding, meta = cache.read_entry(path)
        except FileNotFoundError:
            flipped = '' if variant == 'none' else f' flipped {variant} (its flip variant)'
            raise FileNotFoundError(
                f'{img_path}{flipped} has no embedding in the cache {self.cache_dir} ({path}): '
                'cache this split with tools/cache_embeddings.py CONFIG --split ... --out '
                f'{self.cache_dir}') from None
        if meta.get('key') != key:
            raise cache.StaleEmbeddingCacheError(
                f'{path} ({img_path}) was made with another encoder (key {meta.get("key")}) than '
                f'the cache {self.cache_dir} (key {key}): write the cache again')
        if meta['img_path'] != osp.normpath(img_path) or meta['variant'] != variant:
            raise cache.StaleEmbeddingCacheError(
                f'{path} holds {meta["img_path"]} ({meta["variant"]}), not {img_path} '
                f'({variant})')
        if meta['dtype'] != self.manifest['dtype']:
            raise cache.StaleEmbeddingCacheError(
                f'{path} ({img_path}) is {meta["dtype"]}, the cache {self.manifest["dtype"]}')
        img = results.get('img')
        if img is None:
            raise KeyError(f'{img_path}: LoadCachedEmbedding needs the SAM-resized image: place '
                           'it right after SAMResize')
        if (list(img.shape[:2]) != json.loads(meta['img_shape'])
                or cache.pixel_digest(img) != meta['pixels']):
            raise cache.StaleEmbeddingCacheError(
                f'{img_path} ({variant}): the image reaching LoadCachedEmbedding is not the one '
                f'its cached embedding was computed from (shape {tuple(img.shape[:2])}, cached '
                f'{tuple(json.loads(meta["img_shape"]))}). A transform before it changes '
                'the pixels (photometric, resize jitter, crop ...: a cache holds one embedding '
                'per image and flip), SAMResize is not the cached size, or the file changed '
                'since caching. Remove the transform, or train without the cache.')
        results['img_embed'] = embedding
        results['img_embed_key'] = key
        del results['img']
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(cache_dir={self.cache_dir!r})'


class CachePlan(NamedTuple):
    """How a pipeline makes the image SAM's encoder reads, for ``tools/cache_embeddings.py``:
    the loading, flip and ``SAMResize`` transforms in pipeline order, and the variants to
    cache (``'none'`` plus the directions of the flip transform, if any)."""
    steps: List[BaseTransform]
    variants: Tuple[str, ...]

    def sam_image(self, data_info: dict, variant: str) -> dict:
        """Run the image steps on a copy of ``data_info``, flipping as ``variant`` exactly as the
        flip transform does: the result's ``img`` is what the training pipeline makes."""
        results = dict(data_info)
        for step in self.steps:
            if isinstance(step, MMCVRandomFlip):
                if variant != 'none':
                    results['img'] = mmcv.imflip(results['img'], direction=variant)
                    results.update(flip=True, flip_direction=variant)
                else:
                    results.update(flip=False, flip_direction=None)
            else:
                results = step(results)
        return results


def cache_plan(transforms: Sequence[BaseTransform]) -> CachePlan:
    """The :class:`CachePlan` of a built pipeline (e.g. ``dataset.pipeline.transforms``), read up
    to ``LoadCachedEmbedding`` (or to its end).

    Allowed before the cache: image loading, transforms that leave the image alone (annotation
    loading, tokenisation, packing), one flip (mmcv / mmdet ``RandomFlip``,
    ``TextAwareRandomFlip``: each of its directions becomes a cached variant) and ``SAMResize``.
    Any other transform may change the image and is refused, by name.
    """
    steps: List[BaseTransform] = []
    variants = ['none']
    flips = [t for t in transforms if isinstance(t, MMCVRandomFlip)]
    for transform in transforms:
        name = type(transform).__name__
        if isinstance(transform, LoadCachedEmbedding):
            break
        if isinstance(transform, LoadImageFromFile):
            steps.append(transform)
        elif isinstance(transform, MMCVRandomFlip):
            if len(flips) > 1:
                raise ValueError(f'{", ".join(type(t).__name__ for t in flips)}: one flip '
                                 'transform at most in a pipeline served by an embedding cache')
            directions = transform.direction
            directions = [directions] if isinstance(directions, str) else list(directions)
            for direction in directions:
                if direction not in cache.VARIANTS[1:]:
                    raise ValueError(f'{name}: direction {direction!r} has no cached variant')
                variants.append(direction)
            steps.append(transform)
        elif isinstance(transform, SAMResize):
            steps.append(transform)
        elif not isinstance(transform, IMAGE_NEUTRAL):
            raise ValueError(
                f'{name} may change the image, and an embedding cache holds one embedding per '
                'image (and flip): it cannot run before LoadCachedEmbedding. Remove it from the '
                'pipeline, or train without the cache')
    if not any(isinstance(step, SAMResize) for step in steps):
        raise ValueError('the pipeline has no SAMResize before LoadCachedEmbedding: nothing '
                         'makes the SAM-branch image to cache')
    if not isinstance(steps[0], LoadImageFromFile):
        raise ValueError(f'{type(steps[0]).__name__} comes before the image is loaded')
    return CachePlan(steps, tuple(dict.fromkeys(variants)))
