"""Convert a folder of labelme annotations to mmevf's plain JSON Lines format.

``python tools/dataset_converters/labelme2jsonl.py LABELME_DIR OUT_JSONL
[--expression label|description|both] [--force] [--report REPORT.txt]``

Every ``*.json`` under LABELME_DIR (recursively, in sorted path order) is one labelme file and
becomes one image line of OUT_JSONL (the format of ``docs/user_guides/custom_data.md``). The
labelme json is read here directly (labelme is not a dependency):

- objects: shapes sharing a non-null ``group_id`` within one file are one object whose mask is
  the union of theirs (e.g. a person split in two by an occluder); every other shape is an
  object of its own. Objects keep the order of their first shape in the file.
- masks: ``polygon`` as it is, ``rectangle`` as its 4-corner polygon, ``circle`` as a
  32-point polygon (centre ``points[0]``, ``points[1]`` on the circle), ``mask`` (labelme >=
  5.3: a base64 PNG of the shape's box, top-left corner ``points[0]``) as COCO compressed RLE
  of the whole image; an object mixing ``mask`` shapes with others is one RLE of the union.
- expressions (``--expression``): the shapes' ``label`` (default), their ``description``
  (labelme >= 5.1; a shape without one gives none), or both (labels first, then
  descriptions); stripped, without repeats (case-insensitive), in shape order. An object
  left without expression is kept: the format allows it and the dataset skips it.
- dropped and reported, never silently (where: ``file.json shape i``, i counting from 0 in
  the file's ``shapes``): ``line`` / ``linestrip`` / ``point`` / ``points`` shapes (no
  area), unknown shape types, polygons of fewer than 3 points, shapes whose rasterised mask
  is empty, shapes with an empty label, and whole files whose image is missing (``imagePath``
  is resolved against the json's folder; embedded ``imageData`` does not help: the format
  needs an image file).
- ``imageHeight`` / ``imageWidth`` become ``height`` / ``width`` and must match the image
  file's header; ``image`` is the image's path relative to OUT_JSONL's folder, so
  ``data_root=<that folder>`` works.

A file that is not labelme (not JSON, no ``shapes``, wrong types; a rectangle, circle or mask
without its 2 points, a mask PNG that does not decode or leaves the image) is an error naming
it: exit code 1, a message on stderr, nothing written. OUT_JSONL is written atomically once every file
is converted; an existing OUT_JSONL (or REPORT) is refused unless ``--force`` is given. The
report summary is printed; ``--report`` writes it in full (every dropped shape listed).
"""
import argparse
import base64
import binascii
import io
import json
import math
import os
import os.path as osp
import sys
from numbers import Real
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the script is run from anywhere; mmevf lives at the repo root
    sys.path.insert(0, ROOT)
import mmengine  # noqa: E402

from mmevf.checkpoint import ATOMIC_BACKEND_ARGS  # noqa: E402
from mmevf.datasets.utils.jsonl_format import (ConversionReport, image_size,  # noqa: E402
                                               unique_texts, write_jsonl)

AREA_TYPES = ('polygon', 'rectangle', 'circle', 'mask')
NO_AREA_TYPES = ('line', 'linestrip', 'point', 'points')  # 'points': labelme's AI prompts
CIRCLE_POINTS = 32
EXPRESSION_MODES = ('label', 'description', 'both')

