"""Reading COCO-format jsons (instances, parts) with clear errors."""
import os.path as osp
from typing import Optional

from mmengine.fileio import get_local_path

REQUIRED_KEYS = ('images', 'annotations', 'categories')


def load_coco(ann_file: str, backend_args: Optional[dict] = None):
    """Read a COCO-format instance json with mmdet's ``COCO`` wrapper (pycocotools).

    Raises an error naming ``ann_file`` if it is missing, is not JSON, lacks one of
    ``images`` / ``annotations`` / ``categories``, or has an annotation whose image or
    category is not listed (pycocotools would accept all of these silently or fail later
    with a bare ``KeyError``)."""
    from mmdet.datasets.api_wrappers import COCO  # mmdet is heavy: import on use
    if '://' not in ann_file and not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file {ann_file} does not exist')
    with get_local_path(ann_file, backend_args=backend_args) as local_path:
        try:
            coco = COCO(local_path)
        except (ValueError, AssertionError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f'annotation file {ann_file} is not a COCO-format json: {err}') \
                from None
    missing = [key for key in REQUIRED_KEYS if key not in coco.dataset]
    if missing:
        raise ValueError(f'annotation file {ann_file} has no {missing} (a COCO instance json '
                         f'needs {list(REQUIRED_KEYS)})')
    if not coco.cats:
        raise ValueError(f'annotation file {ann_file} has an empty categories list')
    for ann in coco.dataset['annotations']:
        if ann.get('image_id') not in coco.imgs:
            raise ValueError(f'annotation file {ann_file}: annotation {ann.get("id")} points to '
                             f'image {ann.get("image_id")}, which is not in its images')
        if ann.get('category_id') not in coco.cats:
            raise ValueError(f'annotation file {ann_file}: annotation {ann.get("id")} has '
                             f'category {ann.get("category_id")}, which is not in its categories')
    return coco
