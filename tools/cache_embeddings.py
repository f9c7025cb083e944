"""Cache the frozen SAM image encoder's embeddings of a config's dataset, so that training can
skip the encoder (``LoadCachedEmbedding`` in the pipeline, e.g.
``configs/evf_sam/evf-beit3b_sam-b_refcoco_cached.py``).

``python tools/cache_embeddings.py CONFIG [--split train|val|test] [--out DIR]
[--weights CKPT] [--dtype fp32|bf16|fp16]``

- ``--split`` names the dataloader whose dataset is cached: ``train`` -> ``train_dataloader``,
  ``val`` -> ``val_dataloader``, ``test`` -> ``test_dataloader``; wrapped datasets
  (``ConcatDataset``, ``MultiSplitDataset`` ...) are cached source by source. Several splits
  may share one ``--out``.
- ``--out`` defaults to the ``cache_dir`` of the split pipeline's ``LoadCachedEmbedding``.
- The encoder's weights: those of ``--weights`` (its ``image_encoder.*`` keys, e.g. a
  training checkpoint), else the config's own (``init_cfg``: SAM's released weights), else,
  for an encoder without pretrained weights, its random initialisation under the config's
  ``randomness`` seed, as the runner makes it.
- Every image is encoded once, however many expressions and refs (and sources) share it, in
  every variant its pipeline can produce: unflipped, plus each direction of a flip transform.
  A pipeline with any other transform that may change the image is refused, naming it.
- Embeddings are computed in fp32 and stored in ``--dtype``; the manifest records it.
- Files are written atomically (temporary file renamed over the target), so an interrupted
  run leaves no torn file; run the command again and it skips every entry already there with
  the same key, dtype and pixels. A folder holding another encoder's cache is refused (the
  differing key parts are named) unless ``--overwrite``.

The cache format and the key are defined in ``mmevf/utils/embedding_cache.py``.
"""
import argparse
import os.path as osp
import time
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import set_random_seed

from mmevf.checkpoint.atomic_backend import AtomicLocalBackend
from mmevf.checkpoint.io import read_state_dict
from mmevf.datasets.transforms import CachePlan, LoadCachedEmbedding, cache_plan
from mmevf.engine.runner_setup import register_all_modules
from mmevf.registry import DATASETS, MODELS
from mmevf.utils import DTYPES, resolve_dtype, torch_dtype_name
from mmevf.utils import embedding_cache as cache

SPLITS = {'train': 'train_dataloader', 'val': 'val_dataloader', 'test': 'test_dataloader'}
Job = Tuple[CachePlan, dict, str]  # the image steps, the dataset's data info, the variant


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', choices=sorted(SPLITS), default='train',
                        help='the dataloader whose images are cached (default: train)')
    parser.add_argument('--out', help='cache folder (default: the cache_dir of the pipeline\'s '
                        'LoadCachedEmbedding)')
    parser.add_argument('--weights', help='weights of the image encoder: a checkpoint '
                        'holding image_encoder.* keys (default: the config\'s)')
    parser.add_argument('--dtype', choices=list(DTYPES), default='fp32',
                        help='storage dtype (fp32: training equals the uncached run)')
    parser.add_argument('--batch-size', type=int, default=4, help='images per encoder pass')
    parser.add_argument('--num-workers', type=int, default=2,
                        help='processes decoding and resizing images')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a cache of another encoder or dtype in --out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def leaf_datasets(dataset) -> Iterator:
    """The datasets holding images, inside wrappers (``datasets`` / ``dataset`` attributes)."""
    children = getattr(dataset, 'datasets', None)
    if children is not None:
        for child in children:
            yield from leaf_datasets(child)
    elif isinstance(getattr(dataset, 'dataset', None), torch.utils.data.Dataset):
        yield from leaf_datasets(dataset.dataset)
    else:
        yield dataset


def build_encoder_model(cfg: Config, weights: Optional[str]) -> torch.nn.Module:
    """The config's model with the image encoder's weights as training will have them."""
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is not None:  # random weights made as the runner makes them
        set_random_seed(randomness['seed'], deterministic=randomness.get('deterministic', False))
    model = MODELS.build(cfg.model)
    if weights is not None:
        prefix = 'image_encoder.'
        state = {k[len(prefix):]: v for k, v in read_state_dict(weights).items()
                 if k.startswith(prefix)}
        if not state:
            raise KeyError(f'{weights} holds no {prefix}* weights')
        model.image_encoder.load_state_dict(state, strict=True)
    elif model.init_cfg:  # a whole-model checkpoint sets the encoder too
        model.init_weights()
    else:
        model.image_encoder.init_weights()
    model.check_cacheable()  # frozen encoder, embedding of the image alone
    return model


