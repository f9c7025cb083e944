"""Convert a refer-format folder (RefCOCO / RefCOCO+ / RefCOCOg, SynthRef, gRefCOCO) to mmevf's
plain JSON Lines format, one ``OUT_DIR/<split>.jsonl`` per split.

``python tools/dataset_converters/refer2jsonl.py DATA_ROOT OUT_DIR
[--ann-file synthref/instances.json] [--split-file 'synthref/refs(unc).p']
[--img-prefix images/] [--splits train val testA testB] [--force]``

e.g. gRefCOCO: ``--ann-file grefcoco/instances.json --split-file 'grefcoco/grefs(unc).json'
--img-prefix images/train2014/``. The refs are read as ``GReferSegDataset`` reads them (a
``.json`` list, or a pickle through mmevf's loader that refuses code) and checked by its
``parse_ref``: a ref naming an absent annotation or image, or without a sentence, is an error
naming the file and the ref, as it is for the datasets.

One line per image of a split, in the order of the images' first ref (the datasets' item
order); ``id`` is the COCO image id, ``height`` / ``width`` the COCO image's, ``image`` the
image's path relative to OUT_DIR (``data_root=OUT_DIR`` works). A ref naming one object (a
RefCOCO ref; a gRef listing one annotation, or one besides crowd regions) is one object: the
annotation's segmentation as it is, the ref's ``sent`` as its expressions; two refs on one
annotation stay two objects (each keeps its own sentences, as ``ReferSegDataset`` keeps
them). A gRef naming several objects becomes one top-level expression per sentence listing
their objects (the annotations' objects, added without expressions where no single-object
ref made one; crowd regions left out unless the ref names only crowd regions, as
``GReferSegDataset``); a no-target gRef (``ann_id == [-1]``) becomes top-level expressions
listing no object. Polygons of fewer than 3 points (a few COCO annotations have them) are left
out and reported (mmdet's ``LoadAnnotations`` leaves them out of the source's masks too).

``JsonlReferSegDataset`` on ``OUT_DIR/<split>.jsonl`` then gives ``ReferSegDataset``'s /
``GReferSegDataset``'s items (img_id, height, width, texts, masks, no_target). One difference:
the format lists object expressions before top-level ones, so in an image where a single-object
gRef follows a multi- or no-target one, the texts come in another order (the report counts
these images). And a multi- or no-target gRef's sentences become separate top-level
expressions (one text each, by the format), so ``text_mode='random'`` with ``num_sentences``
set draws each of them as a ref of its own.

``--splits`` defaults to every split of the refs file (in the order they first appear); a
split named there that the file lacks is an error. Every split is converted and checked
before anything is written; each file is written atomically; existing outputs are refused
unless ``--force`` is given.
"""
import argparse
import contextlib
import io
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the script is run from anywhere; mmevf lives at the repo root
    sys.path.insert(0, ROOT)
from mmevf.datasets.grefer_seg import EMPTY_POLYGON, NO_TARGET, GReferSegDataset  # noqa: E402
from mmevf.datasets.utils import load_coco  # noqa: E402
from mmevf.datasets.utils.jsonl_format import (ConversionReport, check_line,  # noqa: E402
                                               write_jsonl)

REF_KEYS = ('ref_id', 'image_id', 'ann_id', 'split', 'sentences')


