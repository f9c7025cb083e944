"""Training steps from cached SAM image embeddings against recomputing them.

``python tools/analysis/benchmark_train.py [CONFIG] [--images 2] [--expressions 3]
[--steps 3] [--warmup 1] [--threads N]``

With random weights at the scale of CONFIG (default BEiT-3-B + SAM ViT-B, whose SAM encoder is
frozen) on the CPU, times one training step — data preprocessor, forward, loss, backward and
AdamW step, ``model.train_step`` as the runner calls it, fp32 — on the same batch of
``--images`` random images with ``--expressions`` expressions each, in two modes:

- recompute: the batch carries the SAM-resized images, SAM's image encoder runs at every step
  (the official training);
- cached: the batch carries the images' embeddings, as ``LoadCachedEmbedding`` gives them
  (computed here once, beforehand), and the encoder does not run.

Reading an embedding file, like decoding and resizing an image, happens in the dataloader's
workers, beside the step, and is not timed. The modes alternate, step after step, after
``--warmup`` steps each (the first also counts each mode's FLOPs: matrix products,
convolutions, attention, forward and backward, on the reference path, see
:func:`reference_path`; their ratio is the compute bound of the speed-up), so that load changes
hit both alike; medians are reported, and the output ends with
``cached/recompute: N.Nx`` (how many times faster a cached step is).
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from mmevf.apis import resolve_config
from mmevf.datasets.transforms import PackReferInputs, SAMResize, TokenizeText
from mmevf.engine.runner_setup import register_all_modules
from mmevf.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the benchmarks' shared inputs and SynthRef's tokenizer trainer
    sys.path.insert(0, ROOT)
from tools.analysis.bench_inputs import DEFAULT_CONFIG, EXPRESSIONS, timed  # noqa: E402
from tools.dataset_converters.synthref import train_tokenizer  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG, help='config file or name')
    parser.add_argument('--images', type=int, default=2, help='images per batch')
    parser.add_argument('--expressions', type=int, default=3, help='expressions per image')
    parser.add_argument('--image-size', type=int, nargs=2, default=(480, 640),
                        metavar=('H', 'W'), help='size of the (random) images')
    parser.add_argument('--steps', type=int, default=3, help='timed steps of each mode')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps of each mode')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--tokenizer', help='tokenizer folder (default: a small XLM-R-style '
                        'sentencepiece model made on the fly; only the text length matters)')
    return parser.parse_args(argv)


def make_batches(model: torch.nn.Module, cfg: Config, args: argparse.Namespace,
                 tokenizer: str) -> Dict[str, dict]:
    """The same random batch twice: with the SAM-resized images (``recompute``) and with their
    embeddings by ``model``'s own encoder (``cached``)."""
    rng = np.random.default_rng(0)
    height, width = args.image_size
    resize = SAMResize(sam_size=int(model.image_encoder.img_size),
                       mm_size=int(cfg.model.mm_encoder.img_size))
    tokenize, pack = TokenizeText(tokenizer), PackReferInputs()
    samples = []
    for i in range(args.images):
        masks = np.zeros((args.expressions, height, width), np.uint8)
        for mask in masks:  # a random box per expression
            y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
            mask[y:y + height // 3, x:x + width // 3] = 1
        results = dict(img=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                       img_path=f'random_{i}.jpg', img_id=i, ori_shape=(height, width),
                       text=[EXPRESSIONS[(i + j) % len(EXPRESSIONS)]
                             for j in range(args.expressions)],
                       gt_masks=BitmapMasks(masks, height, width))
        samples.append(tokenize(resize(results)))
    recompute = pseudo_collate([pack(dict(s)) for s in samples])
    # the encoder's output for each image, as LoadCachedEmbedding would read it from the cache
    with torch.no_grad():
        images = model.data_preprocessor(recompute, False)['inputs']['img']
        embeddings = model.image_encoder(images)
    key = model.image_embedding_key()
    cached = []
    for sample, embedding in zip(samples, embeddings):
        sample = {k: v for k, v in sample.items() if k != 'img'}
        cached.append(pack(dict(sample, img_embed=embedding, img_embed_key=key)))
    return dict(recompute=recompute, cached=pseudo_collate(cached))


def step_functions(model: torch.nn.Module,
                   batches: Dict[str, dict]) -> Dict[str, Callable[[], object]]:
    """One training step per mode, on one model and optimizer (AdamW, as the configs).

    AdamW is PyTorch's fused implementation: on a CPU the default one makes full-size
    temporaries for every parameter tensor (12 s per step for BEiT-3-B's 226M trainable
    parameters on the 2-core machine, against 0.2 s fused: more than the rest of a cached
    step), a cost no GPU run pays and the same in both modes.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optim_wrapper = OptimWrapper(torch.optim.AdamW(params, lr=1e-5, fused=True))
    model.train()
    return {mode: (lambda data=data: model.train_step(data, optim_wrapper))
            for mode, data in batches.items()}


@contextmanager
def reference_path(model: torch.nn.Module) -> Iterator[None]:
    """Run ``model`` on its reference path, for counting FLOPs only.

    torch's ``FlopCounterMode`` counts aten's matrix products, convolutions and the attention
    kernels it knows. It does not see the fast SAM encoder's oneDNN linear layers
    (``mmevf.models.layers.fused_linear``) nor the CPU flash attention kernel of
    ``F.scaled_dot_product_attention``: counted as they run, the frozen encoder's FLOPs would
    all but vanish from the recompute step and the bound would depend on the encoder's
    implementation. Here every module with a ``fast_attention`` switch (``SAMImageEncoder``,
    which DIT's injector follows) runs ``segment_anything``'s own forward, and SDPA its math
    backend (the same two matrix products the counter credits to a fused kernel). The
    arithmetic is the model's either way; the switches are restored afterwards.
    """
    switched = [m for m in model.modules()
                if isinstance(getattr(m, 'fast_attention', None), bool)]
    saved = [m.fast_attention for m in switched]
    try:
        for module in switched:
            module.fast_attention = False
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        for module, value in zip(switched, saved):
            module.fast_attention = value


def onednn_linear_flops(*args, out_shape=None, **kwargs) -> int:
    """FLOPs of oneDNN's ``mkldnn._linear_pointwise`` (``default``: x, weight, bias, attr,
    ...; ``binary``: x, other, weight, bias, attr), counted as torch counts ``F.linear``:
    2 x rows x K x M. Argument shapes, as ``FlopCounterMode`` hands them to a formula."""
    x_shape = args[0]
    weight_shape = args[1] if isinstance(args[3], str) else args[2]
    rows = 1
    for size in x_shape[:-1]:
        rows *= size
    return 2 * rows * x_shape[-1] * weight_shape[0]


# ops the counter would not see: oneDNN's linear (mmevf.models.layers.fused_linear, which the
# reference path leaves in no-grad regions outside SAM's encoder, e.g. a frozen BEiT-3)
EXTRA_FLOP_FORMULAS = {torch.ops.mkldnn._linear_pointwise: onednn_linear_flops}


def count_flops(model: torch.nn.Module, step: Callable[[], object]) -> int:
    """FLOPs of one call of ``step`` (e.g. a training step of ``model``), counted on the
    reference path: the same count whatever attention implementation ``model`` runs."""
    with reference_path(model), FlopCounterMode(
            display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
        step()
    return counter.get_total_flops()


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    torch.manual_seed(0)
    register_all_modules()
    cfg = Config.fromfile(resolve_config(args.config))
    model = MODELS.build(cfg.model)  # random weights: no init_weights, no checkpoint
    model.check_cacheable()  # a cache needs a frozen encoder
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = args.tokenizer
        if tokenizer is None:  # only the text length matters for speed
            train_tokenizer(EXPRESSIONS, tmp)
            tokenizer = tmp
        batches = make_batches(model, cfg, args, tokenizer)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    print(f'{osp.basename(args.config)}: {type(model).__name__} with random weights, '
          f'{trainable:.0f}M trainable parameters, fp32, {torch.get_num_threads()} threads; '
          f'{args.images} image(s) of {args.image_size[1]}x{args.image_size[0]} x '
          f'{args.expressions} expressions per step, median of {args.steps} alternating steps '
          f'after {args.warmup} warm-up step(s) each', flush=True)
    steps = step_functions(model, batches)
    flops = {}
    for i in range(args.warmup):
        for mode, step in steps.items():
            if i == 0:  # the first warm-up step also counts the FLOPs (matmul, conv, attention)
                flops[mode] = count_flops(model, step)
            else:
                step()
    if flops:
        print(f'  FLOPs per step: recompute {flops["recompute"] / 1e9:.0f} G, cached '
              f'{flops["cached"] / 1e9:.0f} G (bound: {flops["recompute"] / flops["cached"]:.2f}x)',
              flush=True)
    times: Dict[str, List[float]] = {mode: [] for mode in steps}
    for i in range(args.steps):  # alternating, so that load changes hit both modes alike
        for mode, step in steps.items():
            times[mode].append(timed(step))
        print(f'    step {i + 1}: ' + ', '.join(f'{mode} {t[-1]:.2f} s'
                                                for mode, t in times.items()), flush=True)
    median = {mode: statistics.median(t) for mode, t in times.items()}
    for mode in ('recompute', 'cached'):
        print(f'  {mode:10s} {median[mode]:8.2f} s per training step')
    print(f'cached/recompute: {median["recompute"] / median["cached"]:.1f}x')


if __name__ == '__main__':
    main()
