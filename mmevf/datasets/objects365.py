"""Objects365 (or any COCO-format instance json) as referring data: bare category names.

EVF-SAM trains on Objects365 instance masks with the category name as the whole expression
(no ``[semantic]`` prefix) and up to 3 instances per image. The paper keeps "categories with
a single instance in the image": a bare name such as ``person`` for one of three people does
not refer to one object, so only those instances are eligible here. The same rule, in
:func:`eligible_annotations`, drives ``tools/dataset_converters/filter_objects365.py``.
"""
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional

from mmengine.dataset import BaseDataset
from mmengine.fileio import get_file_backend
from mmengine.logging import print_log
from pycocotools import mask as mask_utils

from mmevf.registry import DATASETS
from .utils import ExpressionModes, load_coco

def eligible_annotations(coco) -> Dict[int, List[dict]]:
    """``{image id: [annotation, ...]}`` of the instances usable as bare-name expressions.

    The rule: an annotation is eligible iff it is the **only** annotation of its category in
    its image and is not a crowd region (``iscrowd=1``). Crowd regions count towards the
    category's number of instances (a crowd of people next to one person makes ``person``
    ambiguous too). Images without an eligible annotation are left out; images and
    annotations keep the json's order."""
    result: Dict[int, List[dict]] = {}
    for image_id in coco.getImgIds():  # the json's image order
        anns = coco.imgToAnns.get(image_id, [])
        counts = Counter(ann['category_id'] for ann in anns)
        kept = [ann for ann in anns
                if counts[ann['category_id']] == 1 and not ann.get('iscrowd', 0)]
        if kept:
            result[image_id] = kept
    return result


