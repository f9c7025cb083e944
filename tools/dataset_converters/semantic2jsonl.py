"""Convert semantic label maps (ADE20K-style PNGs) to mmevf's plain JSON Lines format.

``python tools/dataset_converters/semantic2jsonl.py IMG_DIR LABEL_DIR CLASSES OUT_JSONL
[--img-suffix .jpg] [--label-suffix .png] [--ignore-index 255] [--reduce-zero-label]
[--template '[semantic] {}'] [--force]``

Every ``*{img-suffix}`` under IMG_DIR (recursively, sorted) pairs with the label PNG of the
same relative stem under LABEL_DIR (mmseg's layout) and becomes one image line of OUT_JSONL:
one object per class present in its label map, in increasing class index, whose mask is all
the pixels of that class (COCO compressed RLE, str counts) and whose one expression is the
template filled with the class name: ``[semantic] wall``, the prompts of mmevf's semantic
datasets (``mmevf/datasets/semantic_refer.py``), so the same model reads both.

- CLASSES: a text file with one class name per line (line k: raw value k), or a ``.json``
  list of names. Names are stripped and lower-cased as the semantic datasets do; a name with
  ``;`` synonyms (ADE20K's ``objectInfo150``: ``windowpane;window``) keeps the first one,
  which is mmseg's name for the class.
- values: raw value k is class k, ``--ignore-index`` (255) is unlabelled; with
  ``--reduce-zero-label`` (ADE20K) raw 0 is unlabelled too and raw k is class k - 1, as in
  mmseg. Any other value is an error naming the PNG and the values.
- a label PNG must be single-channel (mode L, P or I) and of its image's size (read from the
  image header): else an error naming both files.
- images without a label PNG, and label PNGs without an image, are dropped and reported. An
  image whose map has no labelled pixel keeps its line, with no object (the dataset skips
  it).

``image`` is the image's path relative to OUT_JSONL's folder, so ``data_root=<that folder>``
works. OUT_JSONL is written atomically once every image is converted (on any error nothing is
written); an existing OUT_JSONL is refused unless ``--force`` is given.
"""
import argparse
import json
import os
import os.path as osp
import sys
from string import Formatter
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the script is run from anywhere; mmevf lives at the repo root
    sys.path.insert(0, ROOT)
from mmevf.datasets.utils.jsonl_format import (ConversionReport, image_size,  # noqa: E402
                                               write_jsonl)

DEFAULT_TEMPLATE = '[semantic] {}'  # SemanticReferMixin's prompt_prefix + class name


def read_classes(path: str) -> List[str]:
    """The class names of ``path`` (one per line, or a JSON list), cleaned as the datasets'."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'class list {path} does not exist')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if path.lower().endswith('.json'):
        try:
            raw = json.loads(text)
        except ValueError as error:
            raise ValueError(f'class list {path} is not JSON ({error})') from None
        if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
            raise ValueError(f'class list {path} must be a JSON list of names')
    else:
        raw = text.splitlines()
        while raw and not raw[-1].strip():  # a trailing newline is no class
            raw.pop()
    names = [n.split(';')[0].strip().lower() for n in raw]
    for k, name in enumerate(names):
        # a blank line would shift every later class by one: refuse rather than guess
        if not name:
            raise ValueError(f'class list {path}: class {k} has an empty name')
        if names.index(name) != k:
            raise ValueError(f'class list {path}: classes {names.index(name)} and {k} are both '
                             f'{name!r} (their prompts would be the same)')
    if not names:
        raise ValueError(f'class list {path} is empty')
    return names


def check_template(template: str) -> None:
    """``template`` has exactly one placeholder, ``{}`` or ``{class}``."""
    fields = [field for _, field, _, _ in Formatter().parse(template) if field is not None]
    if fields not in ([''], ['class']):
        raise ValueError(f'template {template!r} needs one placeholder, {{}} or {{class}}, for '
                         'the class name')


def list_files(folder: str, suffix: str) -> List[str]:
    """Paths relative to ``folder`` of its files ending in ``suffix``, recursively, sorted."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        found += [osp.relpath(osp.join(parent, f), folder) for f in files if f.endswith(suffix)]
    return sorted(found, key=lambda p: p.replace(os.sep, '/'))


