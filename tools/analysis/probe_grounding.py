"""How fast can a config's multimodal encoder learn *where* an expression points?

``python tools/analysis/probe_grounding.py configs/evf_sam/evf-tiny_synthref.py --readout cls``

EVF-SAM tells SAM what to segment through one token: the multimodal encoder's first output
([CLS]). A pretrained BEiT-3 brings the grounding that token needs; a small encoder trained from
scratch (the tiny configs) has to learn it from the mask loss alone. This probe isolates that
step: the encoder of ``CONFIG`` (its own initialisation, no SAM) reads each expression with the
image and a small head predicts the centre of the referred object, from

- ``--readout cls``: the first output token (what EVF-SAM's projector reads), L1 loss;
- ``--readout cls-cells``: the first output token again, classifying which patch holds the
  centre (cross-entropy: the loss of ``patches`` through the route of ``cls``);
- ``--readout patches``: one score per image patch, cross-entropy against the patch that holds
  the centre (a dense signal, as a segmentation loss gives SAM's decoder).

``--target largest`` asks for the largest referred object of the image instead, which needs no
text at all. Every ``--interval`` steps it prints the share of val expressions whose predicted
centre lies within 0.1 and 0.2 of the image size, next to the share for always predicting the
mean train centre (chance).
"""
import argparse
import functools
import time
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from torch import nn

from mmevf.datasets.transforms import SAMResize
from mmevf.registry import DATASETS, MODELS
from mmevf.utils.tokenizer import build_tokenizer

Item = Tuple[str, str, Tuple[float, float]]  # image path, expression, (x, y) in [0, 1]


def polygon_points(mask: list) -> np.ndarray:
    """(K, 2) points of all polygons of a COCO polygon mask."""
    return np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in mask])


def mask_centre(mask, width: int, height: int) -> Tuple[float, float]:
    """Centre of the bounding box of a polygon / RLE mask, normalised by the image size."""
    if isinstance(mask, dict):
        from pycocotools import mask as mask_utils
        x, y, w, h = mask_utils.toBbox(mask)
        x0, y0, x1, y1 = x, y, x + w, y + h
    else:
        points = polygon_points(mask)
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return float((x0 + x1) / 2 / width), float((y0 + y1) / 2 / height)


def load_items(dataset_cfg: dict, target: str) -> List[Item]:
    """(image, expression, centre) for every expression of a refer-format split."""
    dataset = DATASETS.build(dict(dataset_cfg, text_mode='original', pipeline=[]))
    items = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        masks = [inst['mask'] for inst in info['instances']]
        centres = [mask_centre(m, info['width'], info['height']) for m in masks]
        if target == 'largest':
            areas = [0 if isinstance(m, dict) else
                     cv2.contourArea(polygon_points(m).astype(np.float32)) for m in masks]
            centres = [centres[int(np.argmax(areas))]] * len(masks)
        items += [(info['img_path'], text, c) for text, c in zip(info['text'], centres)]
    return items


class ProbeData:
    """Batches of (B, 3, S, S) views in [-1, 1], token ids, padding masks and (B, 2) centres."""

    def __init__(self, tokenizer_path: str, img_size: int) -> None:
        self.tokenizer = build_tokenizer(tokenizer_path)
        self.resize = SAMResize(mm_size=img_size)  # the view EVF-SAM's pipeline gives
        # SynthRef fits whole; at 224² 2048 views take 1.2 GB
        self.view = functools.lru_cache(maxsize=2048)(self._read_view)

    def _read_view(self, path: str) -> torch.Tensor:
        image = cv2.imread(path)
        if image is None:
            raise FileNotFoundError(f'cannot read image {path}')
        return (self.resize.mm_image(image) - 0.5) / 0.5

    def batch(self, items: List[Item]):
        text = self.tokenizer([t for _, t, _ in items], padding=True, return_tensors='pt')
        return (torch.stack([self.view(p) for p, _, _ in items]), text['input_ids'],
                text['attention_mask'] == 0, torch.tensor([c for _, _, c in items]))


def find_tokenizer(cfg: Config) -> str:
    for step in cfg.train_dataloader.dataset.get('pipeline', []):
        if step.get('type') == 'TokenizeText':
            return step['tokenizer']
    raise ValueError('the config\'s train pipeline has no TokenizeText step')


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--readout', choices=('cls', 'cls-cells', 'patches'), default='cls')
    parser.add_argument('--target', choices=('referred', 'largest'), default='referred')
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--interval', type=int, default=100)
    parser.add_argument('--val-size', type=int, default=500, help='val expressions scored')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tokenizer', help='tokenizer folder (default: the train pipeline\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmevf'))
    MMLogger.get_current_instance().setLevel('WARNING')  # no per-parameter init report
    torch.manual_seed(args.seed)
    encoder = MODELS.build(cfg.model.mm_encoder)
    encoder.init_weights()
    grid = round((encoder.num_vision_tokens - 1)**0.5)
    dims = encoder.embed_dims
    head = (nn.Linear(dims, 1) if args.readout == 'patches' else nn.Sequential(
        nn.Linear(dims, dims), nn.ReLU(),
        nn.Linear(dims, 2 if args.readout == 'cls' else grid * grid)))
    data = ProbeData(args.tokenizer or find_tokenizer(cfg), encoder.vision_embed.img_size)
    train = load_items(cfg.train_dataloader.dataset, args.target)
    val = load_items(cfg.val_dataloader.dataset, args.target)[:args.val_size]
    mean_centre = torch.tensor([c for _, _, c in train]).mean(0)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=args.lr,
                                  weight_decay=0.01)

    def predict(images, ids, padding) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, 2) centres and the head's raw output (centres or (B, grid²) cell scores)."""
        tokens = encoder(images, ids, padding)
        if args.readout == 'cls':
            centres = head(tokens[:, 0])
            return centres, centres
        scores = (head(tokens[:, 1:1 + grid * grid])[..., 0]
                  if args.readout == 'patches' else head(tokens[:, 0]))
        best = scores.argmax(1)
        return torch.stack([(best % grid + 0.5) / grid, (best // grid + 0.5) / grid], 1), scores

    def loss_of(output, centres) -> torch.Tensor:
        if args.readout == 'cls':
            return (output - centres).abs().sum(1).mean()
        cells = (centres * grid).long().clamp(max=grid - 1)
        return nn.functional.cross_entropy(output, cells[:, 1] * grid + cells[:, 0])

    def accuracy(errors: torch.Tensor) -> str:
        return ' '.join(f'@{t}: {(errors < t).float().mean():.2f}' for t in (0.1, 0.2))

    val_centres = torch.tensor([c for _, _, c in val])
    print(f'{args.config}: readout={args.readout} target={args.target}, {len(train)} train / '
          f'{len(val)} val expressions, {grid}x{grid} patches; chance '
          f'{accuracy((mean_centre - val_centres).norm(dim=1))}', flush=True)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        images, ids, padding, centres = data.batch(
            [train[j] for j in rng.integers(len(train), size=args.batch_size)])
        loss = loss_of(predict(images, ids, padding)[1], centres)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.interval == 0 or step == args.steps:
            encoder.eval()
            with torch.no_grad():
                errors = torch.cat([
                    (predict(*data.batch(val[k:k + 128])[:3])[0] - val_centres[k:k + 128]).norm(
                        dim=1) for k in range(0, len(val), 128)])
            encoder.train()
            print(f'step {step:5d} {time.perf_counter() - start:6.0f}s loss {loss.item():.3f} '
                  f'val within {accuracy(errors)}', flush=True)


if __name__ == '__main__':
    main()