Polygon = List[float]  # flat [x1, y1, x2, y2, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def load_labelme(path: str, name: str) -> dict:
    """The parsed labelme json ``path``, its structure checked; errors name ``name``."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f'{name} is not a labelme json (not JSON: {error})') from None
    if not isinstance(data, dict) or not isinstance(data.get('shapes'), list):
        raise ValueError(f'{name} is not a labelme json (no "shapes" list)')
    if not isinstance(data.get('imagePath'), str) or not data['imagePath'].strip():
        raise ValueError(f'{name} is not a labelme json ("imagePath" must be a file name, got '
                         f'{data.get("imagePath")!r:.80})')
    for key in ('imageHeight', 'imageWidth'):
        # absent (very old labelme) is read from the image header; anything else must be valid
        if data.get(key) is not None and not _positive_int(data[key]):
            raise ValueError(f'{name}: "{key}" must be a positive integer, got {data[key]!r}')
    for i, shape in enumerate(data['shapes']):
        at = f'{name} shape {i}'
        if not isinstance(shape, dict):
            raise ValueError(f'{at} must be a JSON object, got {type(shape).__name__}')
        if not isinstance(shape.get('label'), str):
            raise ValueError(f'{at}: "label" must be a string, got {shape.get("label")!r}')
        points = shape.get('points')
        if not isinstance(points, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(map(_is_number, p)) for p in points):
            raise ValueError(f'{at}: "points" must be a list of [x, y] numbers, got '
                             f'{points!r:.80}')
        group_id = shape.get('group_id')
        if group_id is not None and not (isinstance(group_id, int)
                                         and not isinstance(group_id, bool)):
            raise ValueError(f'{at}: "group_id" must be an integer or null, got {group_id!r}')
        if shape.get('description') is not None and not isinstance(shape['description'], str):
            raise ValueError(f'{at}: "description" must be a string, got '
                             f'{shape["description"]!r:.80}')
        shape_type = shape.get('shape_type')
        if shape_type is not None and not isinstance(shape_type, str):
            raise ValueError(f'{at}: "shape_type" must be a string, got {shape_type!r}')
        if shape_type == 'mask' and not isinstance(shape.get('mask'), str):
            raise ValueError(f'{at}: a "mask" shape needs its base64 PNG in "mask"')
    return data


def circle_polygon(center: List[float], rim: List[float]) -> Polygon:
    """A ``CIRCLE_POINTS``-gon inscribed in the circle through ``rim`` around ``center``."""
    radius = math.hypot(rim[0] - center[0], rim[1] - center[1])
    polygon = []
    for k in range(CIRCLE_POINTS):
        angle = 2 * math.pi * k / CIRCLE_POINTS
        polygon += [round(center[0] + radius * math.cos(angle), 2),
                    round(center[1] + radius * math.sin(angle), 2)]
    return polygon


def decode_box_mask(shape: dict, height: int, width: int, at: str) -> np.ndarray:
    """A ``mask`` shape as an (H, W) bool mask: its PNG placed with its top-left pixel at
    ``points[0]`` (labelme writes the box's corners as ``points[0]``, ``points[1]``, the PNG
    covering both, inclusive)."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape['mask'], validate=True))) as png:
            box = np.asarray(png)
    except (binascii.Error, OSError, ValueError) as error:
        raise ValueError(f'{at}: "mask" is not a base64 PNG ({error})') from None
    if box.ndim == 3:  # an RGB(A) PNG: any colour channel set; alpha says nothing
        box = box[..., :3].any(axis=2)
    if len(shape['points']) != 2:
        raise ValueError(f'{at}: a "mask" shape needs its box corners as 2 points, got '
                         f'{len(shape["points"])}')
    x0 = int(math.floor(min(p[0] for p in shape['points'])))
    y0 = int(math.floor(min(p[1] for p in shape['points'])))
    h, w = box.shape
    if x0 < 0 or y0 < 0 or y0 + h > height or x0 + w > width:
        raise ValueError(f'{at}: its {w}x{h} mask at ({x0}, {y0}) leaves the '
                         f'{width}x{height} image')
    full = np.zeros((height, width), bool)
    full[y0:y0 + h, x0:x0 + w] = box != 0
    return full


def shape_mask(shape: dict, height: int, width: int, at: str,
               report: ConversionReport) -> Optional[Tuple[str, Any]]:
    """``('polygon', flat polygon)`` or ``('mask', (H, W) bool array)`` for ``shape``, or
    ``None`` when it is dropped (the reason reported at ``at``)."""
    shape_type = shape.get('shape_type') or 'polygon'  # labelme's own default
    points = shape['points']
    if shape_type in NO_AREA_TYPES:
        report.drop(f'{shape_type} shape (no area)', at)
        return None
    if shape_type not in AREA_TYPES:
        report.drop(f'unsupported shape type {shape_type!r}', at)
        return None
    if shape_type == 'mask':
        mask = decode_box_mask(shape, height, width, at)
        if not mask.any():
            report.drop('empty mask', at)
            return None
        return 'mask', mask
    if shape_type == 'polygon':
        if len(points) < 3:
            report.drop('polygon of fewer than 3 points', at)
            return None
        polygon = [v for p in points for v in p]
    else:
        if len(points) != 2:
            raise ValueError(f'{at}: a {shape_type} needs 2 points, got {len(points)}')
        if shape_type == 'rectangle':
            (xa, ya), (xb, yb) = points
            x0, x1, y0, y1 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
            polygon = [x0, y0, x1, y0, x1, y1, x0, y1]
        else:
            polygon = circle_polygon(*points)
    # a degenerate outline (collinear points, zero-size box) would train on an empty target
    if not mask_utils.area(mask_utils.frPyObjects([polygon], height, width)).any():
        report.drop('empty mask', at)
        return None
    return 'polygon', polygon


def object_mask(parts: List[Tuple[str, Any]], height: int, width: int) -> Any:
    """The format's mask of an object made of ``parts``: its polygons, or one compressed RLE
    (str counts) of the union when a part is a pixel mask."""
    polygons = [p for kind, p in parts if kind == 'polygon']
    if len(polygons) == len(parts):
        return polygons  # COCO decodes a list of polygons as their union
    rles = [mask_utils.encode(np.asfortranarray(m, dtype=np.uint8))
            for kind, m in parts if kind == 'mask']
    if polygons:
        rles += mask_utils.frPyObjects(polygons, height, width)
    rle = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
    return dict(size=[height, width], counts=rle['counts'].decode('ascii'))


