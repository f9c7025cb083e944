"""Write a small labelme folder from SynthRef: the start of the custom-data walkthrough.

``python tools/dataset_converters/make_synthref_labelme.py SYNTHREF_ROOT OUT_DIR
[--num-images 6] [--split val] [--force]``

SYNTHREF_ROOT is what ``make_synthref.py`` wrote (``images/*.jpg``, ``synthref/instances.json``,
``synthref/refs(unc).p``). The first ``--num-images`` images of ``--split`` (by image id) that
have refs are copied to OUT_DIR, each with a labelme json beside it (``imagePath`` its file
name, no embedded ``imageData``), as if annotated in labelme: one ``polygon`` shape per ref,
in ref order, whose points are the referred annotation's polygon (an annotation of several
polygons would be several shapes sharing a ``group_id``; SynthRef's have one),

- ``label``: the ref's first sentence;
- ``description``: its second sentence, or ``""`` if it has one only. A single sentence, not
  all the others joined, so that ``labelme2jsonl.py --expression both`` gives two genuine
  referring expressions per object (a joined ``"a; b"`` would be one odd text); the third
  sentence of a SynthRef ref, if any, is left out.

Then ``labelme2jsonl.py OUT_DIR OUT_DIR/val.jsonl`` gives back the refs' masks and first
sentences. Deterministic (a pure function of SYNTHREF_ROOT); takes well under a second. An
OUT_DIR already holding ``*.json`` is refused unless ``--force`` is given.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the script is run from anywhere; mmevf lives at the repo root
    sys.path.insert(0, ROOT)
from mmevf.datasets.utils import load_refs_pickle  # noqa: E402

LABELME_VERSION = '5.4.1'  # a version writing "description" (>= 5.1)


def labelme_shapes(ref: dict, segmentation: list) -> List[dict]:
    """The polygon shape(s) of one ref: one per polygon of its annotation."""
    sentences = [s['sent'] for s in ref['sentences']]
    polygons = [[[p[k], p[k + 1]] for k in range(0, len(p), 2)] for p in segmentation]
    group_id = ref['ref_id'] if len(polygons) > 1 else None
    return [dict(label=sentences[0], points=points, group_id=group_id,
                 description=sentences[1] if len(sentences) > 1 else '',
                 shape_type='polygon', flags={}, mask=None) for points in polygons]


def make_synthref_labelme(root: str, out: str, num_images: int = 6, split: str = 'val',
                          force: bool = False) -> Dict[str, int]:
    """Write the labelme folder ``out``; returns the counts of images and shapes."""
    if num_images < 1:
        raise ValueError(f'--num-images must be positive, got {num_images}')
    if glob.glob(osp.join(glob.escape(out), '*.json')) and not force:
        raise FileExistsError(f'{out} already holds labelme jsons; pass --force to rewrite')
    ann_file = osp.join(root, 'synthref', 'instances.json')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'{ann_file} does not exist (make_synthref.py writes it)')
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    refs = load_refs_pickle(osp.join(root, 'synthref', 'refs(unc).p'))
    anns = {ann['id']: ann for ann in coco['annotations']}
    refs_of: Dict[int, List[dict]] = {}
    for ref in sorted(refs, key=lambda r: r['ref_id']):
        if ref['split'] == split:
            refs_of.setdefault(ref['image_id'], []).append(ref)
    if not refs_of:
        splits = sorted({r['split'] for r in refs})
        raise ValueError(f'{root} has no ref in split {split!r} (splits: {splits})')
    images = [img for img in sorted(coco['images'], key=lambda i: i['id'])
              if img['id'] in refs_of][:num_images]
    os.makedirs(out, exist_ok=True)
    shapes_written = 0
    for image in images:
        shutil.copyfile(osp.join(root, 'images', image['file_name']),
                        osp.join(out, image['file_name']))
        shapes = [shape for ref in refs_of[image['id']]
                  for shape in labelme_shapes(ref, anns[ref['ann_id']]['segmentation'])]
        labelme = dict(version=LABELME_VERSION, flags={}, shapes=shapes,
                       imagePath=image['file_name'], imageData=None,
                       imageHeight=image['height'], imageWidth=image['width'])
        stem = osp.splitext(image['file_name'])[0]
        with open(osp.join(out, stem + '.json'), 'w', encoding='utf-8') as f:
            json.dump(labelme, f, indent=2, ensure_ascii=False)  # labelme's own layout
        shapes_written += len(shapes)
    return dict(images=len(images), shapes=shapes_written)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Write a labelme folder from a few SynthRef images (one shape per ref)')
    parser.add_argument('root', help='SynthRef folder (make_synthref.py\'s output)')
    parser.add_argument('out', help='labelme folder to write')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--split', default='val', help='SynthRef split the images come from')
    parser.add_argument('--force', action='store_true', help='rewrite an existing folder')
    args = parser.parse_args(argv)
    try:
        counts = make_synthref_labelme(args.root, args.out, args.num_images, args.split,
                                       args.force)
    except (OSError, ValueError) as err:
        parser.exit(1, f'error: {err}\n')
    print(f'wrote {counts["images"]} images and labelme jsons ({counts["shapes"]} shapes) '
          f'-> {args.out}')


if __name__ == '__main__':
    main()
