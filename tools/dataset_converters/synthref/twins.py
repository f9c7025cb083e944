"""SynthRef's multi-task twins: its scenes in the layouts of the multi-task sources.

- ``semantic/``: ADE20K's layout (``images/{training,validation}/*.jpg``,
  ``annotations/{training,validation}/*.png``, raw 0 = unlabelled floor, raw k = shape k - 1 of
  :data:`SEMANTIC_CLASSES`), read by ``BaseSemanticReferDataset`` with those classes. Its
  scenes are larger and hold 6-9 shapes, so that most classes have several instances:
  ``[semantic] circle`` is every circle, which a referring model (one object an expression)
  does not learn from SynthRef;
- ``parts/``: PartImageNet's COCO layout (``images/{train,val}/*.jpg``,
  ``annotations/{train,val}/{train,val}.json``): every shape in two halves, its lower half a
  darker shade, categories ``'{shape}:top half'`` / ``'{shape}:bottom half'`` with RLE masks
  (``CocoPartDataset``: ``'[semantic] circle top half'``);
- ``humanparsing/``: the ATR layout (``JPEGImages/*.jpg``, ``SegmentationClassAug/*.png``,
  ``train.txt`` / ``val.txt`` listing stems): stick figures built from SynthRef's shapes with
  ATR's raw labels (hat, face, upper clothes, arms, legs, shoes), left / right in the viewer's
  perspective as ``HumanParsingDataset`` names them.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .generator import COLORS, NUM_OBJECTS, place_objects, render
from .vocabulary import ATR, HALVES, PART_CATEGORIES, SEMANTIC_CLASSES

SIZES = ((256, 192), (224, 224), (192, 256), (256, 160))  # (width, height) as SynthRef
SEMANTIC_SIZES = ((320, 240), (288, 288), (240, 320))
SEMANTIC_OBJECTS = (6, 9)


def _shape_mask(obj: dict, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the pixels ``render`` fills for ``obj``."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(obj['polygon']).astype(np.int32)], 1)
    return mask.astype(bool)


def _split(rng: np.random.Generator, val_fraction: float) -> str:
    return 'val' if rng.random() < val_fraction else 'train'


def _make_dirs(out: str, splits: Tuple[str, ...]) -> None:
    for split in splits:
        os.makedirs(osp.join(out, 'images', split), exist_ok=True)
        os.makedirs(osp.join(out, 'annotations', split), exist_ok=True)


def _scene(rng: np.random.Generator, sizes: Tuple[Tuple[int, int], ...] = SIZES,
           num_objects: Tuple[int, int] = NUM_OBJECTS
           ) -> Tuple[int, int, List[dict], np.ndarray]:
    """A SynthRef scene: width, height, its objects and the (H, W, 3) BGR image."""
    width, height = sizes[rng.integers(len(sizes))]
    objects = place_objects(rng, width, height, num_objects)
    return width, height, objects, render(rng, width, height, objects)


def make_semantic(out: str, num_images: int, rng: np.random.Generator,
                  val_fraction: float) -> Dict[str, int]:
    counts = dict(training=0, validation=0)
    _make_dirs(out, tuple(counts))
    for i in range(num_images):
        width, height, objects, image = _scene(rng, SEMANTIC_SIZES, SEMANTIC_OBJECTS)
        label = np.zeros((height, width), np.uint8)
        for obj in objects:
            label[_shape_mask(obj, height, width)] = SEMANTIC_CLASSES.index(obj['shape']) + 1
        split = 'validation' if _split(rng, val_fraction) == 'val' else 'training'
        name = f'synthsem_{i:06d}'
        cv2.imwrite(osp.join(out, 'images', split, name + '.jpg'), image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(osp.join(out, 'annotations', split, name + '.png'), label)
        counts[split] += 1
    return counts


def make_parts(out: str, num_images: int, rng: np.random.Generator,
               val_fraction: float) -> Dict[str, int]:
    categories = [dict(id=k + 1, name=name, supercategory=name.split(':')[0])
                  for k, name in enumerate(PART_CATEGORIES)]
    coco = {split: dict(images=[], annotations=[], categories=categories)
            for split in ('train', 'val')}
    _make_dirs(out, tuple(coco))
    for i in range(num_images):
        width, height, objects, image = _scene(rng)
        split = _split(rng, val_fraction)
        file_name = f'synthpart_{i:06d}.jpg'
        image_id = i + 1
        rows = np.arange(height)[:, None]
        for obj in objects:
            mask = _shape_mask(obj, height, width)
            halves = (mask & (rows < obj['cy']), mask & (rows >= obj['cy']))
            # the lower half darker, so that the part boundary can be seen
            image[halves[1]] = (np.asarray(COLORS[obj['color']]) * 0.6).astype(np.uint8)
            for half, part in zip(HALVES, halves):
                rle = mask_utils.encode(np.asfortranarray(part.astype(np.uint8)))
                x, y, w, h = mask_utils.toBbox(rle).tolist()
                coco[split]['annotations'].append(dict(
                    id=len(coco[split]['annotations']) + 1, image_id=image_id,
                    category_id=PART_CATEGORIES.index(f'{obj["shape"]}:{half}') + 1,
                    segmentation=dict(size=rle['size'], counts=rle['counts'].decode('ascii')),
                    area=float(part.sum()), bbox=[x, y, w, h], iscrowd=0))
        cv2.imwrite(osp.join(out, 'images', split, file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        coco[split]['images'].append(
            dict(id=image_id, file_name=file_name, width=int(width), height=int(height)))
    for split, data in coco.items():
        with open(osp.join(out, 'annotations', split, f'{split}.json'), 'w') as f:
            json.dump(data, f)
    return {split: len(data['images']) for split, data in coco.items()}


def _figure(rng: np.random.Generator, label: np.ndarray, cx: int, top: int, s: int) -> None:
    """Paint one stick figure of unit size ``s`` into the ATR label map ``label``."""

    def box(name: str, x0: float, y0: float, x1: float, y1: float) -> None:
        label[int(top + y0 * s):int(top + y1 * s), int(cx + x0 * s):int(cx + x1 * s)] = ATR[name]

    cv2.fillPoly(label, [np.array([[cx - s, top + s], [cx + s, top + s], [cx, top]], np.int32)],
                 ATR['hat'])
    cv2.circle(label, (cx, int(top + 1.8 * s)), int(0.8 * s), ATR['face'], -1)
    box('upper_clothes', -1, 2.6, 1, 5)
    # "left" is the left of the picture (the viewer's perspective)
    box('left_arm', -1.6, 2.6, -1, 5)
    box('right_arm', 1, 2.6, 1.6, 5)
    box('left_leg', -0.9, 5, -0.15, 7.6)
    box('right_leg', 0.15, 5, 0.9, 7.6)
    box('left_shoe', -1.3, 7.6, -0.15, 8.2)
    box('right_shoe', 0.15, 7.6, 1.3, 8.2)


def make_humans(out: str, num_images: int, rng: np.random.Generator,
                val_fraction: float) -> Dict[str, int]:
    os.makedirs(osp.join(out, 'JPEGImages'), exist_ok=True)
    os.makedirs(osp.join(out, 'SegmentationClassAug'), exist_ok=True)
    stems: Dict[str, List[str]] = dict(train=[], val=[])
    palette = {v: rng.integers(30, 256, 3) for v in ATR.values()}
    for i in range(num_images):
        width, height = SIZES[rng.integers(len(SIZES))]
        label = np.zeros((height, width), np.uint8)
        count = int(rng.integers(1, 3))
        slots = width // count
        for k in range(count):
            s = int(rng.integers(10, min(slots // 4, height // 10) + 1))
            cx = int(rng.integers(k * slots + 2 * s, (k + 1) * slots - 2 * s + 1))
            _figure(rng, label, cx, int(rng.integers(2, int(height - 8.5 * s))), s)
        image = rng.normal(110, 12, (height, width, 3)).clip(0, 255).astype(np.uint8)
        for value, colour in palette.items():
            image[label == value] = colour
        split = _split(rng, val_fraction)
        stem = f'synthhuman_{i:06d}'
        cv2.imwrite(osp.join(out, 'JPEGImages', stem + '.jpg'), image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(osp.join(out, 'SegmentationClassAug', stem + '.png'), label)
        stems[split].append(stem)
    for split, names in stems.items():
        with open(osp.join(out, f'{split}.txt'), 'w') as f:
            f.write(''.join(n + '\n' for n in names))
    return {split: len(names) for split, names in stems.items()}


def make_synthref_twins(out: str, num_images: int = 300, seed: int = 1,
                        val_fraction: float = 0.2) -> Dict[str, Dict[str, int]]:
    """Write ``{out}/semantic``, ``{out}/parts`` and ``{out}/humanparsing`` (``num_images``
    scenes each); returns images per twin and split. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    return dict(semantic=make_semantic(osp.join(out, 'semantic'), num_images, rng, val_fraction),
                parts=make_parts(osp.join(out, 'parts'), num_images, rng, val_fraction),
                humanparsing=make_humans(osp.join(out, 'humanparsing'), num_images, rng,
                                         val_fraction))