def dataset_jobs(cfg: Config, split: str) -> Tuple[List[Job], int, Optional[str]]:
    """One job per distinct (image path, variant) of the split; the number of dataset items;
    the cache_dir of the pipeline's ``LoadCachedEmbedding``, if any."""
    loader = cfg.get(SPLITS[split])
    if not loader:
        raise ValueError(f'the config has no {SPLITS[split]} (--split {split})')
    jobs: Dict[Tuple[str, str], Job] = OrderedDict()
    num_items, cache_dir = 0, None
    for dataset in leaf_datasets(DATASETS.build(loader['dataset'])):
        dataset.full_init()
        transforms = dataset.pipeline.transforms
        plan = cache_plan(transforms)
        cache_dir = cache_dir or next((t.cache_dir for t in transforms
                                       if isinstance(t, LoadCachedEmbedding)), None)
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            num_items += 1
            for variant in plan.variants:
                jobs.setdefault((osp.normpath(info['img_path']), variant),
                                (plan, info, variant))
    return list(jobs.values()), num_items, cache_dir


class SAMImages(torch.utils.data.Dataset):
    """The SAM-resized image of each job, as the training pipeline makes it (in workers)."""

    def __init__(self, jobs: List[Job]) -> None:
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> dict:
        plan, info, variant = self.jobs[index]
        results = plan.sam_image(info, variant)
        img = np.ascontiguousarray(results['img'])
        return dict(img_path=info['img_path'], variant=variant, pixels=cache.pixel_digest(img),
                    img=torch.from_numpy(img).permute(2, 0, 1), img_shape=img.shape[:2],
                    ori_shape=results['ori_shape'])


def prepare_out(out: str, key: str, parts: dict, dtype: torch.dtype, shape: Tuple[int, ...],
                overwrite: bool) -> None:
    """Write the manifest; refuse a folder holding another cache unless ``overwrite``."""
    manifest = cache.read_manifest(out)
    if manifest is not None and not overwrite:
        if manifest['key'] != key:
            differ = cache.differing_parts(parts, manifest.get('key_parts', {}))
            raise cache.StaleEmbeddingCacheError(
                f'{out} holds the cache of another image encoder (key {manifest["key"]}, '
                f'differing in {", ".join(differ) or "the key"}) than this config\'s (key '
                f'{key}): choose another --out, or --overwrite to replace it')
        if manifest['dtype'] != torch_dtype_name(dtype):
            raise ValueError(f'{out} holds a {manifest["dtype"]} cache, not '
                             f'{torch_dtype_name(dtype)}: choose another --out, or --overwrite')
    AtomicLocalBackend().put_text(cache.manifest_text(key, parts, dtype, shape),
                                  cache.manifest_path(out))


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_encoder_model(cfg, args.weights).to(args.device).eval()
    parts = model.image_embedding_key_parts()
    key = cache.cache_key(parts)
    jobs, num_items, pipeline_dir = dataset_jobs(cfg, args.split)
    out = args.out or pipeline_dir
    if out is None:
        raise ValueError('give --out: the pipeline has no LoadCachedEmbedding to take it from')
    dtype = resolve_dtype(args.dtype)
    grid = model.prompt_head.image_embedding_size
    prepare_out(out, key, parts, dtype, (model.prompt_head.embed_dim, grid, grid),
                args.overwrite)
    variants = sorted({variant for _, _, variant in jobs})
    print(f'{args.config} --split {args.split}: {num_items} items, {len(jobs)} images x '
          f'variants ({", ".join(variants)}) -> {out} ({torch_dtype_name(dtype)}, key '
          f'{key[:16]}...)', flush=True)

    backend = AtomicLocalBackend()
    loader = torch.utils.data.DataLoader(
        SAMImages(jobs), batch_size=args.batch_size, num_workers=args.num_workers,
        collate_fn=list)
    written = skipped = 0
    start = time.perf_counter()
    for batch in loader:
        todo = []
        for item in batch:
            item['path'] = cache.entry_path(out, item['img_path'], item['variant'])
            meta = cache.read_entry_metadata(item['path'])
            if meta is not None and (meta.get('key'), meta.get('dtype'), meta.get('pixels')) == (
                    key, torch_dtype_name(dtype), item['pixels']):
                skipped += 1
            else:
                todo.append(item)
        if todo:
            with torch.inference_mode():
                images = model.data_preprocessor.sam_images(
                    [item['img'].to(args.device) for item in todo])
                embeddings = model.image_encoder(images).float().to(dtype).cpu()
            for item, embedding in zip(todo, embeddings):
                backend.put(cache.encode_entry(embedding, key, item['img_path'], item['variant'],
                                               item['img_shape'], item['ori_shape'],
                                               item['pixels']), item['path'])
            written += len(todo)
        done = written + skipped
        if done % 100 < len(batch) or done == len(jobs):
            print(f'  {done}/{len(jobs)}: {written} written, {skipped} already cached, '
                  f'{time.perf_counter() - start:.0f} s', flush=True)
    print(f'done: {written} written, {skipped} already cached in {out}')


if __name__ == '__main__':
    main()
