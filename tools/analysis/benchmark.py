"""Expressions per second of text-prompted segmentation, and why grouping matters.

``python tools/analysis/benchmark.py [CONFIG] [--expressions 7] [--images 1] [--threads 2]
[--dtype fp32|bf16]``

Training steps, from cached SAM image embeddings against recomputing them, are measured by
``tools/analysis/benchmark_train.py``; SAM's image encoder alone, mmevf's fused attention
against segment_anything's forward, by ``tools/analysis/benchmark_sam_encoder.py``.

With random weights at the scale of CONFIG (default BEiT-3-B + SAM ViT-B) on the CPU, measures
expressions/s of

(a) grouped: mmevf's ``TextSegInferencer``, all expressions of an image in one forward (SAM's
    image encoder once per image);
(b) naive: one full pipeline run per expression with batch 1, encoding the image every time
    (what EVF-SAM's ``inference.py`` / demo do for each prompt);
(c) floor: one image-encoder pass per image plus one multimodal-encoder pass per expression
    (the image's expressions batched, as (a) does), each timed on its own and summed;

then ``BEiT3MultiwayEncoder`` against torchscale's ``BEiT3`` on the same weights and inputs
(fp32, outputs compared). The modes run interleaved, repeat after repeat, so that changes in
machine load hit all alike; medians are reported. The output ends with one line per ratio:
``grouped/naive: 5.1x``, ``grouped/floor: 0.95x``, ``beit3/torchscale: 1.4x``.

``--onnx`` also exports the model to ONNX (``tools/deployment/export_onnx.py --int8``, in a
temporary folder) and times, interleaved with the modes above on the same images and
expressions,

(d) ort: (a) through ONNX Runtime (``TextSegInferencer(backend='onnxruntime')``, fp32);
(e) ort_int8: the same with the int8 encoders;

then three more lines: ``ort/torch: 1.1x`` (grouped's time over ort's), ``ort_int8/ort: 1.6x``
(ort's over ort_int8's) and ``int8 mask IoU: 0.97`` (the int8 masks' mean IoU against the fp32
export's, over every expression of every image). ``--weights`` and ``--image-dir`` measure a
trained model on real images (e.g. the demo's tiny model on ``data/synthref/images``) instead of
random weights on random images.
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import mmcv
import numpy as np
import torch

from mmevf.apis import TextSegInferencer, pair_inputs
from mmevf.utils import resolve_dtype

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # SynthRef's tokenizer trainer is imported from the repository root
    sys.path.insert(0, ROOT)
from tools.analysis.bench_inputs import DEFAULT_CONFIG, EXPRESSIONS, timed  # noqa: E402
from tools.dataset_converters.synthref import train_tokenizer  # noqa: E402

def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG, help='config file or name')
    parser.add_argument('--expressions', type=int, default=7, help='expressions per image')
    parser.add_argument('--images', type=int, default=1, help='images per measurement')
    parser.add_argument('--image-size', type=int, nargs=2, default=(480, 640),
                        metavar=('H', 'W'), help='size of the (random) images')
    parser.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16'],
                        help='dtype of the segmentation pipelines (BEiT-3 parity runs in fp32)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--repeats', type=int, default=3, help='repeats of (a), (b), (c)')
    parser.add_argument('--beit3-repeats', type=int, default=7)
    parser.add_argument('--tokenizer', help='tokenizer folder (default: a small XLM-R-style '
                        'sentencepiece model made on the fly; only the text length matters)')
    parser.add_argument('--onnx', action='store_true',
                        help='also ONNX Runtime, fp32 and int8 (ort/torch, ort_int8/ort, int8 '
                        'mask IoU)')
    parser.add_argument('--weights', help='checkpoint (default: random weights)')
    parser.add_argument('--image-dir', help='take the first --images images of this folder '
                        '(default: random images of --image-size)')
    return parser.parse_args(argv)


def interleaved(fns: Dict[str, Callable[[], object]], repeats: int,
                verbose: bool = True) -> Dict[str, List[float]]:
    """Seconds per call of each function: one warm-up call each, then ``repeats`` rounds."""
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn))
        if verbose:
            print(f'    repeat {i + 1}: ' + ', '.join(f'{name} {t[-1]:.3f} s'
                                                     for name, t in times.items()), flush=True)
    return times


def pipeline_modes(inferencer: TextSegInferencer, images: List[np.ndarray],
                   texts: List[str]) -> Dict[str, Callable[[], object]]:
    """The three measured modes over all images, each with all ``texts``."""
    model = inferencer.model

    def grouped():
        return inferencer(images, [texts] * len(images))

    def naive():
        for image in images:
            for text in texts:
                inferencer(image, text)

    # The floor's inputs: the grouped pipeline's own, prepared once, outside the timing.
    batches = []
    for image in images:
        data = next(iter(inferencer.preprocess(pair_inputs(image, texts))))
        batches.append(model.data_preprocessor(data, False)['inputs'])

    def image_encoder():
        for inputs in batches:
            model.image_encoder(inputs['img'])

    def mm_encoder():
        for inputs in batches:
            model.encode_prompts(inputs)

    return dict(grouped=grouped, naive=naive, image_encoder=image_encoder,
                mm_encoder=mm_encoder)


def onnx_modes(inferencer: TextSegInferencer, images: List[np.ndarray], texts: List[str],
               folder: str) -> Dict[str, Callable[[], object]]:
    """(d) and (e): the grouped pipeline through the model's ONNX export (written to
    ``folder`` with its int8 encoders) run by ONNX Runtime, fp32 and int8."""
    from mmevf.deploy.export import export_onnx
    export_onnx(inferencer, folder, int8=True, log=None)
    runners = {name: TextSegInferencer(folder, backend='onnxruntime', dtype=dtype,
                                       show_progress=False)
               for name, dtype in (('ort', 'fp32'), ('ort_int8', 'int8'))}
    return {name: (lambda runner=runner: runner(images, [texts] * len(images)))
            for name, runner in runners.items()}


def int8_mask_iou(modes: Dict[str, Callable[[], object]]) -> Tuple[float, int]:
    """Mean IoU of the int8 export's masks against the fp32 export's (same inputs), and the
    number of masks (an IoU of 1 where both are empty)."""
    ious = []
    for fp32, int8 in zip(modes['ort']()['predictions'], modes['ort_int8']()['predictions']):
        inter = (fp32['masks'] & int8['masks']).reshape(len(fp32['masks']), -1).sum(1)
        union = (fp32['masks'] | int8['masks']).reshape(len(fp32['masks']), -1).sum(1)
        ious.extend(np.where(union > 0, inter / np.maximum(union, 1), 1.0).tolist())
    return float(np.mean(ious)), len(ious)


def beit3_pair(encoder: torch.nn.Module):
    """torchscale's ``BEiT3`` configured as EVF-SAM does, with ``encoder``'s weights."""
    from torchscale.architecture.config import EncoderConfig
    from torchscale.model.BEiT3 import BEiT3
    layer = encoder.encoder.layers[0]
    reference = BEiT3(EncoderConfig(
        img_size=encoder.vision_embed.img_size, patch_size=encoder.vision_embed.proj.stride[0],
        vocab_size=encoder.text_embed.num_embeddings, multiway=True, layernorm_embedding=False,
        normalize_output=True, no_output_layer=True, drop_path_rate=0.0,
        encoder_embed_dim=encoder.embed_dims, encoder_layers=len(encoder.encoder.layers),
        encoder_attention_heads=layer.self_attn.num_heads,
        encoder_ffn_embed_dim=layer.ffn.A.fc1.out_features,
        max_source_positions=encoder.max_text_length + 2))
    reference.load_state_dict(encoder.state_dict())
    return reference.eval()


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    torch.manual_seed(0)
    if args.image_dir:
        from mmevf.apis.input_pairing import list_images
        images = [mmcv.imread(path) for path in list_images(args.image_dir)[:args.images]]
        sizes = sorted({f'{image.shape[1]}x{image.shape[0]}' for image in images})
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (*args.image_size, 3), dtype=np.uint8)
                  for _ in range(args.images)]
        sizes = [f'{args.image_size[1]}x{args.image_size[0]}']
    texts = [EXPRESSIONS[i % len(EXPRESSIONS)] for i in range(args.expressions)]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = args.tokenizer
        if tokenizer is None:  # only the text length matters for speed
            train_tokenizer(EXPRESSIONS, tmp)
            tokenizer = tmp
        inferencer = TextSegInferencer(args.config, weights=args.weights, tokenizer=tokenizer,
                                       device='cpu', dtype=resolve_dtype(args.dtype),
                                       show_progress=False)
    model = inferencer.model
    params = sum(p.numel() for p in model.parameters()) / 1e6
    weights = 'random weights' if args.weights is None else osp.basename(args.weights)
    print(f'{osp.basename(args.config)}: {type(model).__name__} with {weights}, '
          f'{params:.0f}M parameters, {args.dtype}, {torch.get_num_threads()} threads; '
          f'{len(images)} image(s) of {", ".join(sizes)}, '
          f'{args.expressions} expressions each, median of {args.repeats} interleaved repeats',
          flush=True)

    with tempfile.TemporaryDirectory() as export_dir:
        modes = pipeline_modes(inferencer, images, texts)
        onnx = {}
        if args.onnx:
            if args.dtype != 'fp32':
                raise SystemExit('--onnx compares with the fp32 PyTorch model (--dtype fp32)')
            onnx = onnx_modes(inferencer, images, texts, export_dir)
        with torch.inference_mode():
            times = interleaved(dict(modes, **onnx), args.repeats)
            iou = int8_mask_iou(onnx) if onnx else None
    median = {name: statistics.median(t) for name, t in times.items()}
    median['floor'] = median['image_encoder'] + median['mm_encoder']
    num_expressions = len(images) * args.expressions
    for name in ('grouped', 'naive', 'floor', 'image_encoder', 'mm_encoder') + tuple(onnx):
        print(f'  {name:14s} {median[name]:8.2f} s  {num_expressions / median[name]:8.3f} '
              f'expressions/s')

    # BEiT-3 against torchscale: one image's expressions as a batch, fp32.
    encoder = model.mm_encoder.float()
    reference = beit3_pair(encoder)
    data = model.data_preprocessor(
        next(iter(inferencer.preprocess(pair_inputs(images[0], texts)))), False)
    inputs = {k: v.float() if v.is_floating_point() else v for k, v in data['inputs'].items()}
    mm_images = inputs['mm_img'][inputs['expr_image_index']]
    text_ids, padding = inputs['text_ids'], inputs['text_padding_mask']
    with torch.inference_mode():
        ours_out = encoder(mm_images, text_ids, padding)
        ref_out = reference(visual_tokens=mm_images, textual_tokens=text_ids,
                            text_padding_position=padding)['encoder_out']
        diff = (ours_out - ref_out).abs().max().item()
        beit3 = interleaved(dict(
            mmevf=lambda: encoder(mm_images, text_ids, padding),
            torchscale=lambda: reference(visual_tokens=mm_images, textual_tokens=text_ids,
                                         text_padding_position=padding)), args.beit3_repeats)
    beit3_median = {name: statistics.median(t) for name, t in beit3.items()}
    print(f'  BEiT-3 batch {tuple(text_ids.shape)} (fp32, max |diff| {diff:.1e}): mmevf '
          f'{beit3_median["mmevf"] * 1e3:.0f} ms, torchscale '
          f'{beit3_median["torchscale"] * 1e3:.0f} ms (median of {args.beit3_repeats})')

    print(f'grouped/naive: {median["naive"] / median["grouped"]:.2f}x')
    print(f'grouped/floor: {median["floor"] / median["grouped"]:.2f}x')
    print(f'beit3/torchscale: {beit3_median["torchscale"] / beit3_median["mmevf"]:.2f}x')
    if onnx:
        print(f'ort/torch: {median["grouped"] / median["ort"]:.2f}x')
        print(f'ort_int8/ort: {median["ort"] / median["ort_int8"]:.2f}x')
        print(f'int8 mask IoU: {iou[0]:.3f} (mean of {iou[1]} masks against fp32)')


if __name__ == '__main__':
    main()