def read_instances(path: str) -> Tuple[Dict[int, dict], Dict[int, dict]]:
    """The annotations and images of COCO instances json ``path`` by id; errors name it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress messages
            coco = load_coco(path)
    except (KeyError, TypeError) as error:  # pycocotools' index: entries without ids, ...
        raise ValueError(f'annotation file {path} is not a COCO-format json '
                         f'({type(error).__name__}: {error})') from None
    return coco.anns, coco.imgs


def check_refs(refs: object, path: str) -> List[dict]:
    """``refs`` (read from ``path``) if it is a list of refs, else an error naming ``path``."""
    if not isinstance(refs, list):
        raise ValueError(f'{path} holds a {type(refs).__name__}, not a list of refs')
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise ValueError(f'{path}: entry {i} is a {type(ref).__name__}, not a ref')
        missing = [key for key in REF_KEYS if key not in ref]
        if missing:
            raise ValueError(f'{path}: ref {ref.get("ref_id", f"#{i}")} lacks {missing}')
        ann_ids = ref['ann_id'] if isinstance(ref['ann_id'], list) else [ref['ann_id']]
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in ann_ids):
            raise ValueError(f'{path}: ref {ref["ref_id"]}: ann_id must be an annotation id or '
                             f'a list of them, got {ref["ann_id"]!r:.80}')
        sentences = ref['sentences']
        if not isinstance(sentences, list) or not all(
                isinstance(s, dict) and isinstance(s.get('sent'), str) for s in sentences):
            raise ValueError(f'{path}: ref {ref["ref_id"]}: sentences must be a list of '
                             'dicts with a "sent" string')
    return refs


class ObjectMasks:
    """The format's mask of each annotation, made once. A polygon of fewer than 3 points or
    an odd number of coordinates, which the format refuses, is left out and reported once per
    annotation, as mmdet's ``LoadAnnotations`` leaves it out of the source's mask; none left:
    mmevf's empty polygon, the all-zero mask ``LoadAnnotations`` makes of such an annotation."""

    def __init__(self, anns: Dict[int, dict], report: ConversionReport) -> None:
        self.anns = anns
        self.report = report
        self.masks: Dict[int, object] = {}

    def __getitem__(self, ann_id: int) -> object:
        if ann_id not in self.masks:
            segmentation = self.anns[ann_id]['segmentation']
            if isinstance(segmentation, list):  # else RLE: the format's as it is
                kept = [p for p in segmentation if len(p) >= 6 and not len(p) % 2]
                if len(kept) < len(segmentation):
                    self.report.drop('polygon of fewer than 3 points (or odd coordinates)',
                                     f'annotation {ann_id}')
                segmentation = kept or [list(polygon) for polygon in EMPTY_POLYGON]
            self.masks[ann_id] = segmentation
        return self.masks[ann_id]


class ImageLine:
    """One image's line being built: objects (one per single-object ref, plus those a
    multi-target ref needs) and top-level expressions."""

    def __init__(self, image: dict, img_path: str, masks: ObjectMasks) -> None:
        self.line = dict(image=img_path, id=image['id'])
        if 'height' in image and 'width' in image:
            self.line.update(height=image['height'], width=image['width'])
        self.objects: List[dict] = []
        self.groups: List[dict] = []
        self.object_of_ann: Dict[int, int] = {}  # annotation id -> its first object's index
        self.masks = masks
        self.reordered = False  # an object ref after a top-level one: texts change order

    def add_object(self, ann: dict, sentences: Optional[List[str]]) -> int:
        obj = dict(mask=self.masks[ann['id']])
        if sentences:
            obj['expressions'] = sentences
        self.object_of_ann.setdefault(ann['id'], len(self.objects))
        self.objects.append(obj)
        return len(self.objects) - 1

    def add_ref(self, parsed: dict, anns: Dict[int, dict]) -> None:
        """A ref as ``GReferSegDataset.parse_ref`` gives it (``ann_id`` a list)."""
        sentences = parsed['sentences']
        if parsed['no_target']:
            targets = []
        else:
            named = [anns[ann_id] for ann_id in parsed['ann_id'] if ann_id != NO_TARGET]
            # GReferSegDataset's union: crowd regions only when the ref names nothing else
            targets = [a for a in named if not a.get('iscrowd', 0)] or named
            if len(targets) == 1:
                self.reordered |= bool(self.groups)
                self.add_object(targets[0], sentences)
                return
        indices = [self.object_of_ann[a['id']] if a['id'] in self.object_of_ann
                   else self.add_object(a, None) for a in targets]
        self.groups += [dict(text=sentence, objects=indices) for sentence in sentences]

    def build(self) -> dict:
        line = dict(self.line, objects=self.objects)
        if self.groups:
            line['expressions'] = self.groups
        return line


