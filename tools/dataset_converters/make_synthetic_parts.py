"""Write tiny synthetic part datasets (for tests and smoke runs).

``python tools/dataset_converters/make_synthetic_parts.py data/parts_synth --seed 0`` writes

- ``humanparsing/{JPEGImages/*.jpg, SegmentationClassAug/*.png}``: ATR layout, single-channel
  label PNGs with raw values 0 (background) .. 17 (``HumanParsingDataset``'s table);
- ``parts/images/*.jpg`` and ``parts/annotations/train.json``: a COCO-format part json with
  ``object:part`` categories (ids not contiguous), polygon instances (some categories with two
  instances, one instance with two polygons), one compressed and one uncompressed (``iscrowd``)
  RLE, and a last image without annotations (``CocoPartDataset``).

Deterministic given the seed; takes well under a second.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

# non-contiguous ids and mixed case, so that sorting by id and name normalisation are exercised
PART_CATEGORIES = [
    dict(id=1, name='person:hair', supercategory='person'),
    dict(id=2, name='person:Torso', supercategory='person'),
    dict(id=5, name='dog:head', supercategory='dog'),
    dict(id=7, name='Quadruped Foot', supercategory='quadruped'),
    dict(id=9, name='car:wheel', supercategory='car'),
]


def _paint(rng: np.random.Generator, label: np.ndarray, values: List[int]) -> np.ndarray:
    """An (H, W, 3) uint8 image with one flat noisy colour per label value."""
    colours = {v: rng.integers(0, 256, 3) for v in values}
    image = np.stack([colours[v] for v in label.ravel()]).reshape(*label.shape, 3)
    return np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)


def _atr_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An (H, W) uint8 ATR label map: 3-7 rectangles of parts 1..17 inside a background margin."""
    label = np.zeros((height, width), np.uint8)
    for value in rng.choice(np.arange(1, 18), size=int(rng.integers(3, 8)), replace=False):
        h, w = int(rng.integers(6, height // 2)), int(rng.integers(6, width // 2))
        y, x = int(rng.integers(2, height - h - 2)), int(rng.integers(2, width - w - 2))
        label[y:y + h, x:x + w] = value
    return label


def _polygon(rng: np.random.Generator, height: int, width: int) -> List[float]:
    """A flat [x0, y0, x1, y1, ...] quadrilateral (a jittered box) inside the image."""
    h, w = int(rng.integers(6, height // 2)), int(rng.integers(6, width // 2))
    y, x = int(rng.integers(1, height - h - 1)), int(rng.integers(1, width - w - 1))
    corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    jitter = rng.uniform(-2, 2, (4, 2))
    pts = np.clip(np.array(corners, float) + jitter, 0, [width - 1, height - 1])
    return [round(float(v), 2) for v in pts.ravel()]


def _uncompressed_rle(mask: np.ndarray) -> Dict:
    """COCO's uncompressed RLE (column-major run lengths, starting with a 0-run) of a mask."""
    flat = mask.ravel(order='F').astype(np.uint8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return dict(size=list(mask.shape), counts=counts)


def make_humanparsing(root: str, rng: np.random.Generator, num: int,
                      size: Tuple[int, int]) -> int:
    """Write ``num`` ATR-layout pairs under ``root``; return ``num``."""
    img_dir, ann_dir = osp.join(root, 'JPEGImages'), osp.join(root, 'SegmentationClassAug')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for i in range(num):
        label = _atr_scene(rng, *size)
        name = f'atr_{i:04d}'
        Image.fromarray(_paint(rng, label, list(range(18)))).save(
            osp.join(img_dir, name + '.jpg'), quality=95)
        Image.fromarray(label).save(osp.join(ann_dir, name + '.png'))
    return num


def make_coco_parts(root: str, rng: np.random.Generator, num: int,
                    size: Tuple[int, int]) -> int:
    """Write ``num`` images and ``annotations/train.json`` under ``root``; return ``num``."""
    height, width = size
    img_dir = osp.join(root, 'images')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    cat_ids = [c['id'] for c in PART_CATEGORIES]
    for i in range(num):
        img_id = 100 + i
        file_name = f'part_{i:04d}.jpg'
        images.append(dict(id=img_id, file_name=file_name, height=height, width=width))
        canvas = Image.new('RGB', (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(canvas)
        if i < num - 1:  # the last image has no annotation
            chosen = rng.choice(cat_ids, size=int(rng.integers(2, 5)), replace=False)
            for cat_id in sorted(int(c) for c in chosen):
                # 1 or 2 instances per category, the merge must take their union
                for _ in range(int(rng.integers(1, 3))):
                    polys = [_polygon(rng, height, width)
                             for _ in range(int(rng.integers(1, 3)))]
                    for poly in polys:
                        draw.polygon(poly, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
                    annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                            category_id=cat_id, segmentation=polys, iscrowd=0))
        canvas.save(osp.join(img_dir, file_name), quality=95)
    # one compressed RLE (string counts) and one uncompressed crowd RLE replace polygons
    for ann, compressed in ((annotations[0], True), (annotations[-1], False)):
        rles = mask_utils.frPyObjects(ann['segmentation'], height, width)
        mask = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        if compressed:
            rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
            ann['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode('ascii'))
        else:
            ann.update(segmentation=_uncompressed_rle(mask), iscrowd=1)
    for ann in annotations:
        seg = ann['segmentation']
        if isinstance(seg, dict) and isinstance(seg['counts'], str):
            rle = dict(size=seg['size'], counts=seg['counts'].encode('ascii'))
        else:
            rle = mask_utils.frPyObjects(seg, height, width)
            rle = mask_utils.merge(rle) if isinstance(rle, list) else rle
        ann['area'] = float(mask_utils.area(rle))
        ann['bbox'] = [float(v) for v in mask_utils.toBbox(rle)]
    with open(osp.join(root, 'annotations', 'train.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=PART_CATEGORIES), f,
                  sort_keys=True)
    return num


def make_synthetic_parts(out: str,
                         num_atr: int = 5,
                         num_coco: int = 5,
                         size: Tuple[int, int] = (40, 56),
                         seed: int = 0) -> Dict[str, int]:
    """Write ``{out}/humanparsing`` and ``{out}/parts``; return images per dataset.

    Args:
        out: parent folder.
        num_atr: ATR-layout images.
        num_coco: COCO-part images (the last one without annotations).
        size: (height, width) of every image.
        seed: seed of the scenes.
    """
    rng = np.random.default_rng(seed)
    return dict(humanparsing=make_humanparsing(osp.join(out, 'humanparsing'), rng, num_atr, size),
                parts=make_coco_parts(osp.join(out, 'parts'), rng, num_coco, size))


def main() -> None:
    parser = argparse.ArgumentParser(description='Write synthetic part datasets')
    parser.add_argument('out', help='parent folder of humanparsing/ and parts/')
    parser.add_argument('--num-atr', type=int, default=5)
    parser.add_argument('--num-coco', type=int, default=5)
    parser.add_argument('--size', type=int, nargs=2, default=(40, 56), metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    counts = make_synthetic_parts(args.out, args.num_atr, args.num_coco, tuple(args.size),
                                  args.seed)
    print(f'synthetic part datasets written to {args.out}: '
          + ', '.join(f'{name} {n} images' for name, n in counts.items()))


if __name__ == '__main__':
    main()
