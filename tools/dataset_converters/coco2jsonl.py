"""Convert a COCO-format instances json to mmevf's plain JSON Lines format (one file).

``python tools/dataset_converters/coco2jsonl.py ANN_JSON OUT_JSONL [--img-prefix DIR]
[--expressions auto|category|field] [--force]``

One line per image that keeps an annotation, in the json's image order: ``id`` the COCO image
id, ``height`` / ``width`` the image entry's (when it has them; else the dataset reads the
image header), ``image`` the path of ``--img-prefix`` joined with ``file_name`` (default
prefix: ANN_JSON's folder), written relative to OUT_JSONL's folder so that
``data_root=<that folder>`` works. One object per kept annotation, in the json's order; its
mask is the annotation's segmentation (polygons as they are, RLE with compressed counts,
Objects365's list-wrapped RLE unwrapped) and its expressions (``--expressions``):

- ``category``: the category name;
- ``field``: the annotation's ``expressions`` (a list of strings, or one string), else its
  ``caption`` (a string or a list); an annotation with neither is dropped;
- ``auto`` (default): the field when the annotation has one, else the category name.

Texts are stripped, and repeats (case-insensitive: the dataset lower-cases) left out.

Dropped and reported, never silently: crowd regions (``iscrowd``), annotations without a
segmentation or with an empty one (``[]``, an all-zero RLE), annotations whose polygons all
have fewer than 3 points (a polygon of fewer than 3 points beside valid ones is left out of
its annotation, reported on its own), annotations without expressions; images without
annotations and images whose annotations were all dropped are reported and not written.

A json that is missing, not JSON or not COCO instances (no ``images`` / ``annotations`` /
``categories``, an annotation of an absent image or category, a malformed segmentation or
expression field) is an error naming it: exit code 1, nothing written. OUT_JSONL is written
atomically once everything is converted; an existing OUT_JSONL is refused unless ``--force``.
"""
import argparse
import contextlib
import io
import os.path as osp
import sys
from numbers import Real
from typing import Any, Dict, List, Optional, Union

from pycocotools import mask as mask_utils

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the script is run from anywhere; mmevf lives at the repo root
    sys.path.insert(0, ROOT)
from mmevf.datasets.utils import load_coco  # noqa: E402
from mmevf.datasets.utils.jsonl_format import (ConversionReport, check_mask,  # noqa: E402
                                               unique_texts, write_jsonl)

EXPRESSION_MODES = ('auto', 'category', 'field')
TEXT_FIELDS = ('expressions', 'caption')  # in this order of precedence

Mask = Union[list, dict]