def refer2jsonl(data_root: str, out_dir: str, ann_file: str = 'synthref/instances.json',
                split_file: str = 'synthref/refs(unc).p', img_prefix: str = 'images/',
                splits: Optional[List[str]] = None,
                force: bool = False) -> Tuple[Dict[str, int], ConversionReport]:
    """Write ``out_dir/<split>.jsonl`` per split; returns {split: lines written} and the
    report (kept images / objects / expressions, left-out polygons, reordered images)."""
    # the datasets' own reading: paths joined to data_root, refs loaded and parsed as they are
    source = GReferSegDataset(data_root=data_root, ann_file=ann_file, split_file=split_file,
                              data_prefix=dict(img_path=img_prefix), lazy_init=True)
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'{out_dir} is a file, expected an output folder')
    if not osp.isfile(source.split_file):
        raise FileNotFoundError(f'refs file {source.split_file} does not exist')
    refs = check_refs(source.load_refs(), source.split_file)
    anns, images = read_instances(source.ann_file)
    present = list(OrderedDict.fromkeys(ref['split'] for ref in refs))
    splits = present if splits is None else splits
    absent = [split for split in splits if split not in present]
    if absent:
        raise ValueError(f'{source.split_file} has no ref of split(s) {absent} (its splits: '
                         f'{present})')
    for split in splits:
        path = osp.join(out_dir, f'{split}.jsonl')
        if osp.exists(path) and not force:
            raise FileExistsError(f'{path} already exists; pass --force to overwrite it')

    report = ConversionReport()
    masks = ObjectMasks(anns, report)
    out_abs = osp.abspath(out_dir)
    outputs: Dict[str, List[dict]] = {}
    reordered = 0
    for split in splits:
        lines: Dict[int, ImageLine] = OrderedDict()  # image id -> line, first-ref order
        for ref in refs:
            if ref['split'] != split:
                continue
            image = images.get(ref['image_id'])
            if image is None:
                raise ValueError(f'{source.split_file}: ref {ref["ref_id"]} is on image '
                                 f'{ref["image_id"]}, which is not in {source.ann_file}')
            if ref['image_id'] not in lines:
                img_path = osp.join(source.data_prefix['img_path'], image['file_name'])
                lines[ref['image_id']] = ImageLine(
                    image, osp.relpath(osp.abspath(img_path), out_abs), masks)
            lines[ref['image_id']].add_ref(source.parse_ref(ref, anns, image), anns)
        outputs[split] = [line.build() for line in lines.values()]
        reordered += sum(line.reordered for line in lines.values())
        for number, line in enumerate(outputs[split], 1):  # all checked before any write
            check_line(line, f'{split}.jsonl:{number} (image {line["id"]})')
        report.keep('images', len(outputs[split]))
        report.keep('objects', sum(len(line['objects']) for line in outputs[split]))
        report.keep('object expressions', sum(len(o.get('expressions', []))
                                              for line in outputs[split] for o in line['objects']))
        report.keep('top-level expressions',
                    sum(len(line.get('expressions', [])) for line in outputs[split]))
    if reordered:  # see the module docstring
        report.keep('images with reordered texts (object refs first)', reordered)
    written = {split: write_jsonl(osp.join(out_dir, f'{split}.jsonl'), lines)
               for split, lines in outputs.items()}
    return written, report


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert a refer-format folder (RefCOCO, gRefCOCO, ...) to mmevf\'s JSON '
        'Lines format, one OUT_DIR/<split>.jsonl per split')
    parser.add_argument('data_root', help='the refer-format folder')
    parser.add_argument('out_dir', help='folder of the .jsonl files (created if needed)')
    parser.add_argument('--ann-file', default='synthref/instances.json',
                        help='COCO instances json, relative to DATA_ROOT')
    parser.add_argument('--split-file', default='synthref/refs(unc).p',
                        help='refs pickle or gRefCOCO json, relative to DATA_ROOT')
    parser.add_argument('--img-prefix', default='images/',
                        help='image folder, relative to DATA_ROOT')
    parser.add_argument('--splits', nargs='+',
                        help='splits to convert (default: every split of the refs file)')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    args = parser.parse_args(argv)
    try:
        written, report = refer2jsonl(args.data_root, args.out_dir, args.ann_file,
                                      args.split_file, args.img_prefix, args.splits, args.force)
    except (OSError, ValueError) as err:
        parser.exit(1, f'error: {err}\n')
    print(report.summary())
    for split, count in written.items():
        print(f'{split}: {count} images -> {osp.join(args.out_dir, f"{split}.jsonl")}')


if __name__ == '__main__':
    main()