def read_label(path: str, num_classes: int, ignore_index: int,
               reduce_zero_label: bool) -> np.ndarray:
    """The (H, W) class index map of label PNG ``path``, ``-1`` where unlabelled."""
    try:
        with Image.open(path) as png:
            raw = np.asarray(png)
    except OSError as error:
        raise ValueError(f'label map {path} cannot be read ({error})') from None
    if raw.ndim != 2:
        raise ValueError(f'label map {path} must be a single-channel PNG, got shape {raw.shape}')
    raw = raw.astype(np.int64)
    values = np.unique(raw)
    low, high = (1, num_classes) if reduce_zero_label else (0, num_classes - 1)
    unlabelled = [ignore_index, 0] if reduce_zero_label else [ignore_index]
    bad = values[((values < low) | (values > high)) & ~np.isin(values, unlabelled)]
    if bad.size:
        raise ValueError(f'label map {path} has values {bad.tolist()} outside the '
                         f'{num_classes} classes ([{low}, {high}], ignore {ignore_index}, '
                         f'reduce_zero_label={reduce_zero_label})')
    label = raw - 1 if reduce_zero_label else raw.copy()
    label[np.isin(raw, unlabelled)] = -1
    return label


def semantic2jsonl(img_dir: str, label_dir: str, classes: str, out: str,
                   img_suffix: str = '.jpg', label_suffix: str = '.png',
                   ignore_index: int = 255, reduce_zero_label: bool = False,
                   template: str = DEFAULT_TEMPLATE, force: bool = False) -> ConversionReport:
    """Convert the label maps (see the module docstring); the report."""
    if osp.exists(out) and not force:
        raise FileExistsError(f'{out} already exists; pass --force to overwrite it')
    if osp.isdir(out):
        raise IsADirectoryError(f'{out} is a folder, expected a .jsonl file path')
    for folder, what in ((img_dir, 'image'), (label_dir, 'label')):
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{what} folder {folder} does not exist')
    check_template(template)
    names = read_classes(classes)
    images = list_files(img_dir, img_suffix)
    if not images:
        raise FileNotFoundError(f'no *{img_suffix} under {img_dir}')
    stems = {osp.splitext(p)[0] for p in images}
    out_dir = osp.dirname(osp.abspath(out))
    report = ConversionReport()
    lines = []
    for rel in images:
        image_path = osp.abspath(osp.join(img_dir, rel))
        label_path = osp.join(label_dir, osp.splitext(rel)[0] + label_suffix)
        if not osp.isfile(label_path):
            report.drop('image without label map', rel.replace(os.sep, '/'))
            continue
        label = read_label(label_path, len(names), ignore_index, reduce_zero_label)
        height, width = image_size(image_path)
        if label.shape != (height, width):
            raise ValueError(f'label map {label_path} is {label.shape[0]}x{label.shape[1]} but '
                             f'image {image_path} is {height}x{width} (height x width)')
        objects = []
        for c in np.unique(label):
            if c < 0:
                continue
            rle = mask_utils.encode(np.asfortranarray(label == c, dtype=np.uint8))
            text = template.format(names[c], **{'class': names[c]})
            objects.append(dict(mask=dict(size=[height, width],
                                          counts=rle['counts'].decode('ascii')),
                                expressions=[text]))
        lines.append(dict(image=osp.relpath(image_path, out_dir), height=height, width=width,
                          objects=objects))
        report.keep('images')
        report.keep('objects', len(objects))
        if not objects:
            report.keep('images without labelled pixel', 1)
    for rel in list_files(label_dir, label_suffix):
        if osp.splitext(rel)[0] not in stems:
            report.drop('label map without image', rel.replace(os.sep, '/'))
    if not lines:
        raise ValueError(f'no image under {img_dir} has a label map under {label_dir}; '
                         f'nothing to write\n{report.summary()}')
    write_jsonl(out, lines)
    return report


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert semantic label maps to mmevf\'s JSON Lines format '
        '(one "[semantic] {class}" expression per class present)')
    parser.add_argument('img_dir', help='image folder (searched recursively)')
    parser.add_argument('label_dir', help='label PNG folder, same relative stems')
    parser.add_argument('classes', help='class names: one per line, or a .json list')
    parser.add_argument('out', help='the .jsonl file to write')
    parser.add_argument('--img-suffix', default='.jpg')
    parser.add_argument('--label-suffix', default='.png')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='the raw value of unlabelled pixels')
    parser.add_argument('--reduce-zero-label', action='store_true',
                        help='raw 0 is unlabelled, raw k is class k - 1 (ADE20K)')
    parser.add_argument('--template', default=DEFAULT_TEMPLATE,
                        help='the expression, {} (or {class}) standing for the class name')
    parser.add_argument('--force', action='store_true', help='overwrite an existing OUT_JSONL')
    args = parser.parse_args(argv)
    try:
        report = semantic2jsonl(args.img_dir, args.label_dir, args.classes, args.out,
                                args.img_suffix, args.label_suffix, args.ignore_index,
                                args.reduce_zero_label, args.template, args.force)
    except (OSError, ValueError) as err:
        parser.exit(1, f'error: {err}\n')
    print(report.summary())
    print(f'-> {args.out}')


if __name__ == '__main__':
    main()
