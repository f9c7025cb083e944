"""Write a tiny synthetic twin of Mapillary Vistas v2.0 in its layout (for tests and smoke runs).

``python tools/dataset_converters/make_synthetic_mapillary.py data/mapillary_synth --seed 0``
writes ``{training,validation}/images/*.jpg`` and ``{training,validation}/v2.0/labels/*.png``:
street-like scenes whose label PNGs are palette-mode (as released) with raw value k = class k of
mmseg's ``MapillaryDataset_v2`` (123 = ``'Unlabeled'``), so ``MapillaryReferDataset`` reads it
like the real data. Deterministic given the seed; takes well under a second.
"""
import argparse
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np
from mmseg.datasets import MapillaryDataset_v2
from PIL import Image

CLASSES = MapillaryDataset_v2.METAINFO['classes']
PALETTE = MapillaryDataset_v2.METAINFO['palette']
SKY, ROAD, BUILDING = (CLASSES.index(n) for n in ('Sky', 'Road', 'Building'))
THINGS = [CLASSES.index(n) for n in ('Car', 'Person', 'Street Light', 'Traffic Cone')]
UNLABELED = CLASSES.index('Unlabeled')


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An (H, W) uint8 label map: sky, a building band, road below, 1-3 things on the road and
    an 'Unlabeled' strip at the bottom (the ego vehicle's bonnet in real images)."""
    label = np.full((height, width), SKY, np.uint8)
    horizon = int(rng.integers(height // 3, height // 2))
    label[horizon // 2:horizon] = BUILDING
    label[horizon:] = ROAD
    label[height - 3:] = UNLABELED
    for value in rng.choice(THINGS, size=int(rng.integers(1, 4)), replace=False):
        h, w = int(rng.integers(4, height // 3)), int(rng.integers(4, width // 4))
        y, x = int(rng.integers(horizon - h // 2, height - h - 3)), int(rng.integers(0, width - w))
        label[y:y + h, x:x + w] = value
    return label


def make_synthetic_mapillary(out: str,
                             num_train: int = 4,
                             num_val: int = 2,
                             size: Tuple[int, int] = (48, 64),
                             seed: int = 0) -> Dict[str, int]:
    """Write the dataset under ``out`` (the configs' ``data_root``); return images per split."""
    rng = np.random.default_rng(seed)
    flat_palette = [c for colour in PALETTE for c in colour]
    counts = {}
    for split, num in (('training', num_train), ('validation', num_val)):
        img_dir = osp.join(out, split, 'images')
        ann_dir = osp.join(out, split, 'v2.0', 'labels')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(num):
            label = _scene(rng, *size)
            colours = np.asarray(PALETTE, np.int16)[label]
            image = np.clip(colours + rng.integers(-8, 9, colours.shape), 0, 255).astype(np.uint8)
            name = f'{split[:3]}_{seed}_{i:05d}'  # real stems are opaque ids
            Image.fromarray(image).save(osp.join(img_dir, name + '.jpg'), quality=95)
            png = Image.fromarray(label)
            png.putpalette(flat_palette)  # 'L' becomes 'P': the released PNGs' mode
            png.save(osp.join(ann_dir, name + '.png'))
        counts[split] = num
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description='Write a synthetic Mapillary Vistas v2.0 twin')
    parser.add_argument('out', help='the dataset folder (holds training/ and validation/)')
    parser.add_argument('--num-train', type=int, default=4)
    parser.add_argument('--num-val', type=int, default=2)
    parser.add_argument('--size', type=int, nargs=2, default=(48, 64), metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    counts = make_synthetic_mapillary(args.out, args.num_train, args.num_val, tuple(args.size),
                                      args.seed)
    print(f'synthetic Mapillary Vistas written to {args.out}: '
          + ', '.join(f'{split} {n} images' for split, n in counts.items()))


if __name__ == '__main__':
    main()