def expressions_of(shapes: List[dict], mode: str) -> List[str]:
    """The object's texts: labels and / or descriptions, stripped, first spelling kept."""
    texts = []
    if mode in ('label', 'both'):
        texts += [shape['label'] for shape in shapes]
    if mode in ('description', 'both'):
        texts += [shape.get('description') or '' for shape in shapes]
    return unique_texts(texts)


def convert_file(path: str, name: str, out_dir: str, mode: str,
                 report: ConversionReport) -> Optional[dict]:
    """The image line of labelme file ``path`` (``name``: its path under LABELME_DIR, as
    messages give it), or ``None`` if its image is missing."""
    data = load_labelme(path, name)
    image_path = osp.normpath(osp.join(osp.dirname(path), data['imagePath']))
    if not osp.isfile(image_path):
        report.drop('image file missing', name)
        return None
    header = image_size(image_path, name)
    size = (data.get('imageHeight'), data.get('imageWidth'))
    if None in size:
        size = header
    elif size != header:
        hint = ' (EXIF-rotated? labelme shows the image upright)' if size == header[::-1] else ''
        raise ValueError(f'{name}: imageHeight x imageWidth {size[0]}x{size[1]} differ from '
                         f'the {header[0]}x{header[1]} of {image_path}{hint}')
    height, width = size
    groups: Dict[Any, List[int]] = {}  # object key -> shape indices, in first-shape order
    for i, shape in enumerate(data['shapes']):
        key = ('group', shape['group_id']) if shape.get('group_id') is not None else ('shape', i)
        groups.setdefault(key, []).append(i)
    objects = []
    for indices in groups.values():
        parts, shapes = [], []
        for i in indices:
            shape, at = data['shapes'][i], f'{name} shape {i}'
            if not shape['label'].strip():
                report.drop('empty label', at)
                continue
            part = shape_mask(shape, height, width, at, report)
            if part is not None:
                parts.append(part)
                shapes.append(shape)
        if parts:
            objects.append(dict(mask=object_mask(parts, height, width),
                                expressions=expressions_of(shapes, mode)))
    report.keep('images')
    report.keep('objects', len(objects))
    report.keep('expressions', sum(len(o['expressions']) for o in objects))
    silent = sum(not o['expressions'] for o in objects)
    if silent:
        report.keep('objects without expression', silent)
    return dict(image=osp.relpath(image_path, out_dir), height=height, width=width,
                objects=objects)


def labelme_files(folder: str) -> List[str]:
    """Every ``*.json`` under ``folder``, recursively, sorted by relative path."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        found += [osp.relpath(osp.join(parent, f), folder) for f in files
                  if f.lower().endswith('.json')]
    return sorted(found, key=lambda p: p.replace(os.sep, '/'))


def labelme2jsonl(labelme_dir: str, out: str, expression: str = 'label', force: bool = False,
                  report_path: Optional[str] = None) -> ConversionReport:
    """Convert ``labelme_dir`` to ``out`` (see the module docstring); the report."""
    if expression not in EXPRESSION_MODES:
        raise ValueError(f'expression must be one of {EXPRESSION_MODES}, got {expression!r}')
    for target in (out, report_path):
        if target and osp.exists(target) and not force:
            raise FileExistsError(f'{target} already exists; pass --force to overwrite it')
        if target and osp.isdir(target):
            raise IsADirectoryError(f'{target} is a folder, expected a file path')
    if not osp.isdir(labelme_dir):
        raise FileNotFoundError(f'labelme folder {labelme_dir} does not exist')
    files = labelme_files(labelme_dir)
    if not files:
        raise FileNotFoundError(f'no *.json under {labelme_dir}')
    out_dir = osp.dirname(osp.abspath(out))
    report = ConversionReport()
    lines = []
    for name in files:
        line = convert_file(osp.abspath(osp.join(labelme_dir, name)), name.replace(os.sep, '/'),
                            out_dir, expression, report)
        if line is not None:
            lines.append(line)
    if not lines:
        raise ValueError(f'no labelme file under {labelme_dir} has its image; nothing to write'
                         f'\n{report.summary()}')
    write_jsonl(out, lines)
    if report_path:
        mmengine.put_text(report.summary(examples=None) + '\n', report_path,
                          backend_args=ATOMIC_BACKEND_ARGS)
    return report


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert a folder of labelme jsons to mmevf\'s JSON Lines format')
    parser.add_argument('labelme_dir', help='folder searched recursively for *.json')
    parser.add_argument('out', help='the .jsonl file to write')
    parser.add_argument('--expression', choices=EXPRESSION_MODES, default='label',
                        help='expressions from the shapes\' label, description or both')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing OUT_JSONL / REPORT')
    parser.add_argument('--report', help='also write the full report (every drop) here')
    args = parser.parse_args(argv)
    try:
        report = labelme2jsonl(args.labelme_dir, args.out, args.expression, args.force,
                               args.report)
    except (OSError, ValueError) as err:
        parser.exit(1, f'error: {err}\n')
    print(report.summary())
    print(f'-> {args.out}')


if __name__ == '__main__':
    main()