def read_coco(path: str) -> dict:
    """The COCO instances json ``path`` (``images`` / ``annotations`` / ``categories``
    checked by mmevf's ``load_coco``); errors name it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress messages
            return load_coco(path).dataset
    except (KeyError, TypeError) as error:  # pycocotools' index: entries without ids, ...
        raise ValueError(f'annotation file {path} is not a COCO-format json '
                         f'({type(error).__name__}: {error})') from None


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def annotation_mask(ann: dict, image: dict, name: str, report: ConversionReport
                    ) -> Optional[Mask]:
    """The format's mask of annotation ``ann`` on ``image``, or ``None`` when it is dropped
    (the reason reported); a malformed segmentation is an error naming ``name``, the json."""
    at = f'annotation {ann["id"]}'
    where = f'{name}: {at}'
    segmentation = ann.get('segmentation')
    if segmentation is None or segmentation == [] or segmentation == {}:
        report.drop('no or empty segmentation', at)
        return None
    if isinstance(segmentation, list) and all(isinstance(s, dict) for s in segmentation):
        if len(segmentation) != 1:
            raise ValueError(f'{where}: a list-wrapped RLE holds one RLE, got '
                             f'{len(segmentation)}')
        segmentation = segmentation[0]  # Objects365's list-wrapped RLE
    if isinstance(segmentation, dict):
        check_mask(segmentation, where)  # size, counts type and uncompressed runs
        size = [image.get('height'), image.get('width')]
        if None not in size and segmentation['size'] != size:
            raise ValueError(f'{where}: RLE size {segmentation["size"]} is not the size {size} '
                             f'of image {image["id"]}')
        h, w = segmentation['size']
        counts = segmentation['counts']
        rle = (mask_utils.frPyObjects(segmentation, h, w) if isinstance(counts, list)
               else dict(size=[h, w], counts=counts.encode('ascii')))
        if not mask_utils.area(rle):
            report.drop('no or empty segmentation', at)
            return None
        return dict(size=[h, w], counts=rle['counts'].decode('ascii'))
    if not isinstance(segmentation, list) or not all(
            isinstance(p, list) and not len(p) % 2 and all(map(_is_number, p))
            for p in segmentation):
        raise ValueError(f'{where}: a segmentation is a list of polygons (flat lists of x, y '
                         f'numbers) or an RLE dict, got {segmentation!r:.80}')
    polygons = [p for p in segmentation if len(p) >= 6]
    if not polygons:
        report.drop('only polygons of fewer than 3 points', at)
        return None
    for i, polygon in enumerate(segmentation):
        if len(polygon) < 6:
            report.drop('polygon of fewer than 3 points (its annotation kept)',
                        f'{at} polygon {i}')
    return polygons


def _texts(value: Any, where: str, field: str) -> List[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError(f'{where}: "{field}" must be a string or a list of strings, got '
                         f'{value!r:.80}')
    return value


def annotation_expressions(ann: dict, category: str, mode: str,
                           where: str) -> Optional[List[str]]:
    """The texts of ``ann`` in ``mode`` (stripped, repeats left out), or ``None`` in
    ``'field'`` mode when it has no text field."""
    field = next((f for f in TEXT_FIELDS if f in ann), None)
    if mode == 'category' or (mode == 'auto' and field is None):
        texts = [category]
    elif field is None:
        return None
    else:
        texts = _texts(ann[field], where, field)
    return unique_texts(texts)


def coco2jsonl(ann_json: str, out: str, img_prefix: Optional[str] = None,
               expressions: str = 'auto', force: bool = False) -> ConversionReport:
    """Convert ``ann_json`` to ``out`` (see the module docstring); the report."""
    if expressions not in EXPRESSION_MODES:
        raise ValueError(f'expressions must be one of {EXPRESSION_MODES}, got {expressions!r}')
    if osp.exists(out) and not force:
        raise FileExistsError(f'{out} already exists; pass --force to overwrite it')
    if osp.isdir(out):
        raise IsADirectoryError(f'{out} is a folder, expected a .jsonl file path')
    coco = read_coco(ann_json)
    categories = {}
    for cat in coco['categories']:
        if not isinstance(cat.get('name'), str) or not cat['name'].strip():
            raise ValueError(f'{ann_json}: category {cat.get("id")} has no name')
        categories[cat['id']] = cat['name']
    anns_of: Dict[int, List[dict]] = {image['id']: [] for image in coco['images']}
    for ann in coco['annotations']:
        anns_of[ann['image_id']].append(ann)

    img_prefix = osp.dirname(osp.abspath(ann_json)) if img_prefix is None else img_prefix
    out_dir = osp.dirname(osp.abspath(out))
    report = ConversionReport()
    lines = []
    for image in coco['images']:
        if not isinstance(image.get('file_name'), str) or not image['file_name'].strip():
            raise ValueError(f'{ann_json}: image {image["id"]} has no file_name')
        image_where = f'image {image["id"]} ({image["file_name"]})'
        for key in ('height', 'width'):
            if key in image and not (isinstance(image[key], int) and image[key] > 0):
                raise ValueError(f'{ann_json}: {image_where} has {key} {image[key]!r}, not a '
                                 'positive integer')
        if not anns_of[image['id']]:
            report.drop('image without annotations', image_where)
            continue
        objects = []
        for ann in anns_of[image['id']]:
            if ann.get('iscrowd', 0):
                report.drop('crowd region', f'annotation {ann["id"]}')
                continue
            mask = annotation_mask(ann, image, ann_json, report)
            texts = annotation_expressions(ann, categories[ann['category_id']], expressions,
                                           f'{ann_json}: annotation {ann["id"]}')
            if mask is None:
                continue
            if not texts:
                report.drop('no expression' if texts is None else 'only empty expressions',
                            f'annotation {ann["id"]}')
                continue
            objects.append(dict(mask=mask, expressions=texts))
        if not objects:
            report.drop('image whose annotations were all dropped', image_where)
            continue
        line = dict(image=osp.relpath(osp.abspath(osp.join(img_prefix, image['file_name'])),
                                      out_dir), id=image['id'])
        if 'height' in image and 'width' in image:
            line.update(height=image['height'], width=image['width'])
        line['objects'] = objects
        lines.append(line)
        report.keep('images')
        report.keep('objects', len(objects))
        report.keep('expressions', sum(len(o['expressions']) for o in objects))
    if not lines:
        raise ValueError(f'{ann_json}: no annotation kept; nothing to write\n{report.summary()}')
    write_jsonl(out, lines)
    return report


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert a COCO instances json to mmevf\'s JSON Lines format')
    parser.add_argument('ann_json', help='COCO-format instances json')
    parser.add_argument('out', help='the .jsonl file to write')
    parser.add_argument('--img-prefix',
                        help='folder the images\' file_name starts from (default: ANN_JSON\'s)')
    parser.add_argument('--expressions', choices=EXPRESSION_MODES, default='auto',
                        help='texts: the category name, the annotation\'s "expressions" / '
                        '"caption" field, or the field when present else the name (auto)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing OUT_JSONL')
    args = parser.parse_args(argv)
    try:
        report = coco2jsonl(args.ann_json, args.out, args.img_prefix, args.expressions,
                            args.force)
    except (OSError, ValueError) as err:
        parser.exit(1, f'error: {err}\n')
    print(report.summary())
    print(f'-> {args.out}')


if __name__ == '__main__':
    main()
