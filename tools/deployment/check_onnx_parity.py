"""ONNX Runtime against PyTorch on the same inputs: an EVF-SAM config exported, then both run on
two images of different aspect ratios with text alone (one and five expressions), text + points,
text + box, points alone, a box alone and a mix of all.

``python tools/deployment/check_onnx_parity.py CONFIG [--checkpoint CKPT] [--tokenizer DIR]
[--sam-size N] [--model-dir DIR] [--int8] [--threads N]``

Without ``--checkpoint`` the model has random weights (PyTorch's default initialisation; the
config's ``init_cfg`` entries are removed, no pretrained file is read), e.g. the paper-scale
``evf-beit3b_sam-b_refcoco``. ``--sam-size`` runs SAM's image encoder at another input side (a
faster check of the same architecture); ``--model-dir`` keeps the export there instead of a
temporary folder. Each case prints max |logit diff|, the predicted-IoU diff, the pixels whose
masks differ where |logit| > 1e-3 and both runs' times; with ``--int8`` also the int8 export's
mask IoU against fp32 (no threshold: random weights). Exits 1 unless every case has
max |diff| <= 1e-3 and identical masks wherever |logit| > 1e-3 (the parity ``tests/test_deploy``
asserts on the tiny config).
"""
import argparse
import os.path as osp
import sys
import tempfile
import time
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmevf.apis import TextSegInferencer, pair_inputs, resolve_config

TOLERANCE = 1e-3  # on the logits; masks must agree wherever |logit| > TOLERANCE
# (name, texts, points, boxes) with coordinates as fractions of the image's width / height
CASES = [
    ('text, E=1', ['the red circle'], None, None),
    ('text, E=5', ['the red circle', 'blue square on the left', 'a', 'the larger triangle on '
                   'the right', 'man in red shirt'], None, None),
    ('text + points', ['red circle', 'the blue square'],
     [[(0.2, 0.3), (0.7, 0.6, 0)], [(0.5, 0.5), (0.1, 0.9, 0)]], None),
    ('text + box', ['red circle', 'the blue square'], None,
     [(0.1, 0.2, 0.6, 0.9), (0.0, 0.0, 1.0, 1.0)]),
    ('points only', [None, None], [[(0.25, 0.4)], [(0.8, 0.3), (0.4, 0.4, 0)]], None),
    ('box only', [None], None, [(0.3, 0.1, 0.9, 0.7)]),
    ('mixed', ['red circle', None, 'blue', 'triangle'],
     [None, [(0.1, 0.1)], [(0.5, 0.6), (0.2, 0.3, 0)], None],
     [None, None, (0.05, 0.1, 0.5, 0.8), None]),
]
# (H, W): a landscape and a portrait image
IMAGE_SIZES = ((48, 64), (70, 40))


