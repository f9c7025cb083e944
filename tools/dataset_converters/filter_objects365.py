"""Filter a COCO-format Objects365 instance json down to what EVF-SAM trains on.

``python tools/dataset_converters/filter_objects365.py SRC.json DST.json [--force]``

The rule (the paper's "categories with a single instance in the image"): an annotation is
kept iff it is the only annotation of its category in its image and is not a crowd region;
crowd regions count as instances of their category. A bare category name is the whole
expression, so ``person`` for one of three people does not say which one is meant and would
train the model on an ambiguous target; the other, unique categories of the same image stay
usable. An image is kept iff it keeps at least one annotation. ``categories`` (all of them,
so ids stay valid) and any other top-level keys (``info``, ``licenses``) are copied as they
are; kept images and annotations are copied unchanged, in the source order. The rule is
:func:`mmevf.datasets.objects365.eligible_annotations`, the one ``ObjectsInstanceDataset``
applies, so filtering is idempotent and the dataset reads the filtered json unchanged.

DST is written atomically (a temporary file in DST's folder, then renamed) and an existing
DST is refused unless ``--force`` is given.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the script is run from anywhere; mmevf lives at the repo root
    sys.path.insert(0, ROOT)
import mmengine  # noqa: E402

from mmevf.checkpoint import ATOMIC_BACKEND_ARGS  # noqa: E402
from mmevf.datasets.objects365 import eligible_annotations  # noqa: E402
from mmevf.datasets.utils import load_coco  # noqa: E402


def filter_objects365(src: str, dst: str, force: bool = False) -> Dict[str, int]:
    """Write the filtered ``src`` to ``dst``; returns the kept / source counts."""
    if osp.exists(dst) and not force:
        raise FileExistsError(f'{dst} already exists; pass --force to overwrite it')
    if osp.isdir(dst):
        raise IsADirectoryError(f'{dst} is a folder, expected a json file path')
    if not osp.isdir(osp.dirname(osp.abspath(dst))):
        raise FileNotFoundError(f'the folder of {dst} does not exist')
    coco = load_coco(src)  # validates: names src on missing categories, unknown ids, ...
    eligible = eligible_annotations(coco)
    # by object identity: COCO's index holds the json's own dicts, and ids may repeat
    kept = {id(ann) for anns in eligible.values() for ann in anns}
    data = coco.dataset
    out = {key: value for key, value in data.items() if key not in ('images', 'annotations')}
    out['images'] = [image for image in data['images'] if image['id'] in eligible]
    out['annotations'] = [ann for ann in data['annotations'] if id(ann) in kept]
    # mmevf's atomic backend: a crash never leaves a truncated DST
    mmengine.dump(out, dst, file_format='json', backend_args=ATOMIC_BACKEND_ARGS)
    return dict(images=len(out['images']), src_images=len(data['images']),
                annotations=len(out['annotations']), src_annotations=len(data['annotations']))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Keep the Objects365 instances whose category occurs once in the image')
    parser.add_argument('src', help='COCO-format instance json')
    parser.add_argument('dst', help='filtered json to write')
    parser.add_argument('--force', action='store_true', help='overwrite an existing DST')
    args = parser.parse_args(argv)
    try:
        counts = filter_objects365(args.src, args.dst, args.force)
    except (OSError, ValueError) as err:
        parser.exit(1, f'error: {err}\n')
    print(f'kept {counts["images"]} of {counts["src_images"]} images and '
          f'{counts["annotations"]} of {counts["src_annotations"]} annotations -> {args.dst}')


if __name__ == '__main__':
    main()