def segmentation_rle(segm, height: int, width: int, where: str) -> dict:
    """A COCO ``segmentation`` of an (height, width) image as one COCO RLE with str counts
    (what mmdet's ``LoadAnnotations`` takes), converted with pycocotools as its ``annToRLE``
    does: polygons are merged, uncompressed RLE compressed, compressed RLE kept. Objects365's
    released json wraps its RLE in a list (the official code reads ``segmentation[0]``); that
    form is unwrapped first. ``where`` names the file and annotation in errors."""
    if isinstance(segm, list) and len(segm) == 1 and isinstance(segm[0], dict):
        segm = segm[0]
    if not segm:
        raise ValueError(f'{where} has no segmentation')
    try:
        if isinstance(segm, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
        elif isinstance(segm.get('counts'), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segm, height, width)
        else:  # compressed RLE, counts str (json) or bytes
            rle = dict(size=segm['size'], counts=segm['counts'])
            mask_utils.area(dict(size=rle['size'], counts=_bytes(rle['counts'])))  # validates
    except Exception as err:  # pycocotools raises TypeError / ValueError / KeyError ...
        raise ValueError(f'{where} has a malformed segmentation '
                         f'({type(err).__name__}: {err})') from None
    size = [int(s) for s in rle['size']]
    if size != [height, width]:
        raise ValueError(f'{where} has an RLE of size {size}, its image is {[height, width]}')
    counts = rle['counts']
    # mmdet's LoadAnnotations accepts RLE counts as str or list only, not bytes
    return dict(size=size, counts=counts.decode('ascii') if isinstance(counts, bytes)
                else counts)


def _bytes(counts) -> bytes:
    return counts.encode('ascii') if isinstance(counts, str) else counts


@DATASETS.register_module()
class ObjectsInstanceDataset(ExpressionModes, BaseDataset):
    """Instance masks of a COCO-format json (Objects365) with bare category names as texts.

    One item per image in :class:`ReferSegDataset`'s format, so the refer pipeline
    (``mmdet.LoadAnnotations`` with masks, ``TokenizeText``, ``PackReferInputs``) and
    ``ReferSegMetric`` apply: ``img_path``, ``img_id`` (the json's image id), ``height``,
    ``width``, ``text`` (category names, stripped, no prefix, as EVF-SAM phrases Objects365)
    and ``instances`` (one ``dict(mask=<COCO RLE, str counts>, bbox_label=<category index in
    the json's order>, ignore_flag=0)`` per text). ``metainfo['classes']`` are the json's
    category names.

    Only the eligible instances of :func:`eligible_annotations` are used (the paper's
    "categories with a single instance in the image"; ``unique_category_only=False`` uses
    every non-crowd instance instead, names then may repeat as in the official code). Images
    without one are dropped and counted in the log.

    - ``text_mode='original'`` (evaluation, the default): every eligible instance, in the
      json's annotation order, masks converted once at start-up.
    - ``text_mode='random'`` (training): each read draws up to ``max_expressions`` (EVF-SAM:
      3) eligible instances afresh, without replacement, with Python's ``random`` (like
      ``ReferSegDataset``); only the drawn masks are converted.
    - A missing / malformed json, missing categories, an annotation pointing to an unknown
      image or category, a malformed segmentation, or a missing image file raises an error
      naming the file.

    Args:
        ann_file: the COCO-format json (relative to ``data_root``).
        data_root: dataset folder.
        data_prefix: ``img_path``, the image folder (relative to ``data_root``).
        text_mode: ``'original'`` or ``'random'``.
        max_expressions: cap on the instances drawn per read in ``'random'`` mode
            (``None``: all eligible).
        unique_category_only: apply the single-instance rule.
        check_files: verify at start-up that every kept image exists (local paths).
        backend_args: file backend arguments for reading the json.
        **kwargs: the rest of mmengine's ``BaseDataset`` arguments (``pipeline``,
            ``test_mode``, ``lazy_init``, ...).
    """

    METAINFO: dict = dict(classes=())

    def __init__(self,
                 ann_file: str = '',
                 data_root: Optional[str] = None,
                 data_prefix: Dict = dict(img_path=''),
                 text_mode: str = 'original',
                 max_expressions: Optional[int] = 3,
                 unique_category_only: bool = True,
                 check_files: bool = True,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        self.set_expression_modes(text_mode, max_expressions)
        self.unique_category_only = unique_category_only
        self.check_files = check_files
        self.backend_args = backend_args
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        coco = load_coco(self.ann_file, self.backend_args)
        cat_ids = coco.getCatIds()  # sorted ids
        names = {c: coco.cats[c]['name'].strip() for c in cat_ids}
        self._metainfo['classes'] = tuple(names[c] for c in cat_ids)
        cat2label = {c: i for i, c in enumerate(cat_ids)}
        if self.unique_category_only:
            per_image = eligible_annotations(coco)
        else:
            per_image = {}
            for image_id in coco.getImgIds():
                anns = [a for a in coco.imgToAnns.get(image_id, []) if not a.get('iscrowd', 0)]
                if anns:
                    per_image[image_id] = anns

        join_path = get_file_backend(self.data_prefix['img_path']).join_path
        data_list = []
        for image_id, anns in per_image.items():
            image = coco.imgs[image_id]
            img_path = join_path(self.data_prefix['img_path'], image['file_name'])
            if self.check_files and '://' not in img_path and not osp.isfile(img_path):
                raise FileNotFoundError(f'image {img_path} (image id {image_id} of '
                                        f'{self.ann_file}) does not exist')
            if 'height' not in image or 'width' not in image:
                raise ValueError(f'annotation file {self.ann_file}: image {image_id} has no '
                                 'height / width')
            # only what the masks need is kept: the COCO index is freed after start-up
            candidates = [dict(text=names[a['category_id']], segmentation=a.get('segmentation'),
                               where=f'annotation file {self.ann_file}: annotation {a.get("id")}',
                               bbox_label=cat2label[a['category_id']]) for a in anns]
            info = dict(img_path=img_path, img_id=image_id, height=image['height'],
                        width=image['width'])
            if self.text_mode == 'random':
                info['candidates'] = candidates
            else:
                info.update(self._expressions(info, candidates))
            data_list.append(info)
        dropped = len(coco.imgs) - len(data_list)
        if dropped:
            print_log(f'{type(self).__name__}: {dropped} of {len(coco.imgs)} image(s) of '
                      f'{self.ann_file} have no eligible instance and are left out',
                      logger='current')
        if not data_list:
            raise ValueError(f'no image of {self.ann_file} has an eligible instance')
        return data_list

    @staticmethod
    def _expressions(info: dict, candidates: List[dict]) -> Dict[str, list]:
        """Texts and masks (COCO RLE, str counts) of the ``candidates`` of image ``info``."""
        return dict(
            text=[c['text'] for c in candidates],
            instances=[dict(mask=segmentation_rle(c['segmentation'], info['height'],
                                                  info['width'], c['where']),
                            bbox_label=c['bbox_label'], ignore_flag=0) for c in candidates])

    def sample_expressions(self, info: dict) -> Dict[str, list]:
        """A fresh draw of at most ``max_expressions`` instances for ``text_mode='random'``."""
        return self._expressions(info, self.draw_expressions(info['candidates']))

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        if self.text_mode == 'random':
            info.update(self.sample_expressions(info))
            del info['candidates']
        return self.pipeline(info)
