"""Write a tiny synthetic twin of ADE20K in mmseg's layout (for tests and smoke runs).

``python tools/dataset_converters/make_synthetic_ade20k.py data/ade_synth --seed 0`` writes
``ADEChallengeData2016/{images,annotations}/{training,validation}/`` with small JPEG scenes and
single-channel label PNGs in ADE20K's raw encoding (0 = unlabelled, k = class k - 1 of the 150
classes), so ``SemanticReferDataset`` / mmseg's ``ADE20KDataset`` read it like the real data.
Deterministic given the seed; takes well under a second.
"""
import argparse
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np
from PIL import Image

# raw ADE20K label values (class index + 1) used by the scenes: a handful of stuff and things,
# 'bed ' included because mmseg spells it with a trailing space
RAW_LABELS = {1: 'wall', 3: 'sky', 5: 'tree', 8: 'bed', 13: 'person', 21: 'car'}


def _scene(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 RGB image and its (H, W) uint8 raw label map.

    A background band (sky over wall) then 1-3 rectangles of other classes; a margin of raw 0
    (unlabelled) pixels is kept so that every map has ignored pixels."""
    label = np.zeros((height, width), np.uint8)
    horizon = int(rng.integers(height // 4, height // 2))
    label[2:horizon, 2:width - 2] = 3
    label[horizon:height - 2, 2:width - 2] = 1
    others = [v for v in RAW_LABELS if v not in (1, 3)]
    for value in rng.choice(others, size=int(rng.integers(1, 4)), replace=False):
        h, w = int(rng.integers(6, height // 2)), int(rng.integers(6, width // 2))
        y, x = int(rng.integers(2, height - h - 2)), int(rng.integers(2, width - w - 2))
        label[y:y + h, x:x + w] = value
    # one flat colour per class plus mild noise: the image is plausible but carries the labels
    colours = {v: rng.integers(0, 256, 3) for v in [0, *RAW_LABELS]}
    image = np.stack([colours[v] for v in label.ravel()]).reshape(height, width, 3)
    image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
    return image, label


def make_synthetic_ade20k(out: str,
                          num_train: int = 6,
                          num_val: int = 3,
                          size: Tuple[int, int] = (48, 64),
                          seed: int = 0) -> Dict[str, int]:
    """Write the dataset under ``{out}/ADEChallengeData2016``; return images per split.

    Args:
        out: parent folder (the configs' ``data_root`` is ``{out}/ADEChallengeData2016/``).
        num_train, num_val: images of ``training`` and ``validation``.
        size: (height, width) of every image.
        seed: seed of the scenes.
    """
    rng = np.random.default_rng(seed)
    root = osp.join(out, 'ADEChallengeData2016')
    counts = {}
    for split, num in (('training', num_train), ('validation', num_val)):
        img_dir = osp.join(root, 'images', split)
        ann_dir = osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        prefix = 'train' if split == 'training' else 'val'
        for i in range(num):
            image, label = _scene(rng, *size)
            name = f'ADE_{prefix}_{i + 1:08d}'
            Image.fromarray(image).save(osp.join(img_dir, name + '.jpg'), quality=95)
            Image.fromarray(label).save(osp.join(ann_dir, name + '.png'))
        counts[split] = num
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description='Write a synthetic ADE20K twin')
    parser.add_argument('out', help='parent folder of ADEChallengeData2016/')
    parser.add_argument('--num-train', type=int, default=6)
    parser.add_argument('--num-val', type=int, default=3)
    parser.add_argument('--size', type=int, nargs=2, default=(48, 64), metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    counts = make_synthetic_ade20k(args.out, args.num_train, args.num_val, tuple(args.size),
                                   args.seed)
    print(f'synthetic ADE20K written to {osp.join(args.out, "ADEChallengeData2016")}: '
          + ', '.join(f'{split} {n} images' for split, n in counts.items()))


if __name__ == '__main__':
    main()