def random_images(sizes: Sequence[Tuple[int, int]] = IMAGE_SIZES, seed: int = 0) -> list:
    """(H, W, 3) uint8 BGR images with a few flat shapes on noise."""
    rng = np.random.default_rng(seed)
    images = []
    for height, width in sizes:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        image[height // 5:height // 2, width // 6:width // 2] = (0, 0, 255)
        image[height // 2:height - 2, width // 2:width - 3] = (255, 0, 0)
        images.append(image)
    return images


def scaled_prompts(points, boxes, shape: Sequence[int]):
    """A case's fractional points / boxes in the pixels of an (H, W) image."""
    height, width = shape[:2]
    scale = lambda x, y: (x * width, y * height)  # noqa: E731
    points = None if points is None else [
        None if p is None else [scale(*q[:2]) + tuple(q[2:]) for q in p] for p in points]
    boxes = None if boxes is None else [
        None if b is None else scale(*b[:2]) + scale(*b[2:]) for b in boxes]
    return points, boxes


def build_inferencer(config: str, checkpoint: Optional[str] = None,
                     tokenizer: Optional[str] = None,
                     sam_size: Optional[int] = None) -> TextSegInferencer:
    """A PyTorch inferencer of ``config``: ``checkpoint``'s weights, or random ones with the
    config's ``init_cfg`` entries removed; ``sam_size`` changes SAM's input side."""
    from mmengine.config import Config
    cfg = Config.fromfile(resolve_config(config))
    if checkpoint is None:
        for part in cfg.model.values():
            if isinstance(part, dict):
                part.pop('init_cfg', None)
        cfg.model.pop('init_cfg', None)
    if sam_size is not None:
        cfg.model.image_encoder.img_size = sam_size
        pipelines = [cfg.get('test_pipeline')] + [
            (cfg.get(key) or {}).get('dataset', {}).get('pipeline')
            for key in ('test_dataloader', 'val_dataloader')]
        for pipeline in pipelines:
            for step in pipeline or []:
                if str(step.get('type', '')).endswith('SAMResize'):
                    step['sam_size'] = sam_size
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "no weights given" for random weights
        inferencer = TextSegInferencer(cfg, weights=checkpoint, tokenizer=tokenizer,
                                       device='cpu', show_progress=False)
    inferencer.config_path = resolve_config(config)  # the export records its name
    return inferencer


def torch_outputs(inferencer: TextSegInferencer, image, texts, points=None,
                  boxes=None) -> Tuple[np.ndarray, np.ndarray]:
    """PyTorch's (N, H, W) mask logits at the original size and (N,) IoU predictions for one
    image, through the inferencer's own pipeline and model."""
    model = inferencer.model
    data = next(iter(inferencer.preprocess(pair_inputs(image, texts, points, boxes))))
    data = model.data_preprocessor(data, False)
    with torch.inference_mode():
        logits, scores = model.mask_logits(data['inputs'], data['data_samples'])[0][:2]
    return logits.float().numpy(), scores.float().numpy()


def compare(reference: Tuple[np.ndarray, np.ndarray], result: dict,
            threshold: float = 0.0) -> dict:
    """PyTorch's (logits, scores) against an ONNX prediction: max |logit diff|, max |IoU
    diff|, the pixels whose masks differ where |logit| > TOLERANCE, and whether it passes."""
    logits, scores = reference
    if result['logits'].shape != logits.shape:
        return dict(ok=False, shape=(logits.shape, result['logits'].shape))
    diff = float(np.abs(result['logits'] - logits).max())
    confident = np.abs(logits) > TOLERANCE
    flips = int(((result['logits'] > threshold) != (logits > threshold))[confident].sum())
    return dict(ok=diff <= TOLERANCE and flips == 0, max_diff=diff, flips=flips,
                score_diff=float(np.abs(result['scores'] - scores).max()))


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, H, W) bool masks -> (N,) IoU (1 where both are empty)."""
    inter = (a & b).reshape(len(a), -1).sum(1)
    union = (a | b).reshape(len(a), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def run_cases(inferencer: TextSegInferencer, predictor, images: Sequence[np.ndarray],
              int8_predictor=None, log=print) -> List[dict]:
    """Every case on every image through both (and the int8 export): one record each."""
    records = []
    for index, image in enumerate(images):
        for name, texts, points, boxes in CASES:
            points_px, boxes_px = scaled_prompts(points, boxes, image.shape)
            start = time.perf_counter()
            reference = torch_outputs(inferencer, image, texts, points_px, boxes_px)
            torch_time = time.perf_counter() - start
            start = time.perf_counter()
            result = predictor.predict(image, texts, points_px, boxes_px)
            ort_time = time.perf_counter() - start
            record = dict(case=name, image=f'{image.shape[1]}x{image.shape[0]}',
                          torch_s=torch_time, ort_s=ort_time,
                          **compare(reference, result, predictor.mask_threshold))
            if int8_predictor is not None:
                quantized = int8_predictor.predict(image, texts, points_px, boxes_px)
                record['int8_iou'] = float(mask_iou(quantized['masks'], result['masks']).mean())
            records.append(record)
            if log:
                log(format_record(record))
    return records


def format_record(record: dict) -> str:
    if 'max_diff' not in record:
        return f'  {record["image"]:>7s} {record["case"]:14s} SHAPES DIFFER {record["shape"]}'
    line = (f'  {record["image"]:>7s} {record["case"]:14s} max|diff| {record["max_diff"]:.1e}  '
            f'IoU-pred diff {record["score_diff"]:.1e}  mask flips {record["flips"]}  '
            f'torch {record["torch_s"]:.2f} s  ort {record["ort_s"]:.2f} s')
    if 'int8_iou' in record:
        line += f'  int8 mask IoU {record["int8_iou"]:.3f}'
    return line + ('' if record['ok'] else '  FAIL')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file or name')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    parser.add_argument('--sam-size', type=int, help="SAM's input side (default: the config's)")
    parser.add_argument('--model-dir', help='export folder to keep (default: a temporary one)')
    parser.add_argument('--int8', action='store_true', help='also the int8 export')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    from mmevf.deploy.export import export_onnx
    from mmevf.deploy.onnx_predictor import OnnxEVFSAM
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    inferencer = build_inferencer(args.config, args.checkpoint, args.tokenizer, args.sam_size)
    params = sum(p.numel() for p in inferencer.model.parameters()) / 1e6
    print(f'{osp.basename(args.config)}: {params:.0f}M parameters, '
          f'{"random weights" if args.checkpoint is None else args.checkpoint}, SAM input '
          f'{inferencer.model.image_encoder.img_size}, {args.threads} threads; built in '
          f'{time.perf_counter() - start:.1f} s', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.model_dir or tmp
        start = time.perf_counter()
        export_onnx(inferencer, out_dir, int8=args.int8, checkpoint=args.checkpoint,
                    log=lambda m: print(f'  {m}', flush=True))
        print(f'export: {time.perf_counter() - start:.1f} s', flush=True)
        start = time.perf_counter()
        predictor = OnnxEVFSAM(out_dir, threads=args.threads)
        int8 = OnnxEVFSAM(out_dir, 'int8', threads=args.threads) if args.int8 else None
        print(f'sessions: {time.perf_counter() - start:.1f} s', flush=True)
        records = run_cases(inferencer, predictor, random_images(),
                            int8, log=lambda line: print(line, flush=True))
    failed = [r for r in records if not r['ok']]
    worst = max(r.get('max_diff', float('inf')) for r in records)
    print(f'parity: {len(records) - len(failed)}/{len(records)} cases pass '
          f'(max |diff| {worst:.1e}, tolerance {TOLERANCE:g})')
    if failed:
        sys.exit(1)
    return records


if __name__ == '__main__':
    main()
